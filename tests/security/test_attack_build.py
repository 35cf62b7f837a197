"""Build code of a local project (``ohp install ./dir``, ``ohp validate``): run in the sandbox.

A plugin directory someone downloaded is plugin-controlled, and so is its build backend and
its ``setup.py``. Before #15 they ran on the host, as the host's user (root here), with the
whole filesystem and the network. Now the store builds in two steps (isolator/store/_buildbox.py):
the static build requirements as wheels on the host, then the backend under the launcher.

what the build code tries                 what stops it
----------------------------------------  ---------------------------------------------------
read a 0644 host file                     Landlock: the build reads its build directory, the
                                            interpreter, uv and the system's libraries only
write next to the project, in a 0777      Landlock: writes go to its build directory only
  directory, in /tmp
connect to the host's TCP listener        network namespace (and seccomp: no socket())
list the host user's home                 Landlock
run as root                               uid 65534 when the host is root
"""

from __future__ import annotations

import json
import os
import re
import secrets
import socket
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from helpers_build import make_project
from secsupport import AS_ROOT, NOBODY

from isolator import PluginStore
from isolator.authoring._authoring import validate_package

if TYPE_CHECKING:
    from collections.abc import Iterator

MODULE = "openhands_plugin_build_attack"

BUILD_CODE = """\
import json, os, socket
findings = {{}}

def attempt(name, action):
    try:
        findings[name] = ["ok", action()]
    except Exception as exc:
        findings[name] = ["refused", type(exc).__name__, getattr(exc, "errno", None)]

def write(path):
    with open(path, "w") as handle:
        handle.write("planted by build code")
    return path

attempt("read_secret", lambda: open({secret!r}).read())
attempt("write_world", lambda: write({world!r}))
attempt("write_project", lambda: write({project!r}))
attempt("write_tmp", lambda: write({tmp!r}))
attempt("connect", lambda: socket.create_connection(("127.0.0.1", {port}), timeout=3).close())
attempt("list_home", lambda: os.listdir({home!r}))
attempt("uid", lambda: os.getuid())
with open(os.path.join(os.getcwd(), {module!r}, "findings.json"), "w") as handle:
    json.dump(findings, handle)
"""


class Target:
    def __init__(self, directory: Path) -> None:
        self.secret = f"secret-{secrets.token_hex(12)}"
        self.secret_file = directory / "host-secret.txt"
        self.secret_file.write_text(self.secret)
        self.secret_file.chmod(0o644)
        self.world = directory / "world"
        self.world.mkdir()
        self.world.chmod(0o777)
        self.tmp = f"/tmp/isolator-build-planted-{secrets.token_hex(8)}"
        self.server = socket.create_server(("127.0.0.1", 0))
        self.server.settimeout(0.05)
        self.port = self.server.getsockname()[1]

    def connections(self) -> int:
        count = 0
        while True:
            try:
                conn, _ = self.server.accept()
            except TimeoutError:
                return count
            conn.close()
            count += 1


@pytest.fixture
def target(sec_tmp: Path) -> Iterator[Target]:
    found = Target(sec_tmp)
    yield found
    found.server.close()
    Path(found.tmp).unlink(missing_ok=True)


def _project(sec_tmp: Path, target: Target) -> Path:
    parent = sec_tmp / "download"
    parent.mkdir()
    project = make_project(
        parent, "openhands-plugin-build-attack", "1.0.0",
        files={f"{MODULE}/__init__.py": "", f"{MODULE}/commands/hello.md": "Say hello.\n"},
        entry_points={"openhands.plugins": {"build-attack": MODULE}})
    project.chmod(0o777)  # only the sandbox keeps the build from writing next to it
    (project / "setup.py").write_text(BUILD_CODE.format(
        secret=str(target.secret_file), world=str(target.world / "planted.txt"),
        project=str(project / "PLANTED.txt"), tmp=target.tmp, port=target.port,
        home=str(sec_tmp), module=MODULE))
    return project


def _check(findings: dict[str, Any], target: Target, project: Path) -> None:
    for attempt in ("read_secret", "write_world", "write_project", "write_tmp", "connect",
                    "list_home"):
        assert findings[attempt][0] == "refused", (attempt, findings)
    if AS_ROOT:
        assert findings["uid"] == ["ok", NOBODY], findings
    assert target.secret not in json.dumps(findings)
    assert not (target.world / "planted.txt").exists()
    assert not (project / "PLANTED.txt").exists()
    assert target.connections() == 0


