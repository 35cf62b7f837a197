"""Stage 4: a new generation of a plugin, under its lock: the venv built (or the content
copied) inside it, its metadata written, then the pointer switched
(:meth:`isolator.store._generations.Generations.publish`). A plugin already installed from the
same files is returned as it is; a name another package holds is refused."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from packaging.utils import canonicalize_name

from isolator._errors import (
    HashMismatchError,
    PluginCollisionError,
    ResolutionError,
    StoreError,
)
from isolator.metadata._distinfo import find_distribution, find_plugin_dir
from isolator.store._acquire import copy_content
from isolator.store._disk import check_name, now, say
from isolator.store._lockfile import file_hashes
from isolator.store._pipeline._venv import make_venv, pooled_venv
from isolator.store._queries import plugins_in
from isolator.store._records import METADATA_FORMAT, PLUGINS_GROUP, load_plugin
from isolator.store._resolve import wheel_declared_plugins

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from isolator.sources._sources import PluginSource
    from isolator.store._context import StoreContext
    from isolator.store._interpreters import Interpreter
    from isolator.store._pipeline._prepare import Prepared
    from isolator.store._records import InstalledPlugin, ResolvedDistribution


def package_generation(
    ctx: StoreContext,
    src: PluginSource,
    interpreter: Interpreter,
    dists: list[ResolvedDistribution],
    root_name: str,
    *,
    op: Path,
    allow_build: bool,
    git_commit: str | None,
    force: bool,
    progress: Callable[[str], None] | None,
    timeout: float | None,
    replace_other: bool = False,
) -> InstalledPlugin:
    """Plugin package *root_name* installed from *dists* (in the wheelhouse) as the current
    generation."""
    generations = ctx.generations
    root = [d for d in dists if canonicalize_name(d.name) == canonicalize_name(root_name)]
    if not root:
        raise ResolutionError(src.source, f"the resolution does not contain {root_name}")
    root_wheel = ctx.wheelhouse.path(root[0].artifact())
    plugin_eps = wheel_declared_plugins(root_wheel, PLUGINS_GROUP)
    if not plugin_eps:
        raise StoreError(src.source, f"{root[0].name} {root[0].version} is not a plugin: it "
                         f"declares no '{PLUGINS_GROUP}' entry point and has no "
                         "agent-plugins marker (agent_plugins.json)")
    if len(plugin_eps) > 1:
        names = ", ".join(ep.name for ep in plugin_eps)
        raise StoreError(src.source, f"{root[0].name} declares {len(plugin_eps)} "
                         f"'{PLUGINS_GROUP}' entry points ({names}); a package is one plugin")
    entry = plugin_eps[0]
    name = check_name(entry.name, f"{root[0].name}'s entry point name")
    generations.check_store(create=True)
    with generations.plugin_lock(name, progress):
        current = generations.current(name)
        if current is not None:
            if not replace_other:  # sync replaces whatever holds the name
                refuse_collision(current, src, root[0].name)
            same = {(d.name, d.sha256) for d in current.distributions} == \
                   {(d.name, d.sha256) for d in dists}
            if same and not force and current.python is not None and \
                    current.python.get("path") == str(interpreter.path):
                say(progress, f"{name} {current.version} is already installed")
                return current
        with generations.building(name) as gen:
            pool_record: dict[str, str] | None = None
            if ctx.pool is not None:
                # The venv is the pool's, shared read-only; the generation records which.
                base, site, owned, key = pooled_venv(
                    ctx, ctx.pool, interpreter, dists, root_dist=root[0].name, name=name,
                    progress=progress, timeout=timeout)
                pool_record = {"root": str(ctx.pool.root), "key": key, "env": str(base)}
            else:
                base = gen
                site, owned = make_venv(ctx, gen / "venv", interpreter, dists,
                                        root_dist=root[0].name, name=name, op=op,
                                        progress=progress, timeout=timeout)
            dist = find_distribution(site, root[0].name)
            if dist is None:
                raise StoreError(src.source, f"{root[0].name} is missing after installing")
            content_dir = find_plugin_dir(dist, entry)
            # A fatal content error refuses the install.
            plugin = load_plugin(content_dir, name=name)
            # The venv never changes once built: what it brings is recorded here, once, so
            # listing reads metadata.json alone instead of every distribution's dist-info.
            brought = [{"name": ep.name, "package": other.name, "version": other.version,
                        "module": ep.module, "content_dir": os.path.relpath(directory, base)}
                       for other, ep, directory in plugins_in(site, dist.name)]
            metadata: dict[str, Any] = {
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
                "backend": {"name": ctx.backend.name, "version": ctx.backend.version()},
                "installed_at": now(),
                "content_dir": os.path.relpath(content_dir, base),
                "manifest_name": plugin.name,
                "brought": brought,
                "interpreter_files": owned,
                "distributions": [d.to_dict() for d in sorted(dists, key=lambda d: d.name)],
            }
            if pool_record is not None:
                metadata["pool"] = pool_record
            generations.publish(gen, metadata)
        say(progress, f"installed {name} {dist.version}")
        installed = generations.current(name)
        assert installed is not None
        return installed


def content_generation(
    ctx: StoreContext,
    src: PluginSource,
    prepared: Prepared,
    op: Path,
    *,
    force: bool,
    progress: Callable[[str], None] | None,
    replace_other: bool = False,
    expected_sha256: str | None = None,
) -> InstalledPlugin:
    """Content-only plugin *prepared* copied in as the current generation."""
    generations = ctx.generations
    assert prepared.content_dir is not None
    staged = op / "content"
    say(progress, f"copying {prepared.content_dir}")
    content_hash = copy_content(prepared.content_dir, staged)
    if expected_sha256 is not None and content_hash != expected_sha256:
        raise HashMismatchError(src.source, expected_sha256, content_hash)
    files = file_hashes(staged)  # per file, for verify()
    plugin = load_plugin(staged, name=src.default_name)
    name = check_name(plugin.name, f"the plugin name of {src.source}")
    generations.check_store(create=True)
    with generations.plugin_lock(name, progress):
        current = generations.current(name)
        if current is not None:
            if not replace_other:  # sync replaces whatever holds the name
                refuse_collision(current, src, None)
            if current.content_sha256 == content_hash and not force:
                say(progress, f"{name} {current.version} is already installed")
                return current
        with generations.building(name) as gen:
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
                "installed_at": now(),
                "content_dir": "content",
                "distributions": [],
            }
            generations.publish(gen, metadata)
        say(progress, f"installed {name} {plugin.version} (content only)")
        installed = generations.current(name)
        assert installed is not None
        return installed


def refuse_collision(current: InstalledPlugin, src: PluginSource,
                     package: str | None) -> None:
    """Refuse to install *src* (distribution *package*, or content) under the name *current*
    holds, unless it is the same package or the same content source."""
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
