"""For plugin authors: check a plugin before publishing it, and turn a plugin directory into a
package.

:func:`validate_package` runs the proposal's checks on a package project (``pyproject.toml``,
the plugin module, ``plugin.json``, versions, the entry point) and then builds the project the
way it will be published (an sdist, and the wheel from it) to check that the wheel ships every
file of the plugin directory, dotfiles included, and that the content loads from the wheel
exactly as it loads from the directory. :func:`validate_directory` checks a plugin directory
that is not a package yet.

:func:`package_plugin` turns a git-style plugin directory into a package project (the plugin
directory becomes the module) and builds its wheel. Symlinks that stay inside the plugin become
copies; one that leaves it, a dangling one and any special file are refused, all of them named.

Nothing here imports plugin code. Builds run the project's own build backend through uv.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import shutil
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Literal

from packaging.utils import canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from isolator._errors import IsolatorError, PackagingError, PluginLoadError, StoreError
from isolator.content._loader import load_plugin
from isolator.sources._sources import SourceTree, copy_tree, scan_tree
from isolator.store._acquire import _SKIPPED_DIRS, MAX_CONTENT_BYTES, MAX_CONTENT_FILES

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping, Sequence

    from isolator.content._model import Plugin
    from isolator.store._backends import UvBackend

__all__ = [
    "BuildSettings",
    "Check",
    "PackageResult",
    "ValidationReport",
    "content_differences",
    "package_plugin",
    "plugin_files",
    "validate_directory",
    "validate_package",
]

PLUGINS_GROUP = "openhands.plugins"
AGENTS_GROUP = "openhands.agents"
TOOLS_GROUP = "openhands.tools"

CheckStatus = Literal["ok", "warning", "error", "skipped"]

# Directories a plugin never ships (the very ones the store's copy of a content-only plugin
# leaves out), and bytecode: not plugin files.
_JUNK_DIRS = _SKIPPED_DIRS
_JUNK_SUFFIXES = (".pyc", ".pyo")
_BUILD_TIMEOUT = 600.0
_LIST_LIMIT = 20  # paths named in one check's details


# ---- results -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    """One line of a validation report."""

    name: str
    """A stable key: ``pyproject``, ``entry-point``, ``module``, ``manifest``, ``content``,
    ``name``, ``version``, ``build``, ``package-data``, ``wheel-content``, ``agent``,
    ``tools``, ``files``."""
    status: CheckStatus
    message: str
    details: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "message": self.message,
                "details": list(self.details)}


@dataclass(frozen=True)
class ValidationReport:
    """What :func:`validate_package` or :func:`validate_directory` found."""

    path: str
    kind: Literal["package", "directory"]
    checks: tuple[Check, ...]
    plugin: str | None = None
    """The plugin's name (the entry point's name for a package), when it could be read."""
    version: str | None = None
    wheel: str | None = None
    """The file name of the wheel built for the check (it is not kept)."""

    @property
    def ok(self) -> bool:
        """No check failed (warnings allowed)."""
        return not self.errors

    @property
    def errors(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if c.status == "error")

    @property
    def warnings(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if c.status == "warning")

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "kind": self.kind, "ok": self.ok, "plugin": self.plugin,
                "version": self.version, "wheel": self.wheel,
                "errors": len(self.errors), "warnings": len(self.warnings),
                "checks": [c.to_dict() for c in self.checks]}


@dataclass(frozen=True)
class PackageResult:
    """What :func:`package_plugin` made."""

    plugin: str
    version: str
    dist_name: str
    module: str
    wheel: Path | None
    project: Path | None
    """The package project, when one was asked for (otherwise it was built in a temporary
    directory and removed)."""
    files: int
    linked: tuple[str, ...] = ()
    """Symlinks that became copies (every one followed)."""
    skipped: tuple[str, ...] = ()
    """Directories left out (VCS, caches, ``node_modules``, ``.venv``)."""
    notes: tuple[str, ...] = ()
    outside: tuple[str, ...] = ()
    """The followed symlinks whose target is outside the plugin directory (inside
    :attr:`repo_root`), such as a monorepo plugin's links to the repository's ``skills/``."""
    repo_root: str | None = None
    """The directory the symlinks could reach (``--repo-root``, by default the git work
    tree's top, else the plugin directory), as a real path."""

    def to_dict(self) -> dict[str, Any]:
        return {"plugin": self.plugin, "version": self.version, "dist_name": self.dist_name,
                "module": self.module, "wheel": None if self.wheel is None else str(self.wheel),
                "project": None if self.project is None else str(self.project),
                "files": self.files, "linked": list(self.linked),
                "outside": list(self.outside), "repo_root": self.repo_root,
                "skipped": list(self.skipped), "notes": list(self.notes)}


# ---- the files of a plugin directory -----------------------------------------------------------


_Tree = SourceTree


def repository_top(path: str | os.PathLike[str]) -> Path:
    """The boundary ``ohp package`` gives a plugin's symlinks by default: the top of the git
    work tree *path* is in (the nearest directory, *path* itself included, that holds
    ``.git``), else *path* itself."""
    real = Path(os.path.realpath(path))
    for candidate in (real, *real.parents):
        if os.path.lexists(candidate / ".git"):
            return candidate
    return real


def _scan(root: str | os.PathLike[str], exclude: Sequence[str | os.PathLike[str]] = (), *,
          boundary: str | os.PathLike[str] | None = None) -> SourceTree:
    """Walk a plugin directory (:func:`~isolator.sources.scan_tree`): symlinks whose target is
    inside *boundary* (default: the plugin directory) are followed; one that leaves it,
    dangles or loops, and special files are problems; VCS and cache directories, bytecode and
    the *exclude* directories (where packaging writes) are skipped."""
    return scan_tree(root, boundary=boundary, exclude=exclude, skip_dirs=_JUNK_DIRS,
                     skip_suffixes=_JUNK_SUFFIXES, skip_prefixes=(".ohp-package-",),
                     max_files=MAX_CONTENT_FILES, max_bytes=MAX_CONTENT_BYTES,
                     too_large=PackagingError)


def plugin_files(root: str | os.PathLike[str], *,
                 boundary: str | os.PathLike[str] | None = None) -> dict[str, bool]:
    """The files a plugin directory ships, as relative POSIX paths with their executable bit.

    VCS and cache directories (``.git``, ``__pycache__``, ``node_modules``, ``.venv``...) and
    bytecode are not plugin files. Symlinks inside *boundary* (default: the directory) count
    as the files they name.
    """
    return {rel: executable for rel, (_, executable) in
            _scan(root, boundary=boundary).files.items()}


# ---- comparing content -------------------------------------------------------------------------


_ROOT_TOKEN = "${PLUGIN_ROOT}"


def _comparable(plugin: Plugin) -> dict[str, Any]:
    data = plugin.to_dict()
    data.pop("installation", None)
    text = json.dumps(data, sort_keys=True, ensure_ascii=False)
    return dict(json.loads(text.replace(json.dumps(plugin.root)[1:-1], _ROOT_TOKEN)))


def content_differences(ours: Plugin, theirs: Plugin, *,
                        ignore: Sequence[str] = ()) -> list[str]:
    """How two loaded plugins differ, paths aside (each root is replaced by a token).

    Empty when they are equal. *ignore* names top-level keys of :meth:`Plugin.to_dict` to
    leave out (``installation`` is always left out). Each difference names a key and, inside a
    list of named items, the item.
    """
    a, b = _comparable(ours), _comparable(theirs)
    problems: list[str] = []
    for key in sorted(set(a) | set(b)):
        if key in ignore or a.get(key) == b.get(key):
            continue
        left, right = a.get(key), b.get(key)
        if isinstance(left, list) and isinstance(right, list) and \
                all(isinstance(x, dict) and "name" in x for x in (*left, *right)):
            by_name = {x["name"]: x for x in right}
            before = len(problems)
            for item in left:
                other = by_name.pop(item["name"], None)
                if other is None:
                    problems.append(f"{key}: {item['name']} only in the first")
                elif other != item:
                    fields = sorted(k for k in set(item) | set(other)
                                    if item.get(k) != other.get(k))
                    problems.append(f"{key}: {item['name']} differs in {', '.join(fields)}")
            problems += [f"{key}: {name} only in the second" for name in by_name]
            if len(problems) == before:  # same items, another order (or duplicate names)
                problems.append(f"{key}: same items in another order")
        else:
            problems.append(f"{key}: {json.dumps(left)[:160]} != {json.dumps(right)[:160]}")
    return problems


# ---- wheels ------------------------------------------------------------------------------------


def _wheel_files(wheel: Path, prefix: str) -> dict[str, bool]:
    """The files of *wheel* under *prefix* (``pkg/sub/``), relative to it, with their exec bit."""
    found: dict[str, bool] = {}
    with zipfile.ZipFile(wheel) as archive:
        for info in archive.infolist():
            if info.is_dir() or not info.filename.startswith(prefix):
                continue
            found[info.filename[len(prefix):]] = bool((info.external_attr >> 16) & 0o111)
    return found


def _extract_module(wheel: Path, prefix: str, target: Path) -> None:
    """Extract the members of *wheel* under *prefix* into *target* (paths checked)."""
    with zipfile.ZipFile(wheel) as archive:
        for info in archive.infolist():
            if info.is_dir() or not info.filename.startswith(prefix):
                continue
            rel = PurePosixPath(info.filename[len(prefix):])
            if rel.is_absolute() or ".." in rel.parts:
                raise PackagingError(str(wheel), f"unsafe member path {info.filename!r}")
            out = target.joinpath(*rel.parts)
            out.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(info) as src, open(out, "wb") as dst:
                shutil.copyfileobj(src, dst)


def _wheel_entry_points(wheel: Path) -> tuple[str, str, dict[str, dict[str, str]]]:
    """(name, version, entry points by group) of a wheel we built."""
    from isolator.metadata._distinfo import parse_entry_points, read_wheel_dist_info_file  # noqa: PLC0415

    name, version, _build, _tags = parse_wheel_filename(wheel.name)
    with zipfile.ZipFile(wheel) as archive:
        members = [m for m in archive.namelist() if m.count("/") == 1 and
                   m.endswith(".dist-info/entry_points.txt")]
        text = read_wheel_dist_info_file(archive, members[0], str(wheel)) if members else ""
    groups = {group: {ep.name: ep.value for ep in eps}
              for group, eps in parse_entry_points(text).items()}
    return str(name), str(version), groups


@dataclass(frozen=True)
class BuildSettings:
    """How the authoring commands build a project: the Python that runs its build backend,
    where the backend comes from (an index, a local wheelhouse, offline) and the uv to use."""

    python: str | os.PathLike[str] | None = None
    """Default: the Python running this code."""
    index_url: str | None = None
    find_links: Sequence[str | os.PathLike[str]] = ()
    no_index: bool = False
    timeout: float | None = None
    backend: UvBackend | None = None

    def build(self, project: Path, out_dir: Path, *, via_sdist: bool = False,
              progress: Callable[[str], None] | None = None) -> Path:
        """Build *project*'s wheel into *out_dir* (through an sdist with *via_sdist*)."""
        backend = self.backend
        if backend is None:
            from isolator.store._backends import UvBackend  # noqa: PLC0415

            backend = UvBackend()
        return backend.build_wheel(
            project, out_dir, self.python or sys.executable, index_url=self.index_url,
            find_links=self.find_links, no_index=self.no_index, progress=progress,
            timeout=self.timeout or _BUILD_TIMEOUT, via_sdist=via_sdist)


# ---- validate: a package project ---------------------------------------------------------------


@dataclass
class _Project:
    """What pyproject.toml says, statically."""

    name: str | None = None
    version: str | None = None
    dynamic: tuple[str, ...] = ()
    entry_points: dict[str, dict[str, str]] | None = None
    """None when they are dynamic (read from the built wheel)."""


class _Validator:
    def __init__(self, root: Path, *, build: bool, settings: BuildSettings,
                 progress: Callable[[str], None] | None) -> None:
        self.root = root
        self.build = build
        self.settings = settings
        self.progress = progress
        self.checks: list[Check] = []
        self.plugin: str | None = None
        self.version: str | None = None
        self.wheel: str | None = None

    def add(self, name: str, status: CheckStatus, message: str,
            details: Sequence[str] = ()) -> None:
        details = list(details)
        if len(details) > _LIST_LIMIT:
            details = [*details[:_LIST_LIMIT], f"... and {len(details) - _LIST_LIMIT} more"]
        self.checks.append(Check(name, status, message, tuple(details)))

    def skip(self, *names: str, reason: str) -> None:
        for name in names:
            self.add(name, "skipped", reason)

    def report(self) -> ValidationReport:
        return ValidationReport(str(self.root), "package", tuple(self.checks), self.plugin,
                                self.version, self.wheel)

    # -- the checks, in order ----------------------------------------------------------------

    def run(self) -> ValidationReport:
        project = self.pyproject()
        if project is None:
            self.skip("entry-point", "module", "manifest", "version", "package-data",
                      reason="needs a readable pyproject.toml")
            return self.report()
        entry = self.entry_point(project.entry_points)
        module_dir = self.module(entry[1]) if entry is not None else None
        plugin = self.content(module_dir, entry[0]) \
            if module_dir is not None and entry is not None else None
        if entry is not None and plugin is not None:
            self.manifest_and_name(entry[0], plugin)
        self.static_version(project, plugin)
        if not self.build:
            self.skip("package-data", reason="not built (--no-build)")
            return self.report()
        if module_dir is None and entry is not None:
            self.skip("package-data", reason="the plugin module was not found")
            return self.report()
        self.built(project, entry, module_dir, plugin)
        return self.report()

    def pyproject(self) -> _Project | None:
        path = self.root / "pyproject.toml"
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            self.add("pyproject", "error", f"pyproject.toml not found in {self.root}: a plugin "
                     "package needs one (a plugin directory that is not a package is checked "
                     "with `ohp validate DIR`, and `ohp package DIR` turns it into one)")
            return None
        except (OSError, UnicodeDecodeError) as exc:
            self.add("pyproject", "error", f"{path} cannot be read: {exc}")
            return None
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            self.add("pyproject", "error", f"{path} is not valid TOML: {exc}")
            return None
        table = data.get("project")
        if not isinstance(table, dict):
            self.add("pyproject", "error", f"{path} has no [project] table (name, version, "
                     "entry points): expected PEP 621 metadata")
            return None
        dynamic = table.get("dynamic", [])
        dynamic = tuple(d for d in dynamic if isinstance(d, str)) \
            if isinstance(dynamic, list) else ()
        name = table.get("name")
        if not isinstance(name, str) or not name:
            self.add("pyproject", "error", f"{path}: [project] name is missing (expected the "
                     "distribution name, e.g. openhands-plugin-NAME)")
            return None
        version = table.get("version")
        if version is not None and not isinstance(version, str):
            self.add("pyproject", "error", f"{path}: [project] version must be a string, "
                     f"not {version!r}")
            return None
        if version is None and "version" not in dynamic:
            self.add("pyproject", "error", f"{path}: [project] has no version (expected "
                     "version = \"1.0.0\", or 'version' in dynamic)")
            return None
        entry_points = table.get("entry-points")
        if "entry-points" in dynamic:
            groups: dict[str, dict[str, str]] | None = None
        elif entry_points is None:
            groups = {}
        elif not isinstance(entry_points, dict) or not all(
                isinstance(v, dict) for v in entry_points.values()):
            self.add("pyproject", "error", f"{path}: [project.entry-points] must hold tables "
                     "of name = \"module\" lines")
            return None
        else:
            groups = {g: {str(k): str(v) for k, v in items.items()}
                      for g, items in entry_points.items()}
        shown = version if version is not None else "(version dynamic)"
        self.add("pyproject", "ok", f"pyproject.toml found: {name} {shown}")
        return _Project(name=name, version=version, dynamic=dynamic, entry_points=groups)

    def entry_point(self, groups: dict[str, dict[str, str]] | None,
                    where: str = "pyproject.toml") -> tuple[str, str] | None:
        from isolator.store import check_name as _check_name  # noqa: PLC0415

        if groups is None:
            self.add("entry-point", "skipped", "entry points are dynamic: checked in the built "
                     "wheel")
            return None
        group = groups.get(PLUGINS_GROUP, {})
        example = f'[project.entry-points."{PLUGINS_GROUP}"]\nmy-plugin = "openhands_plugin_my"'
        if not group:
            self.add("entry-point", "error", f"{where} declares no '{PLUGINS_GROUP}' entry point;"
                     " expected one naming the plugin module", example.splitlines())
            return None
        if len(group) > 1:
            self.add("entry-point", "error", f"{where} declares {len(group)} "
                     f"'{PLUGINS_GROUP}' entry points ({', '.join(group)}); a package is one "
                     "plugin")
            return None
        (name, value), = group.items()
        value = value.strip()
        try:
            _check_name(name, f"the entry point name {name!r}")
        except IsolatorError as exc:
            self.add("entry-point", "error", str(exc))
            return None
        if ":" in value or not value or \
                not all(part.isidentifier() for part in value.split(".")):
            self.add("entry-point", "error", f"entry point {name} = {value!r}: expected a module "
                     "(the plugin directory, e.g. \"openhands_plugin_x\"), not an object")
            return None
        self.add("entry-point", "ok", f"entry point configured: {name} = {value}")
        self.plugin = name
        return name, value

    def module(self, module: str) -> Path | None:
        parts = module.split(".")
        for base in (self.root, self.root / "src"):
            candidate = base.joinpath(*parts)
            if candidate.is_dir():
                rel = candidate.relative_to(self.root).as_posix()
                if (candidate / "__init__.py").is_file():
                    self.add("module", "ok", f"plugin module found: {rel}/")
                else:
                    self.add("module", "warning", f"plugin module found: {rel}/, without "
                             "__init__.py (setuptools' package discovery skips such a "
                             "directory unless it is listed)")
                return candidate
            if candidate.with_suffix(".py").is_file():
                self.add("module", "error", f"{module} is a single-file module "
                         f"({candidate.with_suffix('.py').relative_to(self.root)}); the "
                         "plugin module must be a package directory holding the plugin's files")
                return None
        self.add("module", "error", f"plugin module {module} not found (looked for "
                 f"{'/'.join(parts)}/ and src/{'/'.join(parts)}/ in {self.root})")
        return None

    def content(self, module_dir: Path, name: str | None) -> Plugin | None:
        try:
            plugin = load_plugin(module_dir, name=name)
        except PluginLoadError as exc:
            self.add("content", "error", f"the plugin does not load: {exc}")
            return None
        counts = ", ".join(_count(n, what) for n, what in (
            (len(plugin.skills), "skill"), (len(plugin.commands), "command"),
            (len(plugin.agents), "agent"), (len(plugin.hooks or {}), "hook event"),
            (len(plugin.mcp_servers), "MCP server")))
        if plugin.diagnostics:
            self.add("content", "warning", f"content loads ({counts}) with "
                     f"{len(plugin.diagnostics)} diagnostics",
                     [f"{d.level}: {d.path}: {d.reason}" for d in plugin.diagnostics])
        else:
            self.add("content", "ok", f"content loads: {counts}")
        return plugin

    def manifest_and_name(self, entry_name: str, plugin: Plugin) -> None:
        manifest = plugin.manifest
        module_rel = os.path.relpath(plugin.root, self.root)
        if manifest.path is None:
            self.add("manifest", "ok", f"no plugin.json: the plugin is named by its entry point "
                     f"({entry_name!r})")
            return
        self.add("manifest", "ok", f"plugin.json found at {module_rel}/{manifest.path}")
        if manifest.name != entry_name:
            self.add("name", "error", f"the entry point is named {entry_name!r} but plugin.json "
                     f"names the plugin {manifest.name!r}; expected the same name (the entry "
                     "point's is the installed plugin's name)")
        else:
            self.add("name", "ok", f"entry point named as plugin.json: {entry_name}")

    def static_version(self, project: _Project, plugin: Plugin | None) -> None:
        if project.version is None:
            return  # compared with the built wheel's version
        self.compare_versions(project.version, plugin)

    def compare_versions(self, package_version: str, plugin: Plugin | None) -> None:
        try:
            parsed = Version(package_version)
        except InvalidVersion:
            self.add("version", "error", f"the package version {package_version!r} is not a "
                     "PEP 440 version (expected e.g. 1.0.0)")
            return
        self.version = str(parsed)
        if plugin is None or plugin.manifest.path is None:
            self.add("version", "ok", f"version {parsed} (from the package)")
            return
        raw = _manifest_version(plugin)
        if raw is None:
            self.add("version", "ok", f"plugin.json has no version: the package version "
                     f"{parsed} is used")
            return
        try:
            same = Version(raw) == parsed
        except InvalidVersion:
            same = False
        if same:
            self.add("version", "ok", f"versions match: {parsed}")
        else:
            self.add("version", "warning", f"versions differ: plugin.json says {raw!r}, the "
                     f"package {package_version!r}; the package version wins")

    def built(self, project: _Project, entry: tuple[str, str] | None, module_dir: Path | None,
              plugin: Plugin | None) -> None:
        with tempfile.TemporaryDirectory(prefix="ohp-validate-") as tmp:
            try:
                wheel = self.settings.build(self.root, Path(tmp) / "dist", via_sdist=True,
                                            progress=self.progress)
            except IsolatorError as exc:
                output = getattr(exc, "stderr", "") or ""
                tail = [line for line in output.splitlines() if line.strip()][-15:]
                self.add("build", "error", f"the project does not build: {exc}", tail)
                self.skip("package-data", reason="the build failed")
                return
            self.wheel = wheel.name
            self.add("build", "ok", f"built an sdist and, from it, {wheel.name}")
            name, version, groups = _wheel_entry_points(wheel)
            if canonicalize_name(name) != canonicalize_name(project.name or ""):
                self.add("build", "error", f"the wheel is {name!r}, pyproject.toml says "
                         f"{project.name!r}")
            if project.version is None:
                self.compare_versions(version, plugin)
            if entry is None and project.entry_points is None:
                entry = self.entry_point(groups, where=f"the built wheel ({wheel.name})")
                if entry is not None:
                    module_dir = self.module(entry[1])
                    plugin = self.content(module_dir, entry[0]) \
                        if module_dir is not None else None
                    if plugin is not None:
                        self.manifest_and_name(entry[0], plugin)
            elif entry is not None and groups.get(PLUGINS_GROUP) != {entry[0]: entry[1]}:
                self.add("entry-point", "error", f"the built wheel declares "
                         f"{groups.get(PLUGINS_GROUP)!r} in '{PLUGINS_GROUP}', not "
                         f"{entry[0]} = {entry[1]}")
            if entry is None or module_dir is None:
                self.skip("package-data", reason="no plugin module to compare with")
                return
            self.package_data(wheel, entry[1], module_dir, plugin, Path(tmp))
            self.code_entry_points(wheel, entry[0], groups)

    def package_data(self, wheel: Path, module: str, module_dir: Path, plugin: Plugin | None,
                     tmp: Path) -> None:
        prefix = module.replace(".", "/") + "/"
        tree = _scan(module_dir)
        source = {rel: executable for rel, (_, executable) in tree.files.items()}
        shipped = _wheel_files(wheel, prefix)
        missing = sorted(set(source) - set(shipped))
        if missing:
            hint = ("setuptools' globs skip names that start with a dot: package data "
                    "[\"**/*\", \"**/.*\", \"**/.*/**/*\", \"**/.*/**/.*\"] ships them (see "
                    "docs/plugin-authors.md)")
            self.add("package-data", "error", f"the wheel lacks {len(missing)} of the "
                     f"{len(source)} plugin files; {hint}", missing)
        else:
            self.add("package-data", "ok", f"package data includes all {len(source)} plugin "
                     "files")
        lost = sorted(rel for rel, executable in source.items()
                      if executable and rel in shipped and not shipped[rel])
        if lost:
            self.add("files", "warning", f"{len(lost)} files lose their executable bit in the "
                     "wheel", lost)
        junk = sorted(rel for rel in shipped if rel not in source and (
            rel.endswith(_JUNK_SUFFIXES) or _JUNK_DIRS & set(rel.split("/")[:-1])))
        if junk:
            self.add("files", "warning", f"the wheel ships {len(junk)} files that are not plugin "
                     "content (bytecode, VCS or cache directories)", junk)
        if tree.problems:
            self.add("files", "warning", f"{len(tree.problems)} entries of the plugin directory "
                     "are not regular files inside it (`ohp package` would refuse them)",
                     tree.problems)
        if plugin is None:
            return
        extracted = tmp / "from-wheel"
        _extract_module(wheel, prefix, extracted)
        try:
            from_wheel = load_plugin(extracted, name=plugin.name)
        except PluginLoadError as exc:
            self.add("wheel-content", "error", f"the plugin does not load from the wheel: {exc}")
            return
        differences = content_differences(plugin, from_wheel)
        if differences:
            self.add("wheel-content", "error", "the content loaded from the wheel differs from "
                     "the directory's", differences)
        else:
            self.add("wheel-content", "ok", "the content loads from the wheel exactly as from "
                     "the directory")

    def code_entry_points(self, wheel: Path, plugin_name: str,
                          groups: Mapping[str, Mapping[str, str]]) -> None:
        with zipfile.ZipFile(wheel) as archive:
            names = set(archive.namelist())

        def module_shipped(value: str) -> bool:
            module = value.split(":", 1)[0].strip().replace(".", "/")
            return f"{module}.py" in names or f"{module}/__init__.py" in names

        for group, check in ((AGENTS_GROUP, "agent"), (TOOLS_GROUP, "tools")):
            items = groups.get(group, {})
            if not items:
                continue
            bad = [f"{n} = {v}: expected 'module:object'" for n, v in items.items()
                   if ":" not in v]
            bad += [f"{n} = {v}: the wheel has no module {v.split(':', 1)[0].strip()}"
                    for n, v in items.items() if ":" in v and not module_shipped(v)]
            if group == AGENTS_GROUP and plugin_name not in items:
                bad.append(f"no agent named {plugin_name!r}: the agent entry point is named as "
                           "the plugin")
            if bad:
                self.add(check, "error", f"'{group}' entry points are not usable", bad)
            else:
                self.add(check, "ok", f"'{group}': {', '.join(items)}")


def _count(number: int, what: str) -> str:
    return f"{number} {what}" if number == 1 else f"{number} {what}s"


def _manifest_version(plugin: Plugin) -> str | None:
    """The version plugin.json states, or None when it states none (the loader defaults it)."""
    if plugin.manifest.path is None:
        return None
    try:
        with open(os.path.join(plugin.root, plugin.manifest.path), encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError):
        return plugin.manifest.version
    version = data.get("version") if isinstance(data, dict) else None
    return version if isinstance(version, str) else None


def validate_package(
    project: str | os.PathLike[str],
    *,
    build: bool = True,
    settings: BuildSettings | None = None,
    progress: Callable[[str], None] | None = None,
) -> ValidationReport:
    """Check a plugin package project before it is published.

    Every problem is a :class:`Check` in the report (a missing ``pyproject.toml`` too); only a
    *project* that is not a directory raises :class:`PackagingError`. With *build* (the
    default) the project is built with its own backend through uv, an sdist first and the
    wheel from it, as publishing does; *settings* say with which Python and from where the
    backend comes.
    """
    root = Path(project).absolute()
    if not root.is_dir():
        raise PackagingError(str(project), "not a directory (expected a package project: a "
                             "directory with pyproject.toml)")
    return _Validator(root, build=build, settings=settings or BuildSettings(),
                      progress=progress).run()


def validate_directory(path: str | os.PathLike[str], *,
                       repo_root: str | os.PathLike[str] | None = None) -> ValidationReport:
    """Check a plugin directory that is not a package (yet): it loads, it has a usable name
    and version, and `ohp package` can take every file in it. Symlinks are followed as `ohp
    package` follows them (inside *repo_root*, by default the git work tree's top, else the
    directory): the content checked is the content a package of it ships."""
    root = Path(path).absolute()
    if not root.is_dir():
        raise PackagingError(str(path), "not a directory (expected a plugin directory)")
    tree = _scan(root, boundary=_boundary(root, repo_root))
    checks = _Validator(root, build=False, settings=BuildSettings(), progress=None)
    with tempfile.TemporaryDirectory(prefix="ohp-validate-") as tmp:
        content_root = root
        if tree.outside and not tree.problems:
            content_root = Path(tmp) / "plugin"  # the skills a monorepo plugin links to
            copy_tree(tree, content_root)
        plugin = checks.content(content_root, os.path.basename(tree.root))
        if plugin is not None:
            _directory_checks(checks, plugin)
    if tree.problems:
        checks.add("files", "error", f"{len(tree.problems)} entries cannot be packaged",
                   tree.problems)
    else:
        linked = f" ({len(tree.linked)} through symlinks)" if tree.linked else ""
        checks.add("files", "ok", f"{len(tree.files)} files{linked}")
        if tree.outside:
            checks.add("links", "ok", f"{len(tree.outside)} symlinks leave the plugin directory "
                       f"for {tree.boundary}: followed, their targets ship as files",
                       [f"{rel} -> {link}" for rel, link in tree.outside.items()])
    if plugin is None:
        return ValidationReport(str(root), "directory", tuple(checks.checks))
    return ValidationReport(str(root), "directory", tuple(checks.checks), checks.plugin,
                            checks.version)


def _directory_checks(checks: _Validator, plugin: Plugin) -> None:
    """Manifest, name and version of a plugin directory that loaded."""
    from isolator.store import check_name as _check_name  # noqa: PLC0415

    if plugin.manifest.path is None:
        checks.add("manifest", "warning", f"no plugin.json: the plugin is named after its "
                   f"directory ({plugin.name!r})")
    else:
        checks.add("manifest", "ok", f"plugin.json found at {plugin.manifest.path}")
    try:
        _check_name(plugin.name)
        checks.add("name", "ok", f"name: {plugin.name}")
        checks.plugin = plugin.name
    except IsolatorError as exc:
        checks.add("name", "error", str(exc))
    raw = _manifest_version(plugin)
    try:
        checks.version = str(Version(plugin.version))
        checks.add("version", "ok" if raw is not None else "warning",
                   f"version {plugin.version}" if raw is not None else
                   f"plugin.json has no version: {plugin.version} is assumed")
    except InvalidVersion:
        checks.add("version", "warning", f"version {plugin.version!r} is not a PEP 440 version: "
                   "`ohp package` needs --version")


# ---- package: a plugin directory into a package ------------------------------------------------


def _escape_glob(path: str) -> str:
    return glob.escape(path)


def _needs_literal(rel: str) -> bool:
    """True for a file the generic package-data globs miss: one below two or more hidden
    directories (setuptools' ``**`` never enters a hidden directory)."""
    return sum(part.startswith(".") for part in rel.split("/")[:-1]) >= 2


def package_plugin(
    plugin_dir: str | os.PathLike[str],
    out_dir: str | os.PathLike[str] = "dist",
    *,
    project_dir: str | os.PathLike[str] | None = None,
    version: str | None = None,
    dist_name: str | None = None,
    force: bool = False,
    build: bool = True,
    settings: BuildSettings | None = None,
    progress: Callable[[str], None] | None = None,
    repo_root: str | os.PathLike[str] | None = None,
) -> PackageResult:
    """Turn a git-style plugin directory into a package project and build its wheel.

    The plugin directory becomes the module ``openhands_plugin_<name>`` of the distribution
    ``openhands-plugin-<name>`` (*dist_name* overrides), whose ``openhands.plugins`` entry
    point is the plugin's name; the version is *version*, else plugin.json's. The project is
    written to *project_dir* when given (refused when it exists, unless *force*), else built
    in a temporary directory. The wheel goes into *out_dir*. Everything is made in temporary
    places first: on any error nothing in *project_dir* or *out_dir* has changed.

    A symlink is followed, its target copied as regular files, when the target is inside
    *repo_root*: by default the top of the git work tree holding the plugin
    (:func:`repository_top`), else the plugin directory itself. A plugin of a monorepo that
    links the repository's shared ``skills/`` is packaged with those skills; each such link is
    in :attr:`PackageResult.outside`. A link leaving *repo_root* is refused.

    The wheel is checked against the directory before anything is kept: every file must be in
    it, and the content must load from it exactly as from the directory, links followed.
    """
    from isolator.authoring._templates import dist_name_for, module_name_for, render_pyproject  # noqa: PLC0415
    from isolator.store import check_name as _check_name  # noqa: PLC0415

    source = Path(plugin_dir)
    if not source.is_dir():
        raise PackagingError(str(plugin_dir), "not a directory (expected a plugin directory)")
    if (source / "pyproject.toml").exists():
        raise PackagingError(str(plugin_dir), "is already a package project (it has "
                             "pyproject.toml): check it with `ohp validate --python-package` "
                             "and build it with `uv build`")
    boundary = _boundary(source, repo_root)
    project_target = Path(project_dir).absolute() if project_dir is not None else None
    out = Path(out_dir).absolute()
    _say(progress, f"reading {source}")
    # `ohp package .` writes ./dist inside the plugin: never package an earlier output.
    tree = _scan(source, exclude=[out, *([project_target] if project_target else [])],
                 boundary=boundary)
    if tree.problems:
        raise PackagingError(str(source), f"{len(tree.problems)} entries cannot be packaged "
                             "(a package ships regular files from inside "
                             f"{_boundary_words(tree)} only)", tuple(tree.problems))
    if build and out.exists() and not out.is_dir():
        raise PackagingError(str(out), "exists and is not a directory (expected a directory "
                             "for the wheel: --out DIR)")
    try:
        work_parent = project_target.parent if project_target is not None else None
        with tempfile.TemporaryDirectory(prefix=".ohp-package-") as plain:
            # The plugin as it will ship, links followed: what is loaded, named and compared.
            shipped = Path(plain) / "plugin"
            copy_tree(tree, shipped)
            plugin = load_plugin(shipped, name=os.path.basename(tree.root))
            name = _check_name(plugin.name, f"the plugin name of {source}")
            notes: list[str] = []
            version = _package_version(source, plugin, version, notes)
            module = module_name_for(name)
            dist = dist_name_for(name) if dist_name is None else dist_name
            if not _valid_dist_name(dist):
                raise PackagingError(str(source), f"{dist!r} is not a valid distribution name "
                                     "(letters, digits, '.', '_', '-', starting and ending with "
                                     "a letter or digit): pass --dist-name")
            if project_target is not None and project_target.exists() and not force and \
                    (not project_target.is_dir() or any(project_target.iterdir())):
                raise PackagingError(str(project_target), "exists; pass --force to replace it")
            if work_parent is not None:
                work_parent.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(prefix=".ohp-package-", dir=work_parent) as tmp:
                wheel = _make_project(
                    tree, plugin, source, Path(tmp), out=out, project_target=project_target,
                    name=name, version=version, module=module, dist=dist, build=build,
                    settings=settings, progress=progress, render_pyproject=render_pyproject)
    except OSError as exc:  # an unreadable file, a full disk, an unwritable --out
        raise PackagingError(str(exc.filename or source),
                             f"cannot be written or read: {exc.strerror or exc}") from exc
    return PackageResult(plugin=name, version=version, dist_name=dist, module=module,
                         wheel=wheel, project=project_target, files=len(tree.files),
                         linked=tuple(tree.linked), skipped=tuple(tree.skipped),
                         notes=tuple(notes), outside=tuple(tree.outside),
                         repo_root=tree.boundary)


def _boundary(source: Path, repo_root: str | os.PathLike[str] | None) -> Path:
    if repo_root is None:
        return repository_top(source)
    given = Path(repo_root)
    if not given.is_dir():
        raise PackagingError(str(repo_root), "--repo-root is not a directory (expected the "
                             "repository, or directory, the plugin's symlinks may reach)")
    if not Path(os.path.realpath(source)).is_relative_to(os.path.realpath(given)):
        raise PackagingError(str(repo_root), f"--repo-root does not contain the plugin "
                             f"directory {source} (expected the repository it is in)")
    return given


def _boundary_words(tree: SourceTree) -> str:
    return "the plugin directory" if tree.boundary == tree.root else \
        f"the plugin directory or, through symlinks, {tree.boundary}"


def _make_project(tree: SourceTree, plugin: Plugin, source: Path, tmp: Path, *, out: Path,
                  project_target: Path | None, name: str, version: str, module: str,
                  dist: str, build: bool, settings: BuildSettings | None,
                  progress: Callable[[str], None] | None,
                  render_pyproject: Callable[..., str]) -> Path | None:
    """Write the package project in *tmp*, build and check its wheel into *out*, keep the
    project in *project_target* if asked; return the wheel."""
    project = tmp / "project"
    module_dir = project / module
    _say(progress, f"writing the project ({len(tree.files)} files)")
    _write_tree(tree, module_dir)
    if not (module_dir / "__init__.py").exists():
        (module_dir / "__init__.py").write_text(
            f'"""The {name} plugin: this directory is the plugin (its files are package '
            'data). Nothing here is imported by the host."""\n', encoding="utf-8")
    literal = [_escape_glob(rel) for rel in sorted(tree.files) if _needs_literal(rel)]
    description = plugin.description or f"The {name} agent plugin"
    (project / "pyproject.toml").write_text(render_pyproject(
        dist_name=dist, version=version, description=description, module=module,
        plugin_name=name, extra_package_data=literal), encoding="utf-8")
    (project / "README.md").write_text(_readme(name, dist, module, description, source),
                                       encoding="utf-8")
    wheel: Path | None = None
    if build:
        staging = tmp / "dist"
        built = (settings or BuildSettings()).build(project, staging, progress=progress)
        for leftover in (project / "build", *project.glob("*.egg-info")):
            shutil.rmtree(leftover, ignore_errors=True)
        _say(progress, f"checking {built.name}")
        _check_built(built, module, tree, plugin)
        out.mkdir(parents=True, exist_ok=True)
        wheel = out / built.name
        # The temporary directory may be on another filesystem: copy beside the target,
        # then rename, so a wheel of that name is never half-written.
        partial = out / f".{built.name}.partial"
        try:
            shutil.copyfile(built, partial)
            os.replace(partial, wheel)
        finally:
            with contextlib.suppress(FileNotFoundError):
                partial.unlink()
    if project_target is not None:
        if project_target.exists():
            _replace_dir(project, project_target)
        else:
            project.rename(project_target)
    return wheel


def _package_version(source: Path, plugin: Plugin, version: str | None,
                     notes: list[str]) -> str:
    if version is not None:
        try:
            return str(Version(version))
        except InvalidVersion:
            raise PackagingError(version, "--version is not a PEP 440 version (expected e.g. "
                                 "1.0.0)") from None
    raw = _manifest_version(plugin)
    if raw is None:
        notes.append(f"plugin.json states no version: the package is {plugin.version} (the "
                     "version the loader assumes); pass --version to choose one")
    stated = raw if raw is not None else plugin.version
    try:
        parsed = str(Version(stated))
    except InvalidVersion:
        raise PackagingError(str(source), f"plugin.json's version {stated!r} is not a PEP 440 "
                             "version (expected e.g. 1.0.0): pass --version") from None
    if parsed != stated:
        notes.append(f"version {stated!r} is {parsed!r} in PEP 440's normal form")
    return parsed


def _valid_dist_name(name: str) -> bool:
    return bool(name) and name[0].isalnum() and name[-1].isalnum() and name.isascii() and \
        all(c.isalnum() or c in "._-" for c in name)


def _write_tree(tree: SourceTree, target: Path) -> None:
    """Copy the files of *tree* under *target*; a hook script keeps its executable bit."""
    try:
        copy_tree(tree, target)
    except StoreError as exc:
        raise PackagingError(exc.subject, exc.reason) from None


def _check_built(wheel: Path, module: str, tree: SourceTree, plugin: Plugin) -> None:
    prefix = module + "/"
    shipped = _wheel_files(wheel, prefix)
    missing = sorted(set(tree.files) - set(shipped))
    if missing:
        raise PackagingError(str(wheel), f"the built wheel lacks {len(missing)} plugin files",
                             tuple(missing))
    with tempfile.TemporaryDirectory(prefix="ohp-check-") as tmp:
        _extract_module(wheel, prefix, Path(tmp))
        differences = content_differences(plugin, load_plugin(tmp, name=plugin.name))
    if differences:
        raise PackagingError(str(wheel), "the content loaded from the built wheel differs from "
                             "the directory's", tuple(differences))


def _replace_dir(new: Path, old: Path) -> None:
    """Put *new* where *old* is, keeping *old* until *new* is in place."""
    backup = old.with_name(f".{old.name}.old-{os.getpid()}")
    old.rename(backup)
    try:
        new.rename(old)
    except BaseException:
        backup.rename(old)
        raise
    if backup.is_dir() and not backup.is_symlink():
        shutil.rmtree(backup, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            backup.unlink()


def _readme(name: str, dist: str, module: str, description: str, source: Path) -> str:
    return f"""# {dist}

{description}

This package was made by `ohp package` from the plugin directory `{source.name}`. The module
`{module}/` *is* the plugin directory: skills, commands, agents, hooks and MCP configuration
are its package data, read by the host from site-packages without importing anything.

    ohp install pypi:{dist}     # once published
    ohp show {name}

The entry point `openhands.plugins` names the plugin: `{name} = "{module}"`.
"""


def _say(progress: Callable[[str], None] | None, message: str) -> None:
    if progress is not None:
        progress(message)


def _iter_checks(report: ValidationReport) -> Iterator[str]:
    """The report as text lines (what ``ohp validate`` prints)."""
    labels = {"ok": "OK     ", "warning": "WARNING", "error": "ERROR  ", "skipped": "SKIPPED"}
    for check in report.checks:
        yield f"{labels[check.status]} {check.message}"
        for detail in check.details:
            yield f"          {detail}"
