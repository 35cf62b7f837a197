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
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import re
import secrets
import shutil
import signal
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from stat import S_ISDIR as stat_is_dir
from stat import S_ISLNK as stat_is_link
from stat import S_ISREG as stat_is_reg
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlsplit

from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from isolator._errors import (
    CommandError,
    DistributionError,
    HashMismatchError,
    IsolatorError,
    PluginCollisionError,
    PluginNotFoundError,
    ResolutionError,
    SourceError,
    StoreError,
)
from isolator._redact import redact_text, redact_url
from isolator.content._loader import load_plugin
from isolator.content._model import Diagnostic, Installation, Plugin
from isolator.metadata._distinfo import (
    EntryPoint,
    find_distribution,
    find_module_dir,
    find_site_packages,
    iter_distributions,
    read_record,
)
from isolator.policy._permissions import (
    SANDBOX_PROFILES,
    Permissions,
    PermissionsError,
    PluginSettings,
)
from isolator.policy._policy import (
    AUDIT_LOG,
    POLICY_FILE,
    Policy,
    check_distributions,
    distribution_name,
    source_indexes,
)
from isolator.sources._sources import (
    PluginSource,
    classify_directory,
    resolve_repo_path,
    url_credentials,
)
from isolator.store._acquire import copy_content, git_checkout
from isolator.store._backends import Backend, UvBackend, get_backend
from isolator.store._bytecode import BytecodePool
from isolator.store._interpreters import Interpreter, base_interpreter, find_python
from isolator.store._lockfile import (
    Lock,
    LockedPlugin,
    check_content,
    check_site_packages,
    file_hashes,
    locked_plugin,
    parse_lock,
    read_lock,
)
from isolator.store._resolve import (
    Artifact,
    Pin,
    check_wheel,
    interpreter_tags,
    select_wheel,
    sha256_file,
    wheel_distribution,
    wheel_entry_points,
)
from isolator.store._wheelhouse import Wheelhouse

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping, Sequence

    from isolator.metadata._distinfo import Distribution
    from isolator.store._lockfile import Change

STORE_FORMAT = 1
METADATA_FORMAT = 1
PLUGINS_GROUP = "openhands.plugins"
ENTRY_POINT_GROUPS = ("openhands.plugins", "openhands.agents", "openhands.tools",
                      "openhands.components")
"""The groups a plugin package declares: its content root, its agent factory, its tools."""
_MARKER = ".isolator-store.json"
_METADATA = "metadata.json"
_POINTER = "current"
_LEASE = ".lease"
_NAME_MAX = 100
_DEFAULT_LOCK_TIMEOUT = 900.0


class _Unset:
    """The default of an argument whose None means something."""


_UNSET = _Unset()


def default_store_root() -> Path:
    """``~/.openhands/plugins``; ``OH_PERSISTENCE_DIR`` replaces ``~/.openhands`` (as the SDK)."""
    base = os.environ.get("OH_PERSISTENCE_DIR")
    return (Path(base).expanduser() if base else Path.home() / ".openhands") / "plugins"


_default_stores: dict[Path, PluginStore] = {}


def default_store() -> PluginStore:
    """The store at :func:`default_store_root` (one object per root, made on first use)."""
    root = default_store_root()
    store = _default_stores.get(root)
    if store is None:
        store = _default_stores[root] = PluginStore(root)
    return store


@dataclass(frozen=True)
class ResolvedDistribution:
    """One distribution a generation was built from: exact version and the file's sha256."""

    name: str
    version: str
    filename: str
    sha256: str
    url: str
    """Where the file came from (an index URL or a ``file:`` URL)."""
    built_from: dict[str, str] | None = None
    """For a wheel the store built from an sdist: that sdist's url, filename and sha256."""

    def artifact(self) -> Artifact:
        return Artifact(url=self.url, sha256=self.sha256, filename=self.filename)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"name": self.name, "version": self.version,
                                "filename": self.filename, "sha256": self.sha256,
                                "url": self.url}
        if self.built_from is not None:
            data["built_from"] = dict(self.built_from)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ResolvedDistribution:
        return cls(name=data["name"], version=data["version"], filename=data["filename"],
                   sha256=data["sha256"], url=data["url"], built_from=data.get("built_from"))


