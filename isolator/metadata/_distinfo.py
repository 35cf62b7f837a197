"""Installed distributions, read from ``*.dist-info`` directories as data.

Nothing here imports the distributions or uses :mod:`importlib.metadata`: listing many plugin
venvs must be cheap, so each file is read only when its answer is asked for (``METADATA``'s first
block for name and version; ``entry_points.txt``, ``RECORD``, ``direct_url.json`` and
``INSTALLER`` lazily), and parsed with plain string operations rather than the email and
configparser machinery.

Every file a plugin's distributions ship is the plugin author's, whatever its size: each
dist-info file is read with a size cap (:func:`dist_info_cap`: 1 MiB for ``entry_points.txt``
and the small files, more for ``RECORD`` and ``METADATA``), by :func:`read_dist_info_file` from
a venv and :func:`read_wheel_dist_info_file` from a wheel, and a file over it is refused with
an error that names it and the cap, before it is read.

A distribution declares a plugin in one of two ways (:meth:`Distribution.declared_plugins`): an
entry point in the ``openhands.plugins`` group naming a package directory, or the marker that
the ``agent-plugins`` package's build backends write, ``agent_plugins.json`` in the dist-info
(:data:`AGENT_PLUGINS_MARKER`), naming a ``<dist>-<version>.agent-plugin/`` folder installed
next to it in site-packages. Both are read as data, and what they name must be a directory the
distribution itself installed inside site-packages (:func:`find_plugin_dir`).
"""

from __future__ import annotations

import csv
import json
import os
import stat
import sys
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from packaging.utils import canonicalize_name

from isolator._errors import DistributionError

if TYPE_CHECKING:
    import zipfile
    from collections.abc import Iterator

# Name and Version are the 2nd and 3rd headers in every METADATA seen in practice; one small
# read nearly always holds both, and we keep reading only when it does not.
_HEAD_CHUNK = 2048
_MAX_HEADER_BYTES = 1 << 20

# The most bytes the host reads of one dist-info file, by name. The largest seen in practice:
# RECORD about 3 MiB (packages of tens of thousands of files), METADATA about 1 MiB (a
# changelog for a long description), entry_points.txt tens of KiB. Parsed entry points cost
# about 40 times their bytes in objects, hence the smaller cap there.
_DIST_INFO_CAPS = {"RECORD": 32 << 20, "METADATA": 16 << 20, "entry_points.txt": 1 << 20}
_DEFAULT_DIST_INFO_CAP = 1 << 20
"""INSTALLER, direct_url.json, top_level.txt, WHEEL and any other dist-info file."""


@dataclass(frozen=True)
class EntryPoint:
    """One ``name = module:attr [extras]`` line of ``entry_points.txt``."""

    name: str
    group: str
    module: str
    attr: str | None = None
    """``None`` for an entry point that names a module only (``openhands.plugins``)."""
    extras: tuple[str, ...] = ()

    @property
    def value(self) -> str:
        """The entry point as written: ``module:attr [extras]``."""
        text = self.module if self.attr is None else f"{self.module}:{self.attr}"
        return f"{text} [{','.join(self.extras)}]" if self.extras else text


@dataclass(frozen=True)
class RecordEntry:
    """One row of ``RECORD``: a path relative to site-packages, its hash and size when given."""

    path: str
    hash: str | None
    """``algorithm=urlsafe-base64-digest`` (e.g. ``sha256=...``), or ``None``."""
    size: int | None


AGENT_PLUGINS_MARKER = "agent_plugins.json"
"""The dist-info file the ``agent-plugins`` build backends (PyPI ``agent-plugins`` 0.2) write:
``{"root": "<dist>-<version>.agent-plugin", "files": ["plugin.json", ...]}``, *root* relative
to site-packages (an editable install writes an absolute path there, which is refused)."""
_MARKER_FILES_MAX = 100_000


@dataclass(frozen=True)
class AgentPluginsMarker:
    """A checked ``agent_plugins.json``: the plugin folder and the files it says it holds."""

    root: str
    """The plugin folder, a relative POSIX path inside site-packages (no ``..``, not absolute)."""
    files: tuple[str, ...]
    """The plugin's files, relative to *root* (``plugin.json`` among them)."""


