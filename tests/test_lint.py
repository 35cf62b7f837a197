"""The project's own checks as tests, so the one test command runs them: ruff, mypy and the
architecture's import contracts (import-linter, configured in pyproject.toml)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("tool", [
    [sys.executable, "-m", "ruff", "check", "isolator", "hostbridge", "tests", "benchmarks"],
    [sys.executable, "-m", "mypy", "--cache-dir", "/tmp/isolator-mypy-cache"],
    [str(Path(sys.executable).with_name("lint-imports")), "--no-cache"],
], ids=["ruff", "mypy", "import-linter"])
def test_static_checks(tool: list[str]) -> None:
    result = subprocess.run(tool, cwd=ROOT, capture_output=True, text=True, timeout=600,
                            check=False)
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]
