"""Symlinks in a plugin's source (#18): followed inside the repository, refused outside it.

OpenHands/extensions keeps shared skills in the repository's ``skills/`` and each plugin links
them (``plugins/openhands/skills/openhands-api -> ../../../skills/openhands-api``). A git source
installs such a plugin with the skills its author meant; ``ohp package`` packages it with them.
A link that leaves the repository (or the directory given), dangles, loops, names a special
file or ``.git/`` is never followed: the store names it and leaves it out, ``ohp package``
refuses the plugin naming it. Fixtures of our own (a small repository laid out like
OpenHands/extensions, built here) and the real layout from ``../shared/layouts``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import oracle
import pytest
from plugin_fixtures import manifest, write_tree

import isolator
from isolator._errors import PackagingError, StoreError
from isolator.authoring._authoring import package_plugin, repository_top, validate_directory
from isolator.sources._sources import scan_tree

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")

OHP = [sys.executable, "-m", "isolator.cli"]
SKILLS = ("alpha", "beta", "gamma")
SECRET = "TOP-SECRET-do-not-copy"


def git(repo: Path, *args: str) -> str:
    env = {"PATH": os.environ["PATH"], "HOME": str(repo.parent), "GIT_AUTHOR_NAME": "t",
           "GIT_AUTHOR_EMAIL": "t@e", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@e",
           "GIT_CONFIG_NOSYSTEM": "1"}
    done = subprocess.run(["git", "-c", "core.symlinks=true", *args], cwd=repo, env=env,
                          check=True, capture_output=True, text=True)
    return done.stdout


def commit_all(repo: Path) -> None:
    if not (repo / ".git").exists():
        git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "layout")


def extensions_like(repo: Path) -> Path:
    """A repository laid out like OpenHands/extensions: ``skills/<x>/SKILL.md`` (each with its
    own ``.claude-plugin -> .plugin``), ``plugins/p/skills/<x> -> ../../../skills/<x>``."""
    for name in SKILLS:
        write_tree(repo / "skills" / name, {
            "SKILL.md": f"---\nname: {name}\ndescription: Skill {name}\n---\nDo {name}.\n",
            "references/notes.md": f"{name} notes\n",
            ".plugin/plugin.json": manifest(name=name, version="1.0.0")})
        (repo / "skills" / name / ".claude-plugin").symlink_to(".plugin")
    plugin = write_tree(repo / "plugins" / "p", {
        ".plugin/plugin.json": manifest(name="p", version="1.0.0", description="Linked"),
        "commands/go.md": "---\ndescription: Go\n---\nGo\n"})
    (plugin / ".claude-plugin").symlink_to(".plugin")
    (plugin / "skills").mkdir()
    for name in SKILLS:
        (plugin / "skills" / name).symlink_to(f"../../../skills/{name}")
    write_tree(repo / "plugins" / "q", {".plugin/plugin.json": manifest(name="q")})
    return plugin


def ohp(*args: str, root: Path | None = None) -> subprocess.CompletedProcess[str]:
    argv = [*OHP, *args] + (["--root", str(root)] if root is not None else [])
    return subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)


def all_bytes(directory: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file())


def no_symlinks(directory: Path) -> bool:
    return not any(p.is_symlink() for p in directory.rglob("*"))


# ---- install from git ------------------------------------------------------------------------


def test_a_git_monorepo_plugin_installs_with_the_skills_it_links(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    extensions_like(repo)
    commit_all(repo)
    store = tmp_path / "store"
    done = ohp("install", f"git+{repo.as_uri()}", "--repo-path", "plugins/p", root=store)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("installed p 1.0.0 (content only)")
    for name in SKILLS:  # each link followed is named on stderr
        assert (f"ohp: warning: p: skills/{name} is a symlink to ../../../skills/{name}, "
                "outside the plugin directory but inside the repository: copied as regular "
                "files") in done.stderr, done.stderr
    plugin = isolator.PluginStore(store).load("p")
    assert sorted(s.name for s in plugin.skills) == list(SKILLS)
    assert not [d for d in plugin.diagnostics if d.level != "info"], plugin.diagnostics
    content = Path(plugin.root)
    assert no_symlinks(content)
    assert (content / "skills" / "alpha" / "references" / "notes.md").read_text() == \
        "alpha notes\n"
    assert (content / "skills" / "beta" / ".claude-plugin" / "plugin.json").is_file()
    # The record is reproducible: reinstall (from the recorded commit) and verify agree.
    store_api = isolator.PluginStore(store)
    before = store_api.get("p")
    again = store_api.reinstall("p")
    assert again.content_sha256 == before.content_sha256
    assert store_api.verify().ok


def test_the_real_extensions_layout_installs_openhands_with_its_three_skills(
        shared_dir: Path, tmp_path: Path) -> None:
    """``../shared/layouts/OpenHands__extensions.tar.gz`` extracted and committed to a git
    repository: ``plugins/openhands`` installs with the 3 skills its links name; before #18 it
    had none (the SDK loads none either: its loader refuses links leaving the plugin root)."""
    repo = extract_layout(shared_dir, tmp_path)
    commit_all(repo)
    plugin_dir = repo / "plugins" / "openhands"
    assert isolator.load_plugin(plugin_dir).skills == ()  # in place: what the SDK sees too
    store = isolator.PluginStore(tmp_path / "store")
    installed = store.install(isolator.PluginSource.parse(
        f"git+{repo.as_uri()}", repo_path="plugins/openhands"))
    plugin = store.load(installed.name)
    names = sorted(s.name for s in plugin.skills)
    assert names == ["openhands-api", "openhands-automation", "openhands-sdk"]
    for skill in plugin.skills:
        here = Path(skill.source)
        shared = repo / "skills" / here.parent.name / here.name
        assert here.read_bytes() == shared.read_bytes()
    assert no_symlinks(installed.content_dir)


def extract_layout(shared_dir: Path, into: Path) -> Path:
    archive = shared_dir / "layouts" / "OpenHands__extensions.tar.gz"
    if not archive.is_file():
        if oracle.in_ci():
            pytest.fail(f"CI=true and {archive} is missing", pytrace=False)
        pytest.skip(f"{archive} is missing")
    with tarfile.open(archive) as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(into, filter="data")
        else:  # the archive is ours, its links stay inside
            tar.extractall(into)
    return into / "OpenHands__extensions"


def hostile_repo(tmp_path: Path) -> tuple[Path, Path, dict[str, str]]:
    """An extensions-like repository whose plugin also has links a hostile author would plant:
    returns (repo, plugin, link -> what the refusal must say)."""
    (tmp_path / "secret.txt").write_text(SECRET)
    repo = tmp_path / "repo"
    plugin = extensions_like(repo)
    climb = "../" * 40 + "etc/passwd"  # a `..` chain out of the repository, wherever it is
    links = {
        "etc-passwd": ("/etc/passwd", "leaves"),
        "proc-environ": ("/proc/self/environ", "leaves"),
        "climb": (climb, "leaves"),
        # Beside the repository: it leaves it (a clone's neighbours are not the author's).
        "secret": ("../../../secret.txt", "leaves|dangling"),
        "git-config": ("../../.git/config", "into .git/"),  # a clone's config: credentials
        "git-dir": ("../../.git", "into .git/"),
        "loop-a": ("loop-b", "symlink loop"),
        "loop-b": ("loop-a", "symlink loop"),
        "gone": ("nowhere", "dangling"),
    }
    for name, (target, _) in links.items():
        (plugin / name).symlink_to(target)
    # Through a linked directory: the shared skill's own link leaves the repository.
    (repo / "skills" / "alpha" / "leak.md").symlink_to(climb)
    expected = {name: why for name, (_, why) in links.items()}
    expected["skills/alpha/leak.md"] = "leaves"
    git(repo, "init", "-q", "-b", "main")
    return repo, plugin, expected


def says(problem: str, why: str) -> bool:
    return any(word in problem for word in why.split("|"))


def test_links_a_hostile_author_plants_in_a_git_source_are_named_and_never_followed(
        tmp_path: Path) -> None:
    repo, _plugin, expected = hostile_repo(tmp_path)
    commit_all(repo)
    store = tmp_path / "store"
    done = ohp("install", f"git+{repo.as_uri()}", "--repo-path", "plugins/p", root=store)
    assert done.returncode == 0, done.stderr
    warned = [line for line in done.stderr.splitlines() if "not copied" in line]
    for rel, why in expected.items():
        line = next((w for w in warned if f"not copied: {rel}: " in w), "")
        assert says(line, why), (rel, done.stderr)
    for rel in ("etc-passwd", "climb", "git-config"):  # the link's own text is named
        assert os.readlink(repo / "plugins" / "p" / rel) in done.stderr
    assert len(warned) == len(expected), done.stderr
    installed = isolator.PluginStore(store).get("p")
    content = installed.content_dir
    assert sorted(p.name for p in content.iterdir()) == [".claude-plugin", ".plugin",
                                                          "commands", "skills"]
    assert not (content / "skills" / "alpha" / "leak.md").exists()
    assert SECRET.encode() not in all_bytes(content)
    assert b"[core]" not in all_bytes(content)
    assert sorted(s.name for s in isolator.PluginStore(store).load("p").skills) == list(SKILLS)


def test_a_directory_source_follows_links_inside_the_directory_given_only(
        tmp_path: Path) -> None:
    """The boundary of a directory source is the directory given: the plugin's links to the
    repository's skills/ leave it, so they are named and not followed (a git source of the
    repository, with --repo-path, follows them)."""
    repo = tmp_path / "repo"
    plugin = extensions_like(repo)
    (plugin / "skills" / "own").mkdir()
    (plugin / "skills" / "own" / "SKILL.md").write_text("---\nname: own\n---\nOwn\n")
    (plugin / "skills" / "again").symlink_to("own")  # inside: followed, as always
    store = tmp_path / "store"
    done = ohp("install", str(plugin), root=store)
    assert done.returncode == 0, done.stderr
    for name in SKILLS:
        assert (f"not copied: skills/{name}: symlink leaves the directory {plugin} "
                f"(-> ../../../skills/{name})") in done.stderr, done.stderr
    installed = isolator.PluginStore(store).get("p")
    assert (installed.content_dir / "skills" / "again" / "SKILL.md").is_file()
    assert not (installed.content_dir / "skills" / "alpha").exists()
    assert no_symlinks(installed.content_dir)


def test_a_fifo_or_a_device_behind_a_link_is_never_opened(tmp_path: Path) -> None:
    """Special files inside the boundary are refused as well (the scan never opens them: a
    FIFO would block a reader); /dev/zero with the whole filesystem as the boundary too."""
    repo = tmp_path / "repo"
    plugin = extensions_like(repo)
    os.mkfifo(repo / "pipe")
    (plugin / "pipe").symlink_to("../../pipe")
    (plugin / "zero").symlink_to("/dev/zero")
    tree = scan_tree(plugin, boundary="/", max_files=100, max_bytes=1 << 20)
    assert "pipe: not a regular file or directory (a FIFO, through the symlink -> ../../pipe)" \
        in tree.problems
    assert "zero: not a regular file or directory (a character device, through the symlink " \
        "-> /dev/zero)" in tree.problems
    store = isolator.PluginStore(tmp_path / "store")
    installed = store.install(str(repo / "plugins" / "p"))  # a directory: its own boundary
    assert not (installed.content_dir / "pipe").exists()
    with pytest.raises(PackagingError) as caught:
        package_plugin(plugin, tmp_path / "dist", repo_root=repo)
    assert "pipe: not a regular file or directory (a FIFO, through the symlink -> ../../pipe)" \
        in caught.value.problems
    assert not (tmp_path / "dist").exists()


# ---- the walk's bounds -----------------------------------------------------------------------


def test_a_tree_linking_a_directory_many_times_is_too_large_quickly(tmp_path: Path) -> None:
    """Each level links the next twice: 2**16 paths to walk from 17 real directories. The
    caps count what the links make, files and directories, and stop the walk at once."""
    repo = tmp_path / "repo"
    for level in range(17):
        here = repo / f"d{level}"
        here.mkdir(parents=True)
        (here / "f.md").write_text("x")
        if level:
            for name in ("a", "b"):
                (repo / f"d{level - 1}" / name).symlink_to(f"../d{level}")
    plugin = repo / "d0"
    start = time.monotonic()
    with pytest.raises(PackagingError, match=r"the plugin is too large \(more than 20000"):
        package_plugin(plugin, tmp_path / "dist", repo_root=repo)
    assert time.monotonic() - start < 60
    for level in range(17):  # no files: the directories alone are counted
        (repo / f"d{level}" / "f.md").unlink()
    with pytest.raises(StoreError, match="more than 500 directories"):
        scan_tree(plugin, boundary=repo, max_files=500, max_bytes=1 << 20)


def test_nesting_is_bounded(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    for level in range(80):
        (repo / f"d{level}").mkdir(parents=True)
        if level:
            (repo / f"d{level - 1}" / "n").symlink_to(f"../d{level}")
    (repo / "d79" / "deep.md").write_text("x")
    tree = scan_tree(repo / "d0", boundary=repo, max_files=1000, max_bytes=1 << 20)
    assert [p for p in tree.problems if "nested deeper than 64 directories" in p]
    assert not tree.files


def test_a_link_to_the_repository_holding_the_plugin_is_a_loop(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    plugin = extensions_like(repo)
    (plugin / "up").symlink_to("../..")
    tree = scan_tree(plugin, boundary=repo, max_files=1000, max_bytes=1 << 20,
                     skip_dirs={".git"})
    assert "up/plugins/p: symlink loop (a directory that contains itself)" in tree.problems


# ---- ohp package -----------------------------------------------------------------------------


@pytest.mark.slow
def test_ohp_package_follows_links_into_the_git_work_tree_by_default(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    plugin = extensions_like(repo)
    git(repo, "init", "-q", "-b", "main")  # not even committed: the work tree is the boundary
    assert repository_top(plugin) == repo.resolve()
    done = subprocess.run([*OHP, "package", str(plugin), "--out", str(tmp_path / "dist"),
                           "--json"], capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["outside"] == [f"skills/{name}" for name in SKILLS]
    assert result["repo_root"] == str(repo.resolve())
    store = isolator.PluginStore(tmp_path / "store")
    installed = store.install(isolator.PluginSource.parse(
        "pypi:openhands-plugin-p", find_links=[str(tmp_path / "dist")], no_index=True))
    loaded = store.load(installed.name)
    assert sorted(s.name for s in loaded.skills) == list(SKILLS)
    assert "site-packages" in loaded.root
    # The text output names each link followed out of the plugin.
    text = subprocess.run([*OHP, "package", str(plugin), "--out", str(tmp_path / "dist2")],
                          capture_output=True, text=True, timeout=300, check=False)
    assert text.returncode == 0, text.stderr
    assert "copied symlink skills/alpha (outside the plugin directory)" in text.stdout
    assert "copied symlink .claude-plugin\n" in text.stdout


def test_ohp_package_refuses_links_leaving_its_repo_root_all_named(tmp_path: Path) -> None:
    repo, plugin, expected = hostile_repo(tmp_path)
    with pytest.raises(PackagingError) as caught:
        package_plugin(plugin, tmp_path / "dist", repo_root=repo)
    problems = caught.value.problems
    for rel, why in expected.items():
        assert any(p.startswith(f"{rel}: ") and says(p, why) for p in problems), \
            (rel, problems)
    assert f"etc-passwd: symlink leaves {repo.resolve()} (-> /etc/passwd)" in problems
    assert len(problems) == len(expected)
    assert not (tmp_path / "dist").exists()
    # Outside a git work tree the default boundary is the plugin directory: the skills'
    # links leave it.
    alone = tmp_path / "copy" / "p"
    shutil.copytree(repo / "plugins" / "p", alone, symlinks=True)
    for name in ("etc-passwd", "proc-environ", "climb", "secret", "git-config", "git-dir",
                 "loop-a", "loop-b", "gone"):
        (alone / name).unlink()
    with pytest.raises(PackagingError) as refused:
        package_plugin(alone, tmp_path / "dist")
    assert refused.value.problems == tuple(
        f"skills/{name}: dangling symlink (-> ../../../skills/{name})" for name in SKILLS)


def test_repo_root_must_be_a_directory_holding_the_plugin(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    plugin = extensions_like(repo)
    (tmp_path / "elsewhere").mkdir()
    with pytest.raises(PackagingError, match="does not contain the plugin directory"):
        package_plugin(plugin, tmp_path / "dist", repo_root=tmp_path / "elsewhere")
    with pytest.raises(PackagingError, match="--repo-root is not a directory"):
        package_plugin(plugin, tmp_path / "dist", repo_root=tmp_path / "missing")
    # The plugin directory as its own root: today's rule, the skills' links leave it.
    with pytest.raises(PackagingError) as caught:
        package_plugin(plugin, tmp_path / "dist", repo_root=plugin)
    assert caught.value.problems[0] == \
        "skills/alpha: symlink leaves the plugin directory (-> ../../../skills/alpha)"


def test_validate_checks_what_the_package_would_ship(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    plugin = extensions_like(repo)
    report = validate_directory(plugin, repo_root=repo)
    assert report.ok, report.to_dict()
    by_name = {c.name: c for c in report.checks}
    assert "3 skills" in by_name["content"].message
    assert by_name["links"].details == tuple(f"skills/{n} -> ../../../skills/{n}"
                                             for n in SKILLS)
    alone = validate_directory(plugin, repo_root=plugin)
    assert not alone.ok
    assert {c.name: c for c in alone.checks}["files"].status == "error"