@dataclass(frozen=True)
class InstalledPlugin:
    """What the store knows of one installed plugin (its current generation)."""

    name: str
    version: str
    kind: Literal["package", "content-only"]
    source: PluginSource
    generation: str
    path: Path
    """The generation directory."""
    content_dir: Path
    """The plugin directory: the module in site-packages, or the copied content."""
    installed_at: str
    package: str | None = None
    """The distribution that declares the plugin (``None`` for content-only)."""
    module: str | None = None
    venv: Path | None = None
    python: dict[str, Any] | None = None
    backend: dict[str, str] | None = None
    constraint: str | None = None
    distributions: tuple[ResolvedDistribution, ...] = ()
    allow_build: bool = False
    git_commit: str | None = None
    content_sha256: str | None = None
    brought_by: str | None = None
    """For a plugin another plugin depends on: the plugin whose venv it is loaded from."""
    metadata: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def python_version(self) -> str | None:
        return None if self.python is None else str(self.python.get("version"))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data (``ohp list --json`` and ``ohp show NAME --json``)."""
        return {
            "name": self.name,
            "version": self.version,
            "kind": self.kind,
            "package": self.package,
            "module": self.module,
            "python": self.python_version,
            "python_path": None if self.python is None else self.python.get("path"),
            "source": self.source.source,
            "source_detail": self.source.to_dict(),
            "constraint": self.constraint,
            "generation": self.generation,
            "path": str(self.path),
            "content_dir": str(self.content_dir),
            "venv": None if self.venv is None else str(self.venv),
            "backend": self.backend,
            "installed_at": self.installed_at,
            "allow_build": self.allow_build,
            "git_commit": self.git_commit,
            "brought_by": self.brought_by,
            "distributions": [d.to_dict() for d in self.distributions],
        }

    def installation(self) -> Installation:
        """The summary a loaded :class:`Plugin` carries."""
        return Installation(
            name=self.name, version=self.version, kind=self.kind, package=self.package,
            generation=self.generation, source=self.source.source,
            python=self.python_version, brought_by=self.brought_by,
        )


@dataclass(frozen=True)
class CleanReport:
    """What :meth:`PluginStore.clean` removed."""

    generations: tuple[str, ...] = ()
    plugins: tuple[str, ...] = ()
    scratch: int = 0
    wheels: int = 0
    bytes_freed: int = 0
    kept_leased: tuple[str, ...] = ()
    bytecode: int = 0
    """Pooled ``.pyc`` files no venv links to any more."""

    def to_dict(self) -> dict[str, Any]:
        return {"generations": list(self.generations), "plugins": list(self.plugins),
                "scratch": self.scratch, "wheels": self.wheels, "bytes_freed": self.bytes_freed,
                "kept_leased": list(self.kept_leased), "bytecode": self.bytecode}


@dataclass(frozen=True)
class SyncReport:
    """What :meth:`PluginStore.sync` did: plugin names by what happened to them."""

    installed: tuple[str, ...] = ()
    """In the lock, not in the store before."""
    replaced: tuple[str, ...] = ()
    """In both, but different: a new generation built from the lock."""
    removed: tuple[str, ...] = ()
    """In the store, not in the lock: uninstalled."""
    unchanged: tuple[str, ...] = ()
    """Already as the lock says: untouched."""

    @property
    def changed(self) -> bool:
        return bool(self.installed or self.replaced or self.removed)

    def to_dict(self) -> dict[str, Any]:
        return {"installed": list(self.installed), "replaced": list(self.replaced),
                "removed": list(self.removed), "unchanged": list(self.unchanged)}


@dataclass(frozen=True)
class FileChange:
    """One installed file that is not as it was installed (:meth:`PluginStore.verify`)."""

    plugin: str
    distribution: str | None
    """The distribution that owns the path (``None``: no distribution, or content-only)."""
    path: str
    """Relative to the venv's site-packages, or to a content-only plugin's directory."""
    change: Literal["missing", "modified", "unexpected"]

    def to_dict(self) -> dict[str, Any]:
        return {"plugin": self.plugin, "distribution": self.distribution, "path": self.path,
                "change": self.change}


@dataclass(frozen=True)
class VerifyReport:
    """What :meth:`PluginStore.verify` found: changed files, and plugins it could not check."""

    plugins: tuple[str, ...] = ()
    files: int = 0
    """How many files were checked."""
    changes: tuple[FileChange, ...] = ()
    unverified: tuple[str, ...] = ()
    """``"name: reason"`` for a plugin whose record cannot be checked (it counts as a failure)."""

    @property
    def ok(self) -> bool:
        return not self.changes and not self.unverified

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "plugins": list(self.plugins), "files": self.files,
                "changes": [c.to_dict() for c in self.changes],
                "unverified": list(self.unverified)}


@dataclass
class _Staged:
    """A lock entry checked and ready to install (:meth:`PluginStore.sync`)."""

    entry: LockedPlugin
    op: Path
    interpreter: Interpreter | None = None
    dists: list[ResolvedDistribution] = field(default_factory=list)
    prepared: _Prepared | None = None


@dataclass
class _Prepared:
    """A source made ready to resolve: a root requirement, or content to copy."""

    requirement: str | None = None
    root_name: str | None = None
    content_dir: Path | None = None
    git_commit: str | None = None


class PluginStore:
    """A store of plugins under one root directory; a tenant is a root.

    *backend* is ``"uv"`` (default), ``"virtualenv"``, or a :class:`Backend`. *python* is the
    default interpreter spec for plugin venvs (a version like ``3.12`` or a path; default: the
    interpreter running isolator). *cache_dir* is uv's cache (default ``ROOT/cache/uv``, on the
    same filesystem as the venvs so files are hardlinked, not copied). *policy* is the
    operator's :class:`Policy` (default: ``Policy.load(root)``, made on first use).
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
    ) -> None:
        self.root = Path(root).expanduser().absolute()
        self._policy = policy
        self._published: set[str] = set()  # generations this object made current, to audit
        self.python = python
        self.lock_timeout = lock_timeout
        cache = Path(cache_dir).absolute() if cache_dir is not None else self.root / "cache" / "uv"
        if isinstance(backend, str):
            self.backend = UvBackend(cache_dir=cache) if backend == "uv" else get_backend(backend)
        else:
            self.backend = backend
        self.wheelhouse = Wheelhouse(self.root / "wheelhouse")
        self.bytecode = BytecodePool(self.root / "bytecode")
        self._records: dict[tuple[str, str], InstalledPlugin] = {}

    def __repr__(self) -> str:
        return f"PluginStore({str(self.root)!r}, backend={self.backend.name!r})"

    @property
    def policy(self) -> Policy:
        """The operator's policy: checks, the profile choice, and the audit log
        (``ROOT/policy.json``, ``ROOT/audit.jsonl``, ``isolator.policy`` entry points)."""
        if self._policy is None:
            self._policy = Policy.load(self.root)
        return self._policy

    # ---- reading ---------------------------------------------------------------------------

    def list_installed(self) -> list[InstalledPlugin]:
        """Installed plugins sorted by name: each installed one, then the plugins they bring.

        A plugin brought by several is listed once (by the first in name order); one installed
        itself is never listed as brought.
        """
        top = [plugin for name in self._plugin_names() if (plugin := self._current(name))]
        names = {plugin.name for plugin in top}
        brought: dict[str, InstalledPlugin] = {}
        for plugin in top:
            for dep in self._brought_plugins(plugin):
                if dep.name not in names and dep.name not in brought:
                    brought[dep.name] = dep
        return sorted([*top, *brought.values()], key=lambda p: p.name)

    def get(self, name: str) -> InstalledPlugin:
        """The installed plugin *name* (or one an installed plugin brought); else
        :class:`PluginNotFoundError`."""
        _check_name(name)
        current = self._current(name)
        if current is not None:
            return current
        found: list[InstalledPlugin] = []
        for other in self._plugin_names():
            plugin = self._current(other)
            if plugin is None:
                continue
            found += [dep for dep in self._brought_plugins(plugin) if dep.name == name]
        packages = sorted({canonicalize_name(dep.package or "") for dep in found})
        if len(packages) > 1:
            # No dependency's claim decides a name: one the operator installs does.
            claims = ", ".join(sorted(f"{dep.package} (brought by {dep.brought_by})"
                                      for dep in found))
            raise PluginCollisionError(
                f"plugin {name!r}", f"not installed, and brought by several packages: "
                f"{claims}; install the one you mean (an installed plugin owns its name)")
        if found:
            return found[0]
        raise PluginNotFoundError(name, f"not installed in the store at {self.root}")

    def load(self, name: str) -> Plugin:
        """Load the content of installed plugin *name* (from site-packages; nothing imported).

        The plugin's name is its entry point name and its version the package's; a manifest
        that says otherwise gets a warning diagnostic. ``plugin.installation`` says where it
        came from, and ``brought_by`` which installed plugin brought it.
        """
        with self.lease(name) as installed:
            return _loaded(installed)

    def entry_points(self, name: str) -> dict[str, tuple[EntryPoint, ...]]:
        """Plugin *name*'s entry points by group (:data:`ENTRY_POINT_GROUPS`), read from its
        distribution's dist-info in the venv: the tools and agent factory a worker may run."""
        installed = self.get(name)
        empty: dict[str, tuple[EntryPoint, ...]] = {group: () for group in ENTRY_POINT_GROUPS}
        if installed.venv is None or installed.package is None:
            return empty
        dist = find_distribution(find_site_packages(installed.venv), installed.package)
        if dist is None:
            raise StoreError(f"plugin {name!r}", f"{installed.package} is missing from its venv")
        return {group: dist.entry_points_in(group) for group in ENTRY_POINT_GROUPS}

    @contextlib.contextmanager
    def lease(self, name: str) -> Iterator[InstalledPlugin]:
        """Hold plugin *name*'s current generation: it is not removed until the lease ends.

        A worker runs under a lease; an upgrade meanwhile installs a new generation and the
        leased one stays until it is released (then :meth:`clean`, or the next change of the
        plugin, removes it).
        """
        for _attempt in range(5):
            installed = self.get(name)
            try:
                fd = os.open(installed.path / _LEASE, os.O_RDONLY | os.O_CLOEXEC)
            except FileNotFoundError:
                continue  # removed between reading the pointer and opening: read it again
            try:
                fcntl.flock(fd, fcntl.LOCK_SH)
                if not (installed.path / _METADATA).exists():
                    continue
                yield installed
                return
            finally:
                os.close(fd)
        raise StoreError(f"plugin {name!r}", "its generation kept changing while leasing it")

    # ---- changing --------------------------------------------------------------------------

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
        """
        if isinstance(source, PluginSource):
            if version is not None or index_url is not None or find_links or no_index:
                raise SourceError(source.source, "pass version and index options inside the "
                                  "PluginSource, not beside it")
            src = source
            src.check_local_paths()
        else:
            src = PluginSource.parse(source, version=version, index_url=index_url,
                                     find_links=list(find_links), no_index=no_index)
        if src.kind == "sdist" and not allow_build:
            raise SourceError(src.source, "an sdist is built by running code it ships; pass "
                              "allow_build=True (--allow-build) to allow that")
        interpreter = base_interpreter(find_python(python if python is not None else self.python))
        return self._audited("install", self._install(
            src, interpreter, allow_build=allow_build, upgrade=upgrade, progress=progress,
            timeout=timeout))

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
        current = self._top_level(name)
        src = current.source
        if version is not None or index_url is not None:
            data = src.to_dict()
            if version is not None:
                data["version"] = version
            if index_url is not None:
                if redact_url(index_url.strip()) != data.get("index_url"):
                    raise SourceError(src.source, f"index_url {redact_url(index_url)!r} is "
                                      f"another index than the recorded "
                                      f"{data.get('index_url')!r}; install again to change it")
                data["index_url"] = index_url
            src = PluginSource.from_dict(data)
        src.check_local_paths()
        interpreter = self._recorded_python(current)
        return self._audited("upgrade", self._install(
            src, interpreter, allow_build=current.allow_build, upgrade=True, progress=progress,
            timeout=timeout))

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
        current = self._top_level(name)
        interpreter = self._recorded_python(current) if current.kind == "package" else None
        # The policy may have changed since the install: the record is checked again.
        self.policy.check_source(current.source)
        check_distributions(self.policy, current.source,
                            canonicalize_name(current.package or current.name),
                            [(d.name, d.version, d.url) for d in current.distributions])
        with self._operation(progress) as op:
            if current.kind == "content-only":
                prepared = self._prepare(current.source, None, op, allow_build=False,
                                         progress=progress, timeout=timeout,
                                         ref=current.git_commit)
                assert prepared.content_dir is not None
                return self._audited("reinstall", self._install_content(
                    current.source, prepared, op, force=True, progress=progress))
            assert interpreter is not None and current.package is not None
            chosen = [(d, self.wheelhouse.path(d.artifact())) for d in current.distributions]
            _say(progress, f"verifying {len(chosen)} files in the wheelhouse")
            for dist, _ in chosen:
                self._refetch(dist.artifact(), progress)
            return self._audited("reinstall", self._install_package(
                current.source, interpreter, list(current.distributions), current.package,
                op, allow_build=current.allow_build, git_commit=current.git_commit,
                force=True, progress=progress, timeout=timeout,
            ))

    def uninstall(self, name: str) -> InstalledPlugin:
        """Remove plugin *name*. Its venv stays until no worker leases it."""
        _check_name(name)
        self._check_store()
        policy = self.policy  # a policy that cannot load refuses before anything changes
        if not (self.root / _MARKER).exists():  # no store: nothing to lock, nothing to remove
            raise PluginNotFoundError(name, f"not installed in the store at {self.root}")
        with self._store_lock(shared=True), self._plugin_lock(name):
            current = self._current(name)
            if current is None:
                if self._brought_by_any(name) is not None:
                    raise PluginNotFoundError(
                        name, f"it is not installed itself but brought by plugin "
                        f"{self._brought_by_any(name)!r}; uninstall that one")
                raise PluginNotFoundError(name, f"not installed in the store at {self.root}")
            plugin_dir = self._plugin_dir(name)
            os.unlink(plugin_dir / _POINTER)
            _fsync_dir(plugin_dir)
            self._drop_generations(name, keep=None)
            with contextlib.suppress(OSError):
                plugin_dir.rmdir()  # only when no leased generation is left in it
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self._settings_path(name))
        policy.audit("uninstall", **_audit_fields(current))
        return current

    # ---- the operator's settings of a plugin (sandbox profile, grants) --------------------

    def settings(self, name: str) -> PluginSettings:
        """The sandbox profile and grants the operator chose for plugin *name* (defaults when
        none were chosen). Kept across upgrades; removed with the plugin."""
        _check_name(name)
        path = self._settings_path(name)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return PluginSettings()
        except (OSError, ValueError) as exc:
            raise StoreError(str(path), f"cannot be read as JSON: {exc}") from None
        return PluginSettings.from_dict(data, str(path))

    def configure(self, name: str, *, sandbox: str | _Unset | None = _UNSET,
                  grants: Permissions | _Unset = _UNSET) -> PluginSettings:
        """Set the default sandbox profile and/or the grants of installed plugin *name*."""
        self._top_level(name)  # raises when it is not installed
        if isinstance(sandbox, str) and sandbox not in SANDBOX_PROFILES:
            raise PermissionsError(f"sandbox profile {sandbox!r}",
                                   f"expected one of {', '.join(SANDBOX_PROFILES)}")
        with self._plugin_lock(name):
            current = self.settings(name)
            settings = PluginSettings(
                current.sandbox if isinstance(sandbox, _Unset) else sandbox,
                current.grants if isinstance(grants, _Unset) else grants)
            path = self._settings_path(name)
            path.parent.mkdir(exist_ok=True)
            _write_json_atomic(path, settings.to_dict())
            return settings

    def _settings_path(self, name: str) -> Path:
        return self.root / "settings" / f"{name}.json"

    def clean(self, progress: Callable[[str], None] | None = None) -> CleanReport:
        """Remove what no current generation needs: old and half-built generations that no
        worker leases, scratch space of interrupted operations, and wheels no generation uses.

        Waits for running installs to finish (they hold the store lock shared).
        """
        if not (self.root / _MARKER).exists():
            return CleanReport()
        self._check_store()
        removed_gens: list[str] = []
        removed_plugins: list[str] = []
        kept: list[str] = []
        freed = 0
        with self._store_lock(shared=False):
            scratch = 0
            tmp = self.root / "tmp"
            if tmp.is_dir():
                for entry in list(tmp.iterdir()):
                    freed += _tree_size(entry)
                    _remove(entry)
                    scratch += 1
            keep_hashes: set[str] = set()
            plugins = self.root / "plugins"
            for plugin_dir in sorted(plugins.iterdir()) if plugins.is_dir() else []:
                name = plugin_dir.name
                current_gen = _read_pointer(plugin_dir)
                for entry in sorted(plugin_dir.iterdir()):
                    if entry.name == _POINTER:
                        continue
                    if entry.name == current_gen:
                        keep_hashes.update(_metadata_hashes(entry))
                        continue
                    if entry.name.startswith("gen-") and entry.is_dir():
                        size = _tree_size(entry)
                        if _remove_unless_leased(entry):
                            removed_gens.append(f"{name}/{entry.name}")
                            freed += size
                        else:
                            kept.append(f"{name}/{entry.name}")
                            keep_hashes.update(_metadata_hashes(entry))
                    else:  # a pointer's temporary file, or anything else left behind
                        freed += _tree_size(entry)
                        _remove(entry)
                if current_gen is None and not any(plugin_dir.iterdir()):
                    plugin_dir.rmdir()
                    removed_plugins.append(name)
            wheels = 0
            wheelhouse = self.wheelhouse.root
            if wheelhouse.is_dir():
                for entry in list(wheelhouse.iterdir()):
                    if entry.name not in keep_hashes:
                        freed += _tree_size(entry)
                        _remove(entry)
                        wheels += 1
            pyc_files, pyc_bytes = self.bytecode.remove_unused()
            freed += pyc_bytes
            locks = self.root / "locks"
            for lock in sorted(locks.iterdir()) if locks.is_dir() else []:
                if not (plugins / lock.stem).exists():
                    lock.unlink()
        _say(progress, f"removed {len(removed_gens)} generations, {wheels} wheels")
        return CleanReport(tuple(removed_gens), tuple(removed_plugins), scratch, wheels, freed,
                           tuple(kept), pyc_files)

    # ---- lock, sync, verify ----------------------------------------------------------------

    def lock(self) -> dict[str, Any]:
        """The store's whole plugin set as lock data (format: :mod:`isolator.store._lockfile`): each
        installed plugin, its source, and every distribution with its sha256. A plugin another
        plugin brings is one of that plugin's distributions, not an entry of its own."""
        plugins: dict[str, LockedPlugin] = {}
        for name in self._plugin_names():
            current = self._current(name)
            if current is not None:
                plugins[name] = locked_plugin(current)
        return Lock(plugins).to_dict()

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
        if isinstance(lock, Lock):
            wanted = lock
        elif isinstance(lock, (str, os.PathLike)):
            wanted = read_lock(lock)
        else:
            wanted = parse_lock(lock)
        self._check_store()
        current = {name: plugin for name in self._plugin_names()
                   if (plugin := self._current(name)) is not None}
        todo: list[LockedPlugin] = []
        unchanged: list[str] = []
        for name in sorted(wanted.plugins):
            entry = wanted.plugins[name]
            have = current.get(name)
            try:
                same = have is not None and locked_plugin(have).to_dict() == entry.to_dict()
            except StoreError:
                same = False  # a record that cannot be locked is replaced from the lock
            if same:
                unchanged.append(name)
            else:
                todo.append(entry)
        if todo:
            with self._operation(progress) as op:
                staged = [self._stage_locked(entry, op / entry.name, find_links, progress,
                                             timeout) for entry in todo]
                _checkpoint("sync-verified")
                for stage in staged:
                    self._audited("sync", self._apply_locked(stage, progress, timeout))
        removed = sorted(set(current) - set(wanted.plugins))
        for name in removed:
            _say(progress, f"uninstalling {name}")
            self.uninstall(name)
        return SyncReport(
            installed=tuple(e.name for e in todo if e.name not in current),
            replaced=tuple(e.name for e in todo if e.name in current),
            removed=tuple(removed), unchanged=tuple(unchanged))

    def verify(self, name: str | None = None) -> VerifyReport:
        """Check every installed file of plugin *name* (default: every installed plugin).

        A package: each distribution's files against its ``RECORD``, the ``RECORD`` against
        the wheel's own (hash-pinned in the wheelhouse), anything else in site-packages as
        ``unexpected``, and each ``.pyc`` against the bytecode pool's entry for its source.
        A content-only plugin: its files against the per-file hashes recorded at install.
        """
        if name is not None:
            names = [self._top_level(name).name]
        else:
            names = [n for n in self._plugin_names() if self._current(n) is not None]
        changes: list[FileChange] = []
        unverified: list[str] = []
        files = 0
        for plugin_name in names:
            with self.lease(plugin_name) as installed:
                try:
                    found, count = self._check_files(installed)
                except (StoreError, DistributionError, OSError) as exc:
                    unverified.append(f"{plugin_name}: {exc}")
                    continue
            files += count
            changes += [FileChange(plugin_name, dist, path, what)  # type: ignore[arg-type]
                        for dist, path, what in found]
        return VerifyReport(tuple(names), files, tuple(changes), tuple(unverified))

    def check_interpreter_files(self, installed: InstalledPlugin) -> None:
        """Raise :class:`StoreError` unless the files of *installed*'s venv that its
        interpreter reads at start are as the store made them: ``pyvenv.cfg``, the
        ``bin/python*`` links and every other file the backend created outside site-packages
        (against the record made at install), and no ``pyvenv.cfg``, ``python*`` (``._pth``)
        or other interpreter file added in ``bin/`` or at the venv's root.

        Cheap (a few small files hashed, two directories listed): call it before starting any
        process with the venv's interpreter. A content-only plugin has nothing to check.
        """
        if installed.venv is None:
            return
        found = _interpreter_changes(installed)
        if found:
            rel, what = found[0]
            more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
            raise StoreError(f"plugin {installed.name!r}", f"{installed.venv / rel} is "
                             f"{what} since the store made it{more}: the interpreter would "
                             f"read it before any sandbox layer applies; reinstall the "
                             f"plugin (`ohp reinstall {installed.brought_by or installed.name}`)")

    def _check_files(self, installed: InstalledPlugin) -> tuple[list[Change], int]:
        if installed.kind == "content-only":
            recorded = installed.metadata.get("files")
            if not isinstance(recorded, dict):
                raise StoreError(f"plugin {installed.name!r}", "installed before per-file "
                                 "hashes were recorded; reinstall it to record them")
            return check_content(installed.content_dir, recorded)
        if installed.venv is None:
            raise StoreError(f"plugin {installed.name!r}", "its record names no venv")
        wheels: list[tuple[str, Path | None]] = []
        for dist in installed.distributions:
            try:
                wheels.append((dist.name, self.wheelhouse.verified(dist.artifact())))
            except (ResolutionError, HashMismatchError):
                wheels.append((dist.name, None))  # then its installed RECORD alone
        site = find_site_packages(installed.venv)
        changes, count = check_site_packages(
            site, wheels, self.bytecode.root,
            virtualenv=(installed.backend or {}).get("name") == "virtualenv")
        outside, checked = _venv_changes(installed, site)
        return sorted(set(changes) | set(outside), key=lambda c: (c[1], c[0] or "", c[2])), \
            count + checked

    def _stage_locked(self, entry: LockedPlugin, op: Path,
                      find_links: Sequence[str | os.PathLike[str]],
                      progress: Callable[[str], None] | None,
                      timeout: float | None) -> _Staged:
        """Everything plugin *entry* needs, checked against the lock; nothing changed yet."""
        op.mkdir()
        src = entry.source
        self.policy.check_source(src)
        if entry.kind == "content-only":
            if src.kind == "directory":
                src.check_local_paths()
                assert src.path is not None
                if classify_directory(src.path) != "content-only":
                    raise StoreError(f"plugin {entry.name!r}", f"the lock has it content-only, "
                                     f"but {src.source} is a package now")
            prepared = self._prepare(src, None, op, allow_build=False, progress=progress,
                                     timeout=timeout, ref=entry.git_commit)
            if prepared.content_dir is None:
                raise StoreError(f"plugin {entry.name!r}", f"the lock has it content-only, but "
                                 f"{src.source} is a package now")
            _say(progress, f"checking {entry.name}'s content")
            digest = copy_content(prepared.content_dir, op / "checked")
            assert entry.content_sha256 is not None
            if digest != entry.content_sha256:
                raise HashMismatchError(f"{src.source} (plugin {entry.name!r})",
                                        entry.content_sha256, digest)
            named = load_plugin(op / "checked", name=src.default_name).name
            if named != entry.name:
                raise StoreError(f"plugin {entry.name!r}", f"{src.source} is the plugin "
                                 f"{named!r} now")
            return _Staged(entry, op, prepared=prepared)
        assert entry.package is not None and entry.python is not None
        check_distributions(self.policy, src, canonicalize_name(entry.package),
                            [(d.name, d.version, d.url) for d in entry.distributions])
        interpreter = self._locked_python(entry.python)
        tags = set(interpreter_tags(interpreter.path))
        _say(progress, f"checking {entry.name}'s {len(entry.distributions)} files")
        dists = []
        for locked in entry.distributions:
            if not any(str(tag) in tags for tag in parse_wheel_filename(locked.file)[3]):
                raise ResolutionError(f"{locked.name}=={locked.version}", f"{locked.file} does "
                                      f"not fit Python {interpreter.version_str} "
                                      f"({interpreter.path})")
            dist = ResolvedDistribution(locked.name, locked.version, locked.file,
                                        locked.sha256, locked.url)
            self._fetch_locked(dist, find_links, progress)
            dists.append(dist)
        root = next(d for d in dists
                    if canonicalize_name(d.name) == canonicalize_name(entry.package))
        declared = [ep.name for ep in wheel_entry_points(self.wheelhouse.path(root.artifact()))
                    .get(PLUGINS_GROUP, ())]
        if declared != [entry.name]:
            raise StoreError(f"plugin {entry.name!r}", f"{root.filename} declares the plugin "
                             f"{', '.join(declared) or 'nothing'}, not {entry.name!r}")
        return _Staged(entry, op, interpreter=interpreter, dists=dists)

    def _apply_locked(self, stage: _Staged, progress: Callable[[str], None] | None,
                      timeout: float | None) -> InstalledPlugin:
        entry = stage.entry
        _say(progress, f"installing {entry.name} from the lock")
        if stage.prepared is not None:
            return self._install_content(entry.source, stage.prepared, stage.op, force=True,
                                         replace_other=True, progress=progress,
                                         expected_sha256=entry.content_sha256)
        assert stage.interpreter is not None and entry.package is not None
        for dist in stage.dists:  # checked again right before use: the files are not trusted
            self.wheelhouse.verified(dist.artifact())
        return self._install_package(
            entry.source, stage.interpreter, stage.dists, entry.package, stage.op,
            allow_build=entry.allow_build, git_commit=entry.git_commit, force=True,
            replace_other=True, progress=progress, timeout=timeout)

    def _fetch_locked(self, dist: ResolvedDistribution,
                      find_links: Sequence[str | os.PathLike[str]],
                      progress: Callable[[str], None] | None) -> Path:
        """A locked file in the wheelhouse, hashed now: from the wheelhouse, the lock's
        ``file:`` URL, a *find_links* directory, or a download; the lock's sha256 decides."""
        artifact = dist.artifact()
        if self.wheelhouse.path(artifact).exists():
            return self.wheelhouse.verified(artifact)
        local = artifact.local_path
        candidates = [local] if local is not None else []
        candidates += [Path(link) / dist.filename for link in find_links]
        for candidate in candidates:
            if candidate.is_file():
                return self.wheelhouse.ensure(
                    Artifact(candidate.absolute().as_uri(), dist.sha256, dist.filename),
                    progress)
        if local is None:
            return self.wheelhouse.ensure(artifact, progress)
        hint = "" if find_links else " (find_links, --find-links DIR, names a directory to " \
            "look in)"
        raise ResolutionError(dist.filename, f"not in the store's wheelhouse, not at {local}, "
                              f"and not in a find-links directory{hint}")

    def _locked_python(self, version: str) -> Interpreter:
        """The store's default interpreter when it is that version, else one found for it."""
        default = find_python(self.python)
        if version in (default.version_str, default.minor):
            return base_interpreter(default)
        return base_interpreter(find_python(version))

    # ---- install internals -----------------------------------------------------------------

    def _install(
        self,
        src: PluginSource,
        interpreter: Interpreter,
        *,
        allow_build: bool,
        upgrade: bool,
        progress: Callable[[str], None] | None,
        timeout: float | None,
    ) -> InstalledPlugin:
        self._check_store()  # a directory that is no store gets no audit log either
        self.policy.check_source(_redacted(src))  # before anything is fetched, cloned, built
        if not upgrade and src.kind == "pypi":
            existing = self._satisfying(src, interpreter)
            if existing is not None:
                _say(progress, f"{existing.name} {existing.version} is already installed")
                return existing
        with self._operation(progress) as op:
            prepared = self._prepare(src, interpreter, op, allow_build=allow_build,
                                     progress=progress, timeout=timeout)
            if prepared.content_dir is not None:
                return self._install_content(src, prepared, op, force=False, progress=progress)
            assert prepared.requirement is not None and prepared.root_name is not None
            what = prepared.requirement if src.kind == "pypi" else prepared.root_name
            _say(progress, f"resolving {what}")
            workdir = op / "resolve"
            workdir.mkdir()
            try:
                pins = self.backend.resolve(
                    [prepared.requirement], interpreter, workdir, index_url=src.index_url,
                    find_links=list(src.find_links), no_index=src.no_index,
                    allow_build=allow_build, progress=progress, timeout=timeout,
                )
            except CommandError as exc:
                raise ResolutionError(src.source, f"cannot be resolved: {exc.summary}") \
                    from exc
            _checkpoint("resolved")
            # Every index and distribution of the resolution, before any file is fetched.
            check_distributions(self.policy, _redacted(src),
                                canonicalize_name(prepared.root_name),
                                [(pin.name, pin.version, redact_url(_pin_url(pin)))
                                 for pin in pins])
            dists = self._fetch_pins(src, pins, interpreter, op, allow_build=allow_build,
                                     progress=progress, timeout=timeout)
            _checkpoint("fetched")
            return self._install_package(
                src, interpreter, dists, prepared.root_name, op, allow_build=allow_build,
                git_commit=prepared.git_commit, force=False, progress=progress, timeout=timeout,
            )

    def _prepare(
        self,
        src: PluginSource,
        interpreter: Interpreter | None,
        op: Path,
        *,
        allow_build: bool,
        progress: Callable[[str], None] | None,
        timeout: float | None,
        ref: str | None = None,
    ) -> _Prepared:
        """Turn a source into a requirement to resolve, or a directory of content to copy."""
        if src.kind in ("pypi", "wheel"):  # resolution is the first use of an index
            self._check_indexes(src, distribution_name(src))
        if src.kind == "pypi":
            assert src.canonical_name is not None
            return _Prepared(requirement=src.requirement(), root_name=src.canonical_name)
        if src.kind == "wheel":
            path = src.path
            assert path is not None
            check_wheel(path)
            return _Prepared(requirement=str(path), root_name=wheel_distribution(path)[0])
        git_commit = None
        if src.kind == "git":
            assert src.url is not None
            _say(progress, f"cloning {src.url}")
            checkout = op / "checkout"
            git_commit = git_checkout(src.url, ref or src.ref, checkout, progress=None,
                                      timeout=timeout)
            _checkpoint("cloned")
            directory = resolve_repo_path(checkout, src.repo_path)
        else:
            path = src.path
            assert path is not None
            directory = path
        if src.kind in {"directory", "git"}:
            if classify_directory(directory) == "content-only":
                return _Prepared(content_dir=directory, git_commit=git_commit)
            if src.kind == "git" and not allow_build:
                raise SourceError(src.source, "this repository is a package (it has "
                                  "pyproject.toml); building it runs code it ships: pass "
                                  "allow_build=True (--allow-build) to allow that")
        if interpreter is None:
            raise StoreError(src.source, "a package source needs an interpreter")
        # A local project (or a checkout, or an sdist) is built into a wheel first; from then
        # on it is a wheel like any other, resolved together with its dependencies.
        self._check_indexes(src, distribution_name(src, directory))  # the build uses them
        _say(progress, f"building {directory.name}")
        built = self.backend.build_wheel(
            directory, op / "built", interpreter, index_url=src.index_url,
            find_links=list(src.find_links), no_index=src.no_index, allow_build=allow_build,
            timeout=timeout,
            # A user's project directory may hold a stale build/ (setuptools never cleans
            # build/lib): built from an sdist, a deleted skill cannot come back in the wheel.
            via_sdist=src.kind == "directory",
        )
        return _Prepared(requirement=str(built), root_name=wheel_distribution(built)[0],
                         git_commit=git_commit)

    def _ensure_files(self, src: PluginSource, artifacts: Sequence[Artifact],
                      progress: Callable[[str], None] | None) -> None:
        """The files in the wheelhouse; a file of an index or find-links URL given with
        credentials is downloaded with them (uv's resolution leaves them out of its URLs)."""
        creds = {found[0]: found[1:] for url in (src.index_url, *src.find_links)
                 if url and (found := url_credentials(url)) is not None}
        plain = []
        for artifact in artifacts:
            parts = urlsplit(artifact.url)
            origin = f"{parts.scheme.lower()}://{parts.netloc.rpartition('@')[2].lower()}"
            if origin in creds and not self.wheelhouse.path(artifact).exists():
                _say(progress, f"downloading {artifact.filename}")
                _download_with_credentials(self.wheelhouse, artifact, *creds[origin])
            else:
                plain.append(artifact)
        self.wheelhouse.ensure_all(plain, progress)

    def _fetch_pins(
        self,
        src: PluginSource,
        pins: list[Pin],
        interpreter: Interpreter,
        op: Path,
        *,
        allow_build: bool,
        progress: Callable[[str], None] | None,
        timeout: float | None,
    ) -> list[ResolvedDistribution]:
        tags = interpreter_tags(interpreter.path)
        wheels: list[tuple[Pin, Artifact]] = []
        sdists: list[tuple[Pin, Artifact]] = []
        for pin in pins:
            wheel = select_wheel(pin, tags)
            if wheel is not None:
                wheels.append((pin, wheel))
            elif pin.sdist is not None and allow_build:
                sdists.append((pin, pin.sdist))
            else:
                offered = ", ".join(w.filename for w in pin.wheels) or "none"
                hint = "" if allow_build else " (building from source needs --allow-build)"
                raise ResolutionError(
                    f"{pin.name}=={pin.version}",
                    f"no wheel fits Python {interpreter.version_str} ({tags[0]}); wheels "
                    f"offered: {offered}{hint}",
                )
        _say(progress, f"fetching {len(wheels) + len(sdists)} files")
        self._ensure_files(src, [w for _, w in wheels], progress)
        dists = [ResolvedDistribution(pin.name, pin.version, w.filename, w.sha256,
                                      redact_url(w.url))
                 for pin, w in wheels]
        for pin, sdist in sdists:
            self._ensure_files(src, [sdist], progress)
            stored = self.wheelhouse.ensure(sdist, progress)
            _say(progress, f"building {sdist.filename}")
            built = self.backend.build_wheel(stored, op / "built-sdists", interpreter,
                                             allow_build=True, progress=progress,
                                             timeout=timeout)
            artifact = Artifact(url=built.as_uri(), sha256=sha256_file(built), filename=built.name)
            self.wheelhouse.ensure(artifact)
            dists.append(ResolvedDistribution(pin.name, pin.version, built.name,
                                              artifact.sha256, artifact.url,
                                              built_from={**sdist.to_dict(),
                                                          "url": redact_url(sdist.url)}))
        return dists

    def _refetch(self, artifact: Artifact, progress: Callable[[str], None] | None) -> Path:
        """A recorded file from the wheelhouse, hashed again; one missing there is downloaded
        again only from a remote URL (and checked against the recorded hash)."""
        if self.wheelhouse.path(artifact).exists() or artifact.local_path is not None:
            return self.wheelhouse.verified(artifact)
        return self.wheelhouse.ensure(artifact, progress)

    def _install_package(
        self,
        src: PluginSource,
        interpreter: Interpreter,
        dists: list[ResolvedDistribution],
        root_name: str,
        op: Path,
        *,
        allow_build: bool,
        git_commit: str | None,
        force: bool,
        progress: Callable[[str], None] | None,
        timeout: float | None,
        replace_other: bool = False,
    ) -> InstalledPlugin:
        root = [d for d in dists if canonicalize_name(d.name) == canonicalize_name(root_name)]
        if not root:
            raise ResolutionError(src.source, f"the resolution does not contain {root_name}")
        root_wheel = self.wheelhouse.path(root[0].artifact())
        plugin_eps = wheel_entry_points(root_wheel).get(PLUGINS_GROUP, ())
        if not plugin_eps:
            raise StoreError(src.source, f"{root[0].name} {root[0].version} is not a plugin: it "
                             f"declares no '{PLUGINS_GROUP}' entry point")
        if len(plugin_eps) > 1:
            names = ", ".join(ep.name for ep in plugin_eps)
            raise StoreError(src.source, f"{root[0].name} declares {len(plugin_eps)} "
                             f"'{PLUGINS_GROUP}' entry points ({names}); a package is one plugin")
        entry = plugin_eps[0]
        name = _check_name(entry.name, f"{root[0].name}'s entry point name")
        self._check_store(create=True)
        with self._plugin_lock(name, progress):
            current = self._current(name)
            if current is not None:
                if not replace_other:  # sync replaces whatever holds the name
                    self._refuse_collision(current, src, root[0].name)
                same = {(d.name, d.sha256) for d in current.distributions} == \
                       {(d.name, d.sha256) for d in dists}
                if same and not force and current.python is not None and \
                        current.python.get("path") == str(interpreter.path):
                    _say(progress, f"{name} {current.version} is already installed")
                    return current
            with self._building(name) as gen:
                venv = gen / "venv"
                _say(progress, f"creating venv (Python {interpreter.version_str})")
                self.backend.create_venv(venv, interpreter, timeout=timeout)
                _checkpoint("venv-created")
                # What the backend made outside site-packages is the store's: the interpreter
                # reads it (pyvenv.cfg, bin/python*) before any sandbox layer applies.
                owned = _venv_entries(venv, find_site_packages(venv))
                seeded = _dist_info_dirs(find_site_packages(venv))  # virtualenv seeds pip
                requirements = op / "install-requirements.txt"
                requirements.write_text("".join(
                    f"{d.name} @ {self.wheelhouse.path(d.artifact()).as_uri()} "
                    f"--hash=sha256:{d.sha256}\n" for d in dists), encoding="utf-8")
                _say(progress, f"installing {len(dists)} distributions")
                self.backend.install(venv, [], requirement_files=[requirements], no_index=True,
                                     require_hashes=True, refresh=False, allow_build=False,
                                     compile_bytecode=False, timeout=timeout)
                site = find_site_packages(venv)
                # Before anything runs this venv's interpreter (the bytecode compiler runs the
                # base one, but workers and programs run this one).
                owned = _check_outside_site(venv, site, owned, root[0].name)
                _check_dist_infos(site, dists, seeded, root[0].name)
                self._check_claims(site, root[0].name, name)
                compiled = self.bytecode.compile_site(site, interpreter, op, timeout=timeout)
                _say(progress, f"bytecode: {compiled.linked} shared, {compiled.compiled} "
                     "compiled")
                _checkpoint("installed")
                dist = find_distribution(site, root[0].name)
                if dist is None:
                    raise StoreError(src.source, f"{root[0].name} is missing after installing")
                content_dir = find_module_dir(dist, entry.module)
                # A fatal content error refuses the install.
                plugin = load_plugin(content_dir, name=name)
                # The venv never changes once built: what it brings is recorded here, once, so
                # listing reads metadata.json alone instead of every distribution's dist-info.
                brought = [{"name": ep.name, "package": other.name, "version": other.version,
                            "module": ep.module, "content_dir": os.path.relpath(directory, gen)}
                           for other, ep, directory in _plugins_in(site, dist.name)]
                metadata = {
                    "format": METADATA_FORMAT,
                    "name": name,
                    "kind": "package",
                    "version": dist.version,
                    "package": dist.name,
                    "module": entry.module,
                    "generation": gen.name,
                    "source": src.to_dict(),
                    "constraint": src.version,
                    "index": {key: src.to_dict()[key]  # redacted: no credentials on disk
                              for key in ("index_url", "find_links", "no_index")},
                    "allow_build": allow_build,
                    "git_commit": git_commit,
                    "python": interpreter.to_dict(),
                    "backend": {"name": self.backend.name, "version": self.backend.version()},
                    "installed_at": _now(),
                    "content_dir": os.path.relpath(content_dir, gen),
                    "manifest_name": plugin.name,
                    "brought": brought,
                    "interpreter_files": owned,
                    "distributions": [d.to_dict() for d in sorted(dists, key=lambda d: d.name)],
                }
                self._publish(gen, metadata)
            _say(progress, f"installed {name} {dist.version}")
            installed = self._current(name)
            assert installed is not None
            return installed

    def _install_content(
        self,
        src: PluginSource,
        prepared: _Prepared,
        op: Path,
        *,
        force: bool,
        progress: Callable[[str], None] | None,
        replace_other: bool = False,
        expected_sha256: str | None = None,
    ) -> InstalledPlugin:
        assert prepared.content_dir is not None
        staged = op / "content"
        _say(progress, f"copying {prepared.content_dir}")
        content_hash = copy_content(prepared.content_dir, staged)
        if expected_sha256 is not None and content_hash != expected_sha256:
            raise HashMismatchError(src.source, expected_sha256, content_hash)
        files = file_hashes(staged)  # per file, for verify()
        plugin = load_plugin(staged, name=src.default_name)
        name = _check_name(plugin.name, f"the plugin name of {src.source}")
        self._check_store(create=True)
        with self._plugin_lock(name, progress):
            current = self._current(name)
            if current is not None:
                if not replace_other:  # sync replaces whatever holds the name
                    self._refuse_collision(current, src, None)
                if current.content_sha256 == content_hash and not force:
                    _say(progress, f"{name} {current.version} is already installed")
                    return current
            with self._building(name) as gen:
                # The generation is on the store's filesystem, the scratch space too: a rename.
                staged.rename(gen / "content")
                metadata = {
                    "format": METADATA_FORMAT,
                    "name": name,
                    "kind": "content-only",
                    "version": plugin.version,
                    "generation": gen.name,
                    "source": src.to_dict(),
                    "constraint": None,
                    "git_commit": prepared.git_commit,
                    "content_sha256": content_hash,
                    "files": files,
                    "installed_at": _now(),
                    "content_dir": "content",
                    "distributions": [],
                }
                self._publish(gen, metadata)
            _say(progress, f"installed {name} {plugin.version} (content only)")
            installed = self._current(name)
            assert installed is not None
            return installed

    def _check_claims(self, site: Path, root_dist: str, name: str) -> None:
        """Refuse a dependency that declares a plugin name it does not own: the name of the
        plugin being installed (its own root distribution owns it), or of an installed plugin
        from another package. A name no one installed may be brought (it yields to the
        plugin installed under it later)."""
        root = canonicalize_name(root_dist)
        for dist in iter_distributions(site):
            if dist.canonical_name == root:
                continue
            for entry in dist.entry_points_in(PLUGINS_GROUP):
                if entry.name == name:
                    raise PluginCollisionError(
                        f"plugin {name!r}", f"{dist.name} {dist.version}, a dependency of "
                        f"{root_dist}, declares the plugin name {entry.name!r}, which is "
                        f"{root_dist}'s own: refused (a dependency never answers for a name "
                        "it does not own)")
                if not _valid_name(entry.name):
                    continue
                owner = self._current(entry.name)
                if owner is None:
                    continue
                if owner.package is not None and \
                        canonicalize_name(owner.package) == dist.canonical_name:
                    continue  # the same package: that plugin, brought
                theirs = owner.package or owner.source.source
                raise PluginCollisionError(
                    f"plugin {entry.name!r}", f"{dist.name} {dist.version}, a dependency of "
                    f"{root_dist}, declares the plugin name {entry.name!r}, which the "
                    f"installed plugin {entry.name!r} ({theirs}) owns: refused (a dependency "
                    "never answers for a name it does not own)")

    def _check_indexes(self, src: PluginSource, plugin: str) -> None:
        for url in source_indexes(_redacted(src)):
            self.policy.check_index(plugin, url)

    def _audited(self, event: str, installed: InstalledPlugin) -> InstalledPlugin:
        """Audit *event* when *installed* is a generation this call made current (an install
        that found the plugin installed already changed nothing, and is not audited)."""
        if installed.generation in self._published:
            self._published.discard(installed.generation)
            self.policy.audit(event, **_audit_fields(installed))
        return installed

    def _refuse_collision(self, current: InstalledPlugin, src: PluginSource,
                          package: str | None) -> None:
        if current.kind == "package" and package is not None and current.package is not None \
                and canonicalize_name(current.package) == canonicalize_name(package):
            return
        if current.kind == "content-only" and package is None and \
                current.source.source == src.source and current.source.repo_path == src.repo_path:
            return
        theirs = current.package or current.source.source
        ours = package or src.source
        raise PluginCollisionError(
            f"plugin {current.name!r}",
            f"the name is taken by {theirs} (installed from {current.source.source}); "
            f"{ours} cannot be installed under the same name: uninstall the other first",
        )

    def _satisfying(self, src: PluginSource, interpreter: Interpreter) -> InstalledPlugin | None:
        wanted = src.canonical_name
        for name in self._plugin_names():
            plugin = self._current(name)
            if plugin is None or plugin.package is None or plugin.source.kind != "pypi":
                continue
            if canonicalize_name(plugin.package) != wanted:
                continue
            if plugin.python is None or plugin.python.get("path") != str(interpreter.path):
                return None
            ours = _redacted(src)  # the record holds no credentials
            if plugin.source.index_url != ours.index_url or \
                    plugin.source.find_links != ours.find_links:
                return None
            try:
                ok = src.specifier.contains(Version(plugin.version), prereleases=True)
            except InvalidVersion:
                ok = False
            return plugin if ok else None
        return None

    @contextlib.contextmanager
    def _building(self, name: str) -> Iterator[Path]:
        """A new generation directory of plugin *name* (the caller holds the plugin lock).

        If the body fails before :meth:`_publish` switched the pointer to it, the generation
        is removed; once switched it is the installed one and stays. Afterwards the previous
        generations go, except those a worker leases.
        """
        plugin_dir = self._plugin_dir(name)
        gen = plugin_dir / _new_generation_id()
        try:
            gen.mkdir(parents=True)
            (gen / _LEASE).touch()
            yield gen
        except BaseException:
            if _read_pointer(plugin_dir) != gen.name:
                _remove(gen)
                with contextlib.suppress(OSError):
                    plugin_dir.rmdir()
            raise
        self._drop_generations(name, keep=gen.name)

    def _publish(self, gen: Path, metadata: dict[str, Any]) -> None:
        """Write the generation's metadata, then make it current: the one visible step."""
        _write_json_atomic(gen / _METADATA, metadata)
        _fsync_dir(gen)
        _checkpoint("metadata-written")
        self._switch(gen.parent, gen.name)
        self._published.add(gen.name)
        _checkpoint("switched")

    def _switch(self, plugin_dir: Path, generation: str) -> None:
        pointer = plugin_dir / _POINTER
        tmp = plugin_dir / f".{_POINTER}.{secrets.token_hex(4)}"
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
        _fsync_dir(plugin_dir)

    def _drop_generations(self, name: str, keep: str | None) -> None:
        plugin_dir = self._plugin_dir(name)
        for entry in sorted(plugin_dir.glob("gen-*")):
            if entry.name != keep:
                _remove_unless_leased(entry)

    # ---- reading internals -----------------------------------------------------------------

    def _plugin_dir(self, name: str) -> Path:
        return self.root / "plugins" / name

    def _plugin_names(self) -> list[str]:
        try:
            with os.scandir(self.root / "plugins") as entries:
                return sorted(entry.name for entry in entries if entry.is_dir())
        except FileNotFoundError:
            return []

    def _current(self, name: str) -> InstalledPlugin | None:
        plugin_dir = self._plugin_dir(name)
        generation = _read_pointer(plugin_dir)
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
            with open(gen / _METADATA, encoding="utf-8") as handle:
                data = json.load(handle)
        except FileNotFoundError:
            raise StoreError(f"plugin {name!r}", f"current generation {generation} has no "
                             "metadata: the store is damaged; reinstall the plugin") from None
        except ValueError as exc:
            raise StoreError(str(gen / _METADATA), f"unreadable metadata: {exc}") from None
        installed = self._records[key] = _from_metadata(gen, data)
        return installed

    def _top_level(self, name: str) -> InstalledPlugin:
        _check_name(name)
        current = self._current(name)
        if current is None:
            bringer = self._brought_by_any(name)
            if bringer is not None:
                raise PluginNotFoundError(
                    name, f"it is not installed itself but brought by plugin {bringer!r}")
            raise PluginNotFoundError(name, f"not installed in the store at {self.root}")
        return current

    def _brought_by_any(self, name: str) -> str | None:
        for other in self._plugin_names():
            plugin = self._current(other)
            if plugin is not None and any(d.name == name for d in self._brought_plugins(plugin)):
                return plugin.name
        return None

    def _brought_plugins(self, plugin: InstalledPlugin) -> list[InstalledPlugin]:
        """Plugins declared by other distributions in *plugin*'s venv: from the record made
        at install, or (a generation installed before there was one) read from dist-info."""
        if plugin.venv is None:
            return []
        recorded = plugin.metadata.get("brought")
        if isinstance(recorded, list):
            try:
                return [replace(
                    plugin, name=d["name"], version=d["version"], package=d["package"],
                    module=d["module"], content_dir=plugin.path / d["content_dir"],
                    brought_by=plugin.name, constraint=None,
                ) for d in recorded]
            except (KeyError, TypeError):
                pass  # a mangled record: read the venv instead
        try:
            site = find_site_packages(plugin.venv)
        except DistributionError:
            return []
        return [replace(plugin, name=entry.name, version=dist.version, package=dist.name,
                        module=entry.module, content_dir=directory, brought_by=plugin.name,
                        constraint=None)
                for dist, entry, directory in _plugins_in(site, plugin.package or "")]

    def _recorded_python(self, current: InstalledPlugin) -> Interpreter:
        path = None if current.python is None else current.python.get("path")
        if not path:
            raise StoreError(f"plugin {current.name!r}", "its record names no interpreter")
        try:
            return find_python(path)
        except IsolatorError as exc:
            raise StoreError(f"plugin {current.name!r}", f"the interpreter it was installed "
                             f"with is gone ({exc}); uninstall and install it again with "
                             "--python") from None

    # ---- locking and the root --------------------------------------------------------------

    def _check_store(self, create: bool = False) -> None:
        marker = self.root / _MARKER
        try:
            data = json.loads(marker.read_text(encoding="utf-8"))
        except FileNotFoundError:
            # Ignore a marker's temporary file: a concurrent process is creating this store;
            # and the operator's policy and audit log, which may come before the first install.
            if self.root.is_dir() and any(not entry.name.startswith(f".{_MARKER}.") and
                                          entry.name not in (POLICY_FILE, AUDIT_LOG)
                                          for entry in self.root.iterdir()):
                if marker.exists():  # created by a concurrent process since we looked
                    self._check_store(create=create)
                    return
                raise StoreError(str(self.root), f"exists and is not a plugin store (no "
                                 f"{_MARKER}); choose a new or empty directory") from None
            if not create:
                return
            self.root.mkdir(parents=True, exist_ok=True)
            _write_json_atomic(marker, {"format": STORE_FORMAT})
            return
        except (ValueError, OSError) as exc:
            raise StoreError(str(marker), f"unreadable store marker: {exc}") from None
        fmt = data.get("format") if isinstance(data, dict) else None
        if fmt != STORE_FORMAT:
            raise StoreError(str(self.root), f"store format {fmt!r}; this isolator reads "
                             f"format {STORE_FORMAT}")

    @contextlib.contextmanager
    def _operation(self, progress: Callable[[str], None] | None) -> Iterator[Path]:
        """Scratch space for one install, under the store lock held shared.

        An OSError on the way (a full disk, a read-only root) becomes a :class:`StoreError`:
        the install is abandoned like any other failure, and its message is one line.
        """
        try:
            self._check_store(create=True)
            with self._store_lock(shared=True, progress=progress):
                tmp = self.root / "tmp"
                tmp.mkdir(exist_ok=True)
                op = Path(os.fspath(tmp / f"op-{secrets.token_hex(6)}"))
                op.mkdir()
                try:
                    yield op
                finally:
                    _remove(op)
        except OSError as exc:
            if isinstance(exc, BrokenPipeError):  # the CLI's reader left: not ours to report
                raise
            where = f" ({exc.filename})" if exc.filename else ""
            raise StoreError(str(self.root), f"{exc.strerror or exc}{where}") from exc

    @contextlib.contextmanager
    def _store_lock(self, *, shared: bool,
                    progress: Callable[[str], None] | None = None) -> Iterator[None]:
        with _flock(self.root / ".lock", shared=shared, timeout=self.lock_timeout,
                    what="the store", progress=progress):
            yield

    @contextlib.contextmanager
    def _plugin_lock(self, name: str,
                     progress: Callable[[str], None] | None = None) -> Iterator[None]:
        locks = self.root / "locks"
        locks.mkdir(parents=True, exist_ok=True)
        with _flock(locks / f"{name}.lock", shared=False, timeout=self.lock_timeout,
                    what=f"plugin {name!r}", progress=progress):
            yield


