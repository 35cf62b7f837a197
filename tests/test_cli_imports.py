"""``ohp`` imports only what a command needs: ``--help``, ``list`` and ``show`` never import the
bridge (``hostbridge.supervision``), asyncio, or (but ``show``, which reads frontmatter) YAML.
Each runs in a fresh interpreter, through the console script's entry point."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import TYPE_CHECKING, Any

import pytest

from isolator import PluginStore

if TYPE_CHECKING:
    from pathlib import Path

_PROBE = """
import io, json, sys
from contextlib import redirect_stdout
argv = json.loads(sys.argv[1])
sys.argv = ["ohp", *argv]
from hostbridge.cli._cli import main
out = io.StringIO()
try:
    with redirect_stdout(out):
        code = main()
except SystemExit as exc:
    code = exc.code
heavy = ("asyncio", "yaml", "hostbridge.supervision", "hostbridge.agents", "msgpack")
slow = ("dataclasses", "packaging", "logging", "isolator.content._model",
        "isolator.store._store", "isolator.store._pipeline")
print(json.dumps({"code": code, "out": out.getvalue(),
                  "loaded": sorted(m for m in sys.modules if m.split(".")[0] in heavy or
                                   m.startswith(heavy)),
                  "slow": sorted(m for m in sys.modules if m in slow or
                                 m.startswith(tuple(f"{s}." for s in slow)))}))
"""


def _probe(*argv: str) -> dict[str, Any]:
    result = subprocess.run([sys.executable, "-c", _PROBE, json.dumps(argv)],
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout.splitlines()[-1])
    return data


def _modules(*argv: str) -> tuple[int, str, set[str]]:
    data = _probe(*argv)
    return data["code"], data["out"], set(data["loaded"])


@pytest.fixture(scope="module")
def store_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("cli-imports")
    plugin = base / "notes"
    (plugin / "skills" / "n").mkdir(parents=True)
    (plugin / "skills" / "n" / "SKILL.md").write_text(
        "---\nname: n\ndescription: a skill\n---\nbody\n", encoding="utf-8")
    PluginStore(base / "store").install(str(plugin))
    return base / "store"


def _bridge(loaded: set[str]) -> set[str]:
    return {m for m in loaded if m.startswith(("asyncio", "hostbridge.supervision",
                                               "hostbridge.agents", "msgpack"))}


def test_help_imports_neither_bridge_asyncio_nor_yaml() -> None:
    code, out, loaded = _modules("--help")
    assert code == 0 and "install" in out and "tools" in out
    assert loaded == set(), loaded


def test_list_imports_neither_bridge_asyncio_nor_yaml(store_root: Path) -> None:
    code, out, loaded = _modules("list", "--root", str(store_root))
    assert code == 0 and "notes" in out
    assert loaded == set(), loaded
    code, out, loaded = _modules("list", "--json", "--root", str(store_root))
    assert code == 0 and json.loads(out)[0]["name"] == "notes"
    assert loaded == set(), loaded


def test_show_imports_no_bridge_nor_asyncio(store_root: Path) -> None:
    code, out, loaded = _modules("show", "notes", "--root", str(store_root))
    assert code == 0 and "a skill" in out
    assert _bridge(loaded) == set(), loaded  # YAML it needs: the skill's frontmatter


def test_help_and_list_import_neither_dataclasses_packaging_logging_nor_the_store(
        store_root: Path) -> None:
    """#19: `ohp --help` and `ohp list` within 2x `python -c pass` (benchmarks/bench_cli.py):
    the content model's dataclasses, packaging, logging and the install pipeline cost more
    than that margin; `list` reads the records itself (isolator.store._listing)."""
    for argv in (("--help",), ("list", "--root", str(store_root)),
                 ("list", "--json", "--root", str(store_root))):
        data = _probe(*argv)
        assert data["code"] == 0 and data["out"], argv
        assert data["slow"] == [], (argv, data["slow"])
