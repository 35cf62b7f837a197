"""The security suite again, as an unprivileged user (uid 65534), when this run is root's.

A root host and an unprivileged one get different sandboxes (a root host's workers drop to uid
65534; an unprivileged host's keep its uid, so some attacks meet other layers), and both must
hold. The project is installed (not editable, with its test extra, at the versions of this
venv) into a fresh venv that uid 65534 may run, the tests are copied next to it, and pytest
runs ``tests/security`` there as that uid, with a scrubbed environment.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import wheelhouse
from secsupport import AS_ROOT, NOBODY, REPO_ROOT, world_python

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = [pytest.mark.unprivileged_rerun, pytest.mark.slow]

# The security suite has about 80 tests; as an unprivileged user a few are skipped (those about
# a root host's uid drop).
MIN_PASSED = 60
_SOURCE = ("pyproject.toml", "README.md", "isolator", "hostbridge", "examples")
_KEPT_ENV = ("PATH", "LANG", "SSL_CERT_FILE", "SSL_CERT_DIR", "HTTP_PROXY", "HTTPS_PROXY",
             "NO_PROXY", "http_proxy", "https_proxy", "no_proxy")


def _ignore(directory: str, names: list[str]) -> set[str]:
    return {n for n in names if n in ("__pycache__", "build", "dist", ".pytest_cache")
            or n.endswith((".egg-info", ".pyc"))}


def _chown_tree(root: Path, uid: int) -> None:
    os.chown(root, uid, uid)
    for current, dirs, files in os.walk(root):
        for name in dirs + files:
            os.chown(os.path.join(current, name), uid, uid, follow_symlinks=False)


def _uv(cmd: list[str], what: str, env: dict[str, str]) -> None:
    """Run a uv command offline (uv's cache usually has everything), else online."""
    for mode in (["--offline"], []):
        result = subprocess.run([*cmd, *mode], capture_output=True, text=True, timeout=600,
                                check=False, env=env)
        if result.returncode == 0:
            return
    pytest.fail(f"{what} failed ({result.returncode}): {' '.join(cmd)}\n"
                f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}", pytrace=False)


@pytest.fixture
def rerun_dir() -> Iterator[Path]:
    base = Path(tempfile.mkdtemp(prefix="isolator-sec-rerun-", dir="/tmp"))
    base.chmod(0o755)
    yield base
    shutil.rmtree(base, ignore_errors=True)


@pytest.mark.skipif(not AS_ROOT, reason="this run is already unprivileged: the suite itself "
                    "is the unprivileged run")
def test_the_security_suite_passes_as_an_unprivileged_user(
    rerun_dir: Path, attack_wheelhouse: Path
) -> None:
    setpriv = shutil.which("setpriv")
    python = world_python()
    if setpriv is None or python is None:
        pytest.skip("needs setpriv (util-linux) and a python3 that uid 65534 may run")
    started = time.monotonic()
    uv = wheelhouse.uv_bin()
    env = wheelhouse.build_env()

    # The project, copied (a build writes into its source tree) and installed, not editable,
    # at this venv's versions.
    source = rerun_dir / "src"
    for name in _SOURCE:
        path = REPO_ROOT / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=_ignore)
        else:
            source.mkdir(exist_ok=True)
            shutil.copy2(path, source / name)
    frozen = subprocess.run([uv, "pip", "freeze", "--python", sys.executable,
                             "--exclude-editable"], capture_output=True, text=True,
                            timeout=120, check=True, env=env).stdout
    constraints = rerun_dir / "constraints.txt"
    constraints.write_text("".join(line + "\n" for line in frozen.splitlines()
                                   if not line.lower().startswith("isolator")))
    venv = rerun_dir / "venv"
    _uv([uv, "venv", "--no-config", "--quiet", "--python", python, str(venv)], "uv venv", env)
    _uv([uv, "pip", "install", "--no-config", "--quiet", "--python", str(venv / "bin/python"),
         "--constraint", str(constraints), f"{source}[test]"], "installing the project", env)
    installed_at = time.monotonic()

    # The tests and the pytest configuration, away from the sources: the installed package is
    # what they import.
    run = rerun_dir / "run"
    shutil.copytree(REPO_ROOT / "tests", run / "tests", ignore=_ignore)
    shutil.copy2(REPO_ROOT / "pyproject.toml", run / "pyproject.toml")
    home = rerun_dir / "home"
    cache = home / "cache"
    # The attack plugins as already built (same files, same uv): no build as that user.
    shutil.copytree(attack_wheelhouse, cache / attack_wheelhouse.name)
    _chown_tree(home, NOBODY)

    report = home / "report.xml"
    child_env = {key: os.environ[key] for key in _KEPT_ENV if key in os.environ}
    child_env.update(HOME=str(home), ISOLATOR_TEST_CACHE=str(cache),
                     PYTHONDONTWRITEBYTECODE="1")
    cmd = [setpriv, f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--",
           str(venv / "bin/python"), "-m", "pytest", "-p", "no:cacheprovider", "-n", "0",
           "-q", "-rfEX", "tests/security", "-m", "not unprivileged_rerun",
           f"--junitxml={report}", f"--basetemp={home / 'pytest'}"]
    result = subprocess.run(cmd, cwd=run, env=child_env, capture_output=True, text=True,
                            timeout=900, check=False)
    took = time.monotonic() - started
    summary = result.stdout.strip().splitlines()[-1:] or ["(no output)"]
    print(f"unprivileged rerun: {summary[0]}; {took:.1f} s in all "
          f"({installed_at - started:.1f} s to install)")
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-3000:]
    suite = ET.parse(report).getroot()
    suite = suite if suite.tag == "testsuite" else suite[0]
    counts = {key: int(suite.get(key, "0")) for key in ("tests", "failures", "errors",
                                                        "skipped")}
    passed = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
    assert counts["failures"] == counts["errors"] == 0, counts
    assert passed >= MIN_PASSED, (counts, summary)
