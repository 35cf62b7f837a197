"""Moving a store to a new root: how the default store left ``$OH_PERSISTENCE_DIR/plugins``.

The OpenHands SDK loads every subdirectory of ``$OH_PERSISTENCE_DIR/plugins`` (and of
``~/.agents/plugins``) as an ambient user plugin, so a store there showed up in the SDK's
``load_user_plugins()`` as six empty plugins (``bytecode``, ``cache``, ``locks``...). The
default store now lives in ``$OH_PERSISTENCE_DIR/isolator/store`` (see
:func:`isolator.store.default_store_root`), and a store found at the old place is moved by
:func:`migrate_store` the first time the default store is used.

A venv cannot be moved (its scripts and ``pyvenv.cfg`` hold absolute paths), so the move is a
rebuild: the old store's lock is the plan, its wheelhouse the only source of files (offline,
every file checked against its sha256), and each plugin gets a new generation in the new root,
as :meth:`PluginStore.sync` makes one. A content-only plugin is copied from its current
generation, its content hash checked. The operator's settings of each plugin, ``policy.json``
and the audit log go along. Only once the new store's lock equals the old one are the old
store's own entries removed (never anything else in that directory: the SDK's
``plugins/installed`` and the user's SDK plugins stay). Any failure before that removes the
half-made new root and leaves the old store as it was.

A flag file in the new root (``.isolator-migration.json``) says a move is under way: a move
killed while building is started again from scratch, one killed while removing the old
entries is finished, by the next process that takes the migration lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from isolator._errors import IsolatorError, StoreError
from isolator.policy._policy import AUDIT_LOG, POLICY_FILE
from isolator.store._context import StoreContext
from isolator.store._disk import flock, remove, say, write_json_atomic
from isolator.store._generations import Generations
from isolator.store._layout import LEASE, MARKER, MIGRATION_FLAG, needs_migration
from isolator.store._lockfile import parse_lock
from isolator.store._pipeline._generation import content_generation
from isolator.store._pipeline._prepare import Prepared
from isolator.store._queries import Catalog
from isolator.store._records import STORE_FORMAT
from isolator.store._resolve import Artifact
from isolator.store._settings import settings_path

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping, Sequence

    from isolator.policy._policy import Policy
    from isolator.store._backends import Backend
    from isolator.store._bytecode import BytecodePool
    from isolator.store._records import SyncReport
    from isolator.store._wheelhouse import Wheelhouse

__all__ = ["OWNED_ENTRIES", "StoreMigration", "migrate_store"]

logger = logging.getLogger("isolator.store")

OWNED_ENTRIES = (".lock", "plugins", "locks", "wheelhouse", "bytecode", "cache", "tmp",
                 "settings", POLICY_FILE, AUDIT_LOG, MARKER)
"""The entries of a store root that the store made (or, for ``policy.json``, reads as its own):
what a move removes from the old root, in this order (the marker last)."""

FLAG = MIGRATION_FLAG
"""In the new root while a move is under way: ``{"from": OLD, "state": "building"|"removing"}``."""

_LOCK = ".store-migration.lock"


class _Store(Protocol):
    """What a move needs of a :class:`PluginStore` (this module is below ``_store.py``)."""

    @property
    def root(self) -> Path: ...
    @property
    def backend(self) -> Backend: ...
    @property
    def python(self) -> str | os.PathLike[str] | None: ...
    @property
    def lock_timeout(self) -> float: ...
    @property
    def wheelhouse(self) -> Wheelhouse: ...
    @property
    def bytecode(self) -> BytecodePool: ...
    @property
    def policy(self) -> Policy: ...
    def lock(self) -> dict[str, Any]: ...
    def sync(self, lock: Mapping[str, Any], *, find_links: Sequence[str | os.PathLike[str]] = (),
             progress: Callable[[str], None] | None = None,
             timeout: float | None = None) -> SyncReport: ...


@dataclass(frozen=True)
class StoreMigration:
    """A store moved from *old* to *new*: the names of the plugins it holds there now."""

    old: Path
    new: Path
    plugins: tuple[str, ...]

    def message(self) -> str:
        count = len(self.plugins)
        return (f"moved the plugin store from {self.old} to {self.new}, where the OpenHands SDK "
                f"does not load it as plugins ({count} plugin{'s' if count != 1 else ''} "
                f"rebuilt offline from its wheelhouse)")


def migrate_store(old: Path, new: _Store, make_store: Callable[[Path], _Store], *,
                  progress: Callable[[str], None] | None = None) -> StoreMigration | None:
    """Move the store at *old* into *new*'s root when *old* is a store and the new root does
    not exist yet (or holds a move that was interrupted); else do nothing and return None.

    *make_store* opens a store root (:class:`PluginStore`). Raises :class:`StoreError`, naming
    both roots and how to move the store by hand, when the move fails: the old store is then
    as it was and the new root is gone.
    """
    target = new.root
    if not needs_migration(old, target):
        return None
    target.parent.mkdir(parents=True, exist_ok=True)
    with flock(target.parent / _LOCK, shared=False, timeout=new.lock_timeout,
               what=f"the move of the plugin store to {target}", progress=progress):
        flag = _read_flag(target)
        if flag is not None and flag.get("state") == "removing":
            _remove_owned(Path(str(flag.get("from"))))  # killed while removing: finish
            os.unlink(target / FLAG)
            return None
        if flag is not None:  # killed while building: start again
            remove(target)
        if not (old / MARKER).is_file() or os.path.lexists(target):
            return None
        try:
            moved = _migrate(old, new, make_store, progress)
        except BaseException as exc:
            remove(target)  # the lock file beside it stays: removing it would race
            if not isinstance(exc, (IsolatorError, OSError)):
                raise
            why = exc.reason if isinstance(exc, StoreError) else str(exc)
            raise StoreError(
                f"moving the plugin store from {old} to {target}",
                f"{why}; the old store is as it was. To move it by hand: `ohp lock --root "
                f"{old} -o lock.json`, `ohp sync lock.json --root {target} --find-links "
                f"{old}/wheelhouse/<sha256>` (one --find-links per directory there), copy "
                f"settings/, {POLICY_FILE} and {AUDIT_LOG} across, then remove the store's "
                f"own entries from the old root (docs/store.md)") from exc
    logger.debug("moved %s to %s", old, target)
    return moved


def _migrate(old: Path, new: _Store, make_store: Callable[[Path], _Store],
             progress: Callable[[str], None] | None) -> StoreMigration:
    target = new.root
    old_generations = Generations(old, new.lock_timeout)
    old_generations.check_store()  # a store of another format is not ours to read
    with _holding_old(old, old_generations, new.lock_timeout):
        lock = make_store(old).lock()
        entries: dict[str, dict[str, Any]] = lock["plugins"]
        parse_lock(lock)  # well formed before anything is made
        target.mkdir()
        write_json_atomic(target / FLAG, {"from": str(old), "state": "building"})
        write_json_atomic(target / MARKER, {"format": STORE_FORMAT})
        # The operator's files first: the new store's policy checks the rebuild as the old
        # one checked the installs; the audit log goes on where it was.
        for name in (POLICY_FILE, AUDIT_LOG):
            if (old / name).is_file():
                shutil.copy2(old / name, target / name)
        for name in entries:
            if settings_path(old, name).is_file():
                settings_path(target, name).parent.mkdir(exist_ok=True)
                shutil.copy2(settings_path(old, name), settings_path(target, name))
        say(progress, f"moving {len(entries)} plugins from {old} to {target}")
        _seed_wheelhouse(old, new, entries, progress)
        _copy_content_only(old_generations, new, entries, progress)
        new.sync(lock, progress=progress)  # every file is in the wheelhouse: nothing fetched
        got = new.lock()
        if got != lock:
            differ = sorted(n for n in set(got["plugins"]) | set(entries)
                            if got["plugins"].get(n) != entries.get(n))
            raise StoreError(str(target), f"the rebuilt store's lock differs from the old "
                             f"one's for {', '.join(differ) or 'its header'}")
        new.policy.audit("migrate-store", old=str(old), new=str(target),
                         plugins=sorted(entries))
        write_json_atomic(target / FLAG, {"from": str(old), "state": "removing"})
        _remove_owned(old)
    os.unlink(target / FLAG)
    return StoreMigration(old, target, tuple(sorted(entries)))


@contextlib.contextmanager
def _holding_old(old: Path, generations: Generations, timeout: float) -> Iterator[None]:
    """The old store's lock held exclusive (no install or clean there meanwhile) and every
    generation's lease: a worker running from the old store stops the move before it starts."""
    with contextlib.ExitStack() as stack:
        if (old / ".lock").exists():  # never made here: the old root is left as it was
            stack.enter_context(generations.store_lock(shared=False))
        for name in generations.plugin_names():
            for gen in sorted(generations.plugin_dir(name).glob("gen-*")):
                try:
                    fd = os.open(gen / LEASE, os.O_RDONLY | os.O_CLOEXEC)
                except FileNotFoundError:
                    continue
                stack.callback(os.close, fd)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    raise StoreError(f"plugin {name!r}", f"{gen} is in use (a worker runs "
                                     "it): stop it, then use the store again") from None
        yield


