"""The proposal's first promise on real plugins: the same content from git and from a package.

Every corpus plugin (all of them load) is packaged with ``ohp package``, installed with ``ohp
install`` from its own local wheelhouse into its own venv, loaded from site-packages and
compared with loading the corpus directory itself. ``benchmarks/bench_roundtrip.py`` times the
same run.
"""

from __future__ import annotations

import json
import shutil
from typing import TYPE_CHECKING

import oracle
import pytest
import roundtrip
from plugin_fixtures import manifest, write_tree

import isolator
import isolator._authoring

if TYPE_CHECKING:
    from pathlib import Path


@pytest.mark.corpus
@pytest.mark.slow
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
                                  label=lambda d: d.relative_to(corpus).as_posix())
    assert result.plugins == len(accepted)
    assert not result.failures, json.dumps(result.failures, indent=1)[:20000]
    assert len(result.passed) == len(accepted)


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
    assert isolator._authoring.content_differences(loaded, copied) == []


def test_content_differences_names_each_kind_of_difference(tmp_path: Path) -> None:
    from dataclasses import replace

    from isolator._authoring import content_differences

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