@dataclass(frozen=True)
class DeclaredPlugin:
    """A plugin a distribution declares: by an entry point, or by an ``agent-plugins`` marker."""

    name: str
    """The entry point's name; for a marker, the distribution's canonical name (as the
    ``agent-plugins`` package itself names installed plugins)."""
    module: str | None
    """The entry point's package; ``None`` for a marker's folder."""

    @property
    def kind(self) -> str:
        return "entry-point" if self.module is not None else "agent-plugins"


@dataclass(frozen=True)
class Distribution:
    """An installed distribution: its identity now, its other files when asked."""

    name: str
    canonical_name: str
    version: str
    path: Path
    """The ``*.dist-info`` directory."""

    @property
    def site_packages(self) -> Path:
        """The directory the distribution is installed into."""
        return self.path.parent

    @cached_property
    def entry_points(self) -> dict[str, tuple[EntryPoint, ...]]:
        """Entry points by group, in file order (read from ``entry_points.txt`` on first use)."""
        text = read_dist_info_file(f"{self.path}{os.sep}entry_points.txt")
        return {} if text is None else parse_entry_points(text)

    def entry_points_in(self, group: str) -> tuple[EntryPoint, ...]:
        """The entry points of one group (empty when the group is absent)."""
        return self.entry_points.get(group, ())

    @cached_property
    def agent_plugins(self) -> AgentPluginsMarker | None:
        """The ``agent_plugins.json`` marker, checked (``None`` when there is none); a bad one
        raises :class:`DistributionError` naming the distribution and the file."""
        path = f"{self.path}{os.sep}{AGENT_PLUGINS_MARKER}"
        text = read_dist_info_file(path)
        return None if text is None else parse_agent_plugins_marker(
            text, f"{path} (of {self.name} {self.version})")

    def has_agent_plugins_marker(self) -> bool:
        """Whether the dist-info holds an ``agent_plugins.json`` (not read)."""
        return os.path.lexists(f"{self.path}{os.sep}{AGENT_PLUGINS_MARKER}")

    def declared_plugins(self, group: str) -> tuple[DeclaredPlugin, ...]:
        """The plugins this distribution declares: its entry points in *group*
        (``openhands.plugins``) or, when it has none there, its ``agent-plugins`` marker.

        A distribution with both is the entry point's plugin: the entry point is the
        declaration made for this host, and the marker's folder is left to other clients."""
        entries = self.entry_points_in(group)
        if entries:
            return tuple(DeclaredPlugin(entry.name, entry.module) for entry in entries)
        if self.has_agent_plugins_marker():
            return (DeclaredPlugin(self.canonical_name, None),)
        return ()

    @cached_property
    def requires(self) -> tuple[str, ...]:
        """``Requires-Dist`` requirements, as written (markers included)."""
        return tuple(_metadata_headers(self.path / "METADATA", "requires-dist"))

    @cached_property
    def installer(self) -> str | None:
        """The ``INSTALLER`` file's first line (``uv``, ``pip``), or ``None``."""
        text = read_dist_info_file(self.path / "INSTALLER")
        return text.strip().splitlines()[0] if text and text.strip() else None

    @cached_property
    def direct_url(self) -> dict[str, Any] | None:
        """``direct_url.json`` (PEP 610) for a distribution installed from a URL or path."""
        text = read_dist_info_file(self.path / "direct_url.json")
        if text is None:
            return None
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise DistributionError(str(self.path / "direct_url.json"), f"bad JSON: {exc}") \
                from None
        if not isinstance(data, dict):
            raise DistributionError(str(self.path / "direct_url.json"), "expected a JSON object")
        return data


