"""Lock, sync and verify: the store's plugin set as a lock file, the store made to hold exactly
a lock's plugins, and every installed file checked against what was installed."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from packaging.utils import canonicalize_name, parse_wheel_filename

from isolator._errors import (
    DistributionError,
    HashMismatchError,
    ResolutionError,
    StoreError,
)
from isolator.metadata._distinfo import find_site_packages
from isolator.policy._policy import check_distributions
from isolator.sources._sources import classify_directory
from isolator.store._acquire import copy_content
from isolator.store._disk import checkpoint, say
from isolator.store._interpreters import Interpreter, base_interpreter, find_python
from isolator.store._lockfile import (
    Lock,
    LockedPlugin,
    check_content,
    check_site_packages,
    locked_plugin,
    parse_lock,
    read_lock,
)
from isolator.store._pipeline._fetch import fetch_locked
from isolator.store._pipeline._generation import content_generation, package_generation
from isolator.store._pipeline._prepare import Prepared, prepare
from isolator.store._records import (
    PLUGINS_GROUP,
    FileChange,
    InstalledPlugin,
    ResolvedDistribution,
    SyncReport,
    VerifyReport,
    load_plugin,
)
from isolator.store._resolve import interpreter_tags, wheel_declared_plugins
from isolator.store._venvfiles import venv_changes
from isolator.store._wheelhouse import Wheelhouse

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from isolator.store._context import StoreContext
    from isolator.store._lockfile import Change
    from isolator.store._pipeline._installer import Installer


@dataclass
class _Staged:
    """A lock entry checked and ready to install (:meth:`PluginStore.sync`)."""

    entry: LockedPlugin
    op: Path
    interpreter: Interpreter | None = None
    dists: list[ResolvedDistribution] = field(default_factory=list)
    prepared: Prepared | None = None


class LockSync:
    """:meth:`PluginStore.lock`, :meth:`PluginStore.sync`, :meth:`PluginStore.verify` and the
    start check of a venv's interpreter files."""

    def __init__(self, ctx: StoreContext, installer: Installer) -> None:
        self.ctx = ctx
        self.installer = installer

    def lock(self) -> dict[str, Any]:
        """:meth:`PluginStore.lock`."""
        generations = self.ctx.generations
        plugins: dict[str, LockedPlugin] = {}
        for name in generations.plugin_names():
            current = generations.current(name)
            if current is not None:
                plugins[name] = locked_plugin(current)
        return Lock(plugins).to_dict()

    def sync(
        self,
        lock: Lock | Mapping[str, Any] | str | os.PathLike[str],
        *,
        find_links: Sequence[str | os.PathLike[str]],
        progress: Callable[[str], None] | None,
        timeout: float | None,
    ) -> SyncReport:
        """:meth:`PluginStore.sync`."""
        generations = self.ctx.generations
        if isinstance(lock, Lock):
            wanted = lock
        elif isinstance(lock, (str, os.PathLike)):
            wanted = read_lock(lock)
        else:
            wanted = parse_lock(lock)
        generations.check_store()
        current = {name: plugin for name in generations.plugin_names()
                   if (plugin := generations.current(name)) is not None}
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
            with generations.operation(progress) as op:
                staged = [self._stage_locked(entry, op / entry.name, find_links, progress,
                                             timeout) for entry in todo]
                checkpoint("sync-verified")
                for stage in staged:
                    self.installer.audited("sync", self._apply_locked(stage, progress, timeout))
        removed = sorted(set(current) - set(wanted.plugins))
        for name in removed:
            say(progress, f"uninstalling {name}")
            self.installer.uninstall(name)
        return SyncReport(
            installed=tuple(e.name for e in todo if e.name not in current),
            replaced=tuple(e.name for e in todo if e.name in current),
            removed=tuple(removed), unchanged=tuple(unchanged))

    def verify(self, name: str | None = None) -> VerifyReport:
        """:meth:`PluginStore.verify`."""
        catalog, generations = self.ctx.catalog, self.ctx.generations
        if name is not None:
            names = [catalog.top_level(name).name]
        else:
            names = [n for n in generations.plugin_names() if generations.current(n) is not None]
        changes: list[FileChange] = []
        unverified: list[str] = []
        files = 0
        for plugin_name in names:
            with catalog.lease(plugin_name) as installed:
                try:
                    found, count = self._check_files(installed)
                except (StoreError, DistributionError, OSError) as exc:
                    unverified.append(f"{plugin_name}: {exc}")
                    continue
            files += count
            changes += [FileChange(plugin_name, dist, path, what)  # type: ignore[arg-type]
                        for dist, path, what in found]
        return VerifyReport(tuple(names), files, tuple(changes), tuple(unverified))

    def _check_files(self, installed: InstalledPlugin) -> tuple[list[Change], int]:
        if installed.kind == "content-only":
            recorded = installed.metadata.get("files")
            if not isinstance(recorded, dict):
                raise StoreError(f"plugin {installed.name!r}", "installed before per-file "
                                 "hashes were recorded; reinstall it to record them")
            return check_content(installed.content_dir, recorded)
        if installed.venv is None:
            raise StoreError(f"plugin {installed.name!r}", "its record names no venv")
        wheelhouse, bytecode_root = self.ctx.wheelhouse, self.ctx.bytecode.root
        pool = installed.pool
        if pool is not None and isinstance(pool.get("root"), str):
            # A pooled venv: its wheels and bytecode are the pool's, whatever this store uses.
            wheelhouse = Wheelhouse(Path(pool["root"]) / "wheelhouse")
            bytecode_root = Path(pool["root"]) / "bytecode"
        wheels: list[tuple[str, Path | None]] = []
        for dist in installed.distributions:
            try:
                wheels.append((dist.name, wheelhouse.verified(dist.artifact())))
            except (ResolutionError, HashMismatchError):
                wheels.append((dist.name, None))  # then its installed RECORD alone
        site = find_site_packages(installed.venv)
        changes, count = check_site_packages(
            site, wheels, bytecode_root,
            virtualenv=(installed.backend or {}).get("name") == "virtualenv")
        outside, checked = venv_changes(installed, site)
        return sorted(set(changes) | set(outside), key=lambda c: (c[1], c[0] or "", c[2])), \
            count + checked

    def _stage_locked(self, entry: LockedPlugin, op: Path,
                      find_links: Sequence[str | os.PathLike[str]],
                      progress: Callable[[str], None] | None,
                      timeout: float | None) -> _Staged:
        """Everything plugin *entry* needs, checked against the lock; nothing changed yet."""
        ctx = self.ctx
        op.mkdir()
        src = entry.source
        ctx.policy.check_source(src)
        if entry.kind == "content-only":
            if src.kind == "directory":
                src.check_local_paths()
                assert src.path is not None
                if classify_directory(src.path) != "content-only":
                    raise StoreError(f"plugin {entry.name!r}", f"the lock has it content-only, "
                                     f"but {src.source} is a package now")
            prepared = prepare(ctx, src, None, op, allow_build=False, progress=progress,
                               timeout=timeout, ref=entry.git_commit)
            if prepared.content_dir is None:
                raise StoreError(f"plugin {entry.name!r}", f"the lock has it content-only, but "
                                 f"{src.source} is a package now")
            say(progress, f"checking {entry.name}'s content")
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
        check_distributions(ctx.policy, src, canonicalize_name(entry.package),
                            [(d.name, d.version, d.url) for d in entry.distributions])
        interpreter = self._locked_python(entry.python)
        tags = set(interpreter_tags(interpreter.path))
        say(progress, f"checking {entry.name}'s {len(entry.distributions)} files")
        dists = []
        for locked in entry.distributions:
            if not any(str(tag) in tags for tag in parse_wheel_filename(locked.file)[3]):
                raise ResolutionError(f"{locked.name}=={locked.version}", f"{locked.file} does "
                                      f"not fit Python {interpreter.version_str} "
                                      f"({interpreter.path})")
            dist = ResolvedDistribution(locked.name, locked.version, locked.file,
                                        locked.sha256, locked.url)
            fetch_locked(ctx.wheelhouse, dist, find_links, progress)
            dists.append(dist)
        root = next(d for d in dists
                    if canonicalize_name(d.name) == canonicalize_name(entry.package))
        declared = [ep.name for ep in wheel_declared_plugins(
            ctx.wheelhouse.path(root.artifact()), PLUGINS_GROUP)]
        if declared != [entry.name]:
            raise StoreError(f"plugin {entry.name!r}", f"{root.filename} declares the plugin "
                             f"{', '.join(declared) or 'nothing'}, not {entry.name!r}")
        return _Staged(entry, op, interpreter=interpreter, dists=dists)

    def _apply_locked(self, stage: _Staged, progress: Callable[[str], None] | None,
                      timeout: float | None) -> InstalledPlugin:
        ctx = self.ctx
        entry = stage.entry
        say(progress, f"installing {entry.name} from the lock")
        if stage.prepared is not None:
            return content_generation(ctx, entry.source, stage.prepared, stage.op, force=True,
                                      replace_other=True, progress=progress,
                                      expected_sha256=entry.content_sha256)
        assert stage.interpreter is not None and entry.package is not None
        for dist in stage.dists:  # checked again right before use: the files are not trusted
            ctx.wheelhouse.verified(dist.artifact())
        return package_generation(
            ctx, entry.source, stage.interpreter, stage.dists, entry.package, op=stage.op,
            allow_build=entry.allow_build, git_commit=entry.git_commit, force=True,
            replace_other=True, progress=progress, timeout=timeout)

    def _locked_python(self, version: str) -> Interpreter:
        """The store's default interpreter when it is that version, else one found for it."""
        default = find_python(self.ctx.python)
        if version in (default.version_str, default.minor):
            return base_interpreter(default)
        return base_interpreter(find_python(version))

