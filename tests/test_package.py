"""``ohp package``: a git-style plugin directory into a package project and its wheel.

Real setuptools builds through uv; bad inputs each get an error that names them, and nothing is
written when packaging fails.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pytest
from plugin_fixtures import manifest, write_tree
from wheelhouse import EXAMPLES_DIR

import isolator
from isolator._errors import PackagingError
from isolator.authoring._authoring import BuildSettings, package_plugin, validate_package
from isolator.cli import main as ohp

OHP = [sys.executable, "-m", "isolator.cli"]


def sample(root: Path, **extra: str | bytes) -> Path:
    files: dict[str, str | bytes] = {
        ".claude-plugin/plugin.json": manifest(name="sample", version="2.1.0",
                                               description="A sample"),
        "skills/look/SKILL.md": "---\nname: look\ndescription: Look\n---\nLook.\n",
        "skills/look/.mcp.json": json.dumps({"mcpServers": {"eye": {"command": "eye"}}}),
        "commands/go.md": "---\ndescription: Go\n---\nGo\n",
        "hooks/hooks.json": json.dumps({"hooks": {"Stop": [{"hooks": [
            {"type": "command", "command": "${CLAUDE_PLUGIN_ROOT}/hooks/stop.sh"}]}]}}),
        "hooks/stop.sh": "#!/bin/sh\nexit 0\n",
    }
    files.update(extra)
    write_tree(root, files)
    (root / "hooks" / "stop.sh").chmod(0o755)
    return root


def wheel_members(wheel: Path) -> dict[str, int]:
    with zipfile.ZipFile(wheel) as archive:
        return {i.filename: i.external_attr >> 16 for i in archive.infolist()}


def listing(path: Path) -> list[str]:
    return sorted(p.relative_to(path).as_posix() for p in path.rglob("*")) \
        if path.exists() else []


# ---- what it makes ---------------------------------------------------------------------------


@pytest.mark.slow
def test_package_makes_a_project_that_validates_and_a_wheel_that_installs(tmp_path: Path) -> None:
    plugin = sample(tmp_path / "sample", **{
        ".plugin-data/.deep/state.json": "{}",  # two hidden directories: listed literally
        "docs/a[1].md": "brackets are glob syntax\n",
        "node_modules/dep/index.js": "junk",
        "__pycache__/x.cpython-311.pyc": b"junk",
    })
    (plugin / ".git").mkdir()
    (plugin / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    result = package_plugin(plugin, tmp_path / "dist", project_dir=tmp_path / "project")
    assert (result.plugin, result.version) == ("sample", "2.1.0")
    assert result.dist_name == "openhands-plugin-sample"
    assert result.module == "openhands_plugin_sample"
    assert sorted(result.skipped) == [".git", "__pycache__", "node_modules"]
    assert result.wheel == tmp_path / "dist" / "openhands_plugin_sample-2.1.0-py3-none-any.whl"
    members = wheel_members(result.wheel)
    module = "openhands_plugin_sample/"
    for rel in (".claude-plugin/plugin.json", "skills/look/.mcp.json",
                ".plugin-data/.deep/state.json", "docs/a[1].md", "__init__.py"):
        assert module + rel in members, rel
    assert members[module + "hooks/stop.sh"] & 0o111, "the hook script stays executable"
    assert not any("node_modules" in m or ".git/" in m or m.endswith(".pyc") for m in members)

    project = tmp_path / "project"
    assert sorted(p.name for p in project.iterdir()) == [
        "README.md", "openhands_plugin_sample", "pyproject.toml"]
    assert not (project / "build").exists() and not list(project.glob("*.egg-info"))
    text = (project / "pyproject.toml").read_text()
    assert '".plugin-data/.deep/state.json"' in text  # the globs cannot reach it
    # The project it leaves is a package project that passes every check.
    report = validate_package(project)
    assert report.ok and not report.warnings, [c for c in report.checks if c.status != "ok"]

    store = isolator.PluginStore(tmp_path / "store")
    source = isolator.PluginSource.parse("pypi:openhands-plugin-sample",
                                         find_links=[str(tmp_path / "dist")], no_index=True)
    installed = store.install(source)
    loaded = store.load(installed.name)
    assert loaded.name == "sample" and loaded.version == "2.1.0"
    assert [s.name for s in loaded.skills] == ["look"]
    assert loaded.skills[0].mcp_tools == {"eye": {"command": "eye"}}
    assert "site-packages" in loaded.root


@pytest.mark.slow
def test_symlinks_inside_the_plugin_become_copies(tmp_path: Path) -> None:
    plugin = sample(tmp_path / "sample")
    os.symlink("look", plugin / "skills" / "peek")  # a directory link
    os.symlink("../commands/go.md", plugin / "skills" / "go.md")  # a file link
    result = package_plugin(plugin, tmp_path / "dist")
    assert sorted(result.linked) == ["skills/go.md", "skills/peek"]
    assert result.project is None  # built in a temporary directory
    members = wheel_members(result.wheel)  # type: ignore[arg-type]
    assert "openhands_plugin_sample/skills/peek/SKILL.md" in members
    assert "openhands_plugin_sample/skills/go.md" in members
    assert not any(stat.S_ISLNK(mode) for mode in members.values())


@pytest.mark.slow
def test_a_plugin_without_version_gets_the_version_the_loader_assumes(tmp_path: Path) -> None:
    plugin = write_tree(tmp_path / "bare", {"commands/go.md": "---\ndescription: Go\n---\n"})
    result = package_plugin(plugin, tmp_path / "dist")
    assert (result.plugin, result.version) == ("bare", "1.0.0")
    assert any("states no version" in note for note in result.notes)
    chosen = package_plugin(plugin, tmp_path / "dist2", version="3.0")
    assert chosen.version == "3.0" and chosen.wheel is not None
    assert chosen.wheel.name == "openhands_plugin_bare-3.0-py3-none-any.whl"


# ---- what it refuses, each named; nothing written --------------------------------------------


@pytest.mark.parametrize(("case", "expected"), [
    ("symlink leaving", "leak.md: symlink leaves the plugin directory"),
    ("dangling symlink", "gone.md: dangling symlink"),
    ("symlink loop", "skills/loop: symlink loop"),
    ("fifo", "pipe: not a regular file or directory (a FIFO)"),
    ("already a package", "is already a package project"),
    ("bad version", "'one' is not a PEP 440 version"),
    ("bad --version", "--version is not a PEP 440 version"),
    ("bad dist name", "'bad name' is not a valid distribution name"),
    ("bad manifest", "manifest lacks the required field 'name'"),
    ("name unusable", "expected letters, digits"),
])
def test_refusals_name_the_input_and_write_nothing(tmp_path: Path, case: str,
                                                   expected: str) -> None:
    plugin = sample(tmp_path / "sample")
    options: dict[str, str] = {}
    if case == "symlink leaving":
        (tmp_path / "secret.md").write_text("secret")
        os.symlink(tmp_path / "secret.md", plugin / "leak.md")
    elif case == "dangling symlink":
        os.symlink("nowhere.md", plugin / "gone.md")
    elif case == "symlink loop":
        os.symlink("..", plugin / "skills" / "loop")
    elif case == "fifo":
        os.mkfifo(plugin / "pipe")
    elif case == "already a package":
        (plugin / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    elif case == "bad version":
        (plugin / ".claude-plugin" / "plugin.json").write_text(manifest(name="s", version="one"))
    elif case == "bad --version":
        options["version"] = "not a version"
    elif case == "bad dist name":
        options["dist_name"] = "bad name"
    elif case == "bad manifest":
        (plugin / ".claude-plugin" / "plugin.json").write_text("{}")
    elif case == "name unusable":
        (plugin / ".claude-plugin" / "plugin.json").write_text(manifest(name="no/slash"))
    before = listing(plugin)
    with pytest.raises(isolator.IsolatorError) as caught:
        package_plugin(plugin, tmp_path / "dist", project_dir=tmp_path / "project",
                       **options)  # type: ignore[arg-type]
    assert expected in str(caught.value), str(caught.value)
    assert listing(plugin) == before
    assert not (tmp_path / "dist").exists() and not (tmp_path / "project").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".ohp-package-")]


def test_every_refused_entry_is_listed_at_once(tmp_path: Path) -> None:
    plugin = sample(tmp_path / "sample")
    (tmp_path / "outside").mkdir()
    os.symlink(tmp_path / "outside", plugin / "skills" / "out")
    os.symlink("missing", plugin / "commands" / "gone.md")
    os.mkfifo(plugin / "hooks" / "pipe")
    with pytest.raises(PackagingError) as caught:
        package_plugin(plugin, tmp_path / "dist")
    assert caught.value.problems == (
        "commands/gone.md: dangling symlink (-> missing)",
        "hooks/pipe: not a regular file or directory (a FIFO)",
        f"skills/out: symlink leaves the plugin directory (-> {tmp_path / 'outside'})",
    )


def test_not_a_directory(tmp_path: Path) -> None:
    with pytest.raises(PackagingError, match="not a directory"):
        package_plugin(tmp_path / "missing", tmp_path / "dist")


@pytest.mark.slow
def test_an_existing_project_is_kept_unless_forced_and_kept_when_the_build_fails(
        tmp_path: Path) -> None:
    plugin = sample(tmp_path / "sample")
    project = tmp_path / "project"
    project.mkdir()
    (project / "mine.txt").write_text("keep")
    with pytest.raises(PackagingError, match="exists; pass --force"):
        package_plugin(plugin, tmp_path / "dist", project_dir=project)
    assert listing(project) == ["mine.txt"]
    # --force, but the build backend cannot be had (offline, empty wheelhouse): still kept.
    with pytest.raises(isolator.IsolatorError, match="build requirements"):
        package_plugin(plugin, tmp_path / "dist", project_dir=project, force=True,
                       settings=BuildSettings(find_links=[str(tmp_path / "empty")],
                                              no_index=True))
    assert listing(project) == ["mine.txt"]
    assert not (tmp_path / "dist").exists()
    result = package_plugin(plugin, tmp_path / "dist", project_dir=project, force=True)
    assert result.project == project and (project / "pyproject.toml").is_file()
    assert not (project / "mine.txt").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".project.old")]


# ---- the command -----------------------------------------------------------------------------


@pytest.mark.slow
def test_ohp_package_as_a_user_runs_it(tmp_path: Path) -> None:
    done = subprocess.run([*OHP, "package", str(EXAMPLES_DIR / "content-only-plugin"),
                           "--out", str(tmp_path / "dist")], capture_output=True, text=True,
                          timeout=300, check=False, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "packaged notes 0.1.0 as openhands-plugin-notes (5 files)"
    wheel = tmp_path / "dist" / "openhands_plugin_notes-0.1.0-py3-none-any.whl"
    assert lines[1] == f"wheel:   {wheel}"
    assert done.stderr == ""

    as_json = subprocess.run([*OHP, "package", str(EXAMPLES_DIR / "content-only-plugin"),
                              "--out", str(tmp_path / "dist2"), "--json"], capture_output=True,
                             text=True, timeout=300, check=False)
    data = json.loads(as_json.stdout)
    assert data["plugin"] == "notes" and data["wheel"].endswith(".whl")
    assert data["project"] is None


def test_ohp_package_errors_are_listed_with_exit_1(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    plugin = sample(tmp_path / "sample")
    os.symlink("/etc/passwd", plugin / "passwd")
    assert ohp(["package", str(plugin), "--out", str(tmp_path / "dist")]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"ohp: error: {plugin}: 1 entries cannot be packaged")
    assert "\n  passwd: symlink leaves the plugin directory (-> /etc/passwd)" in err
    assert ohp(["package", str(plugin), "--no-build"]) == 1
    assert "pass --project DIR too" in capsys.readouterr().err


@pytest.mark.slow
def test_packaging_twice_from_inside_the_plugin_never_packages_its_own_output(
        tmp_path: Path) -> None:
    plugin = sample(tmp_path / "sample")
    first = subprocess.run([*OHP, "package", ".", "--project", "pkg"], cwd=plugin,
                           capture_output=True, text=True, timeout=300, check=False)
    assert first.returncode == 0, first.stderr
    again = package_plugin(plugin, plugin / "dist", project_dir=plugin / "pkg", force=True)
    assert sorted(again.skipped) == ["dist", "pkg"]
    members = wheel_members(again.wheel)  # type: ignore[arg-type]
    assert not [m for m in members if "/dist/" in m or "/pkg/" in m or m.endswith(".whl")]
    assert again.files == 6


def test_an_out_that_is_a_file_is_refused_before_any_work(tmp_path: Path) -> None:
    plugin = sample(tmp_path / "sample")
    (tmp_path / "dist").write_text("not a directory")
    with pytest.raises(PackagingError, match="exists and is not a directory"):
        package_plugin(plugin, tmp_path / "dist", project_dir=tmp_path / "project")
    assert (tmp_path / "dist").read_text() == "not a directory"
    assert not (tmp_path / "project").exists()


@pytest.mark.slow
def test_the_wheel_lands_in_out_on_another_filesystem_too(tmp_path: Path) -> None:
    """The build happens in the system temporary directory; --out may be elsewhere (/dev/shm
    is another filesystem here): the wheel is copied, never renamed across devices."""
    shm = Path("/dev/shm")
    if not shm.is_dir() or os.stat(shm).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("no second filesystem to write to")
    out = Path(tempfile.mkdtemp(dir=shm))
    try:
        result = package_plugin(sample(tmp_path / "sample"), out)
        assert result.wheel is not None and result.wheel.parent == out
        assert [p.name for p in out.iterdir()] == [result.wheel.name]
    finally:
        shutil.rmtree(out, ignore_errors=True)
