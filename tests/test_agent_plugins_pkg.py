"""Packages built with the ``agent-plugins`` build backend (PyPI ``agent-plugins``; #18 part 4).

Such a wheel declares its plugin with no entry point: a ``<dist>-<version>.agent-plugin/``
folder next to the package in site-packages, named by ``agent_plugins.json`` in the dist-info.
The store finds it from that marker, as data (nothing imported), names the plugin after the
distribution, and loads the folder as an Agent Plugins directory.

The real wheel is built by the backend itself (``agent_plugins.build.uv_build``), once per
project content and uv version, cached like the example wheelhouse (``tests/wheelhouse.py``): the
first build fetches ``agent-plugins`` and ``uv_build`` from PyPI through uv's cache, as the
wheelhouse's first build fetches setuptools. The hostile markers are written by hand.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import oracle
import pytest
import wheelhouse
from helpers_build import make_wheel

from isolator._errors import DistributionError, IsolatorError
from isolator.metadata import (
    AGENT_PLUGINS_MARKER,
    find_agent_plugin_dir,
    find_distribution,
    parse_agent_plugins_marker,
    read_distribution,
)
from isolator.store import PluginStore

SCHEMA = "https://agent-plugins.org/schemas/1.0.0/plugin.schema.json"

# A library that ships its Agent Plugin the agent-plugins way: plugin.json and skills/ beside
# the code, plus the OpenHands extension folder (dev.openhands/) through `include`.
PROJECT: dict[str, str] = {
    "pyproject.toml": """\
[build-system]
requires = ["agent-plugins>=0.2,<0.3", "uv_build>=0.8"]
build-backend = "agent_plugins.build.uv_build"

[project]
name = "Ap.Demo_Lib"
version = "1.2.0"
requires-python = ">=3.10"

