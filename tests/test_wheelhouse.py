"""The example wheelhouse: what it holds, how its cache key behaves, how wheels are looked up."""

from __future__ import annotations

import configparser
import json
import shutil
import zipfile
from typing import TYPE_CHECKING

import pytest
import wheelhouse
from packaging.utils import canonicalize_name, parse_wheel_filename

if TYPE_CHECKING:
    from pathlib import Path

EXPECTED = {
    ("openhands-plugin-greetings", "1.0.0"),
    ("openhands-plugin-welcome", "1.0.0"),
    ("openhands-plugin-shout", "1.0.0"),
    ("openhands-plugin-whisper", "1.0.0"),
    ("openhands-plugin-pypi-deps", "1.0.0"),
    ("openhands-plugin-echo-agent", "1.0.0"),
    ("openhands-plugin-salute", "1.0.0"),
    ("example-textkit", "1.0.0"),
    ("example-textkit", "2.0.0"),
}
PLUGINS = {
    "openhands-plugin-greetings": "greetings",
    "openhands-plugin-welcome": "welcome",
    "openhands-plugin-shout": "shout",
    "openhands-plugin-whisper": "whisper",
    "openhands-plugin-pypi-deps": "pypi-deps",
    "openhands-plugin-echo-agent": "echo-agent",
    "openhands-plugin-salute": "salute",
}
# The pins that conflict on purpose: each plugin gets its own venv (ohp demo shows both).
REQUIRES = {
    "openhands-plugin-shout": ["example-textkit<2,>=1"],
    "openhands-plugin-whisper": ["example-textkit<3,>=2"],
    "openhands-plugin-salute": ["openhands-plugin-greetings>=1.0", "example-textkit<2,>=1"],
    "openhands-plugin-echo-agent": ["example-textkit<3,>=2"],
}


