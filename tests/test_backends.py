"""Backends with real uv, real virtualenv + pip and real venvs; and the subprocess runner."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from helpers_build import (
    PROOF,
    build_sdist,
    build_wheel,
    make_project,
    make_wheel,
    marker_setup_py,
    proof_setup_py,
)

from isolator._errors import (
    BackendUnavailableError,
    CommandError,
    CommandTimeoutError,
    IsolatorError,
)
from isolator.metadata._distinfo import find_distribution, find_site_packages
from isolator.sandbox._launcher import die_with_parent_prefix
from isolator.store._backends import (
    MIN_UV_VERSION,
    Backend,
    UvBackend,
    VirtualenvPipBackend,
    check_uv_version,
    get_backend,
    parse_uv_version,
    venv_python,
)
from isolator.store._commands import run_command, scrubbed_env
from isolator.store._interpreters import find_python, list_interpreters

EVIL = "http://127.0.0.1:9/"  # the discard port: nothing listens, so any use of it fails


# ---- shared wheelhouses --------------------------------------------------------------------


@pytest.fixture(scope="module")
def houses(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``good``: tiny-pkg 1.0.0 + tiny-dep; ``evil``: tiny-pkg 2.0.0; ``simple``: a PEP 503 index
    of ``good`` (served as file://)."""
    root = tmp_path_factory.mktemp("houses")
    good, evil, simple = root / "good", root / "evil", root / "simple"
    make_wheel(good, "tiny-dep", "0.3")
    make_wheel(good, "tiny-pkg", "1.0.0", deps=["tiny-dep"],
               entry_points={"openhands.plugins": {"tiny": "tiny_pkg"}})
    make_wheel(evil, "tiny-pkg", "2.0.0")
    for wheel in good.glob("*.whl"):
        project = wheel.name.split("-")[0].replace("_", "-")
        (simple / project).mkdir(parents=True, exist_ok=True)
        (simple / project / wheel.name).write_bytes(wheel.read_bytes())
        (simple / project / "index.html").write_text(
            f'<html><body><a href="{wheel.name}">{wheel.name}</a></body></html>\n'
        )
    return {"good": good, "evil": evil, "simple": simple, "root": root}


BACKENDS = ["uv", "virtualenv"]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> Backend:
    return get_backend(request.param)


def installed_version(venv: Path, name: str) -> str | None:
    dist = find_distribution(find_site_packages(venv), name)
    return None if dist is None else dist.version


def new_venv(backend: Backend, tmp_path: Path, name: str = "venv") -> Path:
    venv = tmp_path / name
    backend.create_venv(venv, find_python(None))
    return venv


# ---- creating venvs and installing ---------------------------------------------------------


def test_create_and_install_offline(backend: Backend, houses: dict[str, Path], tmp_path: Path
                                    ) -> None:
    venv = new_venv(backend, tmp_path)
    assert venv_python(venv).exists()
    lines: list[str] = []
    backend.install(venv, ["tiny-pkg"], find_links=[houses["good"]], no_index=True,
                    progress=lines.append)
    site = find_site_packages(venv)
    dist = find_distribution(site, "tiny-pkg")
    assert dist is not None and dist.version == "1.0.0"
    assert dist.installer == ("uv" if backend.name == "uv" else "pip")
    assert installed_version(venv, "tiny-dep") == "0.3"
    # Bytecode is compiled at install time (a read-only venv can never write it later).
    assert list((site / "tiny_pkg" / "__pycache__").glob("__init__.*.pyc"))
    assert any("tiny" in line for line in lines)
    # The venv's own interpreter imports the plugin: the install is real.
    subprocess.run([str(venv_python(venv)), "-c", "import tiny_pkg"], check=True)


def test_install_without_requirements_is_a_no_op(backend: Backend, tmp_path: Path) -> None:
    backend.install(tmp_path / "never-created", [])


