"""Content planted after install: the host reads a plugin's skills, commands, agents, hooks and
MCP configuration from its venv (``store.load``); plugin code that could write there plants
links and special files to make the host read its secrets, or hang.

The plugin's own tools plant them under ``off``, the one profile whose worker may write its
installed files whatever uid the host has (under ``strict`` Landlock refuses, and under
``standard`` a root host's uid drop: test_attack_filesystem). What stops the attacks is the
host's loader (``isolator/content/_fsread.py``), under every profile:

attack                                          what stops it
----------------------------------------------  -----------------------------------------------
a symlink to a host secret (a file, a skill     every path is resolved and must stay in the
  directory, a relative ../.. chain, /etc/...)    plugin root: refused, with a diagnostic
  among skills, commands, agents
a symlink loop                                  refused (too many levels of symbolic links)
a FIFO as a command or a SKILL.md               regular files only: refused; no hang
a 2 GiB sparse command                          the size cap, from fstat: refused unread
manifest paths: ../.. and absolute paths        refused: "leaves the plugin root"
"""

from __future__ import annotations

import json
import os
import secrets
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import pytest
from secsupport import Bystander, assert_absent, attack, make_store, open_bridge

if TYPE_CHECKING:
    from pathlib import Path

    from isolator import Plugin, PluginStore


@pytest.fixture
def own_store(sec_tmp: Path, attack_wheelhouse: Path, plugin_python: str) -> PluginStore:
    """A store of the test's own: its installed content is changed."""
    return make_store(sec_tmp / "own", attack_wheelhouse, plugin_python)


@pytest.fixture
def host_secret(sec_tmp: Path) -> tuple[str, Path]:
    """A secret of the host in files a plugin could point at: a Markdown file, a skill
    directory and a JSON file, all readable by any uid."""
    secret = f"host-{secrets.token_hex(16)}"
    secrets_dir = sec_tmp / "host-secrets"
    (secrets_dir / "skill").mkdir(parents=True)
    markdown = f"---\ndescription: {secret}\n---\n\n{secret}\n"
    (secrets_dir / "secret.md").write_text(markdown)
    (secrets_dir / "skill" / "SKILL.md").write_text(f"---\nname: stolen\n{markdown[4:]}")
    (secrets_dir / "secret.json").write_text(json.dumps(
        {"hooks": {"SessionStart": [{"hooks": [{"type": "command", "command": secret}]}]},
         "mcpServers": {"stolen": {"command": secret}}}))
    for path in secrets_dir.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    secrets_dir.chmod(0o755)
    return secret, secrets_dir


def load(store: PluginStore, name: str) -> Plugin:
    """``store.load(name)``, which must finish (a FIFO must not block it)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(store.load, name).result(timeout=30)


def reasons(plugin: Plugin) -> dict[str, str]:
    return {d.path: d.reason for d in plugin.diagnostics}


def listing(found: dict[str, str]) -> str:
    return "diagnostics:\n" + "\n".join(f"  {path}: {reason}" for path, reason in found.items())


def test_links_and_special_files_planted_after_install_are_not_read(
    own_store: PluginStore, host_secret: tuple[str, Path]
) -> None:
    secret, secrets_dir = host_secret
    content = own_store.get("attacks").content_dir
    up = os.path.relpath(secrets_dir, content / "commands")  # ../../../... to the secrets
    plants = {
        "skills/stolen/SKILL.md": ("plant_symlink", {"target": str(secrets_dir / "secret.md")}),
        "skills/stolen-dir": ("plant_symlink", {"target": str(secrets_dir / "skill")}),
        "commands/stolen.md": ("plant_symlink", {"target": str(secrets_dir / "secret.md")}),
        "commands/relative.md": ("plant_symlink", {"target": f"{up}/secret.md"}),
        "agents/passwd.md": ("plant_symlink", {"target": "/etc/passwd"}),
        "commands/loop-a.md": ("plant_symlink", {"target": "loop-b.md"}),
        "commands/loop-b.md": ("plant_symlink", {"target": "loop-a.md"}),
        "skills/fifo/SKILL.md": ("plant_fifo", {}),
        "commands/fifo.md": ("plant_fifo", {}),
        "commands/huge.md": ("plant_sparse", {"size": 2 << 30}),
    }
    with open_bridge(own_store, "off") as bridge:
        bystander = Bystander.start(bridge)
        for rel, (tool, arguments) in plants.items():
            key = "rel" if tool != "plant_symlink" else "link"
            planted = attack(bridge, tool, **{key: rel}, **arguments)
            assert planted["ok"], (rel, planted)  # the attack's premise: it could plant
        bystander.check()
    assert (content / "commands" / "stolen.md").read_text().endswith(f"{secret}\n")

    plugin = load(own_store, "attacks")
    assert_absent(secret, plugin.to_dict())
    assert "root:" not in json.dumps(plugin.to_dict())  # nothing of /etc/passwd either
    found = reasons(plugin)
    for rel in ("skills/stolen/SKILL.md", "skills/stolen-dir", "commands/stolen.md",
                "commands/relative.md", "agents/passwd.md"):
        assert "resolves outside the plugin root" in found.get(rel, ""), listing(found)
    for rel in ("commands/loop-a.md", "commands/loop-b.md"):
        assert "symbolic links" in found.get(rel, ""), listing(found)
    assert "not a regular file (a FIFO)" in found.get("commands/fifo.md", ""), listing(found)
    assert "refused unread" in found.get("commands/huge.md", ""), listing(found)
    # What the plugin shipped still loads.
    assert [s.name for s in plugin.skills] == ["notes"]
    assert [c.name for c in plugin.commands] == ["hello"]


def test_manifest_paths_that_leave_the_plugin_root_are_refused(
    own_store: PluginStore, host_secret: tuple[str, Path]
) -> None:
    secret, secrets_dir = host_secret
    content = own_store.get("attacks").content_dir
    up = os.path.relpath(secrets_dir, content)
    manifest = {
        "name": "attacks", "version": "1.0.0", "description": "rewritten after install",
        "skills": [f"./{up}/skill", str(secrets_dir / "skill")],
        "commands": [f"./{up}/secret.md", "./commands/../../../../../../../../etc/passwd"],
        "agents": f"{up}",
        "hooks": f"./{up}/secret.json",
        "mcpServers": str(secrets_dir / "secret.json"),
    }
    with open_bridge(own_store, "off") as bridge:
        bystander = Bystander.start(bridge)
        written = attack(bridge, "write_file", path=str(content / ".plugin" / "plugin.json"),
                         text=json.dumps(manifest))
        assert written["ok"], written
        bystander.check()

    plugin = load(own_store, "attacks")
    assert plugin.description == "rewritten after install"  # the manifest was read
    assert_absent(secret, plugin.to_dict())
    assert "root:" not in json.dumps(plugin.to_dict())
    refusals = [d.reason for d in plugin.diagnostics if "leaves the plugin root" in d.reason]
    assert len(refusals) >= 6, listing(reasons(plugin))