[tool.agent-plugins]
root = "."
include = ["dev.openhands"]
""",
    "src/ap_demo_lib/__init__.py": (
        "import os\n"
        "_proof = os.environ.get('AP_DEMO_IMPORTED')\n"
        "if _proof:\n"
        "    open(_proof, 'w').close()\n"
    ),
    "plugin.json": json.dumps({"$schema": SCHEMA, "name": "ap-demo-lib", "version": "1.2.0",
                               "description": "A library's own agent guidance"}),
    "skills/use-ap-demo/SKILL.md": "---\nname: use-ap-demo\ndescription: How to call the "
                                   "library\n---\nCall ap_demo_lib.\n",
    "dev.openhands/commands/ap-hello.md": "---\ndescription: Say hello\n---\nHello $ARGUMENTS\n",
}
DIST = "ap-demo-lib"  # the plugin's name: the distribution's canonical name


def _build_project(out: Path) -> None:
    with tempfile.TemporaryDirectory(prefix="ap-project-") as scratch:
        for rel, text in PROJECT.items():
            path = Path(scratch) / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        cmd = [wheelhouse.uv_bin(), "build", "--wheel", "--no-config", "--no-create-gitignore",
               "--python", sys.executable, "--out-dir", str(out), scratch]
        proc = subprocess.run(cmd, env=wheelhouse.build_env(), capture_output=True, text=True,
                              timeout=600, check=False)
        if proc.returncode != 0 or len(list(out.glob("*.whl"))) != 1:
            raise RuntimeError(f"building the agent-plugins project failed (uv exit "
                               f"{proc.returncode}; a cold build fetches agent-plugins and "
                               f"uv_build from PyPI):\n{proc.stderr[-4000:]}")


@pytest.fixture(scope="session")
def ap_wheelhouse() -> Path:
    """A directory holding the one wheel the agent-plugins backend built from PROJECT."""
    key = hashlib.sha256(json.dumps([PROJECT, wheelhouse.uv_version()]).encode()).hexdigest()
    cache = oracle.cache_dir()
    target = cache / f"agent-plugins-wheel-{key[:16]}"
    if target.is_dir():
        return target
    try:
        with oracle._locked(cache / f"{target.name}.lock"):
            if not target.is_dir():
                staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=cache))
                try:
                    _build_project(staging)
                    staging.chmod(0o755)
                    staging.rename(target)
                except BaseException:
                    shutil.rmtree(staging, ignore_errors=True)
                    raise
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)
    return target


def the_wheel(ap_wheelhouse: Path) -> Path:
    (wheel,) = ap_wheelhouse.glob("*.whl")
    return wheel


# ---- the real backend's wheel ----------------------------------------------------------------


def test_the_backend_writes_a_marker_and_a_folder_and_no_entry_point(ap_wheelhouse: Path) -> None:
    """What the rest of this file relies on, from the backend itself (not our reading of it)."""
    with zipfile.ZipFile(the_wheel(ap_wheelhouse)) as archive:
        names = archive.namelist()
        marker = next(n for n in names if n.endswith(f".dist-info/{AGENT_PLUGINS_MARKER}"))
        data = json.loads(archive.read(marker))
    assert not any(n.endswith(".dist-info/entry_points.txt") for n in names)
    assert data["root"].endswith(".agent-plugin") and "/" not in data["root"]
    assert f"{data['root']}/plugin.json" in names and "plugin.json" in data["files"]
    assert f"{data['root']}/dev.openhands/commands/ap-hello.md" in names


def test_installed_and_loaded_like_an_entry_point_package(
        tmp_path: Path, ap_wheelhouse: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    proof = tmp_path / "imported"
    monkeypatch.setenv("AP_DEMO_IMPORTED", str(proof))
    store = PluginStore(tmp_path / "store")
    installed = store.install(f"pypi:{DIST}", find_links=[ap_wheelhouse], no_index=True)
    assert (installed.name, installed.version, installed.kind) == (DIST, "1.2.0", "package")
    assert installed.package == "Ap.Demo_Lib" and installed.module is None
    assert installed.venv is not None
    site = installed.content_dir.parent
    assert installed.content_dir.name == "ap_demo_lib-1.2.0.agent-plugin"
    assert site.name == "site-packages" and site.is_relative_to(installed.venv)

    plugin = store.load(DIST)
    assert plugin.name == DIST and plugin.manifest.version == "1.2.0"
    assert [s.name for s in plugin.skills] == ["use-ap-demo"]
    assert [c.name for c in plugin.commands] == ["ap-hello"]
    assert not [d for d in plugin.diagnostics if d.level != "info"], plugin.diagnostics
    assert [p.name for p in store.list_installed()] == [DIST]
    assert store.entry_points(DIST)["openhands.plugins"] == ()
    assert store.verify().ok
    assert not proof.exists()  # read as files: the library was never imported
    assert "ap_demo_lib" not in sys.modules

    # The CLI shows it as any package plugin.
    env = {**os.environ, "NO_COLOR": "1"}
    shown = subprocess.run([sys.executable, "-m", "hostbridge.cli", "show", DIST, "--root",
                            str(tmp_path / "store"), "--json"], capture_output=True, text=True,
                           timeout=120, check=False, env=env)
    assert shown.returncode == 0, shown.stderr
    assert "use-ap-demo" in shown.stdout and "ap-hello" in shown.stdout


def test_brought_by_a_plugin_that_depends_on_it_and_locked_and_synced(
        tmp_path: Path, ap_wheelhouse: Path) -> None:
    """A library with an Agent Plugin, a dependency of an entry-point plugin: loadable from
    that plugin's venv (brought), recorded, and through a lock file into another store."""
    links = tmp_path / "links"
    make_wheel(links, "host-plugin", deps=[DIST],
               files={"host_plugin/__init__.py": "",
                      "host_plugin/skills/h/SKILL.md": "---\nname: h\ndescription: h\n---\nh\n"},
               entry_points={"openhands.plugins": {"host-plugin": "host_plugin"}})
    store = PluginStore(tmp_path / "store")
    store.install("pypi:host-plugin", find_links=[links, ap_wheelhouse], no_index=True)
    assert [p.name for p in store.list_installed()] == [DIST, "host-plugin"]
    brought = store.get(DIST)
    assert brought.brought_by == "host-plugin" and brought.module is None
    assert [s.name for s in store.load(DIST).skills] == ["use-ap-demo"]

    target = PluginStore(tmp_path / "target")
    report = target.sync(store.lock(), find_links=[links, ap_wheelhouse])
    assert report.installed == ("host-plugin",)
    assert target.get(DIST).brought_by == "host-plugin"

    # Installed itself, it is a plugin of its own (sync checks the wheel declares that name).
    store.install(f"pypi:{DIST}", find_links=[ap_wheelhouse], no_index=True)
    third = PluginStore(tmp_path / "third")
    assert third.sync(store.lock(), find_links=[links, ap_wheelhouse]).installed == (
        DIST, "host-plugin")