# ---- helpers ---------------------------------------------------------------------------------


def _loaded(installed: InstalledPlugin) -> Plugin:
    plugin = load_plugin(installed.content_dir, name=installed.name)
    notes: list[Diagnostic] = []
    manifest = plugin.manifest
    if manifest.name != installed.name:
        notes.append(Diagnostic(".", f"plugin.json names the plugin "
                                f"{manifest.name!r}; the entry point name {installed.name!r} "
                                "is used", "warning"))
    if installed.kind == "package" and manifest.version and \
            manifest.version != installed.version:
        notes.append(Diagnostic(".", f"plugin.json says version "
                                f"{manifest.version!r}; the package version "
                                f"{installed.version!r} is used", "warning"))
    manifest = replace(manifest, name=installed.name, version=installed.version)
    return replace(plugin, manifest=manifest, diagnostics=(*plugin.diagnostics, *notes),
                   installation=installed.installation())


def _plugins_in(site: Path, root_package: str) -> list[tuple[Distribution, EntryPoint, Path]]:
    """The plugin entry points of the distributions in *site* other than *root_package*,
    with each plugin's content directory."""
    found = []
    root = canonicalize_name(root_package)
    for dist in iter_distributions(site):
        if dist.canonical_name == root:
            continue
        for entry in dist.entry_points_in(PLUGINS_GROUP):
            try:
                found.append((dist, entry, find_module_dir(dist, entry.module)))
            except DistributionError:
                continue
    return found


