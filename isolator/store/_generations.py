"""Generations: how a store root holds plugins, and how one changes atomically.

A plugin's directory holds immutable generations and a pointer, ``current``, naming one. A
change builds a new generation in place (:meth:`Generations.building`), writes its metadata
and then replaces the pointer with ``os.replace`` (:meth:`Generations.publish`): until that
step nothing a reader sees has changed. The older generations then go, except those a worker
leases (:meth:`Generations.lease`). Changes are ordered by a store lock (shared by installs,
exclusive for :meth:`Generations.clean`) and a lock per plugin.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Any

from isolator._errors import StoreError
from isolator.policy._policy import AUDIT_LOG, POLICY_FILE
from isolator.store._disk import (
    checkpoint,
    flock,
    fsync_dir,
    new_generation_id,
    remove,
    remove_unless_leased,
    say,
    tree_size,
    write_json_atomic,
)
from isolator.store._layout import LEASE, MARKER, METADATA, POINTER, read_pointer
from isolator.store._records import STORE_FORMAT, CleanReport, from_metadata

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from isolator.store._bytecode import BytecodePool
    from isolator.store._pool import EnvironmentPool
    from isolator.store._records import InstalledPlugin
    from isolator.store._wheelhouse import Wheelhouse


class Generations:
    """The plugins of one store root on disk: pointers, generations, leases and locks."""

    def __init__(self, root: Path, lock_timeout: float) -> None:
        self.root = root
        self.lock_timeout = lock_timeout
        self.published: set[str] = set()  # generations this object made current, to audit
        self.pool: EnvironmentPool | None = None
        """The store's environment pool: its lock is held shared with the store's."""
        self._records: dict[tuple[str, str], InstalledPlugin] = {}

    # ---- reading ---------------------------------------------------------------------------

    def has_marker(self) -> bool:
        """Whether the root is a store already (its marker exists)."""
        return (self.root / MARKER).exists()

    def plugin_dir(self, name: str) -> Path:
        return self.root / "plugins" / name

    def plugin_names(self) -> list[str]:
        try:
            with os.scandir(self.root / "plugins") as entries:
                return sorted(entry.name for entry in entries if entry.is_dir())
        except FileNotFoundError:
            return []

    def current(self, name: str) -> InstalledPlugin | None:
        plugin_dir = self.plugin_dir(name)
        generation = read_pointer(plugin_dir)
        if generation is None:
            return None
        # A generation never changes once its pointer names it (ids are never reused): its
        # parsed record is kept for the life of this object.
        key = (name, generation)
        cached = self._records.get(key)
        if cached is not None:
            return cached
        gen = plugin_dir / generation
        try:
            with open(gen / METADATA, encoding="utf-8") as handle:
                data = json.load(handle)
        except FileNotFoundError:
            raise StoreError(f"plugin {name!r}", f"current generation {generation} has no "
                             "metadata: the store is damaged; reinstall the plugin") from None
        except ValueError as exc:
            raise StoreError(str(gen / METADATA), f"unreadable metadata: {exc}") from None
        installed = self._records[key] = from_metadata(gen, data)
        return installed

    @contextlib.contextmanager
    def lease(self, name: str,
              get: Callable[[str], InstalledPlugin]) -> Iterator[InstalledPlugin]:
        """Hold the generation ``get(name)`` names: it is not removed until the lease ends."""
        for _attempt in range(5):
            installed = get(name)
            try:
                fd = os.open(installed.path / LEASE, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                continue  # removed between reading the pointer and opening: read it again
            try:
                fcntl.flock(fd, fcntl.LOCK_SH)
                if not (installed.path / METADATA).exists():
                    continue
                yield installed
                return
            finally:
                os.close(fd)
        raise StoreError(f"plugin {name!r}", "its generation kept changing while leasing it")

    # ---- changing --------------------------------------------------------------------------

    @contextlib.contextmanager
    def building(self, name: str) -> Iterator[Path]:
        """A new generation directory of plugin *name* (the caller holds the plugin lock).

        If the body fails before :meth:`publish` switched the pointer to it, the generation
        is removed; once switched it is the installed one and stays. Afterwards the previous
        generations go, except those a worker leases.
        """
        plugin_dir = self.plugin_dir(name)
        gen = plugin_dir / new_generation_id()
        try:
            gen.mkdir(parents=True)
            (gen / LEASE).touch()
            yield gen
        except BaseException:
            if read_pointer(plugin_dir) != gen.name:
                remove(gen)
                with contextlib.suppress(OSError):
                    plugin_dir.rmdir()
            raise
        self.drop_generations(name, keep=gen.name)

    def publish(self, gen: Path, metadata: dict[str, Any]) -> None:
        """Write the generation's metadata, then make it current: the one visible step."""
        write_json_atomic(gen / METADATA, metadata)
        fsync_dir(gen)
        checkpoint("metadata-written")
        self.switch(gen.parent, gen.name)
        self.published.add(gen.name)
        checkpoint("switched")

    def switch(self, plugin_dir: Path, generation: str) -> None:
        pointer = plugin_dir / POINTER
        tmp = plugin_dir / f".{POINTER}.{secrets.token_hex(4)}"
        try:
            with open(tmp, "w", encoding="utf-8") as handle:
                handle.write(generation + "\n")
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, pointer)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        fsync_dir(plugin_dir)

    def unpublish(self, name: str) -> None:
        """Remove plugin *name*'s pointer, then its generations no worker leases (the caller
        holds the plugin lock)."""
        plugin_dir = self.plugin_dir(name)
        os.unlink(plugin_dir / POINTER)
        fsync_dir(plugin_dir)
        self.drop_generations(name, keep=None)
        with contextlib.suppress(OSError):
            plugin_dir.rmdir()  # only when no leased generation is left in it

    def drop_generations(self, name: str, keep: str | None) -> None:
        plugin_dir = self.plugin_dir(name)
        for entry in sorted(plugin_dir.glob("gen-*")):
            if entry.name != keep:
                remove_unless_leased(entry)

    def clean(self, wheelhouse: Wheelhouse, bytecode: BytecodePool,
              progress: Callable[[str], None] | None) -> CleanReport:
        """:meth:`PluginStore.clean`."""
        if not self.has_marker():
            return CleanReport()
        self.check_store()
        removed_gens: list[str] = []
        removed_plugins: list[str] = []
        kept: list[str] = []
        freed = 0
        with self.store_lock(shared=False):
            scratch = 0
            tmp = self.root / "tmp"
            if tmp.is_dir():
                for entry in list(tmp.iterdir()):
                    freed += tree_size(entry)
                    remove(entry)
                    scratch += 1
            keep_hashes: set[str] = set()
            plugins = self.root / "plugins"
            for plugin_dir in sorted(plugins.iterdir()) if plugins.is_dir() else []:
                name = plugin_dir.name
                current_gen = read_pointer(plugin_dir)
                for entry in sorted(plugin_dir.iterdir()):
                    if entry.name == POINTER:
                        continue
                    if entry.name == current_gen:
                        keep_hashes.update(_metadata_hashes(entry))
                        continue
                    if entry.name.startswith("gen-") and entry.is_dir():
                        size = tree_size(entry)
                        if remove_unless_leased(entry):
                            removed_gens.append(f"{name}/{entry.name}")
                            freed += size
                        else:
                            kept.append(f"{name}/{entry.name}")
                            keep_hashes.update(_metadata_hashes(entry))
                    else:  # a pointer's temporary file, or anything else left behind
                        freed += tree_size(entry)
                        remove(entry)
                if current_gen is None and not any(plugin_dir.iterdir()):
                    plugin_dir.rmdir()
                    removed_plugins.append(name)
            wheels, wheel_bytes = wheelhouse.remove_unreferenced(keep_hashes)
            freed += wheel_bytes
            pyc_files, pyc_bytes = bytecode.remove_unused()
            freed += pyc_bytes
            locks = self.root / "locks"
            for lock in sorted(locks.iterdir()) if locks.is_dir() else []:
                if not (plugins / lock.stem).exists():
                    lock.unlink()
        say(progress, f"removed {len(removed_gens)} generations, {wheels} wheels")
        return CleanReport(tuple(removed_gens), tuple(removed_plugins), scratch, wheels, freed,
                           tuple(kept), pyc_files)

    # ---- locking and the root --------------------------------------------------------------

    def check_store(self, create: bool = False) -> None:
        marker = self.root / MARKER
        try:
            data = json.loads(marker.read_text(encoding="utf-8"))
        except FileNotFoundError:
            # Ignore a marker's temporary file: a concurrent process is creating this store;
            # and the operator's policy and audit log, which may come before the first install.
            if self.root.is_dir() and any(not entry.name.startswith(f".{MARKER}.") and
                                          entry.name not in (POLICY_FILE, AUDIT_LOG)
                                          for entry in self.root.iterdir()):
                if marker.exists():  # created by a concurrent process since we looked
                    self.check_store(create=create)
                    return
                raise StoreError(str(self.root), f"exists and is not a plugin store (no "
                                 f"{MARKER}); choose a new or empty directory") from None
            if not create:
                return
            self.root.mkdir(parents=True, exist_ok=True)
            write_json_atomic(marker, {"format": STORE_FORMAT})
            return
        except (ValueError, OSError) as exc:
            raise StoreError(str(marker), f"unreadable store marker: {exc}") from None
        fmt = data.get("format") if isinstance(data, dict) else None
        if fmt != STORE_FORMAT:
            raise StoreError(str(self.root), f"store format {fmt!r}; this isolator reads "
                             f"format {STORE_FORMAT}")

    @contextlib.contextmanager
    def operation(self, progress: Callable[[str], None] | None) -> Iterator[Path]:
        """Scratch space for one install, under the store lock held shared.

        An OSError on the way (a full disk, a read-only root) becomes a :class:`StoreError`:
        the install is abandoned like any other failure, and its message is one line.
        """
        try:
            self.check_store(create=True)
            with self.store_lock(shared=True, progress=progress), \
                    self._pool_lock(progress):
                tmp = self.root / "tmp"
                tmp.mkdir(exist_ok=True)
                op = Path(os.fspath(tmp / f"op-{secrets.token_hex(6)}"))
                op.mkdir()
                try:
                    yield op
                finally:
                    remove(op)
        except OSError as exc:
            if isinstance(exc, BrokenPipeError):  # the CLI's reader left: not ours to report
                raise
            where = f" ({exc.filename})" if exc.filename else ""
            raise StoreError(str(self.root), f"{exc.strerror or exc}{where}") from exc

    @contextlib.contextmanager
    def _pool_lock(self, progress: Callable[[str], None] | None) -> Iterator[None]:
        """The pool's lock held shared (after the store's): the pool collects nothing while
        this store's operation may be registering or building an environment."""
        if self.pool is None:
            yield
            return
        self.pool.check(create=True)
        with self.pool.lock(shared=True, progress=progress):
            yield

    @contextlib.contextmanager
    def store_lock(self, *, shared: bool,
                   progress: Callable[[str], None] | None = None) -> Iterator[None]:
        with flock(self.root / ".lock", shared=shared, timeout=self.lock_timeout,
                   what="the store", progress=progress):
            yield

    @contextlib.contextmanager
    def plugin_lock(self, name: str,
                    progress: Callable[[str], None] | None = None) -> Iterator[None]:
        locks = self.root / "locks"
        locks.mkdir(parents=True, exist_ok=True)
        with flock(locks / f"{name}.lock", shared=False, timeout=self.lock_timeout,
                   what=f"plugin {name!r}", progress=progress):
            yield


def _metadata_hashes(gen: Path) -> set[str]:
    try:
        data = json.loads((gen / METADATA).read_text(encoding="utf-8"))
        return {d["sha256"] for d in data.get("distributions", [])} | {
            d["built_from"]["sha256"] for d in data.get("distributions", []) if
            d.get("built_from")}
    except (OSError, ValueError, KeyError, TypeError):
        return set()