def _entry_points(zf: zipfile.ZipFile, distinfo: str) -> dict[str, dict[str, str]]:
    parser = configparser.ConfigParser(delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keep names' case
    parser.read_string(zf.read(f"{distinfo}/entry_points.txt").decode())
    return {section: dict(parser[section]) for section in parser.sections()}


def test_wheelhouse_holds_exactly_the_example_distributions(example_wheelhouse: Path) -> None:
    names = sorted(p.name for p in example_wheelhouse.iterdir())
    assert all(name.endswith(".whl") for name in names), names
    found = {(str(n), str(v)) for n, v, _, _ in map(parse_wheel_filename, names)}
    assert found == EXPECTED


@pytest.mark.parametrize(("distribution", "plugin"), sorted(PLUGINS.items()))
def test_plugin_wheel_has_manifest_and_entry_point(
    example_wheelhouse: Path, distribution: str, plugin: str
) -> None:
    wheel = wheelhouse.wheel_for(example_wheelhouse, distribution)
    module = canonicalize_name(distribution).replace("-", "_")
    with zipfile.ZipFile(wheel) as zf:
        manifest = json.loads(zf.read(f"{module}/.plugin/plugin.json"))
        entry_points = _entry_points(zf, f"{module}-1.0.0.dist-info")
    assert manifest["name"] == plugin
    assert manifest["version"] == "1.0.0"
    assert entry_points["openhands.plugins"] == {plugin: module}


@pytest.mark.parametrize(("distribution", "requires"), sorted(REQUIRES.items()))
def test_plugin_wheels_pin_their_textkit(
    example_wheelhouse: Path, distribution: str, requires: list[str]
) -> None:
    wheel = wheelhouse.wheel_for(example_wheelhouse, distribution)
    module = canonicalize_name(distribution).replace("-", "_")
    with zipfile.ZipFile(wheel) as zf:
        metadata = zf.read(f"{module}-1.0.0.dist-info/METADATA").decode()
    found = [line.split(":", 1)[1].strip() for line in metadata.splitlines()
             if line.startswith("Requires-Dist:")]
    assert sorted(found) == sorted(requires)


@pytest.mark.parametrize(("version", "marks"), [("1.0.0", "!"), ("2.0.0", "!!")])
def test_textkit_wheels_are_plain_libraries(
    example_wheelhouse: Path, version: str, marks: str
) -> None:
    wheel = wheelhouse.wheel_for(example_wheelhouse, "Example_TextKit", version)
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        source = zf.read("example_textkit/__init__.py").decode()
    assert f"example_textkit-{version}.dist-info/entry_points.txt" not in names
    assert f'__version__ = "{version}"' in source
    assert f'return text.upper() + "{marks}"' in source


def test_wheel_for_needs_a_version_when_several_exist(example_wheelhouse: Path) -> None:
    with pytest.raises(LookupError, match=r"several wheels for 'example-textkit'.*pass a version"):
        wheelhouse.wheel_for(example_wheelhouse, "example-textkit")


def test_wheel_for_names_what_is_missing(example_wheelhouse: Path) -> None:
    with pytest.raises(LookupError, match=r"no wheel for 'no-such-plugin' in .*it holds: \["):
        wheelhouse.wheel_for(example_wheelhouse, "no-such-plugin")
    with pytest.raises(LookupError, match=r"no wheel for 'example-textkit' version 3\.0"):
        wheelhouse.wheel_for(example_wheelhouse, "example-textkit", "3.0")


def test_second_call_reuses_the_cached_wheelhouse(example_wheelhouse: Path) -> None:
    assert wheelhouse.example_wheelhouse() == example_wheelhouse


def _copy_examples(target: Path) -> Path:
    shutil.copytree(
        wheelhouse.EXAMPLES_DIR,
        target,
        ignore=shutil.ignore_patterns("build", "dist", "*.egg-info", "__pycache__"),
    )
    return target


def test_key_follows_project_files_and_uv_version(tmp_path: Path) -> None:
    root = _copy_examples(tmp_path / "a" / "examples")
    key = wheelhouse.wheelhouse_key(root, "uv 1.0")
    # Location-independent, and equal to the key of the real examples.
    assert wheelhouse.wheelhouse_key(_copy_examples(tmp_path / "b"), "uv 1.0") == key
    assert wheelhouse.wheelhouse_key(wheelhouse.EXAMPLES_DIR, "uv 1.0") == key
    assert wheelhouse.wheelhouse_key(root, "uv 1.1") != key

    skill = root / "openhands-plugin-shout/openhands_plugin_shout/skills/shout/SKILL.md"
    original = skill.read_bytes()
    skill.write_bytes(original + b"\n")
    assert wheelhouse.wheelhouse_key(root, "uv 1.0") != key
    skill.write_bytes(original)
    assert wheelhouse.wheelhouse_key(root, "uv 1.0") == key

    library = root / "libs/example-textkit-2/example_textkit/__init__.py"
    library.rename(library.with_name("core.py"))
    assert wheelhouse.wheelhouse_key(root, "uv 1.0") != key


def test_key_ignores_build_output_and_non_projects(tmp_path: Path) -> None:
    root = _copy_examples(tmp_path / "examples")
    key = wheelhouse.wheelhouse_key(root, "uv 1.0")
    project = root / "openhands-plugin-welcome"
    for junk in ("build/lib/x.py", "dist/x.whl", "x.egg-info/PKG-INFO", "__pycache__/x.pyc"):
        (project / junk).parent.mkdir(parents=True, exist_ok=True)
        (project / junk).write_text("junk", encoding="utf-8")
    (root / "content-only-plugin" / "commands" / "note.md").write_text("changed", encoding="utf-8")
    assert wheelhouse.wheelhouse_key(root, "uv 1.0") == key


def test_failed_build_names_the_project_and_leaves_no_wheelhouse(tmp_path: Path) -> None:
    project = tmp_path / "examples" / "broken-project"
    project.mkdir(parents=True)
    (project / "pyproject.toml").write_text(
        '[build-system]\nrequires = []\nbuild-backend = "no_such_backend_module"\n\n'
        '[project]\nname = "broken-project"\nversion = "1.0"\n',
        encoding="utf-8",
    )
    cache = tmp_path / "cache"
    with pytest.raises(RuntimeError, match=r"(?s)building .*broken-project failed.*uv stderr:"):
        wheelhouse.example_wheelhouse(tmp_path / "examples", cache_root=cache)
    assert [p.name for p in cache.iterdir() if not p.name.endswith(".lock")] == []
