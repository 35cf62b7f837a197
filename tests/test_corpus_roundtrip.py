"""The proposal's first promise on real plugins: the same content from git and from a package.

Every corpus plugin (all of them load) is packaged with ``ohp package``, installed with ``ohp
install`` from its own local wheelhouse into its own venv, loaded from site-packages and
compared with loading the corpus directory itself. ``benchmarks/bench_roundtrip.py`` times the
same run.

The OpenHands/extensions plugins whose skills are symlinks to the repository's shared
``skills/``, outside the plugin directory, are packaged with those skills: ``ohp package``
follows a link whose target stays inside the repository (issue #18) and copies it in. They are
listed in ``LINKED_OUT``; for them the reference is the directory copied with its links
followed (what the author meant; the loader, as the SDK's, refuses links leaving the plugin
root in place). Only a link leaving the repository is refused (``RefusedForLinks``): the
corpus has none. Whether ``../shared/corpus`` keeps its symlinks depends on how it was copied,
so the archive ``../shared/layouts/OpenHands__extensions.tar.gz``, which keeps them, is
round-tripped too.
"""

from __future__ import annotations

import json
import os
import shutil
import tarfile
from typing import TYPE_CHECKING

import oracle
import pytest
import roundtrip
from plugin_fixtures import manifest, write_tree

import isolator
import isolator.authoring._authoring

if TYPE_CHECKING:
    from pathlib import Path

# OpenHands/extensions: plugin directory -> its symlinks that leave it (all into ../../../skills/).
LINKED_OUT = {
    "plugins/openhands": ["skills/openhands-api", "skills/openhands-automation",
                          "skills/openhands-sdk"],
    "plugins/pr-review": ["skills/code-review", "skills/github-pr-review"],
    "plugins/qa-changes": ["skills/github-pr-review", "skills/qa-changes"],
    "plugins/release-notes": ["skills/release-notes"],
    "plugins/vulnerability-remediation": ["skills/github", "skills/security"],
}


@pytest.mark.corpus
@pytest.mark.slow
@pytest.mark.filterwarnings("default::roundtrip.RefusedForLinks")
def test_every_corpus_plugin_loads_the_same_from_its_package(shared_dir: Path,
                                                             tmp_path: Path) -> None:
    corpus = oracle.corpus_root(shared_dir)
    directories = oracle.corpus_dirs(shared_dir)
    assert len(directories) > 100
    accepted = []
    for directory in directories:
        try:
            isolator.load_plugin(directory)
        except isolator.PluginLoadError:
            continue
        accepted.append(directory)
    result = roundtrip.round_trip(accepted, tmp_path,
                                  label=lambda d: d.relative_to(corpus).as_posix(),
                                  repo_root=lambda d: corpus / d.relative_to(corpus).parts[0])
    roundtrip.warn_refused(result.refused)
    assert result.plugins == len(accepted)
    assert not result.failures, json.dumps(result.failures, indent=1)[:20000]
    # A flat copy of the corpus lost the links: every plugin round-trips as it is. One that
    # kept them: the listed plugins round-trip with exactly their listed links followed.
    linked_out = {f"OpenHands__extensions/{name}": links for name, links in LINKED_OUT.items()}
    assert result.followed in ({}, linked_out), result.followed
    assert result.refused == {}
    assert sorted(result.passed) == sorted(d.relative_to(corpus).as_posix() for d in accepted)


