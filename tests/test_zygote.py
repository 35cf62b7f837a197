"""Fast worker start (#19 deliverable 2): workers forked by a zygote get every layer an exec'd
worker gets, per profile; a zygote that dies is replaced; workers start concurrently; tool
schemas are listed once per generation. Attacks on the zygote: tests/security/test_attack_zygote.py.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
from helpers_build import make_wheel

import hostbridge.launch._zygote as zygote_module
from hostbridge import HostBridge, WorkerStartError, launcher_info
from hostbridge.supervision._process import LocalLauncher, Worker
from isolator import PluginStore

PROBE_PY = '''\
import ctypes
import os
import sys


def probe() -> dict:
    """What this process is: identity, layers, limits, descriptors, environment."""
    status = {}
    for line in open("/proc/self/status").read().splitlines():
        key, _, value = line.partition(":")
        status[key] = value.strip()
    fds = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{name}")
        except OSError:
            continue
        fds[int(name)] = target.split(":")[0] if ":" in target else target
    libc = ctypes.CDLL(None, use_errno=True)
    signal_number = ctypes.c_int(0)
    libc.prctl(2, ctypes.byref(signal_number), 0, 0, 0)  # PR_GET_PDEATHSIG
    try:
        pids = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
    except OSError:  # strict: Landlock leaves /proc/self only
        pids = None
    return {"status": status, "limits": open("/proc/self/limits").read(),
            "env": dict(os.environ), "cwd": os.getcwd(), "executable": sys.executable,
            "prefix": sys.prefix, "fds": fds, "pdeathsig": signal_number.value,
            "pids": pids, "pid": os.getpid(), "path": sys.path[-2:],
            "dumpable": libc.prctl(3, 0, 0, 0, 0)}
'''

# /proc/self/status lines that must be the same for an exec'd and a forked worker.
SAME_STATUS = ("Uid", "Gid", "Groups", "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb",
               "NoNewPrivs", "Seccomp", "Seccomp_filters", "NSpid", "NStgid", "NSsid")


def _make_store(root: Path, names: tuple[str, ...] = ("probe",)) -> PluginStore:
    links = root / "links"
    for name in names:
        module = f"zyg_{name}"
        make_wheel(links, f"zyg-{name}", "1.0.0", files={
            f"{module}/__init__.py": "", f"{module}/tools.py": PROBE_PY,
        }, entry_points={"openhands.plugins": {name: module},
                         "openhands.tools": {"probe": f"{module}.tools:probe"}})
    store = PluginStore(root / "store")
    for name in names:
        store.install(f"pypi:zyg-{name}", find_links=[links], no_index=True)
    return store


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> PluginStore:
    root = tmp_path_factory.mktemp("zygote")
    root.chmod(0o755)
    return _make_store(root, ("probe", "other", "third"))


def _probe(store: PluginStore, profile: str, start: str,
           **kwargs: Any) -> tuple[dict[str, Any], Worker]:
    bridge = HostBridge(store, profile=profile, worker_start=start, **kwargs)
    try:
        result = bridge.call_tool("probe", "probe", {})
        assert not result.is_error, result.content
        worker = bridge.worker("probe")
        content = result.content
        scratch = str(worker.scratch)  # each worker has its own: compared as "<scratch>"
        content["env"] = {k: v.replace(scratch, "<scratch>") for k, v in content["env"].items()}
        content["cwd"] = content["cwd"].replace(scratch, "<scratch>")
        return content, worker
    finally:
        bridge.close()


@pytest.mark.parametrize("profile", ["off", "standard", "strict"])
def test_a_forked_worker_gets_every_layer_of_an_exec_d_one(store: PluginStore,
                                                            profile: str) -> None:
    if profile == "strict" and not launcher_info()["pid_namespace"]:
        pytest.skip("strict needs every layer")
    execd, exec_worker = _probe(store, profile, "exec")
    forked, fork_worker = _probe(store, profile, "zygote")
    forkable = profile == "off" or launcher_info()["pid_namespace"]
    assert exec_worker.sandbox["start"] == "exec"
    assert fork_worker.sandbox["start"] == ("zygote" if forkable else
                                            "exec (no PID namespace here)")
    # The sandbox record (what the host planned and what the worker applied to itself).
    strip = {"start"}
    assert {k: v for k, v in exec_worker.sandbox.items() if k not in strip} == \
        {k: v for k, v in fork_worker.sandbox.items() if k not in strip}
    assert exec_worker.hello["sandbox"] == fork_worker.hello["sandbox"]
    assert exec_worker.hello["uid"] == fork_worker.hello["uid"]
    # The kernel's view of the process.
    for key in SAME_STATUS:
        if key in ("NSpid", "NStgid", "NSsid") and profile == "off":
            continue  # host pids
        assert execd["status"].get(key) == forked["status"].get(key), key
    assert execd["limits"] == forked["limits"]
    assert execd["pdeathsig"] == forked["pdeathsig"] == signal.SIGKILL
    assert execd["dumpable"] == forked["dumpable"] == 1
    # Descriptors: /dev/null, two pipes, the socket (and the listing's own).
    kinds = sorted(v for v in forked["fds"].values() if not v.startswith("/proc"))
    assert kinds == sorted(v for v in execd["fds"].values() if not v.startswith("/proc"))
    assert kinds == ["/dev/null", "pipe", "pipe", "socket"]
    # The environment (the exec path's shell may add PWD and OLDPWD), directory, interpreter.
    shell = {"PWD", "OLDPWD"}
    assert {k: v for k, v in execd["env"].items() if k not in shell} == \
        {k: v for k, v in forked["env"].items() if k not in shell}
    for key in ("executable", "prefix", "path"):
        assert execd[key] == forked[key], key
    # The working directory plan() chose, on both paths (under strict its scratch, also where
    # a root host's private mount namespace's script changes directory).
    if profile == "strict":
        assert forked["cwd"] == "<scratch>"
    assert execd["cwd"] == forked["cwd"]
    if profile != "off":
        assert forked["pid"] == 1
        assert forked["pids"] == execd["pids"] == ([1] if profile == "standard" else None)
        assert forked["status"]["CapEff"] == "0000000000000000"


def test_the_zygote_holds_only_its_control_socket(store: PluginStore) -> None:
    _probe(store, "standard", "zygote")
    found = [z for z in zygote_module.zygotes() if z.key[1] == "standard" and z.alive]
    assert found
    pid = found[0].proc.pid
    kinds = sorted(os.readlink(f"/proc/{pid}/fd/{fd}").split(":")[0]
                   for fd in os.listdir(f"/proc/{pid}/fd"))
    assert kinds == ["/dev/null", "/dev/null", "pipe", "socket"]
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    names = {item.split(b"=")[0].decode() for item in environ if item}
    # (PWD and OLDPWD: the private mount namespace's shell, for a root host.)
    assert names <= {"PATH", "LANG", "LC_ALL", "LC_CTYPE", "PWD", "OLDPWD"}
    assert len(os.listdir(f"/proc/{pid}/task")) == 1  # single-threaded
    assert Path(f"/proc/{pid}/status").read_text().count("Seccomp:\t0") == 1  # no filter
    if launcher_info()["host_is_root"]:
        assert int(Path(f"/proc/{pid}/status").read_text().split("Uid:")[1].split()[0]) \
            == 65534


def test_a_zygote_that_dies_is_replaced_and_its_workers_live_on(store: PluginStore) -> None:
    with HostBridge(store, profile="standard", worker_start="zygote") as bridge:
        bridge.call_tool("probe", "probe", {})
        worker = bridge.worker("probe")
        old = [z for z in zygote_module.zygotes() if z.key[1] == "standard" and z.alive]
        assert old
        os.kill(old[0].proc.pid, signal.SIGKILL)
        old[0].proc.wait(timeout=5)
        # The worker forked before lives on.
        assert bridge.call_tool("probe", "probe", {}).content["pid"] == 1
        assert worker.alive
        # The next start gets a new zygote.
        other = bridge.call_tool("other", "probe", {})
        assert not other.is_error
        new = [z for z in zygote_module.zygotes() if z.key[1] == "standard" and z.alive]
        assert new and new[0].proc.pid != old[0].proc.pid
        assert bridge.worker("other").sandbox["start"] == "zygote"


def test_a_killed_worker_is_reported_with_its_signal(store: PluginStore) -> None:
    with HostBridge(store, profile="standard", worker_start="zygote",
                    crash_budget=(100, 300.0)) as bridge:
        bridge.call_tool("probe", "probe", {})
        worker = bridge.worker("probe")
        os.kill(worker.pid, signal.SIGKILL)  # type: ignore[arg-type]
        deadline = time.monotonic() + 10
        while worker.crash is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert worker.crash is not None
        assert worker.crash.signal == "SIGKILL"
        assert bridge.call_tool("probe", "probe", {}).content["pid"] == 1  # started again


def test_workers_of_one_bridge_start_concurrently(store: PluginStore) -> None:
    with HostBridge(store, profile="standard", worker_start="zygote") as bridge:
        started = bridge.start(["probe", "other", "third"])
        assert sorted(started) == ["other", "probe", "third"]
        pids = {name: worker.pid for name, worker in started.items()}
        assert len(set(pids.values())) == 3
        assert all(worker.alive for worker in started.values())
        assert [t.name for t in bridge.tools("third")] == ["probe"]
        with pytest.raises(Exception, match="nope"):
            bridge.start(["probe", "nope"])


def test_tool_schemas_are_listed_once_per_generation(store: PluginStore,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    listed: list[str] = []
    original = Worker.request

    def request(self: Worker, method: str, *params: object, **kwargs: Any) -> Any:
        if method == "tools.list":
            listed.append(self.name)
        return original(self, method, *params, **kwargs)

    monkeypatch.setattr(Worker, "request", request)
    for _ in range(3):
        with HostBridge(store, profile="strict") as bridge:
            assert [t.name for t in bridge.tools("third")] == ["probe"]
    assert listed.count("third") <= 1
    before = listed.count("third")
    with HostBridge(store, profile="standard") as bridge:  # another profile: listed anew
        bridge.tools("third")
    assert listed.count("third") <= before + 1


def test_the_start_mode_is_checked(store: PluginStore, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(WorkerStartError, match="worker start 'fork'"):
        LocalLauncher("fork")
    monkeypatch.setenv("ISOLATOR_WORKER_START", "fast")
    with HostBridge(store, profile="standard") as bridge, \
            pytest.raises(WorkerStartError, match="ISOLATOR_WORKER_START='fast'"):
        bridge.worker("probe")
    monkeypatch.setenv("ISOLATOR_WORKER_START", "exec")
    with HostBridge(store, profile="standard") as bridge:
        assert bridge.worker("probe").sandbox["start"] == "exec"
    with pytest.raises(ValueError, match="not both"):
        HostBridge(store, worker_start="exec", launcher=LocalLauncher())
