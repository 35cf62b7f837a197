"""``ohp demo`` (#9), run as a user runs it: a subprocess, no terminal, offline.

Each step's output is checked for what it must show (the wheels built, the three plugins and
what their venvs hold, greetings' content read from site-packages, tool results from two venvs
that pin different versions of one library, an agent step, the sandbox layers), and the
temporary root must be gone afterwards.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING

import oracle
import pytest
from packaging.requirements import Requirement
from reachable import remove, world_dir

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

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


# ---- from a wheel: no clone, no network (#18 part 5) -------------------------------------------

REPO = Path(__file__).resolve().parent.parent
_TREE = ("isolator", "hostbridge", "examples", "pyproject.toml", "README.md")
_BUILD_JUNK = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build", "dist")


def _runtime_pins() -> list[str]:
    """isolator's runtime requirements (pyproject.toml) pinned to the versions installed here."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    pins = []
    for text in project["dependencies"]:
        req = Requirement(text)
        if req.marker is None or req.marker.evaluate():
            pins.append(f"{req.name}=={importlib.metadata.version(req.name)}")
    return sorted(pins)


@pytest.fixture(scope="session")
def runtime_wheelhouse() -> Path:
    """Wheels of isolator's runtime dependencies (the versions this venv holds, and theirs),
    fetched once by pip and cached like the example wheelhouse (tests/wheelhouse.py): a cold
    cache downloads them from PyPI, as the wheelhouse's first build fetches setuptools."""
    pins = _runtime_pins()
    key = hashlib.sha256(json.dumps([pins, sys.version_info[:2]]).encode()).hexdigest()[:16]
    cache = oracle.cache_dir()
    target = cache / f"runtime-wheels-{key}"
    if target.is_dir():
        return target
    with oracle._locked(cache / f"{target.name}.lock"):
        if target.is_dir():
            return target
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=cache))
        try:
            done = subprocess.run(
                [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
                 "--only-binary", ":all:", "--dest", str(staging), *pins],
                capture_output=True, text=True, timeout=600, check=False)
            if done.returncode != 0:
                pytest.fail(f"fetching isolator's runtime wheels ({', '.join(pins)}) failed:\n"
                            f"{done.stderr[-3000:]}", pytrace=False)
            staging.chmod(0o755)
            staging.rename(target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    return target


def _uv(*args: str, timeout: float = 300) -> None:
    from uv import find_uv_bin

    done = subprocess.run([find_uv_bin(), *args], capture_output=True, text=True,
                          timeout=timeout, check=False, env={**os.environ, "UV_NO_CONFIG": "1"})
    assert done.returncode == 0, f"uv {' '.join(args)}:\n{done.stderr[-3000:]}"


def _no_network() -> list[str]:
    """A prefix that runs a command in a network namespace of its own (no interface but lo),
    when this host can make one as root; else nothing (the proxies below still fail fast)."""
    unshare = shutil.which("unshare")
    if os.geteuid() != 0 or unshare is None:
        return []
    probe = subprocess.run([unshare, "--net", "true"], capture_output=True, check=False)
    return [unshare, "--net"] if probe.returncode == 0 else []


def test_the_demo_runs_from_a_wheel_install_offline(
        tmp_path: Path, tmpdir_root: Path, runtime_wheelhouse: Path) -> None:
    """isolator's wheel, built from a copy of this tree, installed with its dependencies from a
    local wheelhouse (no index) into a new venv; `ohp demo` there, from another directory, with
    no source tree on the path and no network: the examples come from the wheel."""
    tree = tmp_path / "tree"
    for name in _TREE:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, tree / name, ignore=_BUILD_JUNK)
        else:
            tree.mkdir(exist_ok=True)
            shutil.copy2(source, tree / name)
    dist = tmp_path / "dist"
    _uv("build", "--wheel", "--no-build-isolation", "--offline", "--no-create-gitignore",
        "--python", sys.executable, "--out-dir", str(dist), str(tree))
    (wheel,) = dist.glob("isolator-*.whl")

    # The wheel holds every module of the tree and every file of the example projects.
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    modules = {p.relative_to(tree).as_posix() for top in ("isolator", "hostbridge")
               for p in (tree / top).rglob("*.py")}
    assert modules - names == set()
    examples = {p.relative_to(tree / "examples").as_posix()
                for p in (tree / "examples").rglob("*") if p.is_file()}
    assert {f"hostbridge/_examples/{rel}" for rel in examples} <= names
    assert {n for n in names if n.startswith("hostbridge/_examples/")} == {
        f"hostbridge/_examples/{rel}" for rel in examples}
    shutil.rmtree(tree)  # nothing of the source is left to import

    venv = tmp_path / "venv"
    _uv("venv", "--quiet", "--python", sys.executable, str(venv))
    _uv("pip", "install", "--quiet", "--python", str(venv / "bin" / "python"), "--offline",
        "--no-index", "--find-links", str(runtime_wheelhouse), str(wheel))

    dead = "http://127.0.0.1:9"  # the discard port: nothing listens, any fetch fails at once
    (tmp_path / "home").mkdir()
    env = {"PATH": f"{venv / 'bin'}:/usr/bin:/bin", "HOME": str(tmp_path / "home"),
           "TMPDIR": str(tmpdir_root), "HTTP_PROXY": dead, "HTTPS_PROXY": dead,
           "ALL_PROXY": dead, "http_proxy": dead, "https_proxy": dead}
    site = next((venv / "lib").glob("python3.*")) / "site-packages"
    where = subprocess.run([str(venv / "bin" / "python"), "-c",
                            "import hostbridge, json, sys; "
                            "print(json.dumps([hostbridge.__file__, sys.path]))"],
                           capture_output=True, text=True, timeout=60, check=True, env=env,
                           cwd=tmpdir_root)
    module, path = json.loads(where.stdout)
    assert module == str(site / "hostbridge" / "__init__.py")
    assert not [p for p in path if p.startswith((str(REPO), str(tree)))], path

    done = subprocess.run([*_no_network(), str(venv / "bin" / "ohp"), "demo"],
                          capture_output=True, text=True, timeout=300, check=False, env=env,
                          cwd=tmpdir_root, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    assert f"from copies of {site / 'hostbridge' / '_examples'}, into " in done.stdout
    for name in WHEELS:
        assert name in done.stdout
    assert done.stdout.endswith("demo ok\n")
    assert list(tmpdir_root.iterdir()) == []
