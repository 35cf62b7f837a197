"""The default store's root, out of the OpenHands SDK's plugin directories, and the move of a
store found at the old default root (``$OH_PERSISTENCE_DIR/plugins``)."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
from pathlib import Path

import oracle
import pytest
from wheelhouse import EXAMPLES_DIR

from isolator import Permissions, PluginStore, StoreError
from isolator.cli import main
from isolator.store import _store as store_module
from isolator.store import default_store, default_store_root, migrate_default_store


@pytest.fixture
def persistence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    base = tmp_path / "persist"
    monkeypatch.setenv("OH_PERSISTENCE_DIR", str(base))
    monkeypatch.setattr(store_module, "_default_stores", {})
    return base


def tree(root: Path) -> dict[str, str]:
    """Every entry under *root* with its content's hash (directories and links by kind)."""
    out: dict[str, str] = {}
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(dirpath) / name
            rel = str(path.relative_to(root))
            if path.is_symlink():
                out[rel] = "link:" + os.readlink(path)
            elif path.is_dir():
                out[rel] = "dir"
            else:
                out[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return out


def old_store(persistence: Path, wheelhouse: Path) -> PluginStore:
    """A store at the old default root: a package plugin with settings, a content-only one, a
    policy, and beside them what the SDK and the user keep there."""
    root = persistence / "plugins"
    root.mkdir(parents=True)
    (root / "policy.json").write_text(json.dumps({"sources": {"deny": ["git:*"]}}))
    store = PluginStore(root)
    store.install("pypi:openhands-plugin-greetings", find_links=[wheelhouse], no_index=True)
    store.install(str(EXAMPLES_DIR / "content-only-plugin"))
    store.configure("greetings", sandbox="strict", grants=Permissions(capabilities=("echo",)))
    (root / "installed").mkdir()  # the SDK's install_plugin() store
    (root / "installed" / ".installed.json").write_text("{}")
    (root / "my-sdk-plugin" / "skills").mkdir(parents=True)  # a user's SDK plugin
    return store


def test_the_default_root_is_out_of_the_sdk_plugin_directories(
    persistence: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    assert default_store_root() == persistence / "isolator" / "store"
    assert default_store().root == persistence / "isolator" / "store"
    monkeypatch.delenv("OH_PERSISTENCE_DIR")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_store_root() == tmp_path / "home" / ".openhands" / "isolator" / "store"
    assert migrate_default_store() is None  # nothing at the old root: nothing done


def test_an_old_default_store_is_moved_with_its_plugins_settings_and_policy(
    persistence: Path, example_wheelhouse: Path, caplog: pytest.LogCaptureFixture
) -> None:
    old = old_store(persistence, example_wheelhouse)
    lock = old.lock()
    settings = old.settings("greetings")
    audit_before = (old.root / "audit.jsonl").read_text()
    assert {"greetings", "notes"} <= set(lock["plugins"])

    with caplog.at_level(logging.WARNING, logger="isolator"):
        store = default_store()
    new = persistence / "isolator" / "store"
    assert store.root == new
    assert [r.getMessage() for r in caplog.records] == [
        f"moved the plugin store from {old.root} to {new}, where the OpenHands SDK does not "
        f"load it as plugins (2 plugins rebuilt offline from its wheelhouse)"]
    # The same plugins, versions, sources and file hashes; venvs of their own, working.
    assert store.lock() == lock
    assert store.verify().ok
    installed = store.get("greetings")
    assert installed.path.is_relative_to(new) and installed.venv is not None
    assert store.load("greetings").skills
    assert store.get("notes").path.is_relative_to(new)
    assert store.settings("greetings") == settings
    assert (new / "policy.json").read_text() == json.dumps({"sources": {"deny": ["git:*"]}})
    assert store.policy.audit_log is not None
    log = store.policy.audit_log.read_text()
    assert log.startswith(audit_before)
    assert json.loads(log.splitlines()[-1])["event"] == "migrate-store"
    # The old root keeps only what isolator did not make there.
    assert sorted(p.name for p in old.root.iterdir()) == ["installed", "my-sdk-plugin"]
    assert (old.root / "installed" / ".installed.json").read_text() == "{}"
    assert migrate_default_store() is None  # done once


def test_a_failed_move_leaves_the_old_store_as_it_was_and_no_new_one(
    persistence: Path, example_wheelhouse: Path
) -> None:
    old = old_store(persistence, example_wheelhouse)
    wheel = next((old.root / "wheelhouse").glob("*/openhands_plugin_greetings-*.whl"))
    wheel.chmod(0o644)
    wheel.unlink()  # a wheel gone from the old wheelhouse
    before = tree(old.root)
    new = persistence / "isolator" / "store"

    with pytest.raises(StoreError) as failed:
        default_store()
    message = str(failed.value)
    assert f"moving the plugin store from {old.root} to {new}" in message
    assert "is not in the old store's wheelhouse" in message
    assert f"ohp lock --root {old.root} -o lock.json" in message
    assert f"ohp sync lock.json --root {new} --find-links {old.root}/wheelhouse/<sha256>" \
        in message and message.endswith("(docs/store.md)")
    assert tree(old.root) == before
    assert not new.exists()
    assert [p.name for p in new.parent.iterdir()] == [".store-migration.lock"]


def test_the_cli_moves_the_old_store_and_says_so_on_one_line(
    persistence: Path, example_wheelhouse: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    old = old_store(persistence, example_wheelhouse)
    lock = old.lock()
    assert main(["list"]) == 0
    out, err = capsys.readouterr()
    new = persistence / "isolator" / "store"
    assert err.splitlines() == [f"ohp: moved the plugin store from {old.root} to {new}, where "
                                "the OpenHands SDK does not load it as plugins (2 plugins "
                                "rebuilt offline from its wheelhouse)"]
    assert "greetings" in out and "notes" in out
    assert PluginStore(new).lock() == lock
    assert main(["list"]) == 0
    assert capsys.readouterr().err == ""


def test_a_move_killed_while_building_is_started_again(
    persistence: Path, example_wheelhouse: Path
) -> None:
    old = old_store(persistence, example_wheelhouse)
    lock = old.lock()
    new = persistence / "isolator" / "store"
    new.mkdir(parents=True)  # what a killed move leaves: the flag says it was building
    (new / ".isolator-migration.json").write_text(
        json.dumps({"from": str(old.root), "state": "building"}))
    (new / "plugins" / "half").mkdir(parents=True)
    moved = migrate_default_store(report=lambda line: None)
    assert moved is not None and moved.plugins == ("greetings", "notes")
    assert PluginStore(new).lock() == lock
    assert not (new / ".isolator-migration.json").exists()
    assert not (new / "plugins" / "half").exists()


def test_the_sdk_loads_no_plugin_from_a_store_at_the_default_root(
    persistence: Path, example_wheelhouse: Path, tmp_path: Path, shared_dir: Path
) -> None:
    try:
        python = oracle.oracle_python(shared_dir)
    except oracle.OracleError as exc:
        pytest.skip(f"no openhands-sdk venv to ask: {exc}")
    store = default_store()
    store.install("pypi:openhands-plugin-greetings", find_links=[example_wheelhouse],
                  no_index=True)
    home = tmp_path / "home"
    home.mkdir()
    code = ("from openhands.sdk.plugin.discovery import load_user_plugins\n"
            "print(sorted(p.name for p in load_user_plugins()))\n")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home),
           "OH_PERSISTENCE_DIR": str(persistence)}
    result = subprocess.run([str(python), "-c", code], capture_output=True, text=True,
                            env=env, timeout=120, check=True)
    assert result.stdout.strip() == "[]"
    # The old root would have shown the store's directories as plugins.
    shutil.copytree(store.root, persistence / "plugins", symlinks=True)
    result = subprocess.run([str(python), "-c", code], capture_output=True, text=True,
                            env=env, timeout=120, check=True)
    assert "wheelhouse" in result.stdout
