"""``ohp demo`` (#9), run as a user runs it: a subprocess, no terminal, offline.

Each step's output is checked for what it must show (the wheels built, the three plugins and
what their venvs hold, greetings' content read from site-packages, tool results from two venvs
that pin different versions of one library, an agent step, the sandbox layers), and the
temporary root must be gone afterwards.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from reachable import remove, world_dir

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = pytest.mark.slow

STEPS = ["build", "install", "list", "content", "tools", "agent", "sandbox", "cleanup"]
WHEELS = [
    "openhands_plugin_greetings-1.0.0-py3-none-any.whl",
    "openhands_plugin_salute-1.0.0-py3-none-any.whl",
    "openhands_plugin_echo_agent-1.0.0-py3-none-any.whl",
    "example_textkit-1.0.0-py3-none-any.whl",
    "example_textkit-2.0.0-py3-none-any.whl",
]


@pytest.fixture
def tmpdir_root() -> Iterator[Path]:
    """The demo's TMPDIR: a directory every user may enter, as a system's /tmp is (when the
    tests run as root, the demo's workers run as uid 65534 and must reach its store)."""
    root = world_dir("isolator-demo-test-")
    yield root
    remove(root)


def ohp_demo(tmpdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "TMPDIR": str(tmpdir)}
    env.pop("NO_COLOR", None)
    return subprocess.run([sys.executable, "-m", "hostbridge.cli", "demo", *args],
                          capture_output=True, text=True, timeout=300, check=False, env=env,
                          cwd=tmpdir, stdin=subprocess.DEVNULL)


def sections(stdout: str) -> dict[int, str]:
    """Each step's output by number: its header line and its indented lines."""
    parts = re.split(r"^\[(\d)/8\] ", stdout, flags=re.MULTILINE)
    return {int(number): text for number, text in zip(parts[1::2], parts[2::2], strict=True)}


def test_the_demo_runs_every_step_and_leaves_nothing(tmpdir_root: Path) -> None:
    done = ohp_demo(tmpdir_root)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "error" not in done.stderr, done.stderr
    out = done.stdout
    root = re.search(r"offline, in (\S+) \(removed at the end\)", out)
    assert root is not None, out
    steps = sections(out)
    assert sorted(steps) == list(range(1, 9)), out
    for text in steps.values():
        assert re.match(r".+  \(\d+\.\d\d s\)\n", text), text  # header with its wall time

    build = steps[1]
    assert "--no-build-isolation --offline" in build
    for wheel in WHEELS:
        assert re.search(rf"^ {{4}}  {re.escape(wheel)} +<- examples/", build, re.MULTILINE), build

    install = steps[2]
    for plugin in ("greetings", "salute", "echo-agent"):
        assert re.search(rf"^ {{4}}{plugin} 1\.0\.0  \(openhands-plugin-{plugin};", install,
                         re.MULTILINE), install
    assert "greetings 1.0.0  (openhands-plugin-greetings; no code: content only)" in install
    assert "tool salute, tool textkit_version" in install
    assert "agent echo-agent, tool textkit_version, tool word_count" in install
    assert re.search(r"holds +example-textkit 1\.0\.0, openhands-plugin-greetings 1\.0\.0, "
                     r"openhands-plugin-salute 1\.0\.0", install), install
    assert re.search(r"holds +example-textkit 2\.0\.0, openhands-plugin-echo-agent 1\.0\.0",
                     install), install
    assert "plugin greetings 1.0.0 (openhands-plugin-greetings): loadable from this venv too, " \
        "brought by salute" in install
    assert "granted: llm.complete" in install

    listed = steps[3]
    rows = [line.split() for line in listed.splitlines()[1:] if line.strip()]
    assert rows[0] == ["NAME", "VERSION", "PACKAGE", "PYTHON", "SOURCE"]
    assert [row[0] for row in rows[1:4]] == ["echo-agent", "greetings", "salute"]
    assert all(row[1] == "1.0.0" and row[4] == f"pypi:{row[2]}" for row in rows[1:4]), rows

    content = steps[4]
    for shown in ("farewell", "greet", "/hello", "greeter", "session_start", "greetings-echo"):
        assert re.search(rf"^ {{6}}{re.escape(shown)}  ", content, re.MULTILINE), content
    site = re.search(r"root: (\S+/site-packages)/openhands_plugin_greetings$", content,
                     re.MULTILINE)
    assert site is not None and site.group(1).startswith(root.group(1) + "/store/"), content
    assert f"site-packages: {site.group(1)}" in content
    assert "openhands_plugin_greetings was not imported" in content

    tools = steps[5]
    assert re.search(r"salute +salute\(name=\"Ada\"\) -> 'HELLO, ADA!'", tools), tools
    assert re.search(r"salute +textkit_version\(\) -> '1\.0\.0'", tools), tools
    assert re.search(r"echo-agent +textkit_version\(\) -> '2\.0\.0'", tools), tools
    for plugin in ("salute", "echo-agent"):
        assert re.search(rf"{plugin} +pid \d+  \S+/store/plugins/{plugin}/gen-[^/]+/venv/bin/"
                         r"python \(Python 3\.\d+", tools), tools
    assert "cannot import example_textkit" in tools

    agent = steps[6]
    events = [json.loads(line) for line in agent.splitlines() if line.startswith("      {")]
    assert events == [
        {"type": "status", "text": "Hello from echo-agent"},
        {"type": "message", "role": "assistant", "content": "echo: hello from ohp demo"},
        {"type": "observation", "tool": "word_count", "result": 5},
    ]
    assert "host-side model use by echo-agent: 1 call, 4 prompt + 5 completion tokens" in agent

    sandbox = steps[7]
    assert "profile: salute standard, echo-agent standard" in sandbox
    for layer in ("environment", "rlimits", "pid_namespace", "net_namespace", "seccomp",
                  "unprivileged_uid", "store_read_only", "landlock"):
        assert re.search(rf"^ {{4}}{layer} +(works|MISSING|n/a) ", sandbox, re.MULTILINE), \
            sandbox
    assert re.search(r"^ {4}landlock +\S+ +no \(strict only\)", sandbox, re.MULTILINE), sandbox

    cleanup = steps[8]
    assert "workers stopped" in cleanup and f"removed {root.group(1)}" in cleanup
    assert not Path(root.group(1)).exists()
    assert list(tmpdir_root.iterdir()) == []  # no temporary root or scratch left behind

    summary = out[out.index("\nsummary\n"):].splitlines()
    assert len([line for line in summary if re.match(r"  \d  .+ +\d+\.\d\d s$", line)]) == 8
    assert re.match(r" +total +\d+\.\d\d s$", summary[-2]), summary
    assert out.endswith("demo ok\n")


def test_json_keep(tmpdir_root: Path) -> None:
    done = ohp_demo(tmpdir_root, "--json", "--keep")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    root = Path(result["root"])
    try:
        assert result["ok"] is True and result["kept"] is True
        assert result["seconds"] < 60  # the promise, on this 2-core machine
        assert [step["name"] for step in result["steps"]] == STEPS
        for step in result["steps"]:
            assert step["ok"] is True and isinstance(step["seconds"], float)
            assert isinstance(step["data"], dict) and step["data"], step
        data = {step["name"]: step["data"] for step in result["steps"]}
        assert sorted(data["build"]["wheels"].values()) == sorted(WHEELS)
        plugins = {p["name"]: p for p in data["install"]["plugins"]}
        assert plugins["salute"]["distributions"]["example-textkit"] == "1.0.0"
        assert plugins["echo-agent"]["distributions"]["example-textkit"] == "2.0.0"
        assert plugins["salute"]["brings"] == [{"name": "greetings", "version": "1.0.0",
                                                "package": "openhands-plugin-greetings",
                                                "brought_by": "salute"}]
        assert [p["name"] for p in data["list"]["plugins"]] == ["echo-agent", "greetings",
                                                                "salute"]
        assert data["content"]["skills"] == ["farewell", "greet"]
        assert data["content"]["root"].startswith(data["content"]["site_packages"] + "/")
        assert [c["content"] for c in data["tools"]["calls"]] == ["HELLO, ADA!", "1.0.0",
                                                                  "2.0.0"]
        assert data["agent"]["llm_usage"]["calls"] == 1
        assert data["sandbox"]["profiles"] == {"salute": "standard", "echo-agent": "standard"}
        assert data["sandbox"]["layers"]["pid_namespace"]["in_force"]["salute"] is \
            data["sandbox"]["layers"]["pid_namespace"]["works_here"]
        assert data["cleanup"]["kept"] == str(root) and data["cleanup"]["root_removed"] is False
        # Kept: the wheelhouse and the store are there, the workers are not.
        assert sorted(p.name for p in (root / "wheelhouse").iterdir()) == sorted(WHEELS)
        assert (root / "store" / "plugins" / "salute" / "current").exists()
        assert not (root / "src").exists()  # the copies that were built are gone
    finally:
        remove(root)


def test_a_bad_examples_directory_is_a_clear_error(tmpdir_root: Path) -> None:
    done = ohp_demo(tmpdir_root, "--examples", str(tmpdir_root / "nowhere"))
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.startswith("ohp: error: examples directory ")
    assert "not found; pass --examples DIR" in done.stderr
    assert len(done.stderr.splitlines()) == 1
    (tmpdir_root / "empty").mkdir()
    done = ohp_demo(tmpdir_root, "--examples", str(tmpdir_root / "empty"))
    assert done.returncode == 1
    assert "no project openhands-plugin-greetings" in done.stderr
    assert sorted(p.name for p in tmpdir_root.iterdir()) == ["empty"]  # no temporary root