def _seed_wheelhouse(old: Path, new: _Store, entries: Mapping[str, Mapping[str, Any]],
                     progress: Callable[[str], None] | None) -> None:
    """Every locked file copied from the old wheelhouse into the new, hashed on the way: the
    rebuild fetches nothing."""
    for name, entry in entries.items():
        for dist in entry.get("distributions") or ():
            sha256, filename = dist["sha256"], dist["file"]
            source = old / "wheelhouse" / sha256 / filename
            if not source.is_file():
                raise StoreError(f"plugin {name!r}", f"{filename} is not in the old store's "
                                 "wheelhouse")
            new.wheelhouse.ensure(Artifact(source.absolute().as_uri(), sha256, filename),
                                  progress)


def _copy_content_only(old: Generations, new: _Store, entries: Mapping[str, Mapping[str, Any]],
                       progress: Callable[[str], None] | None) -> None:
    """Each content-only plugin copied from its current generation (no clone, no source
    needed), its content hash checked against the lock's."""
    generations = Generations(new.root, new.lock_timeout)
    ctx = StoreContext(new.root, backend=new.backend, python=new.python,
                       wheelhouse=new.wheelhouse, bytecode=new.bytecode,
                       generations=generations, catalog=Catalog(generations),
                       policy=new.policy)
    for name, entry in entries.items():
        if entry.get("kind") != "content-only":
            continue
        installed = old.current(name)
        assert installed is not None
        with generations.operation(progress) as op:
            content_generation(
                ctx, installed.source,
                Prepared(content_dir=installed.content_dir, git_commit=installed.git_commit),
                op, force=True, replace_other=True, progress=progress,
                expected_sha256=entry.get("content_sha256"))


def _remove_owned(old: Path) -> None:
    for name in OWNED_ENTRIES:
        remove(old / name)
    with contextlib.suppress(FileNotFoundError):
        for entry in old.iterdir():  # a marker's temporary file left by a killed process
            if entry.name.startswith(f".{MARKER}."):
                remove(entry)


def _read_flag(root: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((root / FLAG).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {"state": "building"}
    return data if isinstance(data, dict) else {"state": "building"}

