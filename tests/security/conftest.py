"""Fixtures of the security suite: the attack plugins built once, stores other uids can reach.

README.md here says which profile stops which attack, by which layer, and lists the holes.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import wheelhouse
from secsupport import PLUGINS_DIR, make_store, world_python

if TYPE_CHECKING:
    from collections.abc import Iterator

    from isolator import PluginStore


@pytest.fixture(scope="session")
def attack_wheelhouse() -> Path:
    """The projects under plugins/ built into one directory of wheels, cached like the
    examples' (tests/wheelhouse.py: keyed by their files and uv's version)."""
    try:
        return wheelhouse.example_wheelhouse(PLUGINS_DIR)
    except RuntimeError as exc:
        pytest.fail(f"the attack plugins could not be built:\n{exc}", pytrace=False)


@pytest.fixture(scope="session")
def plugin_python() -> str:
    """The interpreter of every plugin venv here: one the unprivileged uid may run."""
    python = world_python()
    if python is None:
        pytest.fail("no interpreter of this Python version that every user may run "
                    "(workers run as uid 65534 when the host is root)", pytrace=False)
    return python


@pytest.fixture(scope="session")
def sec_root() -> Iterator[Path]:
    """A directory every uid may traverse, for stores (a pytest tmp_path is 0700 and lives
    under /tmp/pytest-of-USER, which workers running as nobody cannot reach)."""
    root = Path(tempfile.mkdtemp(prefix="isolator-sec-", dir="/tmp"))
    root.chmod(0o755)
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def sec_tmp(sec_root: Path, request: pytest.FixtureRequest) -> Path:
    """A fresh world-traversable (0755) directory for one test."""
    path = Path(tempfile.mkdtemp(prefix=f"{request.node.name[:40]}-", dir=sec_root))
    path.chmod(0o755)
    return path


@pytest.fixture(scope="module")
def store(sec_root: Path, attack_wheelhouse: Path, plugin_python: str,
          request: pytest.FixtureRequest) -> PluginStore:
    """One store per test module with the attacks and the bystander (installing is slow).
    Tests that change the installed files make their own (:func:`make_store`)."""
    return make_store(sec_root / request.module.__name__, attack_wheelhouse, plugin_python)


@pytest.fixture(autouse=True)
def _forget_crashes(request: pytest.FixtureRequest) -> Iterator[None]:
    """Crashes are remembered in STORE/state/: each test starts with none (no backoff)."""
    if "store" not in request.fixturenames:
        yield
        return
    state = request.getfixturevalue("store").root / "state"

    def forget() -> None:
        if state.is_dir():
            for record in state.glob("*.json"):
                record.unlink(missing_ok=True)

    forget()
    yield
    forget()


@pytest.fixture
def fake_home(sec_tmp: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A home directory for the host (HOME) with an SSH key in it, 0600 as ssh wants."""
    home = sec_tmp / "home"
    (home / ".ssh").mkdir(parents=True)
    home.chmod(0o755)
    (home / ".ssh").chmod(0o700)
    key = home / ".ssh" / "id_ed25519"
    key.write_text(f"-----BEGIN OPENSSH PRIVATE KEY-----\nsecret-{os.urandom(8).hex()}\n")
    key.chmod(0o600)
    monkeypatch.setenv("HOME", str(home))
    return home


@pytest.fixture
def decoy() -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """Another process of the host's uid with a secret in its environment."""
    secret = f"decoy-{secrets.token_hex(16)}"
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"],
                            env={**os.environ, "ISOLATOR_SEC_DECOY": secret})
    yield proc, secret
    proc.kill()
    proc.wait()