# ---- the venv outside site-packages ----------------------------------------------------------

_INERT_DIRS = frozenset({"share", "include", "etc"})
"""Top-level venv directories a distribution may install data into: no interpreter reads them
(man pages, Jupyter data and config, C headers)."""
_RESERVED_SCRIPT = re.compile(
    r"^(python|pypy|activate|deactivate|pydoc|pyvenv\.cfg$|pybuilddir\.txt$)|\._pth$", re.I)
"""Names in ``bin/`` the interpreter or the venv's activation reads: ``bin/pyvenv.cfg`` is read
before the venv root's, ``bin/python._pth`` replaces ``sys.path``."""


_INSTALLER_FILES = frozenset({".lock"})
"""Files the installer itself adds at the venv's root (uv locks the venv while installing)."""


def _entry(path: str) -> str | None:
    """What is at *path*: ``dir``, ``link:TARGET``, ``file:SHA256``, ``other``; None if nothing."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return None
    if stat_is_dir(info.st_mode):
        return "dir"
    if stat_is_link(info.st_mode):
        return "link:" + os.readlink(path)
    if not stat_is_reg(info.st_mode):
        return "other"
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 16):
            digest.update(block)
    return "file:" + digest.hexdigest()


def _venv_entries(venv: Path, site: Path) -> dict[str, str]:
    """Every entry of *venv* outside *site* (and its ancestors' other entries), by path
    relative to the venv: the snapshot the store owns and records at install."""
    found: dict[str, str] = {}
    root, skip = os.fspath(venv), os.fspath(site)
    for dirpath, dirnames, filenames in os.walk(root):
        if dirpath == skip:
            dirnames[:] = []
            continue
        for name in [*dirnames, *filenames]:
            full = os.path.join(dirpath, name)
            if full == skip:
                continue
            what = _entry(full)
            if what is not None:
                found[os.path.relpath(full, root)] = what
    return found


def _allowed_new(rel: str, what: str) -> bool:
    """Whether a distribution may add *rel* (relative to the venv) outside site-packages."""
    parts = rel.split(os.sep)
    if parts[0] in _INERT_DIRS:
        return what == "dir" or what.startswith("file:")
    if parts[0] == "bin" and len(parts) == 2:  # a console script
        return what.startswith("file:") and not _RESERVED_SCRIPT.search(parts[1])
    return False


def _owners(venv: Path, site: Path) -> dict[str, str]:
    """Paths (relative to the venv) outside site-packages -> the distribution whose RECORD
    lists them."""
    owners: dict[str, str] = {}
    for dist in iter_distributions(site):
        try:
            rows = read_record(dist)
        except DistributionError:
            continue
        for row in rows:
            full = os.path.normpath(os.path.join(site, row.path))
            rel = os.path.relpath(full, venv)
            if not rel.startswith(".." + os.sep):
                owners.setdefault(rel, dist.name)
    return owners


def _check_outside_site(venv: Path, site: Path, owned: Mapping[str, str],
                        root_dist: str) -> dict[str, str]:
    """Refuse an install that changed what the store made outside site-packages, or put a
    file there other than a console script or inert data: :class:`StoreError` naming the
    distribution and the file (the generation is then removed whole). Returns the entries
    the store owns from now on: *owned* and the installer's own files (uv's ``.lock``)."""
    now = _venv_entries(venv, site)
    bad = [(rel, "changed" if rel in now else "removed") for rel, what in owned.items()
           if now.get(rel) != what]
    installer = {rel: what for rel, what in now.items()
                 if rel not in owned and rel in _INSTALLER_FILES and what.startswith("file:")}
    owners = _owners(venv, site)
    bad += [(rel, "added") for rel, what in now.items()
            if rel not in owned and not _allowed_new(rel, what) and
            (rel not in installer or rel in owners)]
    if not bad:
        return {**owned, **installer}

    def owner(rel: str) -> str:
        found = owners.get(rel)
        if found is None:  # a directory: the distribution of a file below it
            found = next((d for p, d in sorted(owners.items())
                          if p.startswith(rel + os.sep)), None)
        return found or f"a distribution of {root_dist}"

    by_owner: dict[str, list[str]] = {}
    for rel, how in sorted(bad):
        by_owner.setdefault(owner(rel), []).append(f"{how} {rel}")
    what = "; ".join(f"{who} {', '.join(items[:6])}{' ...' if len(items) > 6 else ''}"
                     for who, items in sorted(by_owner.items()))
    raise StoreError(root_dist, f"refused: {what} in the venv. Outside site-packages a "
                     f"distribution may install only console scripts in bin/ and data in "
                     f"{', '.join(sorted(f'{d}/' for d in _INERT_DIRS))}: the interpreter "
                     "reads the store's own files there before any sandbox layer applies")


def _dist_info_dirs(site: Path) -> dict[str, str]:
    """The ``*.dist-info`` directories in *site*: directory name -> canonical name."""
    found: dict[str, str] = {}
    with os.scandir(site) as entries:
        for entry in entries:
            if entry.name.endswith(".dist-info"):
                found[entry.name] = canonicalize_name(
                    entry.name[: -len(".dist-info")].rsplit("-", 1)[0])
    return found


def _check_dist_infos(site: Path, dists: Sequence[ResolvedDistribution],
                      seeded: Mapping[str, str], root_dist: str) -> None:
    """Refuse a site-packages whose ``*.dist-info`` directories are not exactly one per
    resolved distribution (and what the backend seeded): a distribution that ships another's
    dist-info (in ``.data/purelib/``) would be read as that one, its entry points naming
    the plugin's tools."""
    wanted = {canonicalize_name(d.name) for d in dists}
    seen: dict[str, list[str]] = {}
    for directory, canonical in sorted(_dist_info_dirs(site).items()):
        if directory in seeded:
            continue
        seen.setdefault(canonical, []).append(directory)
    bad = sorted(d for canonical, dirs in seen.items()
                 for d in (dirs if canonical not in wanted or len(dirs) > 1 else ()))
    if not bad:
        return
    owners = _owners(site.parent.parent.parent, site)
    rel_site = os.path.relpath(site, site.parent.parent.parent)
    shipped = {}
    for directory in bad:
        prefix = os.path.join(rel_site, directory) + os.sep
        shipped[directory] = next((o for p, o in sorted(owners.items())
                                   if p.startswith(prefix) and
                                   _dist_info_dirs_owner(o, directory)), None)
    what = "; ".join(f"{shipped[d] or 'a distribution'} ships {d}" for d in bad)
    raise StoreError(root_dist, f"refused: {what}: a distribution may not install the "
                     "metadata of another (it would be read as that distribution's, its entry "
                     "points as the plugin's)")