@pytest.fixture(scope="module")
def extensions_layout(shared_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """OpenHands/extensions extracted from ``layouts/``, its symlinks kept."""
    archive = shared_dir / "layouts" / "OpenHands__extensions.tar.gz"
    if not archive.is_file():
        message = f"{archive} is missing"
        if oracle.in_ci():
            pytest.fail(f"CI=true and {message}", pytrace=False)
        pytest.skip(message)
    into = tmp_path_factory.mktemp("layout")
    with tarfile.open(archive) as tar:
        if hasattr(tarfile, "data_filter"):
            tar.extractall(into, filter="data")
        else:  # Python before 3.10.12 and 3.11.4: the archive is ours, its links stay inside
            tar.extractall(into)
    return into / "OpenHands__extensions"


@pytest.mark.corpus
@pytest.mark.slow
@pytest.mark.filterwarnings("default::roundtrip.RefusedForLinks")
def test_plugins_linking_the_repositorys_skills_round_trip_with_them(
        extensions_layout: Path, tmp_path: Path) -> None:
    """The archive's plugins/ with their symlinks: the listed plugins, whose skills link to the
    repository's skills/, are packaged with those skills (each link followed, none refused)
    and load from their package as from a copy with the links followed; every other plugin
    (their own links, such as .claude-plugin -> .plugin, stay inside) round-trips as it is."""
    repo = extensions_layout
    skills = (repo / "skills").resolve()
    for name, links in LINKED_OUT.items():
        for rel in links:
            link = repo / name / rel
            assert link.is_symlink() and link.resolve().parent == skills, link
    plugins = sorted(d for d in (repo / "plugins").iterdir() if d.is_dir())
    assert {p.relative_to(repo).as_posix() for p in plugins} > set(LINKED_OUT)
    assert any(os.path.islink(p / ".claude-plugin") for p in plugins)  # links that stay inside
    for plugin in plugins:
        isolator.load_plugin(plugin)  # all load from the directory
    result = roundtrip.round_trip(plugins, tmp_path / "work",
                                  label=lambda d: d.relative_to(repo).as_posix(),
                                  repo_root=lambda d: repo)
    roundtrip.warn_refused(result.refused)
    assert not result.failures, json.dumps(result.failures, indent=1)[:20000]
    assert result.refused == {}
    assert result.followed == LINKED_OUT
    assert sorted(result.passed) == sorted(p.relative_to(repo).as_posix() for p in plugins)
    # In place, the loader sees none of the linked skills (as the SDK); packaged, all of them.
    openhands = repo / "plugins" / "openhands"
    assert isolator.load_plugin(openhands).skills == ()
    copied = isolator.load_plugin(roundtrip.linked_copy(openhands, tmp_path / "copy"))
    assert sorted(s.name for s in copied.skills) == [
        "openhands-api", "openhands-automation", "openhands-sdk"]


def test_a_symlink_leaving_the_repository_is_the_only_refusal_the_round_trip_accepts(
        tmp_path: Path) -> None:
    """A link leaving the plugin for the repository is followed: the plugin round-trips with
    the linked skill. Refused for a link leaving the repository: listed in ``refused``, not a
    failure. Refused for that and anything else, or packaged despite it: a failure."""
    repo = tmp_path / "repo"
    write_tree(repo / "skills" / "shared", {"SKILL.md": "---\nname: s\n---\nS\n"})
    (tmp_path / "secret.md").write_text("secret")
    linked = write_tree(repo / "plugins" / "linked", {
        ".claude-plugin/plugin.json": manifest(name="linked", version="1.0.0"),
        "commands/go.md": "Go\n"})
    (linked / "skills").mkdir()
    (linked / "skills" / "shared").symlink_to("../../../skills/shared")
    leaking = shutil.copytree(linked, repo / "plugins" / "leaking", symlinks=True)
    (leaking / "commands" / "leak.md").symlink_to("../../../../secret.md")
    also_dangling = shutil.copytree(leaking, repo / "plugins" / "dangling", symlinks=True)
    (also_dangling / "commands" / "gone.md").symlink_to("nowhere.md")
    result = roundtrip.round_trip([linked, leaking, also_dangling], tmp_path / "work",
                                  label=lambda d: d.name, repo_root=lambda d: repo)
    assert result.passed == ["linked"], result.failures
    assert result.followed == {"linked": ["skills/shared"]}
    assert result.refused == {"leaking": ["commands/leak.md"]}
    assert list(result.failures) == ["dangling"]
    assert "expected exactly the symlinks leaving" in result.failures["dangling"][0]
    with pytest.warns(roundtrip.RefusedForLinks, match=r"leaking: commands/leak.md"):
        roundtrip.warn_refused(result.refused)
    # Without the repository as its root, the linked plugin is refused for its link.
    alone = roundtrip.round_trip([linked], tmp_path / "alone", label=lambda d: d.name)
    assert alone.refused == {"linked": ["skills/shared"]} and not alone.failures
    # Packaged although a link leaves it, or refused with another error: a failure too.
    made = isolator.authoring._authoring.PackageResult(
        plugin="leaking", version="1.0.0", dist_name="x", module="x", wheel=None, project=None,
        files=1)
    assert roundtrip.refusal_problems(leaking, made, ["commands/leak.md"])[0].endswith(
        "got a wheel")
    other = isolator.IsolatorError("something else")
    assert "got IsolatorError" in roundtrip.refusal_problems(
        leaking, other, ["commands/leak.md"])[0]


def test_the_comparison_sees_a_changed_file_and_a_lost_exec_bit(tmp_path: Path) -> None:
    """The round trip can fail: a plugin whose installed copy differs is reported."""
    plugin = write_tree(tmp_path / "sample", {
        ".claude-plugin/plugin.json": manifest(name="sample", version="1.0.0"),
        "commands/go.md": "---\ndescription: Go\n---\nGo\n",
        "hooks/hooks.json": json.dumps({"hooks": {"Stop": [{"hooks": [
            {"type": "command", "command": "${CLAUDE_PLUGIN_ROOT}/hooks/stop.sh"}]}]}}),
        "hooks/stop.sh": "#!/bin/sh\n",
    })
    (plugin / "hooks" / "stop.sh").chmod(0o755)
    result = roundtrip.round_trip([plugin], tmp_path / "work")
    assert result.passed == [str(plugin)] and not result.failures

    store = isolator.PluginStore(tmp_path / "store")
    wheel = next((tmp_path / "work" / "wheels").rglob("*.whl"))
    installed = store.install(isolator.PluginSource.parse(str(wheel)))
    assert roundtrip.compare_installed(plugin, store, installed.name) == []
    changed = shutil.copytree(plugin, tmp_path / "changed" / "sample")
    (changed / "commands" / "go.md").write_text("---\ndescription: Gone\n---\nGo\n")
    (changed / "hooks" / "stop.sh").chmod(0o644)
    (changed / "extra.md").write_text("x")
    problems = roundtrip.compare_installed(changed, store, installed.name)
    assert any(p.startswith("commands: go differs in description") for p in problems), problems
    assert "executable bit differs: hooks/stop.sh" in problems
    assert "file only in the directory: extra.md" in problems


def test_a_plugin_without_manifest_keeps_its_name_through_the_package(tmp_path: Path) -> None:
    """Named after its directory from git, by its entry point from a package: the same name
    and the same inferred description ("Plugin loaded from NAME")."""
    plugin = write_tree(tmp_path / "no-manifest", {
        "commands/go.md": "---\ndescription: Go\n---\nGo\n",
        "SKILL.md": "---\ndescription: A skill at the root\n---\nBody\n",
    })
    result = roundtrip.round_trip([plugin], tmp_path / "work")
    assert not result.failures, result.failures
    store = isolator.PluginStore(tmp_path / "store")
    wheel = next((tmp_path / "work" / "wheels").rglob("*.whl"))
    loaded = store.load(store.install(isolator.PluginSource.parse(str(wheel))).name)
    assert loaded.name == "no-manifest"
    assert loaded.description == "Plugin loaded from no-manifest"
    # The same directory installed as content only (a copy in another store) is named the
    # same, not after the store's copy ("content").
    other = isolator.PluginStore(tmp_path / "other-store")
    copied = other.load(other.install(isolator.PluginSource.parse(str(plugin))).name)
    assert copied.name == "no-manifest"
    assert copied.installation is not None and copied.installation.kind == "content-only"
    assert isolator.authoring._authoring.content_differences(loaded, copied) == []


def test_content_differences_names_each_kind_of_difference(tmp_path: Path) -> None:
    from dataclasses import replace

    from isolator.authoring._authoring import content_differences

    plugin = isolator.load_plugin(write_tree(tmp_path / "p", {
        ".plugin/plugin.json": manifest(name="p", version="1.0.0"),
        "commands/a.md": "---\ndescription: A\n---\nA\n",
        "commands/b.md": "---\ndescription: B\n---\nB\n",
    }))
    moved = isolator.load_plugin(shutil.copytree(tmp_path / "p", tmp_path / "elsewhere" / "p"))
    assert content_differences(plugin, moved) == []  # paths aside
    swapped = replace(moved, commands=moved.commands[::-1])
    assert content_differences(plugin, swapped) == ["commands: same items in another order"]
    fewer = replace(moved, commands=moved.commands[:1])
    assert content_differences(plugin, fewer) == ["commands: b only in the first"]
    renamed = replace(moved, manifest=replace(moved.manifest, version="2.0.0"))
    problems = content_differences(plugin, renamed)
    assert 'version: "1.0.0" != "2.0.0"' in problems
    assert content_differences(plugin, renamed, ignore=("version", "manifest")) == []