def test_build_wheel(backend: Backend, tmp_path: Path) -> None:
    project = make_project(tmp_path, "built-here", "0.5")
    # pip's build runs in an interpreter that has pip: a venv the fallback backend made.
    python = (
        find_python(None).path if backend.name == "uv"
        else venv_python(new_venv(backend, tmp_path))
    )
    out = tmp_path / "out"
    (out / "keep.txt").parent.mkdir()
    (out / "keep.txt").write_text("not ours")
    wheel = backend.build_wheel(project, out, python, no_index=True)
    assert wheel == out / "built_here-0.5-py3-none-any.whl" and wheel.is_file()
    assert sorted(p.name for p in out.iterdir()) == ["built_here-0.5-py3-none-any.whl",
                                                      "keep.txt"]


def test_helper_builds_wheels_uv_installs(tmp_path: Path) -> None:
    # tests/helpers_build.py is shared with the store tests: its uv-built wheel must install.
    project = make_project(tmp_path, "helper-made", "2.1",
                           entry_points={"openhands.plugins": {"helper-made": "helper_made"}})
    wheel = build_wheel(project, tmp_path / "dist")
    assert wheel.name == "helper_made-2.1-py3-none-any.whl"
    backend = UvBackend()
    venv = new_venv(backend, tmp_path)
    backend.install(venv, [str(wheel)], no_index=True)
    dist = find_distribution(find_site_packages(venv), "helper-made")
    assert dist is not None
    assert dist.entry_points_in("openhands.plugins")[0].module == "helper_made"


def test_uv_venv_for_another_python(houses: dict[str, Path], tmp_path: Path) -> None:
    host = find_python(None)
    other = next((i for i in list_interpreters()
                  if i.implementation == "cpython" and i.version[:2] != host.version[:2]
                  and i.version >= (3, 8)), None)
    if other is None:
        pytest.skip("only one Python version on this machine")
    venv = tmp_path / "venv"
    backend = UvBackend()
    backend.create_venv(venv, other)
    assert find_site_packages(venv).parent.name == f"python{other.minor}"
    cfg = (venv / "pyvenv.cfg").read_text()
    assert other.version_str in cfg
    backend.install(venv, ["tiny-pkg"], find_links=[houses["good"]], no_index=True)
    assert installed_version(venv, "tiny-pkg") == "1.0.0"