def _dist_info_dirs_owner(owner: str, directory: str) -> bool:
    """Whether *owner* is a distribution other than the one *directory* names."""
    name = directory[: -len(".dist-info")].rsplit("-", 1)[0]
    return canonicalize_name(owner) != canonicalize_name(name)


def _valid_name(name: str) -> bool:
    try:
        _check_name(name)
    except StoreError:
        return False
    return True


def _interpreter_changes(installed: InstalledPlugin) -> list[tuple[str, str]]:
    """The start check: recorded store-owned entries changed or gone, and interpreter files
    added in ``bin/`` or at the venv's root."""
    assert installed.venv is not None
    recorded = installed.metadata.get("interpreter_files")
    if not isinstance(recorded, dict):
        return [("pyvenv.cfg", "not recorded (installed before the store recorded its "
                 "interpreter files)")]
    venv = os.fspath(installed.venv)
    found: list[tuple[str, str]] = []
    for rel, what in recorded.items():
        now = _entry(os.path.join(venv, rel))
        if now != what:
            found.append((rel, "missing" if now is None else "modified"))
    for directory in ("", "bin"):
        try:
            names = os.listdir(os.path.join(venv, directory))
        except OSError:
            continue
        for name in names:
            rel = os.path.join(directory, name) if directory else name
            if rel in recorded:
                continue
            if (directory == "" and name not in _INERT_DIRS) or \
                    (directory == "bin" and _RESERVED_SCRIPT.search(name)):
                found.append((rel, "added"))
    return sorted(found)


