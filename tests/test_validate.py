"""``ohp validate``: the proposal's checks on a package project, with real setuptools builds."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest
from plugin_fixtures import manifest, write_tree
from wheelhouse import EXAMPLES_DIR

from isolator._errors import PackagingError
from isolator.authoring._authoring import BuildSettings, validate_directory, validate_package
from isolator.cli import main as ohp

if TYPE_CHECKING:
    from pathlib import Path

MODULE = "openhands_plugin_demo"

PLUGIN_FILES: dict[str, str | bytes] = {
    f"{MODULE}/__init__.py": '"""The demo plugin."""\n',
    f"{MODULE}/.plugin/plugin.json": manifest(name="demo", version="1.2.0",
                                              description="A demo"),
    f"{MODULE}/skills/scan/SKILL.md": "---\nname: scan\ndescription: Scan\n---\nScan it.\n",
    f"{MODULE}/skills/scan/.mcp.json": json.dumps(
        {"mcpServers": {"scanner": {"command": "scan-server", "args": ["--stdio"]}}}),
    f"{MODULE}/commands/run.md": "---\ndescription: Run it\n---\nRun.\n",
    f"{MODULE}/hooks/hooks.json": json.dumps(
        {"hooks": {"PreToolUse": [{"matcher": "*", "hooks": [
            {"type": "command", "command": "${PLUGIN_ROOT}/hooks/check.sh"}]}]}}),
    f"{MODULE}/hooks/check.sh": "#!/bin/sh\nexit 0\n",
    f"{MODULE}/.mcp.json": json.dumps({"mcpServers": {"docs": {"url": "https://example.org"}}}),
}

# What the proposal's example pyproject.toml lists: it misses the skill's .mcp.json.
PROPOSAL_GLOBS = '[".plugin/**/*", "skills/**/*", "commands/**/*", "hooks/**/*", ".mcp.json"]'
ALL_GLOBS = '["**/*", "**/.*", "**/.*/**/*", "**/.*/**/.*"]'


def pyproject(*, version: str = '"1.2.0"', entry_points: str = f'demo = "{MODULE}"',
              package_data: str = ALL_GLOBS, extra: str = "", dynamic: str = "") -> str:
    version_line = f"version = {version}\n" if version else ""
    return f"""[build-system]
requires = ["setuptools>=69"]
build-backend = "setuptools.build_meta"

[project]
name = "openhands-plugin-demo"
{version_line}{dynamic}description = "A demo"
requires-python = ">=3.10"

[project.entry-points."openhands.plugins"]
{entry_points}
{extra}
[tool.setuptools]
packages = ["{MODULE}"]

