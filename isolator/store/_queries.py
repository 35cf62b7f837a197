"""Reading a store: the installed plugins, the plugins they bring, their content and entry points.

Readers take no lock: the pointer names a finished generation, and generations never change.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from isolator._errors import (
    DistributionError,
    IsolatorError,
    PluginCollisionError,
    PluginNotFoundError,
    StoreError,
)
from isolator.content._model import Diagnostic, Plugin
from isolator.metadata._distinfo import (
    EntryPoint,
    find_distribution,
    find_plugin_dir,
    find_site_packages,
    iter_distributions,
)
from isolator.store._disk import check_name
from isolator.store._interpreters import Interpreter, find_python
from isolator.store._records import (
    ENTRY_POINT_GROUPS,
    PLUGINS_GROUP,
    InstalledPlugin,
    load_plugin,
    redacted,
)

if TYPE_CHECKING:
    from contextlib import AbstractContextManager
    from pathlib import Path

    from isolator.metadata._distinfo import DeclaredPlugin, Distribution
    from isolator.sources._sources import PluginSource
    from isolator.store._generations import Generations


class Catalog:
    """The installed plugins of a store, as its generations record them."""

    def __init__(self, generations: Generations) -> None:
        self.generations = generations

    @property
    def root(self) -> Path:
        return self.generations.root

    def list_installed(self) -> list[InstalledPlugin]:
        """:meth:`PluginStore.list_installed`."""
        top = [plugin for name in self.generations.plugin_names()
               if (plugin := self.generations.current(name))]
        names = {plugin.name for plugin in top}
        brought: dict[str, InstalledPlugin] = {}
        for plugin in top:
            for dep in self.brought_plugins(plugin):
                if dep.name not in names and dep.name not in brought:
                    brought[dep.name] = dep
        return sorted([*top, *brought.values()], key=lambda p: p.name)

    def get(self, name: str) -> InstalledPlugin:
        """:meth:`PluginStore.get`."""
        check_name(name)
        current = self.generations.current(name)
        if current is not None:
            return current
        found: list[InstalledPlugin] = []
        for other in self.generations.plugin_names():
            plugin = self.generations.current(other)
            if plugin is None:
                continue
            found += [dep for dep in self.brought_plugins(plugin) if dep.name == name]
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

    def lease(self, name: str) -> AbstractContextManager[InstalledPlugin]:
        """:meth:`PluginStore.lease`."""
        return self.generations.lease(name, self.get)

    def load(self, name: str) -> Plugin:
        """:meth:`PluginStore.load`."""
        with self.lease(name) as installed:
            return loaded(installed)

    def entry_points(self, name: str) -> dict[str, tuple[EntryPoint, ...]]:
        """:meth:`PluginStore.entry_points`."""
        installed = self.get(name)
        empty: dict[str, tuple[EntryPoint, ...]] = {group: () for group in ENTRY_POINT_GROUPS}
        if installed.venv is None or installed.package is None:
            return empty
        dist = find_distribution(find_site_packages(installed.venv), installed.package)
        if dist is None:
            raise StoreError(f"plugin {name!r}", f"{installed.package} is missing from its venv")
        return {group: dist.entry_points_in(group) for group in ENTRY_POINT_GROUPS}

    def top_level(self, name: str) -> InstalledPlugin:
        """Plugin *name* installed itself; else :class:`PluginNotFoundError` (saying which
        plugin brings it, when one does)."""
        check_name(name)
        current = self.generations.current(name)
        if current is None:
            bringer = self.brought_by_any(name)
            if bringer is not None:
                raise PluginNotFoundError(
                    name, f"it is not installed itself but brought by plugin {bringer!r}")
            raise PluginNotFoundError(name, f"not installed in the store at {self.root}")
        return current

    def brought_by_any(self, name: str) -> str | None:
        for other in self.generations.plugin_names():
            plugin = self.generations.current(other)
            if plugin is not None and any(d.name == name for d in self.brought_plugins(plugin)):
                return plugin.name
        return None

    def brought_plugins(self, plugin: InstalledPlugin) -> list[InstalledPlugin]:
        """Plugins declared by other distributions in *plugin*'s venv: from the record made
        at install, or (a generation installed before there was one) read from dist-info."""
        if plugin.venv is None:
            return []
        recorded = plugin.metadata.get("brought")
        if isinstance(recorded, list):
            try:
                return [replace(
                    plugin, name=d["name"], version=d["version"], package=d["package"],
                    module=d["module"], content_dir=plugin.env_dir / d["content_dir"],
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
                for dist, entry, directory in plugins_in(site, plugin.package or "")]

    def satisfying(self, src: PluginSource, interpreter: Interpreter) -> InstalledPlugin | None:
        """The plugin installed from index package *src* with *interpreter*, when its version
        satisfies *src* (an install then has nothing to do)."""
        wanted = src.canonical_name
        for name in self.generations.plugin_names():
            plugin = self.generations.current(name)
            if plugin is None or plugin.package is None or plugin.source.kind != "pypi":
                continue
            if canonicalize_name(plugin.package) != wanted:
                continue
            if plugin.python is None or plugin.python.get("path") != str(interpreter.path):
                return None
            ours = redacted(src)  # the record holds no credentials
            if plugin.source.index_url != ours.index_url or \
                    plugin.source.find_links != ours.find_links:
                return None
            try:
                ok = src.specifier.contains(Version(plugin.version), prereleases=True)
            except InvalidVersion:
                ok = False
            return plugin if ok else None
        return None


def recorded_python(current: InstalledPlugin) -> Interpreter:
    """The interpreter *current* was installed with."""
    path = None if current.python is None else current.python.get("path")
    if not path:
        raise StoreError(f"plugin {current.name!r}", "its record names no interpreter")
    try:
        return find_python(path)
    except IsolatorError as exc:
        raise StoreError(f"plugin {current.name!r}", f"the interpreter it was installed "
                         f"with is gone ({exc}); uninstall and install it again with "
                         "--python") from None


def loaded(installed: InstalledPlugin) -> Plugin:
    plugin = load_plugin(installed.content_dir, name=installed.name)
    notes: list[Diagnostic] = []
    manifest = plugin.manifest
    if manifest.name != installed.name:
        given = "the package name" if installed.kind == "package" and \
            installed.module is None else "the entry point name"  # agent-plugins: no entry point
        notes.append(Diagnostic(".", f"plugin.json names the plugin "
                                f"{manifest.name!r}; {given} {installed.name!r} "
                                "is used", "warning"))
    if installed.kind == "package" and manifest.version and \
            manifest.version != installed.version:
        notes.append(Diagnostic(".", f"plugin.json says version "
                                f"{manifest.version!r}; the package version "
                                f"{installed.version!r} is used", "warning"))
    manifest = replace(manifest, name=installed.name, version=installed.version)
    return replace(plugin, manifest=manifest, diagnostics=(*plugin.diagnostics, *notes),
                   installation=installed.installation())


def plugins_in(site: Path, root_package: str) -> list[tuple[Distribution, DeclaredPlugin, Path]]:
    """The plugins the distributions in *site* other than *root_package* declare (entry points
    or ``agent-plugins`` markers), with each plugin's content directory."""
    found = []
    root = canonicalize_name(root_package)
    for dist in iter_distributions(site):
        if dist.canonical_name == root:
            continue
        try:
            declared = dist.declared_plugins(PLUGINS_GROUP)
        except DistributionError:
            continue
        for entry in declared:
            try:
                found.append((dist, entry, find_plugin_dir(dist, entry)))
            except DistributionError:
                continue
    return found


# ---- the venv outside site-packages ----------------------------------------------------------