def test_uv_cache_dir_is_used(houses: dict[str, Path], tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    backend = UvBackend(cache_dir=cache)
    venv = new_venv(backend, tmp_path)
    backend.install(venv, ["tiny-pkg"], find_links=[houses["good"]], no_index=True)
    assert installed_version(venv, "tiny-pkg") == "1.0.0"
    assert any(cache.iterdir())
    # Hardlinked from the store's own cache (uv's default link mode, kept on purpose).
    init = find_site_packages(venv) / "tiny_pkg" / "__init__.py"
    assert init.stat().st_nlink > 1


# ---- config files and environment do not steer an install ----------------------------------


def _arm_uv_traps(cwd: Path, evil: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Everything uv would read if it were allowed to: each points at the wrong place."""
    settings = f'find-links = ["{evil}"]\nextra-index-url = ["{EVIL}"]\n'
    (cwd / "uv.toml").write_text(settings + f"\n[pip]\n{settings}")
    (cwd / "pyproject.toml").write_text(f"[tool.uv]\n{settings}")
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("UV_INDEX_URL", EVIL)
    monkeypatch.setenv("UV_DEFAULT_INDEX", EVIL)
    monkeypatch.setenv("UV_EXTRA_INDEX_URL", EVIL)
    monkeypatch.setenv("UV_INDEX", EVIL)
    monkeypatch.setenv("UV_FIND_LINKS", str(evil))
    monkeypatch.setenv("UV_CONFIG_FILE", str(cwd / "uv.toml"))
    monkeypatch.setenv("UV_OFFLINE", "1")  # would also break the simple-index variant


def test_uv_ignores_config_files_and_uv_variables(
    houses: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = UvBackend()
    venv = new_venv(backend, tmp_path)
    trap = tmp_path / "cwd"
    trap.mkdir()
    _arm_uv_traps(trap, houses["evil"], monkeypatch)

    # Control: uv as a user would run it here IS redirected, so the traps are armed.
    control = subprocess.run(
        [backend.uv, "pip", "install", "--python", str(venv_python(venv)), "--no-index",
         "--find-links", str(houses["good"]), "--dry-run", "tiny-pkg"],
        capture_output=True, text=True, check=False,
    )
    assert "tiny-pkg==2.0.0" in control.stderr, control.stderr

    # From a wheelhouse, offline: the uv.toml's find-links must not add tiny-pkg 2.0.0.
    backend.install(venv, ["tiny-pkg"], find_links=[houses["good"]], no_index=True)
    assert installed_version(venv, "tiny-pkg") == "1.0.0"

    # From an index: the UV_* variables and uv.toml's extra index (127.0.0.1:9) must not be
    # consulted; if they were, uv would fail to connect, naming that address.
    venv2 = new_venv(backend, tmp_path, "venv2")
    try:
        backend.install(venv2, ["tiny-pkg"], index_url=houses["simple"].as_uri())
    except CommandError as exc:  # pragma: no cover - the failure this test exists to catch
        assert "127.0.0.1:9" not in str(exc) + exc.stderr
        raise
    assert installed_version(venv2, "tiny-pkg") == "1.0.0"


def test_pip_ignores_pip_conf_and_pip_variables(
    houses: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = VirtualenvPipBackend()
    venv = new_venv(backend, tmp_path)
    conf = tmp_path / "pip.conf"
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("tiny-dep==99\n")  # unsatisfiable: would fail the install
    conf.write_text(f"[global]\nfind-links = {houses['evil']}\nconstraint = {constraints}\n")
    monkeypatch.setenv("PIP_CONFIG_FILE", str(conf))
    monkeypatch.setenv("PIP_FIND_LINKS", str(houses["evil"]))
    monkeypatch.setenv("PIP_CONSTRAINT", str(constraints))
    monkeypatch.setenv("PIP_INDEX_URL", EVIL)
    monkeypatch.setenv("PIP_NO_COMPILE", "1")

    control = subprocess.run(
        [str(venv_python(venv)), "-m", "pip", "install", "--dry-run", "--no-index",
         "--find-links", str(houses["good"]), "tiny-pkg"],
        capture_output=True, text=True, check=False,
    )
    assert "tiny-pkg-2.0.0" in control.stdout, control.stdout + control.stderr

    backend.install(venv, ["tiny-pkg"], find_links=[houses["good"]], no_index=True)
    assert installed_version(venv, "tiny-pkg") == "1.0.0"
    assert installed_version(venv, "tiny-dep") == "0.3"
    site = find_site_packages(venv)
    assert list((site / "tiny_pkg" / "__pycache__").glob("*.pyc"))  # PIP_NO_COMPILE ignored


# ---- building: wheels only unless allowed ---------------------------------------------------


@pytest.fixture
def sdist_house(tmp_path: Path) -> tuple[Path, Path]:
    """A find-links dir holding only an sdist whose setup.py creates a marker file."""
    marker = tmp_path / "BUILD-CODE-RAN"
    project = make_project(tmp_path / "src", "sdist-pkg", "1.0.0",
                           setup_py=marker_setup_py(marker))
    house = tmp_path / "sdists"
    build_sdist(project, house)
    return house, marker


def test_remote_sdist_is_refused_without_allow_build(
    backend: Backend, sdist_house: tuple[Path, Path], tmp_path: Path
) -> None:
    house, marker = sdist_house
    venv = new_venv(backend, tmp_path)
    with pytest.raises(CommandError) as info:
        backend.install(venv, ["sdist-pkg"], find_links=[house], no_index=True)
    assert not marker.exists()
    assert installed_version(venv, "sdist-pkg") is None
    message = str(info.value)
    assert "\n" not in message and "sdist-pkg" in message
    assert info.value.returncode not in (0, None) and info.value.cmd[0].endswith(
        ("uv", "python")
    )


def test_remote_sdist_is_built_with_allow_build(
    backend: Backend, sdist_house: tuple[Path, Path], tmp_path: Path
) -> None:
    house, marker = sdist_house
    venv = new_venv(backend, tmp_path)
    backend.install(venv, ["sdist-pkg"], find_links=[house], no_index=True, allow_build=True)
    assert marker.exists()
    assert installed_version(venv, "sdist-pkg") == "1.0.0"


def test_local_project_is_always_built(backend: Backend, tmp_path: Path) -> None:
    project = make_project(tmp_path / "src", "own-plugin", "0.1",
                           setup_py=proof_setup_py("own_plugin"))
    venv = new_venv(backend, tmp_path)
    backend.install(venv, [str(project)], no_index=True, allow_build=False)
    # The user's own project: building it is the point (its build code ran, in the sandbox).
    assert list(venv.rglob(f"own_plugin/{PROOF}")), "the build code did not run"
    assert installed_version(venv, "own-plugin") == "0.1"


# ---- hashes and constraints ----------------------------------------------------------------


def _hash_line(wheel: Path, pin: str) -> str:
    return f"{pin} --hash=sha256:{hashlib.sha256(wheel.read_bytes()).hexdigest()}\n"


def test_require_hashes(backend: Backend, houses: dict[str, Path], tmp_path: Path) -> None:
    good = houses["good"]
    wheelhouse = tmp_path / "wheelhouse"
    wheelhouse.mkdir()
    for wheel in good.glob("*.whl"):
        (wheelhouse / wheel.name).write_bytes(wheel.read_bytes())
    reqs = tmp_path / "requirements.txt"
    reqs.write_text(
        _hash_line(wheelhouse / "tiny_pkg-1.0.0-py3-none-any.whl", "tiny-pkg==1.0.0")
        + _hash_line(wheelhouse / "tiny_dep-0.3-py3-none-any.whl", "tiny-dep==0.3")
    )
    venv = new_venv(backend, tmp_path)
    backend.install(venv, [], requirement_files=[reqs], find_links=[wheelhouse], no_index=True,
                    require_hashes=True)
    assert installed_version(venv, "tiny-pkg") == "1.0.0"

    # A tampered wheel in the wheelhouse is refused.
    tampered = wheelhouse / "tiny_dep-0.3-py3-none-any.whl"
    tampered.write_bytes(tampered.read_bytes() + b"\0")
    venv2 = new_venv(backend, tmp_path, "venv2")
    with pytest.raises(CommandError) as info:
        backend.install(venv2, [], requirement_files=[reqs], find_links=[wheelhouse],
                        no_index=True, require_hashes=True)
    assert "hash" in (str(info.value) + info.value.stderr + info.value.stdout).lower()
    assert installed_version(venv2, "tiny-dep") is None


def test_constraints_file(houses: dict[str, Path], tmp_path: Path) -> None:
    backend = UvBackend()
    venv = new_venv(backend, tmp_path)
    constraints = tmp_path / "c.txt"
    constraints.write_text("tiny-pkg<2\n")
    backend.install(venv, ["tiny-pkg"], find_links=[houses["good"], houses["evil"]],
                    no_index=True, constraints=[constraints])
    assert installed_version(venv, "tiny-pkg") == "1.0.0"


def test_failed_install_error_carries_the_process_data(tmp_path: Path) -> None:
    backend = UvBackend()
    venv = new_venv(backend, tmp_path)
    with pytest.raises(CommandError) as info:
        backend.install(venv, ["no-such-plugin-anywhere"], find_links=[tmp_path], no_index=True)
    error = info.value
    assert isinstance(error, IsolatorError)
    assert "--no-config" in error.cmd and "--no-python-downloads" in error.cmd
    assert error.returncode not in (0, None)
    assert "no-such-plugin-anywhere" in error.stderr
    message = str(error)
    assert message.startswith("`uv pip install` exited with")
    assert "no-such-plugin-anywhere" in message and "\n" not in message


# ---- uv discovery and version --------------------------------------------------------------


def test_uv_version_is_checked(tmp_path: Path) -> None:
    assert parse_uv_version("uv 0.4.20 (abc123 2024-10-08)") == (0, 4, 20)
    assert check_uv_version("uv 0.13.9 (x86_64-unknown-linux-gnu)") == "0.13.9"
    with pytest.raises(BackendUnavailableError, match=r"0\.7\.9 is older than.*0\.8\.0"):
        check_uv_version("uv 0.7.9")
    with pytest.raises(BackendUnavailableError, match="not a uv version"):
        check_uv_version("ruff 0.6.0")
    old = tmp_path / "uv"
    old.write_text("#!/bin/sh\necho 'uv 0.1.0'\n")
    old.chmod(0o755)
    backend = UvBackend(old)
    with pytest.raises(BackendUnavailableError, match="older than"):
        backend.create_venv(tmp_path / "v", find_python(None))
    assert not (tmp_path / "v").exists()


def test_real_uv_is_recent_enough() -> None:
    version = UvBackend().version()
    assert tuple(int(p) for p in version.split(".")) >= MIN_UV_VERSION
    assert VirtualenvPipBackend().version()


def test_unknown_backend() -> None:
    with pytest.raises(BackendUnavailableError, match="unknown backend"):
        get_backend("conda")


# ---- the subprocess runner -----------------------------------------------------------------

_PRINT_ENV = "import json, os; print(json.dumps(dict(os.environ)))"


def test_scrubbed_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in ("PIP_INDEX_URL", "UV_INDEX_URL", "UV_CACHE_DIR", "VIRTUAL_ENV", "PYTHONPATH",
                "CONDA_PREFIX", "GIT_DIR", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(key, "/leak")
    # If PYTHONHOME reached the child, the child Python could not even start.
    monkeypatch.setenv("PYTHONHOME", "/nonexistent")
    monkeypatch.setenv("SSL_CERT_FILE", "/etc/ssl/certs/ca-certificates.crt")
    monkeypatch.setenv("SSL_CERT_DIR", "/etc/ssl/certs")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("no_proxy", "localhost")
    monkeypatch.setenv("LC_ALL", "C.UTF-8")
    result = run_command([sys.executable, "-c", _PRINT_ENV])
    child = json.loads(result.stdout)
    assert not {k for k in child if k.startswith(("PIP_", "UV_", "PYTHON", "CONDA", "GIT_"))}
    assert "VIRTUAL_ENV" not in child and "AWS_SECRET_ACCESS_KEY" not in child
    for key in ("SSL_CERT_FILE", "SSL_CERT_DIR", "HTTPS_PROXY", "no_proxy", "LC_ALL", "PATH"):
        assert child[key] == os.environ[key]
    assert scrubbed_env({"X": "1"}, base={"PATH": "/bin", "PIP_X": "y"}) == {"PATH": "/bin",
                                                                            "X": "1"}
    pip_env = VirtualenvPipBackend()._env()
    assert pip_env["PIP_CONFIG_FILE"] == os.devnull
    assert not [k for k in pip_env if k.startswith("PIP_") and k != "PIP_CONFIG_FILE"]


def test_progress_lines_and_captured_output() -> None:
    code = textwrap.dedent("""
        import sys
        for i in range(3):
            print(f"err {i}", file=sys.stderr, flush=True)
        print("out", flush=True)
        sys.stderr.write("no newline at end")
    """)
    lines: list[str] = []
    result = run_command([sys.executable, "-c", code], progress=lines.append)
    assert result.stdout == "out\n"
    assert result.stderr.startswith("err 0\nerr 1\nerr 2\n")
    assert sorted(lines) == sorted(["err 0", "err 1", "err 2", "out", "no newline at end"])


def test_nonzero_exit_and_check_false() -> None:
    cmd = [sys.executable, "-c", "import sys; print('error: it broke', file=sys.stderr); "
                                 "sys.exit(3)"]
    with pytest.raises(CommandError) as info:
        run_command(cmd)
    assert info.value.returncode == 3 and info.value.summary == "error: it broke"
    assert "exited with 3: error: it broke" in str(info.value)
    assert run_command(cmd, check=False).returncode == 3
    with pytest.raises(CommandError, match="No such file"):
        run_command(["/nonexistent/tool"])


# A child that starts a grandchild (as uv starts build backends), reports its pid, then waits.
_FAMILY = textwrap.dedent("""
    import subprocess, sys, time
    grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    print(f"grandchild {grandchild.pid}", file=sys.stderr, flush=True)
    time.sleep(120)
""")


def _gone(pid: int, within: float = 10.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        # A zombie still answers kill(0): check its state.
        try:
            state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
        except OSError:
            return True
        if state == "Z":
            return True
        time.sleep(0.05)
    return False


def _grandchild_pid(stderr: str) -> int:
    line = next(line for line in stderr.splitlines() if line.startswith("grandchild "))
    return int(line.split()[1])


def test_timeout_kills_the_whole_group() -> None:
    with pytest.raises(CommandTimeoutError) as info:
        run_command([sys.executable, "-c", _FAMILY], timeout=2.0)
    assert "timed out after 2 s" in str(info.value)
    assert _gone(_grandchild_pid(info.value.stderr))


def test_interrupt_in_the_caller_kills_the_whole_group() -> None:
    seen: list[int] = []

    def progress(line: str) -> None:
        if line.startswith("grandchild "):
            seen.append(int(line.split()[1]))
            raise KeyboardInterrupt  # as if the user pressed Ctrl-C while uv ran

    with pytest.raises(KeyboardInterrupt):
        run_command([sys.executable, "-c", _FAMILY], progress=progress)
    assert seen and _gone(seen[0])


@pytest.mark.skipif(not die_with_parent_prefix(), reason="no setpriv --pdeathsig here")
def test_child_dies_when_the_host_is_killed_hard(tmp_path: Path) -> None:
    # A host process runs a long command, then is SIGKILLed: no handler of ours runs, yet the
    # command must not outlive it.
    host_code = textwrap.dedent("""
        import sys
        from isolator.store._commands import run_command
        run_command([sys.executable, "-c",
                     "import os, sys, time; print(os.getpid(), flush=True); time.sleep(120)"],
                    progress=lambda line: print(line, flush=True))
    """)
    host = subprocess.Popen([sys.executable, "-c", host_code], stdout=subprocess.PIPE, text=True)
    try:
        assert host.stdout is not None
        child_pid = int(host.stdout.readline())
        os.kill(host.pid, signal.SIGKILL)
        host.wait()
        assert _gone(child_pid)
    finally:
        if host.poll() is None:
            host.kill()
            host.wait()
        if host.stdout is not None:
            host.stdout.close()


# ---- network -------------------------------------------------------------------------------


@pytest.mark.network
def test_install_from_pypi_despite_hostile_config(
    houses: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = UvBackend()
    venv = new_venv(backend, tmp_path)
    trap = tmp_path / "cwd"
    trap.mkdir()
    _arm_uv_traps(trap, houses["evil"], monkeypatch)
    backend.install(venv, ["six==1.17.0"])
    assert installed_version(venv, "six") == "1.17.0"
