"""The plugin store with real uv, real venvs and the example wheels built by the session."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from helpers_build import PROOF, build_sdist, make_project, make_wheel, proof_setup_py
from wheelhouse import EXAMPLES_DIR, wheel_for

from isolator import (
    HashMismatchError,
    Plugin,
    PluginNotFoundError,
    PluginSource,
    PluginStore,
    ResolutionError,
    SourceError,
)
from isolator.metadata._distinfo import find_distribution, find_site_packages
from isolator.store._interpreters import list_interpreters
from isolator.store._resolve import sha256_file


def offline(wheelhouse: Path) -> dict[str, object]:
    return {"find_links": [wheelhouse], "no_index": True}


def venv_run(venv: Path, code: str) -> str:
    result = subprocess.run(
        [str(venv / "bin" / "python"), "-I", "-c", code],
        capture_output=True, text=True, check=True, timeout=60,
    )
    return result.stdout.strip()


def test_install_records_everything_and_reads_content_from_site_packages(
    tmp_path: Path, example_wheelhouse: Path
) -> None:
    store = PluginStore(tmp_path / "store")
    installed = store.install("pypi:openhands-plugin-greetings", version=">=1,<2",
                              **offline(example_wheelhouse))  # type: ignore[arg-type]
    assert (installed.name, installed.version, installed.kind) == ("greetings", "1.0.0",
                                                                   "package")
    assert installed.venv is not None and installed.venv.parent == installed.path
    site = find_site_packages(installed.venv)
    assert installed.content_dir == site / "openhands_plugin_greetings"
    # The venv is the plugin's own: the host's packages are not in it.
    assert find_distribution(site, "isolator") is None
    assert find_distribution(site, "pytest") is None

    meta = json.loads((installed.path / "metadata.json").read_text())
    wheel = wheel_for(example_wheelhouse, "openhands-plugin-greetings")
    assert meta["source"]["source"] == "pypi:openhands-plugin-greetings"
    assert meta["constraint"] == ">=1,<2"
    assert meta["distributions"] == [{
        "name": "openhands-plugin-greetings", "version": "1.0.0", "filename": wheel.name,
        "sha256": sha256_file(wheel), "url": wheel.as_uri(),
    }]
    assert meta["index"] == {"index_url": None, "find_links": [str(example_wheelhouse)],
                             "no_index": True}
    assert meta["python"]["version"].count(".") == 2
    assert meta["backend"]["name"] == "uv"
    assert meta["installed_at"].endswith("Z")
    # The store's wheelhouse holds the installed file, by hash.
    stored = tmp_path / "store" / "wheelhouse" / sha256_file(wheel) / wheel.name
    assert stored.read_bytes() == wheel.read_bytes()

    plugin = store.load("greetings")
    assert plugin.root == str(installed.content_dir)
    assert plugin.name == "greetings" and plugin.version == "1.0.0"
    assert {s.name for s in plugin.skills} and plugin.commands and plugin.hooks
    assert plugin.installation is not None and plugin.installation.brought_by is None
    assert "openhands_plugin_greetings" not in sys.modules  # read as data, never imported
    assert [(p.name, p.version) for p in store.list_installed()] == [("greetings", "1.0.0")]


def test_installing_again_is_a_no_op_and_upgrade_switches_generations(
    tmp_path: Path, example_wheelhouse: Path
) -> None:
    links = tmp_path / "links"
    links.mkdir()
    shutil.copy(wheel_for(example_wheelhouse, "openhands-plugin-greetings"), links)
    store = PluginStore(tmp_path / "store")
    first = store.install("pypi:openhands-plugin-greetings", **offline(links))  # type: ignore[arg-type]
    again = store.install("pypi:openhands-plugin-greetings", **offline(links))  # type: ignore[arg-type]
    assert again.generation == first.generation

    make_wheel(links, "openhands-plugin-greetings", "1.1.0", files={
        "openhands_plugin_greetings/__init__.py": "",
        "openhands_plugin_greetings/skills/hello/SKILL.md": "---\nname: hello\n"
                                                             "description: Say hi\n---\nHi\n",
    }, entry_points={"openhands.plugins": {"greetings": "openhands_plugin_greetings"}})
    with store.lease("greetings") as leased:
        upgraded = store.upgrade("greetings")
        assert upgraded.version == "1.1.0" and upgraded.generation != first.generation
        assert leased.path.exists()  # a leased generation is not pulled away
    assert store.load("greetings").version == "1.1.0"
    report = store.clean()
    assert report.generations == (f"greetings/{first.generation}",)
    assert not first.path.exists()
    back = store.upgrade("greetings", version="==1.0.0")
    assert back.version == "1.0.0"
    assert [p.name for p in (tmp_path / "store" / "plugins" / "greetings").glob("gen-*")] == \
        [back.generation]


def test_a_plugin_brought_by_another_is_loadable_and_says_who_brought_it(
    tmp_path: Path, example_wheelhouse: Path
) -> None:
    store = PluginStore(tmp_path / "store")
    welcome = store.install("pypi:openhands-plugin-welcome", **offline(example_wheelhouse))  # type: ignore[arg-type]
    listed = {p.name: p for p in store.list_installed()}
    assert set(listed) == {"welcome", "greetings"}
    assert listed["greetings"].brought_by == "welcome"
    assert listed["welcome"].brought_by is None
    greetings = store.load("greetings")
    assert greetings.installation is not None
    assert greetings.installation.brought_by == "welcome"
    assert welcome.venv is not None
    assert Path(greetings.root).is_relative_to(welcome.venv)
    with pytest.raises(PluginNotFoundError, match="brought by plugin 'welcome'"):
        store.uninstall("greetings")
    # Installed itself as well, it is its own plugin (own venv) and wins over the brought one.
    own = store.install("pypi:openhands-plugin-greetings", **offline(example_wheelhouse))  # type: ignore[arg-type]
    assert store.load("greetings").root == str(own.content_dir)
    assert store.get("greetings").brought_by is None


def test_two_plugins_pin_conflicting_versions_each_in_its_own_venv(
    tmp_path: Path, example_wheelhouse: Path
) -> None:
    store = PluginStore(tmp_path / "store")
    shout = store.install("pypi:openhands-plugin-shout", **offline(example_wheelhouse))  # type: ignore[arg-type]
    whisper = store.install("pypi:openhands-plugin-whisper", **offline(example_wheelhouse))  # type: ignore[arg-type]
    versions = {d.name: d.version for d in shout.distributions}
    assert versions["example-textkit"] == "1.0.0"
    assert {d.name: d.version for d in whisper.distributions}["example-textkit"] == "2.0.0"
    assert shout.venv is not None and whisper.venv is not None
    code = "import example_textkit as t; print(t.__version__, t.shout('hi'))"
    assert venv_run(shout.venv, code) == "1.0.0 HI!"
    assert venv_run(whisper.venv, code) == "2.0.0 HI!!"


def test_content_only_directory_is_copied_without_a_venv(tmp_path: Path) -> None:
    source = tmp_path / "notes"
    shutil.copytree(EXAMPLES_DIR / "content-only-plugin", source)
    secret = tmp_path / "secret.txt"
    secret.write_text("outside")
    (source / "skills" / "leak.md").symlink_to(secret)
    (source / ".git").mkdir()
    (source / ".git" / "config").write_text("[core]\n")
    store = PluginStore(tmp_path / "store")
    installed = store.install(str(source))
    assert (installed.kind, installed.name, installed.version) == ("content-only", "notes",
                                                                   "0.1.0")
    assert installed.venv is None and installed.python is None
    copied = installed.content_dir
    assert copied.is_relative_to(installed.path)
    assert not (copied / "skills" / "leak.md").exists()  # an escaping symlink is not copied
    assert not (copied / ".git").exists()
    plugin = store.load("notes")
    assert [s.name for s in plugin.skills] == ["take-notes"]
    assert plugin.hooks
    # The store's copy does not change with the source; installing again picks up a change.
    (source / "commands" / "note.md").write_text("---\ndescription: changed\n---\nx\n")
    assert store.load("notes").commands[0].description != "changed"
    updated = store.install(str(source))
    assert updated.generation != installed.generation
    assert store.load("notes").commands[0].description == "changed"
    assert store.uninstall("notes").name == "notes"
    assert store.list_installed() == []


def test_local_project_directory_is_built_and_installed(tmp_path: Path) -> None:
    project = make_project(tmp_path / "src", "local-plugin", "0.3.0", files={
        "local_plugin/__init__.py": "",
        "local_plugin/skills/x/SKILL.md": "---\nname: x\ndescription: d\n---\nbody\n",
    }, entry_points={"openhands.plugins": {"local": "local_plugin"}})
    store = PluginStore(tmp_path / "store")
    installed = store.install(str(project), no_index=True, find_links=[tmp_path / "src"])
    assert (installed.name, installed.version, installed.package) == ("local", "0.3.0",
                                                                      "local-plugin")
    assert [s.name for s in store.load("local").skills] == ["x"]
    # The built wheel is kept, so the plugin reinstalls without the project directory.
    shutil.rmtree(project)
    assert store.reinstall("local").version == "0.3.0"


@pytest.mark.slow
def test_a_stale_setuptools_build_dir_cannot_bring_back_a_deleted_skill(tmp_path: Path) -> None:
    """setuptools never cleans build/lib: a local project is built through an sdist."""
    project = shutil.copytree(EXAMPLES_DIR / "openhands-plugin-greetings", tmp_path / "greet",
                              ignore=shutil.ignore_patterns("build", "*.egg-info"))
    ghost = project / "build" / "lib" / "openhands_plugin_greetings" / "skills" / "ghost.md"
    ghost.parent.mkdir(parents=True)
    ghost.write_text("---\ndescription: deleted from the project long ago\n---\nBoo\n")
    store = PluginStore(tmp_path / "store")
    store.install(str(project))
    skills = [s.name for s in store.load("greetings").skills]
    assert "greet" in skills and "ghost" not in skills


def _git(cwd: Path, *args: str) -> str:
    env = {"PATH": os.environ["PATH"], "HOME": str(cwd), "GIT_AUTHOR_NAME": "t",
           "GIT_AUTHOR_EMAIL": "t@e", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@e"}
    return subprocess.run(["git", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          check=True).stdout.strip()


def test_git_sources_from_a_local_repository(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    shutil.copytree(EXAMPLES_DIR / "content-only-plugin", repo / "plugins" / "notes")
    make_project(repo, "git-plugin", "2.0.0", files={
        "git_plugin/__init__.py": "",
        "git_plugin/commands/go.md": "---\ndescription: go\n---\nGo\n",
    }, entry_points={"openhands.plugins": {"git-plugin": "git_plugin"}},
        setup_py=proof_setup_py("git_plugin"))
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "one")
    first = _git(repo, "rev-parse", "HEAD")
    (repo / "plugins" / "notes" / "commands" / "later.md").write_text("later\n")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "two")

    store = PluginStore(tmp_path / "store")
    url = f"git+{repo.as_uri()}"
    notes = store.install(PluginSource(url, ref=first, repo_path="plugins/notes"))
    assert notes.kind == "content-only" and notes.git_commit == first
    assert [c.name for c in store.load("notes").commands] == ["note"]
    assert store.reinstall("notes").git_commit == first

    package_source = PluginSource(url, repo_path="git-plugin-2.0.0", no_index=True,
                                  find_links=(str(tmp_path),))
    with pytest.raises(SourceError, match="allow_build"):  # refused before any build code
        store.install(package_source)
    assert [p.name for p in store.list_installed()] == ["notes"]
    installed = store.install(package_source, allow_build=True)
    assert installed.kind == "package" and installed.git_commit == _git(repo, "rev-parse",
                                                                        "HEAD")
    assert (installed.content_dir / PROOF).exists()  # built, its build code in the sandbox


def test_sdists_are_not_built_without_allow_build(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p", "sdist-plugin", "1.0.0",
                           entry_points={"openhands.plugins": {"sd": "sdist_plugin"}},
                           setup_py=proof_setup_py("sdist_plugin"))
    (project / "sdist_plugin" / "commands").mkdir()
    (project / "sdist_plugin" / "commands" / "c.md").write_text("c\n")
    dist = tmp_path / "dist"
    sdist = build_sdist(project, dist)
    store = PluginStore(tmp_path / "store")
    # A local sdist file...
    with pytest.raises(SourceError, match="allow_build"):
        store.install(str(sdist))
    # ...and a dependency offered only as an sdist by an index or wheelhouse.
    make_wheel(dist, "needs-sdist", "1.0.0", deps=["sdist-plugin"],
               entry_points={"openhands.plugins": {"needs": "needs_sdist"}})
    with pytest.raises(ResolutionError):
        store.install("pypi:needs-sdist", find_links=[dist], no_index=True)
    assert store.list_installed() == []
    # Allowed explicitly, the sdist is built (in the sandbox) and its hash and the built
    # wheel's are recorded.
    installed = store.install("pypi:needs-sdist", find_links=[dist], no_index=True,
                              allow_build=True)
    assert installed.venv is not None
    assert list(installed.venv.rglob(f"sdist_plugin/{PROOF}")), "the build code did not run"
    built = {d.name: d for d in installed.distributions}["sdist-plugin"]
    assert built.built_from is not None and built.built_from["sha256"] == sha256_file(sdist)


def test_uv_config_files_and_variables_do_not_redirect_the_install(
    tmp_path: Path, example_wheelhouse: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    decoy = tmp_path / "decoy"
    make_wheel(decoy, "openhands-plugin-greetings", "9.9.9",
               entry_points={"openhands.plugins": {"greetings": "openhands_plugin_greetings"}})
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    (cwd / "uv.toml").write_text(f'find-links = ["{decoy}"]\nno-index = true\n')
    (cwd / "pyproject.toml").write_text(f'[tool.uv]\nfind-links = ["{decoy}"]\n')
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("UV_INDEX_URL", decoy.as_uri())
    monkeypatch.setenv("UV_FIND_LINKS", str(decoy))
    monkeypatch.setenv("PIP_FIND_LINKS", str(decoy))
    store = PluginStore(tmp_path / "store")
    installed = store.install("pypi:openhands-plugin-greetings", **offline(example_wheelhouse))  # type: ignore[arg-type]
    assert installed.version == "1.0.0"
    assert all(str(decoy) not in d.url for d in installed.distributions)


def test_a_tampered_wheel_in_the_wheelhouse_is_refused_on_reinstall(
    tmp_path: Path, example_wheelhouse: Path
) -> None:
    store = PluginStore(tmp_path / "store")
    installed = store.install("pypi:openhands-plugin-greetings", **offline(example_wheelhouse))  # type: ignore[arg-type]
    (dist,) = installed.distributions
    stored = tmp_path / "store" / "wheelhouse" / dist.sha256 / dist.filename
    stored.chmod(0o644)
    with zipfile.ZipFile(stored, "a") as archive:
        archive.writestr("openhands_plugin_greetings/evil.py", "import os\n")
    with pytest.raises(HashMismatchError, match="expected " + dist.sha256):
        store.reinstall("greetings")
    assert store.get("greetings").generation == installed.generation
    assert store.load("greetings").name == "greetings"
    # Put back, the same record reinstalls offline into a new generation.
    shutil.copy(wheel_for(example_wheelhouse, "openhands-plugin-greetings"), stored)
    assert store.reinstall("greetings").generation != installed.generation


def _other_python() -> str | None:
    host = sys.version_info[:2]
    for interpreter in list_interpreters():
        if interpreter.version[:2] != host and interpreter.version[:2] >= (3, 10):
            return str(interpreter.path)
    return None


def test_a_plugin_venv_may_use_another_python(tmp_path: Path, example_wheelhouse: Path) -> None:
    other = _other_python()
    if other is None:
        pytest.skip("no second CPython >= 3.10 on this machine")
    store = PluginStore(tmp_path / "store")
    installed = store.install("pypi:openhands-plugin-shout", python=other,
                              **offline(example_wheelhouse))  # type: ignore[arg-type]
    assert installed.venv is not None and installed.python is not None
    version = venv_run(installed.venv, "import sys; print('%d.%d' % sys.version_info[:2])")
    assert version == ".".join(installed.python["version"].split(".")[:2])
    assert version != f"{sys.version_info[0]}.{sys.version_info[1]}"
    assert store.load("shout").name == "shout"


def test_the_virtualenv_pip_backend_installs_the_same_way(
    tmp_path: Path, example_wheelhouse: Path
) -> None:
    store = PluginStore(tmp_path / "store", backend="virtualenv")
    installed = store.install("pypi:openhands-plugin-shout", **offline(example_wheelhouse))  # type: ignore[arg-type]
    assert installed.backend is not None and installed.backend["name"] == "virtualenv"
    assert {d.name for d in installed.distributions} == {"openhands-plugin-shout",
                                                         "example-textkit"}
    assert installed.venv is not None
    assert venv_run(installed.venv, "import example_textkit as t; print(t.__version__)") == \
        "1.0.0"
    assert store.reinstall("shout").version == "1.0.0"


def test_the_proposal_api_over_the_default_store(
    tmp_path: Path, example_wheelhouse: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OH_PERSISTENCE_DIR", str(tmp_path / "oh"))
    wheel = wheel_for(example_wheelhouse, "openhands-plugin-greetings")
    path = Plugin.install(str(wheel))
    assert path.is_relative_to(tmp_path / "oh" / "isolator" / "store")
    assert Plugin.list_installed() == [("greetings", "1.0.0")]
    plugin = Plugin.load_installed("greetings")
    assert plugin.root == str(path)
    assert Plugin.fetch(PluginSource("pypi:openhands-plugin-greetings", version="1.0.0",
                                     find_links=(str(example_wheelhouse),),
                                     no_index=True)) == path
    with pytest.raises(PluginNotFoundError):
        Plugin.load_installed("not-there")


@pytest.mark.parametrize("name", ["../x", "", "a/b", ".hidden", "x" * 101])
def test_bad_plugin_names_are_refused(tmp_path: Path, name: str) -> None:
    store = PluginStore(tmp_path / "store")
    with pytest.raises(Exception, match="expected letters, digits"):
        store.get(name)


def test_tool_and_agent_entry_points_are_read_from_dist_info(
    tmp_path: Path, example_wheelhouse: Path
) -> None:
    store = PluginStore(tmp_path / "store")
    store.install("pypi:openhands-plugin-shout", **offline(example_wheelhouse))  # type: ignore[arg-type]
    groups = store.entry_points("shout")
    assert [ep.name for ep in groups["openhands.plugins"]] == ["shout"]
    assert [(ep.name, ep.value) for ep in groups["openhands.tools"]] == [
        ("shout", "openhands_plugin_shout.tools:shout")]
    assert groups["openhands.agents"] == ()
    assert "openhands_plugin_shout" not in sys.modules


def _serve_simple_index(root: Path, wheels: list[Path]) -> tuple[str, object]:
    """A PEP 503 index of *wheels* served over real HTTP on localhost; returns (url, server)."""
    import functools
    import threading
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    from packaging.utils import canonicalize_name, parse_wheel_filename

    simple = root / "simple"
    files = root / "files"
    files.mkdir(parents=True)
    by_project: dict[str, list[Path]] = {}
    for wheel in wheels:
        shutil.copy(wheel, files)
        by_project.setdefault(canonicalize_name(parse_wheel_filename(wheel.name)[0]), []).append(
            files / wheel.name)
    for project, paths in by_project.items():
        (simple / project).mkdir(parents=True)
        links = "".join(f'<a href="../../files/{p.name}#sha256={sha256_file(p)}">{p.name}</a>\n'
                        for p in paths)
        (simple / project / "index.html").write_text(f"<html><body>{links}</body></html>")

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0),
                                 functools.partial(Quiet, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}/simple/", server


def test_install_from_an_index_over_http_downloads_and_verifies(
    tmp_path: Path, example_wheelhouse: Path
) -> None:
    wheels = [wheel_for(example_wheelhouse, "openhands-plugin-shout"),
              wheel_for(example_wheelhouse, "example-textkit", "1.0.0"),
              wheel_for(example_wheelhouse, "example-textkit", "2.0.0")]
    url, server = _serve_simple_index(tmp_path / "index", wheels)
    try:
        store = PluginStore(tmp_path / "store")
        installed = store.install("pypi:openhands-plugin-shout", index_url=url)
        dists = {d.name: d for d in installed.distributions}
        assert dists["example-textkit"].version == "1.0.0"
        assert dists["example-textkit"].url.startswith("http://127.0.0.1:")
        stored = (tmp_path / "store" / "wheelhouse" / dists["example-textkit"].sha256 /
                  dists["example-textkit"].filename)
        assert stored.read_bytes() == wheels[1].read_bytes()
        # A file the index serves with other bytes than announced is refused.
        served = tmp_path / "index" / "files" / wheels[0].name
        served.write_bytes(served.read_bytes() + b"\0")
        other = PluginStore(tmp_path / "store2")
        with pytest.raises(HashMismatchError):
            other.install("pypi:openhands-plugin-shout", index_url=url)
        assert other.list_installed() == []
    finally:
        server.shutdown()  # type: ignore[attr-defined]
        server.server_close()  # type: ignore[attr-defined]


def test_bytecode_is_compiled_once_and_shared_between_venvs(
    tmp_path: Path, example_wheelhouse: Path
) -> None:
    store = PluginStore(tmp_path / "store")
    alone = store.install("pypi:openhands-plugin-greetings", **offline(example_wheelhouse))  # type: ignore[arg-type]
    brought = store.install("pypi:openhands-plugin-welcome", **offline(example_wheelhouse))  # type: ignore[arg-type]
    tag = f"cpython-{sys.version_info[0]}{sys.version_info[1]}"
    pycs = []
    for installed in (alone, brought):
        assert installed.venv is not None
        site = find_site_packages(installed.venv)
        pyc = site / "openhands_plugin_greetings" / "__pycache__" / f"__init__.{tag}.pyc"
        pycs.append(pyc.stat())
        # Python really loads it (and reports the venv's own source path, not the pool's).
        verbose = subprocess.run(
            [str(installed.venv / "bin" / "python"), "-v", "-c",
             "import openhands_plugin_greetings as m; print(m.__file__)"],
            capture_output=True, text=True, check=True, timeout=60)
        assert f"code object from '{pyc}'" in verbose.stderr
        assert verbose.stdout.strip() == str(site / "openhands_plugin_greetings" / "__init__.py")
    assert pycs[0].st_ino == pycs[1].st_ino  # one file, hardlinked into both venvs
    store.uninstall("welcome")
    store.uninstall("greetings")
    assert store.clean().bytecode >= 2
    assert not any((tmp_path / "store" / "bytecode").rglob("*.pyc"))


def test_installing_runs_no_code_of_the_plugin_or_its_dependencies(tmp_path: Path) -> None:
    marker = tmp_path / "RAN"
    links = tmp_path / "links"
    make_wheel(links, "pth-dep", "1.0.0", files={
        "pth_dep/__init__.py": f"open({str(marker)!r}, 'w').close()\n",
        "pth_dep.pth": f"import os; open({str(marker)!r}, 'w').close()\n",
    })
    make_wheel(links, "pth-plugin", "1.0.0", deps=["pth-dep"], files={
        "pth_plugin/__init__.py": f"open({str(marker)!r}, 'w').close()\n",
        "pth_plugin/commands/c.md": "c\n",
    }, entry_points={"openhands.plugins": {"pth": "pth_plugin"}})
    store = PluginStore(tmp_path / "store")
    installed = store.install("pypi:pth-plugin", find_links=[links], no_index=True)
    store.load("pth")
    assert not marker.exists()
    # The bytecode is there all the same (compiled without site, so no .pth ran).
    assert installed.venv is not None
    assert list(find_site_packages(installed.venv).glob("pth_dep/__pycache__/*.pyc"))


def test_a_module_that_does_not_compile_still_installs(tmp_path: Path) -> None:
    links = tmp_path / "links"
    make_wheel(links, "broken-plugin", "1.0.0", files={
        "broken_plugin/__init__.py": "",
        "broken_plugin/tools.py": "def oops(:\n",
        "broken_plugin/commands/c.md": "c\n",
    }, entry_points={"openhands.plugins": {"broken": "broken_plugin"}})
    store = PluginStore(tmp_path / "store")
    installed = store.install("pypi:broken-plugin", find_links=[links], no_index=True)
    assert installed.venv is not None
    cache = find_site_packages(installed.venv) / "broken_plugin" / "__pycache__"
    assert [p.name.split(".")[0] for p in cache.iterdir()] == ["__init__"]
    assert [c.name for c in store.load("broken").commands] == ["c"]


def test_plugin_fetch_takes_the_sdks_git_arguments(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The SDK's Plugin.fetch(source, ref=, repo_path=, update=): the same words here, the store
    # standing in for its cache directory.
    monkeypatch.setenv("OH_PERSISTENCE_DIR", str(tmp_path / "oh"))
    repo = tmp_path / "repo"
    shutil.copytree(EXAMPLES_DIR / "content-only-plugin", repo / "plugins" / "notes")
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "one")
    first = _git(repo, "rev-parse", "HEAD")
    (repo / "plugins" / "notes" / "commands" / "later.md").write_text("later\n")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "two")
    url = f"git+{repo.as_uri()}"
    path = Plugin.fetch(url, ref=first, repo_path="plugins/notes")
    assert (path / "commands").is_dir() and not (path / "commands" / "later.md").exists()
    assert Plugin.load_installed("notes").installation is not None
    with pytest.raises(SourceError, match="repo_path"):
        Plugin.fetch(url, repo_path="../escape")
