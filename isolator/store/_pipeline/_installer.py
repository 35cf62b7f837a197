"""The stages run for install, upgrade and reinstall; and uninstall. Each change is audited
once it made a generation current."""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING

from packaging.utils import canonicalize_name

from isolator._errors import PluginNotFoundError, SourceError
from isolator._redact import redact_url
from isolator.policy._policy import check_distributions
from isolator.sources._sources import PluginSource
from isolator.store._disk import check_name, checkpoint, say
from isolator.store._interpreters import base_interpreter, find_python
from isolator.store._pipeline._fetch import fetch_pins, refetch, resolve
from isolator.store._pipeline._generation import content_generation, package_generation
from isolator.store._pipeline._prepare import prepare
from isolator.store._queries import recorded_python
from isolator.store._records import audit_fields, redacted
from isolator.store._settings import settings_path

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from isolator.store._context import StoreContext
    from isolator.store._interpreters import Interpreter
    from isolator.store._records import InstalledPlugin


class Installer:
    """Install, upgrade, reinstall and uninstall plugins of one store."""

    def __init__(self, ctx: StoreContext) -> None:
        self.ctx = ctx

    def install(
        self,
        source: PluginSource | str,
        *,
        version: str | None,
        python: str | os.PathLike[str] | None,
        index_url: str | None,
        find_links: Sequence[str | os.PathLike[str]],
        no_index: bool,
        allow_build: bool,
        upgrade: bool,
        progress: Callable[[str], None] | None,
        timeout: float | None,
    ) -> InstalledPlugin:
        """:meth:`PluginStore.install`."""
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
        interpreter = base_interpreter(find_python(python if python is not None
                                                   else self.ctx.python))
        return self.audited("install", self._install(
            src, interpreter, allow_build=allow_build, upgrade=upgrade, progress=progress,
            timeout=timeout))

    def upgrade(
        self,
        name: str,
        *,
        version: str | None,
        progress: Callable[[str], None] | None,
        timeout: float | None,
        index_url: str | None,
    ) -> InstalledPlugin:
        """:meth:`PluginStore.upgrade`."""
        current = self.ctx.catalog.top_level(name)
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
        interpreter = recorded_python(current)
        return self.audited("upgrade", self._install(
            src, interpreter, allow_build=current.allow_build, upgrade=True, progress=progress,
            timeout=timeout))

    def reinstall(
        self,
        name: str,
        *,
        progress: Callable[[str], None] | None,
        timeout: float | None,
    ) -> InstalledPlugin:
        """:meth:`PluginStore.reinstall`."""
        ctx = self.ctx
        current = ctx.catalog.top_level(name)
        interpreter = recorded_python(current) if current.kind == "package" else None
        # The policy may have changed since the install: the record is checked again.
        ctx.policy.check_source(current.source)
        check_distributions(ctx.policy, current.source,
                            canonicalize_name(current.package or current.name),
                            [(d.name, d.version, d.url) for d in current.distributions])
        with ctx.generations.operation(progress) as op:
            if current.kind == "content-only":
                prepared = prepare(ctx, current.source, None, op, allow_build=False,
                                   progress=progress, timeout=timeout, ref=current.git_commit)
                assert prepared.content_dir is not None
                return self.audited("reinstall", content_generation(
                    ctx, current.source, prepared, op, force=True, progress=progress))
            assert interpreter is not None and current.package is not None
            chosen = [(d, ctx.wheelhouse.path(d.artifact())) for d in current.distributions]
            say(progress, f"verifying {len(chosen)} files in the wheelhouse")
            for dist, _ in chosen:
                refetch(ctx.wheelhouse, dist.artifact(), progress)
            return self.audited("reinstall", package_generation(
                ctx, current.source, interpreter, list(current.distributions), current.package,
                op=op, allow_build=current.allow_build, git_commit=current.git_commit,
                force=True, progress=progress, timeout=timeout,
            ))

    def uninstall(self, name: str) -> InstalledPlugin:
        """:meth:`PluginStore.uninstall`."""
        ctx = self.ctx
        generations = ctx.generations
        check_name(name)
        generations.check_store()
        policy = ctx.policy  # a policy that cannot load refuses before anything changes
        if not generations.has_marker():  # no store: nothing to lock, nothing to remove
            raise PluginNotFoundError(name, f"not installed in the store at {ctx.root}")
        with generations.store_lock(shared=True), generations.plugin_lock(name):
            current = generations.current(name)
            if current is None:
                if ctx.catalog.brought_by_any(name) is not None:
                    raise PluginNotFoundError(
                        name, f"it is not installed itself but brought by plugin "
                        f"{ctx.catalog.brought_by_any(name)!r}; uninstall that one")
                raise PluginNotFoundError(name, f"not installed in the store at {ctx.root}")
            generations.unpublish(name)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(settings_path(ctx.root, name))
        policy.audit("uninstall", **audit_fields(current))
        return current

    def audited(self, event: str, installed: InstalledPlugin) -> InstalledPlugin:
        """Audit *event* when *installed* is a generation this store made current (an install
        that found the plugin installed already changed nothing, and is not audited)."""
        published = self.ctx.generations.published
        if installed.generation in published:
            published.discard(installed.generation)
            self.ctx.policy.audit(event, **audit_fields(installed))
        return installed

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
        ctx = self.ctx
        ctx.generations.check_store()  # a directory that is no store gets no audit log either
        ctx.policy.check_source(redacted(src))  # before anything is fetched, cloned, built
        if not upgrade and src.kind == "pypi":
            existing = ctx.catalog.satisfying(src, interpreter)
            if existing is not None:
                say(progress, f"{existing.name} {existing.version} is already installed")
                return existing
        with ctx.generations.operation(progress) as op:
            prepared = prepare(ctx, src, interpreter, op, allow_build=allow_build,
                               progress=progress, timeout=timeout)
            if prepared.content_dir is not None:
                return content_generation(ctx, src, prepared, op, force=False,
                                          progress=progress)
            assert prepared.requirement is not None and prepared.root_name is not None
            pins = resolve(ctx, src, prepared, interpreter, op, allow_build=allow_build,
                           progress=progress, timeout=timeout)
            dists = fetch_pins(ctx, src, pins, interpreter, op, allow_build=allow_build,
                               progress=progress, timeout=timeout)
            checkpoint("fetched")
            return package_generation(
                ctx, src, interpreter, dists, prepared.root_name, op=op,
                allow_build=allow_build, git_commit=prepared.git_commit, force=False,
                progress=progress, timeout=timeout,
            )

