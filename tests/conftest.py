"""Shared fixtures. The oracle machinery itself lives in tests/oracle.py (usable without pytest)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import oracle
import pytest

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytest_plugins = ["pytester"]


# -- hygiene -----------------------------------------------------------------------------------

# pytest itself sets this one around every test phase.
_ENVIRON_IGNORED = frozenset({"PYTEST_CURRENT_TEST"})


def _environ() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in _ENVIRON_IGNORED}


@pytest.fixture(autouse=True)
def _check_os_environ_stable() -> Iterator[None]:
    """Fail a test that leaves os.environ changed (use monkeypatch.setenv, which undoes itself).

    As in virtualenv's tests/conftest.py. The environment is restored afterwards, so one leak
    does not spread to the tests that run after it in the same worker.
    """
    before = _environ()
    yield
    after = _environ()
    if after == before:
        return
    added = sorted(after.keys() - before.keys())
    removed = sorted(before.keys() - after.keys())
    changed = sorted(k for k in before.keys() & after.keys() if before[k] != after[k])
    for key in added:
        del os.environ[key]
    os.environ.update({k: before[k] for k in removed + changed})
    pytest.fail(
        f"test leaked changes to os.environ: added {added}, removed {removed}, changed {changed}",
        pytrace=False,
    )


# -- the shared directory and the oracle (session-wide, cached across runs) ----------------------


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """``../shared`` (or ``$ISOLATOR_SHARED``); skips without it, fails without it under CI."""
    return oracle.require_shared()


@pytest.fixture(scope="session")
def oracle_python(shared_dir: Path) -> Path:
    """The oracle venv's python (openhands-sdk 1.58.0). A failed build fails, never skips."""
    try:
        return oracle.oracle_python(shared_dir)
    except oracle.OracleError as exc:
        pytest.fail(f"the oracle could not be built:\n{exc}", pytrace=False)


@pytest.fixture(scope="session")
def corpus_oracle(shared_dir: Path, oracle_python: Path) -> dict[str, dict[str, Any]]:
    """The oracle's record of every corpus plugin, keyed by path relative to the corpus.

    Records were made with ``oracle.oracle_env()``; see ``oracle.corpus_oracle``.
    """
    try:
        return oracle.corpus_oracle(shared_dir)
    except oracle.OracleError as exc:
        pytest.fail(f"the oracle could not dump the corpus:\n{exc}", pytrace=False)


# -- the example projects as wheels (session-wide, cached across runs) --------------------------


@pytest.fixture(scope="session")
def example_wheelhouse() -> Path:
    """One flat directory of wheels built from examples/ (see tests/wheelhouse.py); cached."""
    # Imported here: test_oracle_infra runs a copy of this conftest without wheelhouse.py.
    import wheelhouse

    try:
        return wheelhouse.example_wheelhouse()
    except RuntimeError as exc:
        pytest.fail(f"the example wheelhouse could not be built:\n{exc}", pytrace=False)