def _venv_changes(installed: InstalledPlugin, site: Path) -> tuple[list[Change], int]:
    """:meth:`PluginStore.verify` outside site-packages: the store-owned entries against their
    record, and every other entry must be a file a distribution's RECORD lists (RECORD rows
    are checked by :func:`check_site_packages`) or a directory holding such files."""
    assert installed.venv is not None
    recorded = installed.metadata.get("interpreter_files")
    if not isinstance(recorded, dict):
        raise StoreError(f"plugin {installed.name!r}", "installed before the store recorded "
                         "its interpreter files (pyvenv.cfg, bin/python); reinstall it")
    venv = installed.venv
    now = _venv_entries(venv, site)
    owners = _owners(venv, site)
    changes: list[Change] = []

    def rel_site(rel: str) -> str:
        return os.path.relpath(os.path.join(venv, rel), site).replace(os.sep, "/")

    for rel, what in recorded.items():
        if now.get(rel) != what:
            changes.append((None, rel_site(rel), "missing" if rel not in now else "modified"))
    listed = set(owners)
    for rel, what in now.items():
        if rel in recorded or rel in listed:
            continue
        if what == "dir" and any(p.startswith(rel + os.sep) for p in listed):
            continue
        changes.append((None, rel_site(rel), "unexpected"))
    return changes, len(recorded)