@pytest.mark.parametrize("backend", ["uv", "virtualenv"])
def test_a_local_projects_build_code_runs_in_the_sandbox(sec_tmp: Path, target: Target,
                                                         plugin_python: str,
                                                         backend: str) -> None:
    project = _project(sec_tmp, target)
    store = PluginStore(sec_tmp / "store", python=plugin_python, backend=backend)
    installed = store.install(str(project))
    # The build worked (its backend ran, confined), and what its code saw is in the wheel.
    findings = json.loads((installed.content_dir / "findings.json").read_text())
    _check(findings, target, project)


def test_validate_builds_in_the_sandbox(sec_tmp: Path, target: Target,
                                        plugin_python: str) -> None:
    project = _project(sec_tmp, target)
    report = validate_package(project)
    assert report.wheel is not None, report
    assert not (target.world / "planted.txt").exists()
    assert not (project / "PLANTED.txt").exists()
    assert target.connections() == 0


def test_an_allowed_sdists_build_code_is_confined_in_resolution_and_build(
        sec_tmp: Path, target: Target, plugin_python: str) -> None:
    # A dependency offered only as an sdist, installed with allow_build: uv builds it once to
    # learn its metadata while resolving, then the store builds its wheel. Both runs of its
    # build code are confined; before #15 the first ran on the host as the host's user.
    from helpers_build import build_sdist, make_wheel

    project = _project(sec_tmp, target)
    # Dependencies computed by the backend (not static in pyproject.toml): uv must run the
    # build code while resolving, to learn them.
    pyproject = project / "pyproject.toml"
    pyproject.write_text(re.sub(r"dependencies = \[.*\]\n", 'dynamic = ["dependencies"]\n',
                                pyproject.read_text()))
    links = sec_tmp / "links"
    build_sdist(project, links)
    make_wheel(links, "openhands-plugin-needs-build", "1.0.0",
               deps=["openhands-plugin-build-attack"],
               entry_points={"openhands.plugins": {"needs-build": "openhands_plugin_needs_build"}},
               files={"openhands_plugin_needs_build/__init__.py": "",
                      "openhands_plugin_needs_build/commands/c.md": "c\n"})
    store = PluginStore(sec_tmp / "store", python=plugin_python)
    said: list[str] = []
    installed = store.install("pypi:openhands-plugin-needs-build", find_links=[links],
                              no_index=True, allow_build=True, progress=said.append)
    assert any(line.startswith("sandbox: ") for line in said), said  # the resolution
    assert any(line.startswith("build sandbox: ") for line in said), said  # the wheel
    assert installed.venv is not None
    findings_file = next(installed.venv.rglob(f"{MODULE}/findings.json"))
    _check(json.loads(findings_file.read_text()), target, project)
    assert list(target.world.iterdir()) == []  # no run of its code wrote here


@pytest.mark.parametrize("kind", ["symlink-to-dev-zero", "symlink-to-secret", "fifo", "directory"])
def test_what_a_confined_build_leaves_is_taken_back_only_as_a_regular_file(
        sec_tmp: Path, target: Target, kind: str) -> None:
    # The build wrote its output directory: its "wheel" may be a link to /dev/zero (a copy
    # that never ends) or to a host file, a FIFO (a read that never returns), a directory.
    from isolator.sandbox import SandboxError
    from isolator.store._buildbox import _take_back

    produced = sec_tmp / "out" / "evil-1.0-py3-none-any.whl"
    produced.parent.mkdir()
    if kind == "symlink-to-dev-zero":
        produced.symlink_to("/dev/zero")
    elif kind == "symlink-to-secret":
        produced.symlink_to(target.secret_file)
    elif kind == "fifo":
        os.mkfifo(produced)
    else:
        produced.mkdir()
    taken = sec_tmp / "taken.whl"
    with pytest.raises(SandboxError, match="refused"):
        _take_back(produced, taken, 1 << 20, "the build")
    assert not taken.exists()


def test_an_output_over_its_cap_is_refused(sec_tmp: Path) -> None:
    from isolator.sandbox import SandboxError
    from isolator.store._buildbox import _take_back

    produced = sec_tmp / "big.whl"
    with open(produced, "wb") as handle:
        handle.truncate((1 << 20) + 1)
    with pytest.raises(SandboxError, match="over 1 MiB"):
        _take_back(produced, sec_tmp / "taken.whl", 1 << 20, "the build")
    _take_back(produced, sec_tmp / "taken.whl", 2 << 20, "the build")
    assert (sec_tmp / "taken.whl").stat().st_size == (1 << 20) + 1
