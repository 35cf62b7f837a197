"""The plugin store: one venv per plugin, built as an immutable generation, switched atomically.

Layout of a store root (a tenant)::

    .isolator-store.json        marker and format version
    .lock                       shared by installs, exclusive for clean
    plugins/<name>/current      the pointer: the name of the current generation
    plugins/<name>/gen-<id>/    venv/ (a package) or content/ (content-only), metadata.json,
                                .lease (held shared by whoever uses the generation)
    locks/<name>.lock           serialises changes to one plugin across processes
    wheelhouse/<sha256>/<file>  every file ever installed, by content
    bytecode/<tag>/<key>.pyc    compiled once per distinct source, hardlinked into venvs
    cache/uv/                   uv's cache (on the store's filesystem, so venvs hardlink it)
    tmp/op-<id>/                one operation's scratch space (clones, builds, resolution)
    policy.json                 the operator's file policy, when there is one (_policy.py)
    audit.jsonl                 the audit log, one JSON object per line

Every install goes the same way, whatever the source: resolve to pins with hashes, fetch the
chosen files into the wheelhouse (verified), build a new generation from exactly those files
with ``--require-hashes``, write its metadata, then ``os.replace`` the pointer. Until that last
step nothing a reader sees has changed; a failure or a kill leaves the previous generation
current, and the new generation's remains are removed on the spot or by :meth:`clean`.
Readers take no lock: the pointer names a finished generation, and generations never change.

:class:`PluginStore` is the facade; the work is done by its parts, one module each:

    _records.py         InstalledPlugin, ResolvedDistribution and the reports
    _disk.py            file names, atomic writes, removal, file locks, progress, checkpoints
    _generations.py     pointers, generations, leases, the store and plugin locks, clean
    _queries.py         reading: installed plugins, the plugins they bring, content, entry points
    _pipeline/          the install pipeline: prepare, fetch, venv, generation; the installer
    _sync.py            lock, sync, verify
    _venvfiles.py       the venv outside site-packages (the interpreter's files)
    _settings.py        the operator's settings of a plugin
    _marketplace.py     marketplaces registered by name, plugins installed from them by name
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from isolator._errors import SourceError
from isolator.store._backends import Backend, UvBackend, get_backend
from isolator.store._bytecode import BytecodePool
from isolator.store._context import StoreContext
from isolator.store._generations import Generations
from isolator.store._layout import default_store_root, legacy_default_store_root, needs_migration
from isolator.store._marketplace import (
    Marketplace,
    MarketplaceOrigin,
    MarketplacePlugin,
    Marketplaces,
    is_reference,
)
from isolator.store._migrate import StoreMigration, migrate_store
from isolator.store._pipeline._installer import Installer
from isolator.store._pool import EnvironmentPool
from isolator.store._queries import Catalog
from isolator.store._records import (
    ENTRY_POINT_GROUPS,
    METADATA_FORMAT,
    PLUGINS_GROUP,
    STORE_FORMAT,
    CleanReport,
    FileChange,
    InstalledPlugin,
    ResolvedDistribution,
    SyncReport,
    VerifyReport,
)
from isolator.store._settings import UNSET, Unset, configure, read_settings
from isolator.store._sync import LockSync
from isolator.store._venvfiles import check_interpreter_files
from isolator.store._wheelhouse import Wheelhouse

if TYPE_CHECKING:
    import os
    from collections.abc import Callable, Iterator, Mapping, Sequence

    from isolator.content._model import Plugin
    from isolator.metadata._distinfo import EntryPoint
    from isolator.policy._permissions import Permissions, PluginSettings
    from isolator.policy._policy import Policy
    from isolator.sources._sources import PluginSource
    from isolator.store._lockfile import Lock

__all__ = [
    "ENTRY_POINT_GROUPS",
    "METADATA_FORMAT",
    "PLUGINS_GROUP",
    "STORE_FORMAT",
    "CleanReport",
    "FileChange",
    "InstalledPlugin",
    "PluginStore",
    "ResolvedDistribution",
    "StoreMigration",
    "SyncReport",
    "VerifyReport",
    "default_store",
    "default_store_root",
    "legacy_default_store_root",
    "migrate_default_store",
]
"""The records are defined in :mod:`isolator.store._records`, and named here too, where
callers have always imported them."""

_DEFAULT_LOCK_TIMEOUT = 900.0
_logger = logging.getLogger("isolator.store")


def migrate_default_store(
    *,
    report: Callable[[str], None] | None = None,
    progress: Callable[[str], None] | None = None,
) -> StoreMigration | None:
    """Move a store found at :func:`legacy_default_store_root` to :func:`default_store_root`,
    when the old root holds an isolator store and the new one does not exist yet; else None.

    Every installed plugin is rebuilt in the new root from the old store's lock and wheelhouse
    (offline, every file's sha256 checked), the operator's settings of each plugin,
    ``policy.json`` and the audit log carried over; then the old store's own entries are removed
    (nothing else in that directory). The move is told as one line to *report* (default: a
    warning on the ``isolator.store`` logger). A failure raises :class:`StoreError` naming both
    roots and how to move the store by hand; the old store is then as it was, and no new one.
    :func:`default_store` and ``ohp`` without ``--root`` call this first.
    """
    new_root = default_store_root()
    old_root = legacy_default_store_root()
    if not needs_migration(old_root, new_root):
        return None
    moved = migrate_store(old_root, PluginStore(new_root), PluginStore, progress=progress)
    if moved is not None:
        if report is None:
            _logger.warning("%s", moved.message())
        else:
            report(moved.message())
    return moved


_default_stores: dict[Path, PluginStore] = {}


def default_store() -> PluginStore:
    """The store at :func:`default_store_root` (one object per root, made on first use; a store
    at the old default root is moved there first, see :func:`migrate_default_store`)."""
    root = default_store_root()
    store = _default_stores.get(root)
    if store is None:
        migrate_default_store()
        store = _default_stores[root] = PluginStore(root)
    return store


class PluginStore:
    """A store of plugins under one root directory; a tenant is a root.

    *backend* is ``"uv"`` (default), ``"virtualenv"``, or a :class:`Backend`. *python* is the
    default interpreter spec for plugin venvs (a version like ``3.12`` or a path; default: the
    interpreter running isolator). *cache_dir* is uv's cache (default ``ROOT/cache/uv``, on the
    same filesystem as the venvs so files are hardlinked, not copied). *policy* is the
    operator's :class:`Policy` (default: ``Policy.load(root)``, made on first use).

    *pool* is an environment pool directory shared by many stores (tenants): a package
    plugin's venv is built there once per resolved set and used read-only by every store
    that installs the same set; uv's cache, the wheelhouse and the bytecode pool are the
    pool's (``DIR/cache/uv``...). The store keeps its own generations, settings, policy and
    audit log (:mod:`isolator.store._pool`, docs/store.md).
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        backend: Backend | str = "uv",
        python: str | os.PathLike[str] | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        lock_timeout: float = _DEFAULT_LOCK_TIMEOUT,
        policy: Policy | None = None,
        pool: str | os.PathLike[str] | None = None,
    ) -> None:
        root_path = Path(root).expanduser().absolute()
        env_pool = None
        if pool is not None:
            env_pool = EnvironmentPool(pool, lock_timeout=lock_timeout)
            env_pool.check_tenant(root_path)
        shared = env_pool.root if env_pool is not None else root_path
        cache = Path(cache_dir).absolute() if cache_dir is not None else shared / "cache" / "uv"
        if isinstance(backend, str):
            backend = UvBackend(cache_dir=cache) if backend == "uv" else get_backend(backend)
        self._generations = Generations(root_path, lock_timeout)
        self._generations.pool = env_pool
        self._catalog = Catalog(self._generations)
        self._ctx = StoreContext(
            root_path, backend=backend, python=python,
            wheelhouse=Wheelhouse(shared / "wheelhouse"),
            bytecode=BytecodePool(shared / "bytecode"),
            generations=self._generations, catalog=self._catalog, policy=policy,
            pool=env_pool)
        self._installer = Installer(self._ctx)
        self._sync = LockSync(self._ctx, self._installer)
        self._marketplaces = Marketplaces(self._ctx)

    def __repr__(self) -> str:
        pool = "" if self.pool is None else f", pool={str(self.pool)!r}"
        return f"PluginStore({str(self.root)!r}, backend={self.backend.name!r}{pool})"

    # ---- what the parts share --------------------------------------------------------------

    @property
    def root(self) -> Path:
        return self._ctx.root

    @property
    def backend(self) -> Backend:
        return self._ctx.backend

    @backend.setter
    def backend(self, value: Backend) -> None:
        self._ctx.backend = value

    @property
    def python(self) -> str | os.PathLike[str] | None:
        """The default interpreter spec for plugin venvs."""
        return self._ctx.python

    @python.setter
    def python(self, value: str | os.PathLike[str] | None) -> None:
        self._ctx.python = value

    @property
    def lock_timeout(self) -> float:
        return self._generations.lock_timeout

    @lock_timeout.setter
    def lock_timeout(self, value: float) -> None:
        self._generations.lock_timeout = value

    @property
    def pool(self) -> Path | None:
        """The environment pool's directory (its real path), or None."""
        return None if self._ctx.pool is None else self._ctx.pool.root

    @property
    def wheelhouse(self) -> Wheelhouse:
        return self._ctx.wheelhouse

    @property
    def bytecode(self) -> BytecodePool:
        return self._ctx.bytecode

    @property
    def policy(self) -> Policy:
        """The operator's policy: checks, the profile choice, and the audit log
        (``ROOT/policy.json``, ``ROOT/audit.jsonl``, ``isolator.policy`` entry points)."""
        return self._ctx.policy

    # ---- reading (_queries.py) -------------------------------------------------------------

    def list_installed(self) -> list[InstalledPlugin]:
        """Installed plugins sorted by name: each installed one, then the plugins they bring.

        A plugin brought by several is listed once (by the first in name order); one installed
        itself is never listed as brought.
        """
        return self._catalog.list_installed()

    def get(self, name: str) -> InstalledPlugin:
        """The installed plugin *name* (or one an installed plugin brought); else
        :class:`PluginNotFoundError`."""
        return self._catalog.get(name)

    def load(self, name: str) -> Plugin:
        """Load the content of installed plugin *name* (from site-packages; nothing imported).

        The plugin's name is its entry point name and its version the package's; a manifest
        that says otherwise gets a warning diagnostic. ``plugin.installation`` says where it
        came from, and ``brought_by`` which installed plugin brought it.
        """
        return self._catalog.load(name)

    def entry_points(self, name: str) -> dict[str, tuple[EntryPoint, ...]]:
        """Plugin *name*'s entry points by group (:data:`ENTRY_POINT_GROUPS`), read from its
        distribution's dist-info in the venv: the tools and agent factory a worker may run."""
        return self._catalog.entry_points(name)

    @contextlib.contextmanager
    def lease(self, name: str) -> Iterator[InstalledPlugin]:
        """Hold plugin *name*'s current generation: it is not removed until the lease ends.

        A worker runs under a lease; an upgrade meanwhile installs a new generation and the
        leased one stays until it is released (then :meth:`clean`, or the next change of the
        plugin, removes it).
        """
        with self._catalog.lease(name) as installed:
            yield installed

    # ---- changing (_pipeline/) -------------------------------------------------------------

    def install(
        self,
        source: PluginSource | str,
        *,
        version: str | None = None,
        python: str | os.PathLike[str] | None = None,
        index_url: str | None = None,
        find_links: Sequence[str | os.PathLike[str]] = (),
        no_index: bool = False,
        allow_build: bool = False,
        upgrade: bool = False,
        progress: Callable[[str], None] | None = None,
        timeout: float | None = None,
    ) -> InstalledPlugin:
        """Install a plugin from *source* into its own venv (or copy a content-only one).

        Already installed from the same package and satisfying *version*: returned as is,
        unless *upgrade*. Another package with the same plugin name: :class:`PluginCollisionError`.

        A string that is a marketplace reference (``PLUGIN@MARKETPLACE``, or a bare ``PLUGIN``
        when a marketplace is registered, and no such path exists: :meth:`is_marketplace_reference`)
        installs from the marketplace (:meth:`install_from_marketplace`).
        """
        if isinstance(source, str) and self.is_marketplace_reference(source):
            if version is not None:
                raise SourceError(source, "version= does not apply to a marketplace reference "
                                  "(its entry says what to install)")
            return self.install_from_marketplace(
                source, python=python, index_url=index_url, find_links=find_links,
                no_index=no_index, allow_build=allow_build, upgrade=upgrade,
                progress=progress, timeout=timeout)
        return self._installer.install(
            source, version=version, python=python, index_url=index_url,
            find_links=find_links, no_index=no_index, allow_build=allow_build,
            upgrade=upgrade, progress=progress, timeout=timeout)

    def upgrade(
        self,
        name: str,
        *,
        version: str | None = None,
        progress: Callable[[str], None] | None = None,
        timeout: float | None = None,
        index_url: str | None = None,
    ) -> InstalledPlugin:
        """Resolve plugin *name*'s recorded source again (optionally with a new *version*).

        The record holds no credentials: an index that needs them gets them as *index_url*,
        the recorded index with its credentials (``https://user:token@host/simple``), or from
        uv's netrc (``~/.netrc``)."""
        return self._installer.upgrade(name, version=version, progress=progress,
                                       timeout=timeout, index_url=index_url)

    def reinstall(
        self,
        name: str,
        *,
        progress: Callable[[str], None] | None = None,
        timeout: float | None = None,
    ) -> InstalledPlugin:
        """Build a fresh generation of plugin *name* from its record: the same files, verified.

        A package is installed offline from the store's wheelhouse with ``--require-hashes``;
        a file that changed there is refused (:class:`HashMismatchError`). A content-only
        plugin is copied again from its source.
        """
        return self._installer.reinstall(name, progress=progress, timeout=timeout)

    def uninstall(self, name: str) -> InstalledPlugin:
        """Remove plugin *name*. Its venv stays until no worker leases it."""
        return self._installer.uninstall(name)

    # ---- marketplaces (_marketplace.py) ----------------------------------------------------

    def add_marketplace(
        self,
        name: str,
        source: PluginSource | str,
        *,
        ref: str | None = None,
        repo_path: str | None = None,
        progress: Callable[[str], None] | None = None,
        timeout: float | None = None,
    ) -> Marketplace:
        """Register the marketplace at *source* (a git source or a local directory; *ref* and
        *repo_path* as for a git plugin source) under *name*.

        The marketplace is fetched now, its ``.plugin/marketplace.json`` (else
        ``.claude-plugin/marketplace.json``) read and checked, and its source, the commit read
        and its plugins recorded in ``ROOT/marketplaces.json``. A name already registered:
        :class:`MarketplaceError` (:meth:`update_marketplace` reads it again).
        """
        return self._marketplaces.add(name, source, ref=ref, repo_path=repo_path,
                                      progress=progress, timeout=timeout)

    def update_marketplace(
        self,
        name: str,
        *,
        progress: Callable[[str], None] | None = None,
        timeout: float | None = None,
    ) -> Marketplace:
        """Fetch registered marketplace *name* again from its recorded source and ref; its
        plugins install from the new commit from then on (installed ones are not changed)."""
        return self._marketplaces.update(name, progress=progress, timeout=timeout)

    def remove_marketplace(self, name: str) -> Marketplace:
        """Unregister marketplace *name* (plugins installed from it stay installed)."""
        return self._marketplaces.remove(name)

    def marketplaces(self) -> list[Marketplace]:
        """The registered marketplaces, sorted by name."""
        return self._marketplaces.list()

    def get_marketplace(self, name: str) -> Marketplace:
        """Registered marketplace *name*; else :class:`MarketplaceLookupError` listing those
        registered."""
        return self._marketplaces.get(name)

    def is_marketplace_reference(self, text: str) -> bool:
        """Whether :meth:`install` (and ``ohp install``) reads *text* as a marketplace
        reference: not an existing path, and ``NAME@MARKETPLACE``, or a bare ``NAME`` while a
        marketplace is registered (:func:`isolator.store._marketplace.is_reference`)."""
        if not is_reference(text, registered=False):
            return is_reference(text, registered=True) and bool(
                self._marketplaces.raw()["marketplaces"])
        return True

    def resolve_plugin(
        self,
        reference: str,
        *,
        index_url: str | None = None,
        find_links: Sequence[str | os.PathLike[str]] = (),
        no_index: bool = False,
    ) -> MarketplacePlugin:
        """Resolve ``PLUGIN@MARKETPLACE`` (that marketplace) or a bare ``PLUGIN`` (the one
        registered marketplace that has it), as the OpenHands SDK resolves them; the result's
        ``source`` installs it, with the index options given.

        :class:`MarketplaceLookupError` (with ``candidates``, closest first) for an unknown
        marketplace, a plugin it does not list, or a bare name in several marketplaces;
        :class:`MarketplaceError` for an entry whose source cannot be installed.
        """
        return self._marketplaces.resolve(reference, index_url=index_url,
                                          find_links=find_links, no_index=no_index)

    def install_from_marketplace(
        self,
        reference: str,
        *,
        python: str | os.PathLike[str] | None = None,
        index_url: str | None = None,
        find_links: Sequence[str | os.PathLike[str]] = (),
        no_index: bool = False,
        allow_build: bool = False,
        upgrade: bool = False,
        progress: Callable[[str], None] | None = None,
        timeout: float | None = None,
    ) -> InstalledPlugin:
        """Install the plugin *reference* names (:meth:`resolve_plugin`) through the normal
        install pipeline, and record where it came from (:meth:`marketplace_origin`)."""
        resolved = self.resolve_plugin(reference, index_url=index_url, find_links=find_links,
                                       no_index=no_index)
        installed = self._installer.install(
            resolved.source, version=None, python=python, index_url=None, find_links=(),
            no_index=False, allow_build=allow_build, upgrade=upgrade, progress=progress,
            timeout=timeout)
        self._marketplaces.record_origin(installed, resolved)
        return installed

    def marketplace_origin(self, name: str) -> MarketplaceOrigin | None:
        """The marketplace installed plugin *name* came from, while it is installed from the
        source that marketplace gave; else ``None``."""
        return self._marketplaces.origin(self.get(name))

    def marketplace_origins(self) -> dict[str, MarketplaceOrigin]:
        """:meth:`marketplace_origin` of every installed plugin that has one (one read)."""
        data = self._marketplaces.raw()
        return {p.name: origin for p in self.list_installed()
                if (origin := self._marketplaces.origin(p, data)) is not None}

    # ---- the operator's settings of a plugin (_settings.py) --------------------------------

    def settings(self, name: str) -> PluginSettings:
        """The sandbox profile and grants the operator chose for plugin *name* (defaults when
        none were chosen). Kept across upgrades; removed with the plugin."""
        return read_settings(self.root, name)

    def configure(self, name: str, *, sandbox: str | Unset | None = UNSET,
                  grants: Permissions | Unset = UNSET) -> PluginSettings:
        """Set the default sandbox profile and/or the grants of installed plugin *name*."""
        return configure(self._ctx, name, sandbox=sandbox, grants=grants)

    # ---- generations (_generations.py) -----------------------------------------------------

    def clean(self, progress: Callable[[str], None] | None = None) -> CleanReport:
        """Remove what no current generation needs: old and half-built generations that no
        worker leases, scratch space of interrupted operations, and wheels no generation uses.

        Waits for running installs to finish (they hold the store lock shared).

        With a pool: this store's own wheelhouse and bytecode (from before it used the pool)
        are cleaned as without one, then the pool is collected: environments no store's
        generation names any more, their references, and the pool's unused wheels and
        bytecode (:meth:`isolator.store._pool.EnvironmentPool.collect`).
        """
        pool = self._ctx.pool
        if pool is None:
            return self._generations.clean(self.wheelhouse, self.bytecode, progress)
        report = self._generations.clean(Wheelhouse(self.root / "wheelhouse"),
                                         BytecodePool(self.root / "bytecode"), progress)
        collected = pool.collect(self.wheelhouse, self.bytecode, progress)
        return dataclasses.replace(report, pool=collected.to_dict(),
                                   bytes_freed=report.bytes_freed + collected.bytes_freed)

    # ---- lock, sync, verify (_sync.py, _venvfiles.py) --------------------------------------

    def lock(self) -> dict[str, Any]:
        """The store's whole plugin set as lock data (format: :mod:`isolator.store._lockfile`): each
        installed plugin, its source, and every distribution with its sha256. A plugin another
        plugin brings is one of that plugin's distributions, not an entry of its own."""
        return self._sync.lock()

    def sync(
        self,
        lock: Lock | Mapping[str, Any] | str | os.PathLike[str],
        *,
        find_links: Sequence[str | os.PathLike[str]] = (),
        progress: Callable[[str], None] | None = None,
        timeout: float | None = None,
    ) -> SyncReport:
        """Make the store hold exactly the plugins of *lock* (a :class:`Lock`, lock data as
        :meth:`lock` returns it, or a lock file's path).

        A plugin installed as the lock says is left untouched; one missing or different gets a
        new generation built from exactly the locked files (the install pipeline of
        :meth:`reinstall`); one the lock lacks is uninstalled. First every file of every plugin
        to install is checked against the lock's sha256, before anything changes: from the
        store's wheelhouse, the lock's ``file:`` URL, a *find_links* directory (by file name),
        or a download of the lock's URL. A content-only plugin is copied from its source (a git
        source at the locked commit) and its content hash compared. Then each plugin switches
        on its own, atomically, so a failure part-way leaves every plugin at its old or its new
        generation; plugins the lock lacks are removed only after every install succeeded.
        """
        return self._sync.sync(lock, find_links=find_links, progress=progress,
                               timeout=timeout)

    def verify(self, name: str | None = None) -> VerifyReport:
        """Check every installed file of plugin *name* (default: every installed plugin).

        A package: each distribution's files against its ``RECORD``, the ``RECORD`` against
        the wheel's own (hash-pinned in the wheelhouse), anything else in site-packages as
        ``unexpected``, and each ``.pyc`` against the bytecode pool's entry for its source.
        A content-only plugin: its files against the per-file hashes recorded at install.
        """
        return self._sync.verify(name)

    def check_interpreter_files(self, installed: InstalledPlugin) -> None:
        """Raise :class:`StoreError` unless the files of *installed*'s venv that its
        interpreter reads at start are as the store made them: ``pyvenv.cfg``, the
        ``bin/python*`` links and every other file the backend created outside site-packages
        (against the record made at install), and no ``pyvenv.cfg``, ``python*`` (``._pth``)
        or other interpreter file added in ``bin/`` or at the venv's root.

        Cheap (a few small files hashed, two directories listed): call it before starting any
        process with the venv's interpreter. A content-only plugin has nothing to check.
        """
        check_interpreter_files(installed)