def _redacted(src: PluginSource) -> PluginSource:
    """*src* with its URLs redacted (what the policy and the record see)."""
    return PluginSource.from_dict(src.to_dict())


def _download_with_credentials(wheelhouse: Wheelhouse, artifact: Artifact, user: str,
                               password: str) -> Path:
    """Download *artifact* into *wheelhouse* with HTTP basic auth (hash checked there)."""
    import base64  # noqa: PLC0415 - only for private indexes
    import ssl  # noqa: PLC0415
    import urllib.error  # noqa: PLC0415
    import urllib.request  # noqa: PLC0415

    url = redact_url(artifact.url)
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    request = urllib.request.Request(url, headers={"User-Agent": "isolator",
                                                   "Authorization": f"Basic {token}"})
    try:
        with urllib.request.urlopen(request, timeout=120,
                                    context=ssl.create_default_context()) as response:
            return wheelhouse._store_stream(artifact, response.read, url)
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        raise ResolutionError(url, f"download failed: {getattr(exc, 'reason', exc)}") \
            from None


def _audit_fields(installed: InstalledPlugin) -> dict[str, Any]:
    return {"plugin": installed.name, "package": installed.package, "kind": installed.kind,
            "source": installed.source.source, "version": installed.version,
            "generation": installed.generation,
            "distributions": len(installed.distributions)}