def test_an_entry_point_wins_over_a_marker(tmp_path: Path) -> None:
    """A package with both declares the entry point's plugin; the folder is other clients'."""
    links = tmp_path / "links"
    root = "both-1.0.0.agent-plugin"
    make_wheel(links, "both", files={
        "both_pkg/__init__.py": "",
        "both_pkg/skills/from-module/SKILL.md": "---\nname: from-module\ndescription: m\n---\nm\n",
        f"{root}/plugin.json": json.dumps({"$schema": SCHEMA, "name": "folder"}),
        f"{root}/skills/from-folder/SKILL.md": "---\nname: from-folder\ndescription: f\n---\nf\n",
        f"both-1.0.0.dist-info/{AGENT_PLUGINS_MARKER}": json.dumps(
            {"root": root, "files": ["plugin.json", "skills/from-folder/SKILL.md"]}),
    }, entry_points={"openhands.plugins": {"via-entry-point": "both_pkg"}})
    store = PluginStore(tmp_path / "store")
    installed = store.install("pypi:both", find_links=[links], no_index=True)
    assert installed.name == "via-entry-point" and installed.module == "both_pkg"
    assert [s.name for s in store.load("via-entry-point").skills] == ["from-module"]


# ---- hostile or broken markers ---------------------------------------------------------------


def marker_wheel(links: Path, marker: object, *, folder: str = "evil-1.0.0.agent-plugin",
                 raw: str | None = None) -> Path:
    files = {
        "evil/__init__.py": "",
        f"{folder}/plugin.json": json.dumps({"$schema": SCHEMA, "name": "evil"}),
        f"evil-1.0.0.dist-info/{AGENT_PLUGINS_MARKER}": raw if raw is not None else
        json.dumps(marker),
    }
    return make_wheel(links, "evil", files=files)


GOOD_FILES = ["plugin.json"]


@pytest.mark.parametrize(("marker", "raw", "expected"), [
    (None, "{not json", "not JSON"),
    (["evil-1.0.0.agent-plugin"], None, "expected a JSON object"),
    ({"files": GOOD_FILES}, None, "'root' must be a non-empty string"),
    ({"root": "", "files": GOOD_FILES}, None, "'root' must be a non-empty string"),
    ({"root": "/etc", "files": GOOD_FILES}, None, "is absolute"),
    ({"root": "/tmp/src/evil", "files": GOOD_FILES}, None, "an editable install?"),
    ({"root": "../../../../etc", "files": GOOD_FILES}, None, "not a relative path inside"),
    ({"root": "evil-1.0.0.agent-plugin/../evil", "files": GOOD_FILES}, None, "no '..'"),
    ({"root": "evil\\..\\..", "files": GOOD_FILES}, None, "backslash"),
    ({"root": "evil-1.0.0.agent-plugin\n", "files": GOOD_FILES}, None, "control character"),
    ({"root": "evil-1.0.0.agent-plugin"}, None, "no 'files' list"),
    ({"root": "evil-1.0.0.agent-plugin", "files": "plugin.json"}, None, "list of strings"),
    ({"root": "evil-1.0.0.agent-plugin", "files": ["skills/x.md"]}, None, "plugin.json"),
    ({"root": "evil-1.0.0.agent-plugin", "files": ["plugin.json", "../x"]}, None,
     "an entry of 'files'"),
    ({"root": "elsewhere.agent-plugin", "files": GOOD_FILES}, None,
     "the wheel has no elsewhere.agent-plugin/plugin.json"),
])
def test_a_bad_marker_is_refused_before_install_naming_the_wheel_and_file(
        tmp_path: Path, marker: object, raw: str | None, expected: str) -> None:
    links = tmp_path / "links"
    wheel = marker_wheel(links, marker, raw=raw)
    store = PluginStore(tmp_path / "store")
    with pytest.raises(DistributionError) as info:
        store.install("pypi:evil", find_links=[links], no_index=True)
    assert expected in info.value.reason, info.value.reason
    assert info.value.path == f"{wheel.name}: evil-1.0.0.dist-info/{AGENT_PLUGINS_MARKER}"
    assert str(info.value) == f"{info.value.path}: {info.value.reason}"  # whole, not cut
    assert store.list_installed() == []


def test_an_oversized_marker_is_refused_unread(tmp_path: Path) -> None:
    links = tmp_path / "links"
    big = json.dumps({"root": "evil-1.0.0.agent-plugin",
                      "files": ["plugin.json", *(f"f{i:07d}" for i in range(120_000))]})
    assert len(big) > 1 << 20
    marker_wheel(links, None, raw=big)
    store = PluginStore(tmp_path / "store")
    with pytest.raises(DistributionError, match=r"over the 1 MiB cap"):
        store.install("pypi:evil", find_links=[links], no_index=True)
    assert store.list_installed() == []


def test_a_marker_listing_too_many_files_is_refused() -> None:
    text = json.dumps({"root": "x.agent-plugin", "files": ["plugin.json", *(["a"] * 100_000)]})
    with pytest.raises(DistributionError, match=r"over the 100000 cap"):
        parse_agent_plugins_marker(text, "here")


