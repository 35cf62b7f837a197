"""Workers on a Ray cluster (hostbridge.ray): a real cluster of two nodes on 127.0.0.1, started
and stopped here (tests/ray_cluster.py); the host side runs in an interpreter with Ray
(tests/ray_scenarios.py). Marked ``ray``: ``pytest -m 'not ray'`` leaves them out.

The node agent's own checks (shipped bytes against the lock, names) run without Ray.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from helpers_build import make_wheel

from hostbridge.ray._agent import NodeAgent, entry_key
from isolator import PluginStore
from isolator.policy._permissions import Permissions

if TYPE_CHECKING:
    from collections.abc import Iterator

    from ray_cluster import RayCluster

TOOLS = '''\
"""Tools that say where they run."""
import os
import sys
import time


def echo(text: str) -> str:
    """Return *text*."""
    return text


def where() -> dict:
    """The worker's interpreter and pid."""
    return {"executable": sys.executable, "prefix": sys.prefix, "pid": os.getpid()}


def can_import(module: str) -> bool:
    """Whether *module* imports here."""
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def dists() -> list:
    """The dist-info directories of this venv."""
    site = [p for p in sys.path if p.endswith("site-packages")][0]
    return sorted(n for n in os.listdir(site) if n.endswith(".dist-info"))


def ask_host(text: str) -> object:
    """Ask the host's echo capability."""
    from ohp_worker.main import host_call
    return host_call("echo", text)


def nap(seconds: float) -> float:
    """Sleep."""
    time.sleep(seconds)
    return seconds


def die(code: int) -> None:
    """Say something on stderr and exit with *code*."""
    print(f"dying with {code}", file=sys.stderr, flush=True)
    os._exit(code)


def noisy(lines: int) -> int:
    """Print *lines* lines to stdout and stderr."""
    for i in range(lines):
        print("out", i)
        print("err", i, file=sys.stderr)
    sys.stdout.flush()
    return lines


def fail() -> None:
    """Raise."""
    raise ValueError("it failed")


def big(size: int) -> str:
    """A text of *size* characters."""
    return "x" * size