[tool.setuptools.package-data]
{MODULE} = {package_data}
"""


def make_project(root: Path, text: str | None = None, files: dict[str, str | bytes] | None = None,
                 ) -> Path:
    write_tree(root, PLUGIN_FILES if files is None else files)
    if text is not None:
        (root / "pyproject.toml").write_text(text, encoding="utf-8")
    hook = root / MODULE / "hooks" / "check.sh"
    if hook.exists():
        hook.chmod(0o755)
    return root


def statuses(report: object) -> dict[str, str]:
    result: dict[str, str] = {}
    for check in report.checks:  # type: ignore[attr-defined]
        # The worst status of a check name wins (a check may appear twice).
        order = ["skipped", "ok", "warning", "error"]
        if order.index(check.status) >= order.index(result.get(check.name, "skipped")):
            result[check.name] = check.status
    return result


def messages(report: object) -> str:
    return "\n".join(f"{c.status} {c.message} {' '.join(c.details)}"
                     for c in report.checks)  # type: ignore[attr-defined]


# ---- complete projects (real builds) ----------------------------------------------------------


@pytest.mark.slow
def test_every_example_plugin_package_validates_clean() -> None:
    for name in ("openhands-plugin-greetings", "openhands-plugin-echo-agent"):
        report = validate_package(EXAMPLES_DIR / name)
        assert report.ok and not report.warnings, messages(report)
        assert statuses(report)["package-data"] == "ok"
        assert statuses(report)["wheel-content"] == "ok"
        assert report.wheel is not None and report.wheel.endswith(".whl")
    assert statuses(report)["agent"] == "ok" and statuses(report)["tools"] == "ok"


@pytest.mark.slow
def test_a_good_project_passes_and_says_what_it_checked(tmp_path: Path) -> None:
    project = make_project(tmp_path / "demo", pyproject())
    report = validate_package(project)
    assert report.ok and not report.warnings, messages(report)
    assert report.plugin == "demo" and report.version == "1.2.0"
    text = messages(report)
    for expected in ("pyproject.toml found: openhands-plugin-demo 1.2.0",
                     f"plugin module found: {MODULE}/",
                     f"plugin.json found at {MODULE}/.plugin/plugin.json",
                     "versions match: 1.2.0", "entry point configured: demo = " + MODULE,
                     "package data includes all 8 plugin files",
                     "loads from the wheel exactly as from the directory"):
        assert expected in text, text
    # The build goes through an sdist: no build/ directory is left in the project.
    assert not (project / "build").exists()


@pytest.mark.slow
def test_the_proposals_package_data_globs_miss_a_skills_mcp_json(tmp_path: Path) -> None:
    project = make_project(tmp_path / "demo", pyproject(package_data=PROPOSAL_GLOBS))
    report = validate_package(project)
    assert not report.ok
    data = next(c for c in report.checks if c.name == "package-data")
    assert data.status == "error"
    assert data.details == ("skills/scan/.mcp.json",)
    assert "skip names that start with a dot" in data.message
    # And the content check sees what a user would lose: the skill's MCP servers.
    content = next(c for c in report.checks if c.name == "wheel-content")
    assert content.status == "error" and any("scan" in d for d in content.details)


@pytest.mark.slow
def test_default_setuptools_globs_ship_no_dotfiles(tmp_path: Path) -> None:
    """No package-data at all: the wheel lacks .plugin/ and every .mcp.json and every .md."""
    text = pyproject().split("[tool.setuptools.package-data]")[0]
    project = make_project(tmp_path / "demo", text)
    report = validate_package(project)
    data = next(c for c in report.checks if c.name == "package-data")
    assert data.status == "error"
    assert ".plugin/plugin.json" in data.details and ".mcp.json" in data.details


@pytest.mark.slow
def test_a_dynamic_version_is_read_from_the_built_wheel(tmp_path: Path) -> None:
    files = dict(PLUGIN_FILES)
    files[f"{MODULE}/__init__.py"] = '__version__ = "1.3.0"\n'
    project = make_project(tmp_path / "demo", pyproject(
        version="", dynamic='dynamic = ["version"]\n',
        extra=f'[tool.setuptools.dynamic]\nversion = {{attr = "{MODULE}.__version__"}}\n'),
        files)
    report = validate_package(project)
    version = next(c for c in report.checks if c.name == "version")
    assert version.status == "warning", messages(report)
    assert "'1.2.0'" in version.message and "1.3.0" in version.message
    assert report.version == "1.3.0" and report.ok


@pytest.mark.slow
def test_code_entry_points_must_point_at_shipped_modules(tmp_path: Path) -> None:
    extra = (f'[project.entry-points."openhands.agents"]\ndemo = "{MODULE}.agent:create_agent"\n'
             f'[project.entry-points."openhands.tools"]\nscan = "{MODULE}.tools"\n')
    project = make_project(tmp_path / "demo", pyproject(extra=extra))
    report = validate_package(project)
    by_name = {c.name: c for c in report.checks}
    assert by_name["agent"].status == "error"
    assert "no module openhands_plugin_demo.agent" in " ".join(by_name["agent"].details)
    assert by_name["tools"].status == "error"
    assert "expected 'module:object'" in " ".join(by_name["tools"].details)


@pytest.mark.slow
def test_a_project_that_does_not_build_is_an_error_not_a_crash(tmp_path: Path) -> None:
    text = pyproject().replace('requires = ["setuptools>=69"]',
                               'requires = ["no-such-build-backend-for-isolator"]')
    project = make_project(tmp_path / "demo", text)
    report = validate_package(project, settings=BuildSettings(find_links=[tmp_path], no_index=True))
    by_name = {c.name: c for c in report.checks}
    assert by_name["build"].status == "error"
    assert "does not build" in by_name["build"].message
    assert "no-such-build-backend-for-isolator" in " ".join(by_name["build"].details)
    assert by_name["package-data"].status == "skipped"


@pytest.mark.slow
def test_ohp_validate_exit_codes_and_json_as_a_user_runs_it(tmp_path: Path) -> None:
    good = make_project(tmp_path / "good", pyproject())
    bad = make_project(tmp_path / "bad", pyproject(package_data=PROPOSAL_GLOBS))
    cmd = [sys.executable, "-m", "isolator.cli", "validate"]
    done = subprocess.run([*cmd, "--python-package", str(good)], capture_output=True,
                          text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0].startswith("OK      pyproject.toml found")
    assert done.stdout.splitlines()[-1].startswith("ok: 0 errors, 0 warnings")
    failed = subprocess.run([*cmd, str(bad), "--json"], capture_output=True, text=True,
                            timeout=300, check=False)
    assert failed.returncode == 1
    data = json.loads(failed.stdout)
    assert data["ok"] is False and data["errors"] >= 1
    assert any(c["name"] == "package-data" and c["status"] == "error" for c in data["checks"])


# ---- bad projects: each kind of mistake, named (no build needed) ------------------------------


@pytest.mark.parametrize(("case", "check", "expected"), [
    ("no pyproject", "pyproject", "pyproject.toml not found"),
    ("bad toml", "pyproject", "is not valid TOML"),
    ("no project table", "pyproject", "has no [project] table"),
    ("no name", "pyproject", "[project] name is missing"),
    ("no version", "pyproject", "has no version"),
    ("no entry point", "entry-point", "declares no 'openhands.plugins' entry point"),
    ("two entry points", "entry-point", "declares 2 'openhands.plugins' entry points"),
    ("entry point is an object", "entry-point", "expected a module"),
    ("bad entry point name", "entry-point", "expected letters, digits"),
    ("module missing", "module", "plugin module openhands_plugin_other not found"),
    ("single-file module", "module", "is a single-file module"),
    ("name mismatch", "name", "names the plugin 'demo'"),
    ("bad plugin.json", "content", "the plugin does not load"),
    ("bad package version", "version", "is not a PEP 440 version"),
])
def test_each_mistake_is_an_error_that_names_it(tmp_path: Path, case: str, check: str,
                                                expected: str) -> None:
    files = dict(PLUGIN_FILES)
    text: str | None = pyproject()
    if case == "no pyproject":
        text = None
    elif case == "bad toml":
        text = "[project\nname = 1\n"
    elif case == "no project table":
        text = "[build-system]\nrequires = []\n"
    elif case == "no name":
        text = pyproject().replace('name = "openhands-plugin-demo"\n', "")
    elif case == "no version":
        text = pyproject(version="")
    elif case == "no entry point":
        text = pyproject(entry_points="").replace(
            '[project.entry-points."openhands.plugins"]\n', "")
    elif case == "two entry points":
        text = pyproject(entry_points=f'demo = "{MODULE}"\nother = "{MODULE}"')
    elif case == "entry point is an object":
        text = pyproject(entry_points=f'demo = "{MODULE}:plugin"')
    elif case == "bad entry point name":
        text = pyproject(entry_points=f'"de mo" = "{MODULE}"')
    elif case == "module missing":
        text = pyproject(entry_points='demo = "openhands_plugin_other"')
    elif case == "single-file module":
        text = pyproject(entry_points='demo = "single"')
        files["single.py"] = "x = 1\n"
    elif case == "name mismatch":
        text = pyproject(entry_points=f'renamed = "{MODULE}"')
    elif case == "bad plugin.json":
        files[f"{MODULE}/.plugin/plugin.json"] = "{not json"
    elif case == "bad package version":
        text = pyproject(version='"one point two"')
    project = make_project(tmp_path / "demo", text, files)
    before = sorted(p.relative_to(project).as_posix() for p in project.rglob("*"))
    report = validate_package(project, build=False)
    assert not report.ok
    found = [c for c in report.checks if c.name == check and c.status == "error"]
    assert found, messages(report)
    assert expected in found[0].message, found[0].message
    # Validation reads; it never changes the project.
    assert sorted(p.relative_to(project).as_posix() for p in project.rglob("*")) == before


def test_version_mismatch_is_a_warning_and_the_package_version_wins(tmp_path: Path) -> None:
    project = make_project(tmp_path / "demo", pyproject(version='"2.0.0"'))
    report = validate_package(project, build=False)
    version = next(c for c in report.checks if c.name == "version")
    assert version.status == "warning"
    assert "the package version wins" in version.message
    assert report.ok and report.version == "2.0.0"


def test_equal_versions_in_another_spelling_match(tmp_path: Path) -> None:
    project = make_project(tmp_path / "demo", pyproject(version='"1.2"'))
    files = dict(PLUGIN_FILES)
    files[f"{MODULE}/.plugin/plugin.json"] = manifest(name="demo", version="1.2.0")
    version = next(c for c in validate_package(make_project(project, None, files),
                                               build=False).checks if c.name == "version")
    assert version.status == "ok" and version.message == "versions match: 1.2"


def test_a_plugin_without_manifest_is_named_by_its_entry_point(tmp_path: Path) -> None:
    files = {k: v for k, v in PLUGIN_FILES.items() if ".plugin/" not in k}
    project = make_project(tmp_path / "demo", pyproject(), files)
    report = validate_package(project, build=False)
    assert report.ok and report.plugin == "demo"
    by_name = {c.name: c for c in report.checks}
    assert by_name["manifest"].message == "no plugin.json: the plugin is named by its entry " \
        "point ('demo')"
    assert "name" not in by_name  # nothing to compare the entry point's name with
    assert by_name["version"].message == "version 1.2.0 (from the package)"
    assert by_name["package-data"].status == "skipped"


def test_module_without_init_is_a_warning_and_src_layout_is_found(tmp_path: Path) -> None:
    files = {f"src/{k}": v for k, v in PLUGIN_FILES.items() if not k.endswith("__init__.py")}
    project = write_tree(tmp_path / "demo", files)
    (project / "pyproject.toml").write_text(pyproject(), encoding="utf-8")
    report = validate_package(project, build=False)
    module = next(c for c in report.checks if c.name == "module")
    assert module.status == "warning"
    assert module.message.startswith(f"plugin module found: src/{MODULE}/, without __init__")


def test_content_diagnostics_are_warnings_with_their_paths(tmp_path: Path) -> None:
    files = dict(PLUGIN_FILES)
    files[f"{MODULE}/commands/broken.md"] = "---\ndescription: [unclosed\n---\nBody\n"
    report = validate_package(make_project(tmp_path / "demo", pyproject(), files),
                              build=False)
    content = next(c for c in report.checks if c.name == "content")
    assert content.status == "warning" and report.ok
    assert any("commands/broken.md" in d for d in content.details), content.details


def test_not_a_directory_raises_packaging_error(tmp_path: Path) -> None:
    with pytest.raises(PackagingError, match="not a directory"):
        validate_package(tmp_path / "missing")
    (tmp_path / "file").write_text("x")
    with pytest.raises(PackagingError, match="not a directory"):
        validate_directory(tmp_path / "file")


def test_cli_not_a_directory_is_one_line_and_exit_1(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert ohp(["validate", "--python-package", str(tmp_path / "missing")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("ohp: error: ") and "not a directory" in err


# ---- plugin directories (not packages) --------------------------------------------------------


def test_a_plugin_directory_is_checked_as_one(capsys: pytest.CaptureFixture[str]) -> None:
    assert ohp(["validate", str(EXAMPLES_DIR / "content-only-plugin")]) == 0
    out = capsys.readouterr().out
    assert "OK      plugin.json found at .plugin/plugin.json" in out
    assert out.rstrip().endswith(f"(directory {EXAMPLES_DIR / 'content-only-plugin'})")


def test_directory_problems_that_block_packaging(tmp_path: Path) -> None:
    outside = tmp_path / "secret.txt"
    outside.write_text("secret")
    plugin = write_tree(tmp_path / "plugin", {
        ".plugin/plugin.json": manifest(name="p", version="not-a-version"),
        "skills/a/SKILL.md": "---\nname: a\ndescription: A\n---\nA\n"})
    os.symlink(outside, plugin / "skills" / "a" / "leak.txt")
    os.symlink(plugin / "nowhere", plugin / "dangling.md")
    os.mkfifo(plugin / "pipe")
    report = validate_directory(plugin)
    by_name = {c.name: c for c in report.checks}
    assert by_name["version"].status == "warning" and "--version" in by_name["version"].message
    assert by_name["files"].status == "error"
    details = "\n".join(by_name["files"].details)
    assert "skills/a/leak.txt: symlink leaves the plugin directory" in details
    assert "dangling.md: dangling symlink" in details
    assert "pipe: not a regular file or directory (a FIFO)" in details


def test_a_directory_without_manifest_is_named_after_itself(tmp_path: Path) -> None:
    plugin = write_tree(tmp_path / "my-tool", {"commands/go.md": "---\ndescription: Go\n---\n"})
    report = validate_directory(plugin)
    assert report.ok and report.plugin == "my-tool"
    assert next(c for c in report.checks if c.name == "manifest").status == "warning"