# ---- an installed marker, read from disk (a venv changed after install) ------------------------


def write_installed(site: Path, *, root: str = "ap-1.0.0.agent-plugin",
                    record_root: str | None = None) -> Path:
    """A dist-info with a marker, as an installer leaves it; RECORD lists *record_root*'s
    plugin.json (default: *root*'s)."""
    dist_info = site / "ap-1.0.0.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: ap\nVersion: 1.0.0\n\n")
    (dist_info / AGENT_PLUGINS_MARKER).write_text(json.dumps(
        {"root": root, "files": ["plugin.json"]}))
    listed = record_root or root
    (dist_info / "RECORD").write_text(f"{listed}/plugin.json,sha256=x,1\n"
                                      "ap-1.0.0.dist-info/RECORD,,\n")
    return dist_info


def test_the_installed_folder_is_found_and_checked(tmp_path: Path) -> None:
    site = tmp_path / "site-packages"
    dist_info = write_installed(site)
    folder = site / "ap-1.0.0.agent-plugin"
    folder.mkdir()
    (folder / "plugin.json").write_text("{}")
    dist = read_distribution(dist_info)
    assert find_agent_plugin_dir(dist) == folder
    assert [(p.name, p.module, p.kind) for p in dist.declared_plugins("openhands.plugins")] == [
        ("ap", None, "agent-plugins")]

    # Swapped for a symlink to a directory outside site-packages: refused, not followed.
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "plugin.json").write_text("{}")
    shutil.rmtree(folder)
    folder.symlink_to(outside, target_is_directory=True)
    with pytest.raises(DistributionError, match="is a symlink") as info:
        find_agent_plugin_dir(read_distribution(dist_info))
    assert str(info.value).startswith(f"{dist_info}/{AGENT_PLUGINS_MARKER}: the plugin folder")

    folder.unlink()
    with pytest.raises(DistributionError, match="is missing"):
        find_agent_plugin_dir(read_distribution(dist_info))
    folder.write_text("a file")
    with pytest.raises(DistributionError, match="is not a directory"):
        find_agent_plugin_dir(read_distribution(dist_info))


def test_a_marker_naming_another_distributions_folder_is_refused(tmp_path: Path) -> None:
    """Its root names a folder its own RECORD does not list (another plugin's, say)."""
    site = tmp_path / "site-packages"
    dist_info = write_installed(site, root="other_plugin", record_root="ap-1.0.0.agent-plugin")
    (site / "other_plugin").mkdir()
    (site / "other_plugin" / "plugin.json").write_text("{}")
    with pytest.raises(DistributionError, match=r"RECORD lists no other_plugin/plugin\.json"):
        find_agent_plugin_dir(read_distribution(dist_info))


def test_a_parent_symlink_on_the_way_is_refused(tmp_path: Path) -> None:
    site = tmp_path / "site-packages"
    dist_info = write_installed(site, root="nest/ap.agent-plugin")
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "ap.agent-plugin").mkdir(parents=True)
    (site / "nest").symlink_to(elsewhere, target_is_directory=True)
    with pytest.raises(DistributionError, match=r"nest is a symlink"):
        find_agent_plugin_dir(read_distribution(dist_info))


def test_a_marker_that_is_a_fifo_does_not_hang(tmp_path: Path) -> None:
    site = tmp_path / "site-packages"
    dist_info = write_installed(site)
    (dist_info / AGENT_PLUGINS_MARKER).unlink()
    os.mkfifo(dist_info / AGENT_PLUGINS_MARKER)
    dist = find_distribution(site, "ap")
    assert dist is not None
    with pytest.raises(IsolatorError, match="not a regular file"):
        find_agent_plugin_dir(dist)


# ---- the package on PyPI that ships its own guidance this way -----------------------------------


@pytest.mark.network
def test_agent_plugins_itself_from_pypi_is_a_plugin(tmp_path: Path) -> None:
    """``agent-plugins`` is built with its own backend and ships its skills in a folder."""
    store = PluginStore(tmp_path / "store")
    installed = store.install("pypi:agent-plugins", version=">=0.2,<0.3")
    assert installed.name == "agent-plugins" and installed.module is None
    assert installed.content_dir.name.endswith(".agent-plugin")
    plugin = store.load("agent-plugins")
    assert plugin.skills and all(skill.name for skill in plugin.skills)
    assert "agent_plugins" not in sys.modules or \
        not str(sys.modules["agent_plugins"].__file__).startswith(str(tmp_path))