'''
TOOL_NAMES = ["echo", "where", "can_import", "dists", "ask_host", "nap", "die", "noisy", "fail",
              "big"]


def probe_wheel(directory: Path) -> Path:
    return make_wheel(directory, "ray-probe-plugin", "1.0.0", files={
        "ray_probe_plugin/__init__.py": "",
        "ray_probe_plugin/tools.py": TOOLS,
    }, entry_points={
        "openhands.plugins": {"ray-probe": "ray_probe_plugin"},
        "openhands.tools": {name: f"ray_probe_plugin.tools:{name}" for name in TOOL_NAMES},
    })


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, example_wheelhouse: Path) -> PluginStore:
    base = tmp_path_factory.mktemp("ray-store")
    links = base / "links"
    probe_wheel(links)
    store = PluginStore(base / "store")
    for source in ("pypi:ray-probe-plugin", "pypi:openhands-plugin-shout",
                   "pypi:openhands-plugin-echo-agent"):
        store.install(source, find_links=[links, example_wheelhouse], no_index=True)
    store.configure("ray-probe", grants=Permissions(capabilities=("echo",)))
    store.configure("echo-agent", grants=Permissions(capabilities=("llm.complete",)))
    return store


@pytest.fixture(scope="module")
def cluster() -> Iterator[RayCluster]:
    from ray_cluster import RayCluster, ray_python

    try:
        python = ray_python()
    except Exception as exc:  # the ray extra could not be installed (no registry)
        pytest.fail(f"no interpreter with Ray: {exc}", pytrace=False)
    ray = RayCluster(python)
    try:
        ray.add_node(num_cpus=1)
        yield ray
    finally:
        ray.stop()


def run(cluster: RayCluster, scenario: str, store: PluginStore, node_root: Path) -> Any:
    return cluster.run(scenario, str(store.root), str(node_root))


@pytest.mark.ray
def test_a_tool_through_ray_returns_what_it_returns_locally(
        cluster: RayCluster, store: PluginStore, tmp_path: Path) -> None:
    node_root = tmp_path / "node"
    out = run(cluster, "parity", store, node_root)
    assert out["ray"] == out["local"]
    assert out["ray"][0] == {"content": "hi", "is_error": False}
    assert out["ray"][2] == {"content": "host says x", "is_error": False}  # served by the host
    assert out["ray"][3]["is_error"] and out["ray"][3]["content"] == "ValueError: it failed"
    assert out["ray"][4]["content"] == 3 << 20  # a 3 MiB answer crosses the relay whole
    # The worker ran in a venv the node agent built under its root, not the store's.
    assert out["ray_where"]["executable"].startswith(str(node_root / "envs"))
    assert out["local_where"]["executable"].startswith(str(store.root))
    assert out["placements"]["ray-probe"] in out["nodes"]
    assert len(out["nodes"]) == 2
    # stderr reached the host's log; the sandbox is the node's, applied there.
    assert [line for line in out["ray_stderr"] if line.startswith("err ")] == \
        ["err 0", "err 1", "err 2"]
    for layer in ("pid_namespace", "seccomp", "environment"):
        assert out["ray_sandbox"][layer] == out["local_sandbox"][layer], layer
    # A second host reuses the node's venv: nothing to ship, the same interpreter.
    assert out["missing_second_time"] == []
    assert out["second_where"]["executable"] == out["ray_where"]["executable"]
    # The plugin's venv holds no Ray.
    venv = Path(out["ray_where"]["executable"]).parent.parent
    site = next(venv.glob("lib/python*/site-packages"))
    assert not (site / "ray").exists()
    assert not list(site.glob("ray-*.dist-info"))
    assert out["ray_can_import_ray"] is False


@pytest.mark.ray
def test_deadlines_crashes_budget_cancellation_heartbeats_idle_as_locally(
        cluster: RayCluster, store: PluginStore, tmp_path: Path) -> None:
    out = run(cluster, "semantics", store, tmp_path / "node")
    assert "deadline of 1 s passed" in out["deadline"]
    assert out["deadline_seconds"] < 5
    assert out["after_deadline"] == "back"
    assert out["new_worker_after_deadline"] and out["old_worker_gone"]
    assert out["alive_after_heartbeats"]
    assert out["cancel"] == "cancelled" and out["cancel_killed_worker"]
    assert out["after_cancel"] == "again"
    for code, crash in zip((3, 4, 5), out["crashes"], strict=True):
        assert crash["exit_code"] == code, crash
        assert f"dying with {code}" in " ".join(crash["stderr_tail"]), crash
        assert f"exit status {code}" in crash["error"], crash
    assert "crashed 3 times" in out["failed"]
    assert out["after_reset"] == "reset"
    assert out["idle_state"] == "stopped" and out["idle_worker_gone"]


@pytest.mark.ray
def test_a_killed_node_agent_fails_calls_in_flight_and_the_worker_comes_back_elsewhere(
        cluster: RayCluster, store: PluginStore, tmp_path: Path) -> None:
    out = run(cluster, "agent_killed", store, tmp_path / "node")
    assert len(set(out["spread"].values())) == 2  # two plugins, two nodes
    (error,) = out["in_flight"]
    assert "node agent" in error and "is gone" in error, error
    assert out["worker_died_with_agent"]
    assert out["status_after_kill"] == "stopped"
    assert out["next_call"] == "back"
    assert out["new_node"] != out["old_node"]


@pytest.mark.ray
def test_ohp_call_and_doctor_with_ray(cluster: RayCluster, store: PluginStore) -> None:
    def ohp(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(cluster.python), "-m", "hostbridge.cli", *args,
                               "--root", str(store.root)], capture_output=True, text=True,
                              env=cluster.env, timeout=300, check=False)

    local = ohp("call", "shout", "shout", "--args", '{"text": "hi"}')
    remote = ohp("call", "shout", "shout", "--args", '{"text": "hi"}', "--ray", cluster.address)
    assert local.returncode == remote.returncode == 0, remote.stderr
    assert remote.stdout == local.stdout == "HI!\n"
    doctor = ohp("doctor", "--json", "--ray", cluster.address)
    nodes = json.loads(doctor.stdout)["ray_nodes"]
    assert len(nodes) == 2
    for node in nodes:
        assert node["sandbox_layers"]["pid_namespace"]["works"] is not None
    tools = ohp("tools", "shout", "--json", "--ray", cluster.address)
    assert [t["name"] for t in json.loads(tools.stdout)] == \
        [t["name"] for t in json.loads(ohp("tools", "shout", "--json").stdout)]
    # An agent step on a node: its model calls still answered by this process's model.
    local = ohp("agent", "echo-agent", "--prompt", "hello there", "--json")
    remote = ohp("agent", "echo-agent", "--prompt", "hello there", "--json", "--ray",
                 cluster.address)
    assert local.returncode == remote.returncode == 0, remote.stderr
    assert remote.stdout == local.stdout
    assert '"content": "echo: hello there"' in remote.stdout


# ---- the node agent's checks, without Ray ---------------------------------------------------


def _entry(store: PluginStore) -> dict[str, Any]:
    entry: dict[str, Any] = store.lock()["plugins"]["ray-probe"]
    return entry


def test_the_node_agent_refuses_shipped_bytes_that_are_not_the_locked_file(
        store: PluginStore, tmp_path: Path) -> None:
    agent = NodeAgent(str(tmp_path / "node"))
    entry = _entry(store)
    missing = agent.missing("ray-probe", entry)
    assert sorted(missing) == sorted(d["sha256"] for d in entry["distributions"])
    sha = missing[0]
    with pytest.raises(ValueError, match="shipped bytes have sha256"):
        agent.prepare("ray-probe", entry, {sha: b"not the wheel"})
    with pytest.raises(ValueError, match="not in its lock entry"):
        agent.prepare("ray-probe", entry, {hashlib.sha256(b"x").hexdigest(): b"x"})
    # Nothing was stored or built.
    assert not (tmp_path / "node" / "envs" / entry_key(entry)).exists()
    assert agent.missing("ray-probe", entry) == missing
    # A lock entry naming a file outside the agent's wheels is refused before any write.
    evil = {**entry, "distributions": [{**entry["distributions"][0], "file": "../../x.whl"}]}
    with pytest.raises(ValueError, match="not a wheel's sha256 and file name"):
        agent.missing("ray-probe", evil)


def test_the_node_agent_builds_a_venv_from_shipped_wheels_only_and_reuses_it(
        store: PluginStore, tmp_path: Path) -> None:
    agent = NodeAgent(str(tmp_path / "node"))
    entry = _entry(store)
    wheels = {d.sha256: store.wheelhouse.verified(d.artifact()).read_bytes()
              for d in store.get("ray-probe").distributions}
    # The lock's URLs name the host's files; the node must not need them.
    entry = {**entry, "distributions": [{**d, "url": "https://index.invalid/" + d["file"]}
                                        for d in entry["distributions"]]}
    key = agent.prepare("ray-probe", entry, {sha: wheels[sha]
                                             for sha in agent.missing("ray-probe", entry)})
    assert agent.missing("ray-probe", entry) == []
    node_store = PluginStore(tmp_path / "node" / "envs" / key)
    installed = node_store.get("ray-probe")
    assert {d.sha256 for d in installed.distributions} == set(wheels)
    assert node_store.verify().changes == ()
    assert agent.prepare("ray-probe", entry, {}) == key  # built once