def find_site_packages(venv: Path) -> Path:
    """The site-packages directory of a venv, found by listing it (no interpreter is run)."""
    if sys.platform == "win32":  # pragma: no cover - the layout differs only by name
        candidate = venv / "Lib" / "site-packages"
        if candidate.is_dir():
            return candidate
        raise DistributionError(str(venv), "no Lib/site-packages: not a virtual environment")
    lib = venv / "lib"
    try:
        names = sorted(
            entry.name
            for entry in os.scandir(lib)
            if entry.name.startswith(("python", "pypy")) and entry.is_dir()
        )
    except OSError:
        raise DistributionError(str(venv), "no lib/ directory: not a virtual environment") \
            from None
    found = [lib / name / "site-packages" for name in names]
    found = [path for path in found if path.is_dir()]
    if len(found) != 1:
        what = "no" if not found else "more than one"
        raise DistributionError(str(venv), f"{what} lib/python*/site-packages directory")
    return found[0]


def iter_distributions(
    site_packages: Path | str, *, strict: bool = False
) -> Iterator[Distribution]:
    """Yield the distributions installed in *site_packages*, sorted by directory name.

    A ``*.dist-info`` directory without a usable ``METADATA`` (an interrupted install) is
    skipped, or raises :class:`DistributionError` when *strict*.
    """
    root = os.fspath(site_packages)
    try:
        with os.scandir(root) as entries:
            names = sorted(
                entry.name
                for entry in entries
                if entry.name.endswith(".dist-info") and entry.is_dir()
            )
    except OSError as exc:
        raise DistributionError(root, f"cannot list site-packages: {exc.strerror}") from None
    for name in names:
        try:
            # Strings, not Path joins, on this path: pathlib's parsing was a third of the time.
            yield _read_distribution(f"{root}{os.sep}{name}")
        except DistributionError:
            if strict:
                raise


def find_distribution(site_packages: Path | str, name: str) -> Distribution | None:
    """The distribution called *name* (any spelling) in *site_packages*, or ``None``."""
    wanted = canonicalize_name(name)
    # dist-info names are "{normalised name}-{version}": compare only the name part.
    root = os.fspath(site_packages)
    try:
        with os.scandir(root) as entries:
            candidates = [
                entry.name
                for entry in entries
                if entry.name.endswith(".dist-info")
                and canonicalize_name(entry.name[: -len(".dist-info")].rsplit("-", 1)[0])
                == wanted
            ]
    except OSError as exc:
        raise DistributionError(root, f"cannot list site-packages: {exc.strerror}") from None
    for candidate in sorted(candidates):
        dist = read_distribution(Path(root) / candidate)
        if dist.canonical_name == wanted:
            return dist
    return None


def read_distribution(dist_info: Path | str) -> Distribution:
    """Read one ``*.dist-info`` directory's name and version from its ``METADATA`` header."""
    return _read_distribution(os.fspath(dist_info))


def _read_distribution(dist_info: str) -> Distribution:
    name, version = _name_and_version(f"{dist_info}{os.sep}METADATA")
    return Distribution(
        name=name, canonical_name=canonicalize_name(name), version=version, path=Path(dist_info)
    )


def parse_entry_points(text: str) -> dict[str, tuple[EntryPoint, ...]]:
    """Parse ``entry_points.txt``: ``[group]`` sections of ``name = module:attr [extras]``.

    Lines that are not ``[section]`` or ``name = value`` are ignored, as comments are: a
    malformed line in one plugin's metadata must not hide its other entry points.
    """
    groups: dict[str, list[EntryPoint]] = {}
    current: list[EntryPoint] | None = None
    group = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line[0] == "[" and line[-1] == "]":
            group = line[1:-1].strip()
            current = groups.setdefault(group, [])
            continue
        if current is None:
            continue
        key, sep, value = line.partition("=")
        if not sep:
            continue
        key = key.strip()
        value = value.strip()
        if not key or not value:
            continue
        extras: tuple[str, ...] = ()
        bracket = value.find("[")
        if bracket != -1:
            inner = value[bracket + 1 :].rstrip()
            inner = inner.removesuffix("]")
            extras = tuple(item.strip() for item in inner.split(",") if item.strip())
            value = value[:bracket].rstrip()
        module, colon, attr = value.partition(":")
        module = module.strip()
        if not module:
            continue
        current.append(EntryPoint(key, group, module, attr.strip() if colon else None, extras))
    return {name: tuple(items) for name, items in groups.items()}


