"""Where a store keeps things: its file names, the default roots, and the pointer read.

The smallest part of the store, importing nothing but :mod:`os` and :mod:`pathlib`: what
``ohp list`` needs before it knows whether it needs more (:mod:`isolator.store._listing`).
"""

from __future__ import annotations

import os
from pathlib import Path

MARKER = ".isolator-store.json"
METADATA = "metadata.json"
POINTER = "current"
LEASE = ".lease"
MIGRATION_FLAG = ".isolator-migration.json"
"""In the new root while a move is under way (:mod:`isolator.store._migrate`)."""


def read_pointer(plugin_dir: Path) -> str | None:
    try:
        with open(plugin_dir / POINTER, encoding="utf-8") as handle:
            text = handle.read().strip()
    except (FileNotFoundError, NotADirectoryError):
        return None
    return text if text.startswith("gen-") and "/" not in text else None


def _persistence_dir() -> Path:
    """``$OH_PERSISTENCE_DIR``, else ``~/.openhands``: the SDK's ``get_user_persistence_dir()``."""
    base = os.environ.get("OH_PERSISTENCE_DIR")
    return Path(base).expanduser() if base else Path.home() / ".openhands"


def default_store_root() -> Path:
    """``~/.openhands/isolator/store``; ``OH_PERSISTENCE_DIR`` replaces ``~/.openhands`` (as in
    the OpenHands SDK).

    Not ``~/.openhands/plugins``, where it used to be: the SDK (1.58) loads every
    subdirectory of ``$OH_PERSISTENCE_DIR/plugins`` and ``~/.agents/plugins`` as a plugin, so
    the store's own directories showed up there as empty plugins. Under the persistence dir the
    SDK reads ``plugins/`` (and ``plugins/installed/``), ``skills/`` (and ``skills/installed/``),
    ``microagents/``, ``agents/``, ``hooks.json``, ``SOUL.md``, ``memory/``, ``cache/``,
    ``profiles/``, ``agent-profiles/``, ``meta-profiles/``, ``auth/`` and ``plugin-data/``:
    ``isolator/`` is none of them, and is isolator's alone. A store at the old place is moved
    here on first use of the default store (:func:`migrate_default_store`).
    """
    return _persistence_dir() / "isolator" / "store"


def legacy_default_store_root() -> Path:
    """Where the default store was before it moved: ``$OH_PERSISTENCE_DIR/plugins``."""
    return _persistence_dir() / "plugins"


def needs_migration(old: Path, new: Path) -> bool:
    """Cheap and lock-free: whether :func:`migrate_store` may have anything to do."""
    return (old / MARKER).is_file() or (new / MIGRATION_FLAG).is_file()