def _pin_url(pin: Pin) -> str:
    """The URL of a file a pin may install from (they come from one index)."""
    files = [*pin.wheels, *([pin.sdist] if pin.sdist is not None else [])]
    return files[0].url if files else ""


def _from_metadata(gen: Path, data: dict[str, Any]) -> InstalledPlugin:
    try:
        kind = data["kind"]
        venv = gen / "venv" if kind == "package" else None
        return InstalledPlugin(
            name=data["name"],
            version=data["version"],
            kind=kind,
            source=PluginSource.from_dict(data["source"]),
            generation=data["generation"],
            path=gen,
            content_dir=gen / data["content_dir"],
            installed_at=data["installed_at"],
            package=data.get("package"),
            module=data.get("module"),
            venv=venv,
            python=data.get("python"),
            backend=data.get("backend"),
            constraint=data.get("constraint"),
            distributions=tuple(ResolvedDistribution.from_dict(d)
                                for d in data.get("distributions", [])),
            allow_build=bool(data.get("allow_build", False)),
            git_commit=data.get("git_commit"),
            content_sha256=data.get("content_sha256"),
            metadata=data,
        )
    except (KeyError, TypeError, SourceError) as exc:
        raise StoreError(str(gen / _METADATA), f"metadata lacks or mangles {exc}") from None


def _metadata_hashes(gen: Path) -> set[str]:
    try:
        data = json.loads((gen / _METADATA).read_text(encoding="utf-8"))
        return {d["sha256"] for d in data.get("distributions", [])} | {
            d["built_from"]["sha256"] for d in data.get("distributions", []) if
            d.get("built_from")}
    except (OSError, ValueError, KeyError, TypeError):
        return set()


def _check_name(name: str, what: str = "plugin name") -> str:
    ok = (isinstance(name, str) and 0 < len(name) <= _NAME_MAX and name[0].isalnum()
          and all(c.isalnum() or c in "._-" for c in name) and name.isascii())
    if not ok:
        raise StoreError(f"{what} {name!r}", f"expected letters, digits, '.', '_' or '-' "
                         f"(starting with a letter or digit, at most {_NAME_MAX} characters)")
    return name


def _read_pointer(plugin_dir: Path) -> str | None:
    try:
        with open(plugin_dir / _POINTER, encoding="utf-8") as handle:
            text = handle.read().strip()
    except (FileNotFoundError, NotADirectoryError):
        return None
    return text if text.startswith("gen-") and "/" not in text else None


def _new_generation_id() -> str:
    return "gen-" + time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + "-" + secrets.token_hex(4)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    try:
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2, sort_keys=True)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        # A venv may hold read-only files (the wheelhouse's are 0444): rmtree copes on POSIX.
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def _remove_unless_leased(gen: Path) -> bool:
    """Remove generation *gen* unless a lease holds it; True when it was removed."""
    try:
        fd = os.open(gen / _LEASE, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        _remove(gen)  # half-built before its lease file existed, or already half-removed
        return True
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        # Metadata first: a generation without it is never mistaken for a usable one.
        with contextlib.suppress(FileNotFoundError):
            (gen / _METADATA).unlink()
        _remove(gen)
        return True
    finally:
        os.close(fd)


def _tree_size(path: Path) -> int:
    total = 0
    try:
        if path.is_file() or path.is_symlink():
            return path.lstat().st_size
        for dirpath, _dirs, files in os.walk(path):
            for name in files:
                with contextlib.suppress(OSError):
                    total += os.lstat(os.path.join(dirpath, name)).st_size
    except OSError:
        pass
    return total


@contextlib.contextmanager
def _flock(path: Path, *, shared: bool, timeout: float, what: str,
           progress: Callable[[str], None] | None = None) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        mode = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
        deadline = time.monotonic() + timeout
        told = False
        while True:
            try:
                fcntl.flock(fd, mode | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise
            if not told:
                _say(progress, f"waiting for another process using {what}")
                told = True
            if time.monotonic() > deadline:
                raise StoreError(what, f"still busy after {timeout:g} s (lock {path})")
            time.sleep(0.05)
        yield
    finally:
        os.close(fd)


def _say(progress: Callable[[str], None] | None, message: str) -> None:
    if progress is not None:
        progress(redact_text(message))


def _checkpoint(stage: str) -> None:
    """A fault-injection point for the crash tests: ``ISOLATOR_STOP_AT=<stage>`` makes the
    process stop itself here (SIGSTOP), so a test can kill it -9 at exactly this point."""
    if os.environ.get("ISOLATOR_STOP_AT") == stage:
        os.kill(os.getpid(), signal.SIGSTOP)