def read_record(dist: Distribution) -> list[RecordEntry]:
    """Every row of the distribution's ``RECORD``."""
    text = read_dist_info_file(dist.path / "RECORD")
    if text is None:
        raise DistributionError(str(dist.path), "no RECORD file")
    entries: list[RecordEntry] = []
    try:
        rows = list(csv.reader(text.splitlines()))
    except csv.Error as exc:  # a field over csv's limit, a NUL: the author's, not our bug
        raise DistributionError(str(dist.path / "RECORD"), f"not a CSV file: {exc}") from None
    for row in rows:
        if not row or not row[0]:
            continue
        digest = row[1] if len(row) > 1 and row[1] else None
        size: int | None = None
        if len(row) > 2 and row[2]:
            try:
                size = int(row[2])
            except ValueError:
                raise DistributionError(
                    str(dist.path / "RECORD"), f"bad size {row[2]!r} for {row[0]}"
                ) from None
        entries.append(RecordEntry(row[0], digest, size))
    return entries


def record_hashes(dist: Distribution) -> dict[str, str]:
    """``{path: "sha256=..."}`` for every ``RECORD`` row that carries a hash."""
    return {entry.path: entry.hash for entry in read_record(dist) if entry.hash is not None}


def find_module_dir(dist: Distribution, module: str) -> Path:
    """The directory in site-packages of package *module* (dotted), as ``RECORD`` lists it.

    Only a directory the distribution itself installed counts: this is how a plugin's content
    root is found without importing it. A single-file module has no directory and is an error.
    """
    parts = module.split(".")
    if not module or not all(part.isidentifier() for part in parts):
        raise DistributionError(str(dist.path), f"{module!r} is not a module name")
    rel = "/".join(parts)
    prefix = rel + "/"
    text = read_dist_info_file(dist.path / "RECORD")
    found = False
    single_file = False
    if text is not None:
        for line in text.splitlines():
            # A path with a comma or quote is quoted in RECORD; module paths start the same.
            path = line[1:] if line.startswith('"') else line
            if path.startswith(prefix):
                found = True
                break
            if path.startswith(rel + ".py,") or path.startswith(rel + ".py\""):
                single_file = True
    target = dist.site_packages / rel
    if not found:
        if single_file:
            raise DistributionError(
                str(dist.path), f"{module!r} is a single-file module, not a package directory"
            )
        reason = f"RECORD lists no files under {prefix}" if text is not None else "no RECORD"
        raise DistributionError(str(dist.path), f"module {module!r} not installed: {reason}")
    if not target.is_dir():
        raise DistributionError(str(target), f"module directory of {dist.name} is missing")
    root = dist.site_packages.resolve()
    resolved = target.resolve()
    if root not in resolved.parents:
        raise DistributionError(str(target), "module directory resolves outside site-packages")
    return target


def find_plugin_dir(dist: Distribution, plugin: DeclaredPlugin) -> Path:
    """The directory in site-packages of *plugin*, which *dist* declares: the entry point's
    package (:func:`find_module_dir`) or the ``agent-plugins`` marker's folder
    (:func:`find_agent_plugin_dir`)."""
    if plugin.module is not None:
        return find_module_dir(dist, plugin.module)
    return find_agent_plugin_dir(dist)


def find_agent_plugin_dir(dist: Distribution) -> Path:
    """The folder *dist*'s ``agent_plugins.json`` names, once it is a real directory inside
    site-packages (no symlink on the way) whose ``plugin.json`` *dist*'s RECORD lists; else
    :class:`DistributionError`."""
    marker = dist.agent_plugins
    where = f"{dist.path}{os.sep}{AGENT_PLUGINS_MARKER}"
    if marker is None:
        raise DistributionError(where, f"{dist.name} {dist.version} has no "
                                f"{AGENT_PLUGINS_MARKER}")
    wanted = f"{marker.root}/plugin.json"
    if not any(entry.path == wanted for entry in read_record(dist)):
        raise DistributionError(where, f"root {marker.root!r}: {dist.name}'s RECORD lists no "
                                f"{wanted} (a plugin folder this distribution did not install)")
    site = dist.site_packages
    current = site
    parts = marker.root.split("/")
    for depth, part in enumerate(parts, 1):
        current = current / part
        rel = "/".join(parts[:depth])
        try:
            info = os.lstat(current)
        except OSError:
            raise DistributionError(where, f"the plugin folder {rel} is missing from "
                                    "site-packages") from None
        if stat.S_ISLNK(info.st_mode):
            raise DistributionError(where, f"the plugin folder: {rel} is a symlink in "
                                    "site-packages (refused, not followed)")
        if not stat.S_ISDIR(info.st_mode):
            raise DistributionError(where, f"the plugin folder: {rel} is not a directory")
    resolved = current.resolve()
    if site.resolve() not in resolved.parents:
        raise DistributionError(where, f"root {marker.root!r} resolves outside site-packages")
    return current


def parse_agent_plugins_marker(text: str, where: str) -> AgentPluginsMarker:
    """Check an ``agent_plugins.json`` (*where* names it in errors): a JSON object whose
    ``root`` is a relative path inside site-packages and whose ``files`` list the plugin's
    files, ``plugin.json`` among them."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise DistributionError(where, f"not JSON: {exc}") from None
    if not isinstance(data, dict):
        raise DistributionError(where, f"expected a JSON object with 'root' and 'files', not "
                                f"{type(data).__name__}")
    root = data.get("root")
    if not isinstance(root, str) or not root:
        raise DistributionError(where, f"'root' must be a non-empty string (the plugin "
                                f"folder, relative to site-packages), not {root!r}")
    if root.startswith("/") or (len(root) > 1 and root[1] == ":"):
        raise DistributionError(where, f"'root' {root!r} is absolute (an editable install?): "
                                "the plugin folder must be inside site-packages")
    _check_marker_path(root, "'root'", where)
    files = data.get("files")
    if files is None:
        raise DistributionError(where, "no 'files' list (an agent-plugins older than its "
                                "file inventory wrote it): rebuild or reinstall the package")
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        raise DistributionError(where, "'files' must be a list of strings")
    if len(files) > _MARKER_FILES_MAX:
        raise DistributionError(where, f"'files' lists {len(files)} files, over the "
                                f"{_MARKER_FILES_MAX} cap: refused")
    for file in files:
        _check_marker_path(file, "an entry of 'files'", where)
    if "plugin.json" not in files:
        raise DistributionError(where, "'files' does not list plugin.json (an Agent Plugin "
                                "has one at its root)")
    return AgentPluginsMarker(root=root, files=tuple(files))


def _check_marker_path(path: str, what: str, where: str) -> None:
    parts = path.split("/")
    bad = next((c for c in path if ord(c) < 32 or c in "\\\x7f"), None)
    if bad is not None or path.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise DistributionError(where, f"{what} {path!r} is not a relative path inside "
                                "site-packages (no '..', '.', empty part, backslash or "
                                "control character)")


# ---- file reading ----------------------------------------------------------------------------


# os.open/os.read rather than open(): no FileIO + BufferedReader objects per file, which showed
# in profiles of listing many small dist-info files.
_O_RDONLY = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)


def dist_info_cap(name: str) -> int:
    """The most bytes the host reads of the dist-info file called *name* (``RECORD``...)."""
    return _DIST_INFO_CAPS.get(name, _DEFAULT_DIST_INFO_CAP)


def _size_text(size: int) -> str:
    return f"{size >> 20} MiB" if size >= 1 << 20 and not size % (1 << 20) else f"{size} bytes"


def _too_large(where: str, name: str, size: int | None, cap: int) -> DistributionError:
    got = f" ({size} bytes)" if size is not None else ""
    return DistributionError(where, f"{name} is over the {_size_text(cap)} cap on dist-info "
                             f"files{got}: refused")


def read_dist_info_file(path: Path | str, cap: int | None = None) -> str | None:
    """The text of a dist-info file in a venv (``None`` when it does not exist), at most *cap*
    bytes (default: :func:`dist_info_cap` of its name); a larger file, or one that is not a
    regular file, is refused with :class:`DistributionError` before it is read."""
    name = os.path.basename(os.fspath(path))
    limit = dist_info_cap(name) if cap is None else cap
    try:
        # O_NONBLOCK: a FIFO planted in a dist-info directory must not block the open.
        fd = os.open(path, _O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise DistributionError(str(path), f"cannot read: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise DistributionError(str(path), f"{name} is not a regular file")
        if info.st_size > limit:
            raise _too_large(str(path), name, info.st_size, limit)
        chunks = []
        left = limit + 1  # a file that grew since fstat is caught here
        while left > 0:
            chunk = os.read(fd, min(65536, left))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        if left <= 0:
            raise _too_large(str(path), name, None, limit)
    except OSError as exc:  # EISDIR and the like
        raise DistributionError(str(path), f"cannot read: {exc.strerror}") from None
    finally:
        os.close(fd)
    return b"".join(chunks).decode("utf-8", "replace")


def read_wheel_dist_info_file(archive: zipfile.ZipFile, member: str, where: str,
                              cap: int | None = None) -> str:
    """The text of dist-info file *member* of a wheel, at most *cap* bytes (default:
    :func:`dist_info_cap` of its name), refused from its size in the archive before it is
    decompressed; *where* (the wheel's path) names it in the error."""
    name = member.rsplit("/", 1)[-1]
    limit = dist_info_cap(name) if cap is None else cap
    info = archive.getinfo(member)
    if info.file_size > limit:
        raise _too_large(f"{where}: {member}", name, info.file_size, limit)
    with archive.open(info) as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:  # zipfile stops at the declared size; this is the belt to its braces
        raise _too_large(f"{where}: {member}", name, None, limit)
    return data.decode("utf-8", "replace")


def _name_and_version(metadata: str) -> tuple[str, str]:
    try:
        fd = os.open(metadata, _O_RDONLY)
    except FileNotFoundError:
        raise DistributionError(metadata, "no METADATA file (interrupted install?)") from None
    except OSError as exc:
        raise DistributionError(metadata, f"cannot read: {exc.strerror}") from None
    try:
        buffer = os.read(fd, _HEAD_CHUNK)
        end = buffer.find(b"\n\n")
        # Scan whole lines only: the last line of a partial read may be cut.
        head = buffer[:end] if end != -1 else buffer[: buffer.rfind(b"\n") + 1]
        name, version = _scan_header(head)
        if (name is None or version is None) and end == -1:
            # Rare: a long header before Name/Version. Read the rest of the header block.
            while end == -1 and len(buffer) < _MAX_HEADER_BYTES:
                more = os.read(fd, _HEAD_CHUNK * 8)
                if not more:
                    break
                buffer += more
                end = buffer.find(b"\n\n")
            name, version = _scan_header(buffer if end == -1 else buffer[:end])
    except OSError as exc:
        raise DistributionError(metadata, f"cannot read: {exc.strerror}") from None
    finally:
        os.close(fd)
    if not name or not version:
        missing = "Name" if not name else "Version"
        raise DistributionError(metadata, f"METADATA has no {missing} header")
    return name, version


def _scan_header(head: bytes) -> tuple[str | None, str | None]:
    name: str | None = None
    version: str | None = None
    for line in head.split(b"\n"):
        key, sep, value = line.partition(b":")
        if not sep:
            continue
        lowered = key.lower()
        if name is None and lowered == b"name":
            name = value.strip().decode("utf-8", "replace")
            if version is not None:
                break
        elif version is None and lowered == b"version":
            version = value.strip().decode("utf-8", "replace")
            if name is not None:
                break
    return name, version


def _metadata_headers(metadata: Path, header: str) -> list[str]:
    """All values of one header in METADATA's header block (continuation lines folded)."""
    text = read_dist_info_file(metadata)
    if text is None:
        raise DistributionError(str(metadata), "no METADATA file")
    wanted = header.lower()
    values: list[str] = []
    collecting = False
    head = text.partition("\n\n")[0]  # not the long description's lines
    for line in head.splitlines():
        if not line:
            break  # the body (long description) starts after the first blank line
        if line[0] in " \t":
            if collecting and values:
                values[-1] += " " + line.strip()
            continue
        key, sep, value = line.partition(":")
        collecting = bool(sep) and key.strip().lower() == wanted
        if collecting:
            values.append(value.strip())
    return values
