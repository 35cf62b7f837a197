"""Resolution results: every distribution pinned to an exact version and an artifact with a hash.

A backend resolves a source's requirement into :class:`Pin` objects (uv writes a
``pylock.toml``, PEP 751; pip writes an installation report). The store then picks, for each pin,
the one wheel that fits the plugin's interpreter (:func:`select_wheel`, by the interpreter's own
tag priority), fetches it into the wheelhouse, and installs exactly those files with hashes.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import packaging
from packaging.utils import (
    InvalidWheelFilename,
    canonicalize_name,
    parse_wheel_filename,
)

from isolator._errors import CommandError, DistributionError, ResolutionError
from isolator.metadata._distinfo import (
    AGENT_PLUGINS_MARKER,
    AgentPluginsMarker,
    DeclaredPlugin,
    EntryPoint,
    parse_agent_plugins_marker,
    parse_entry_points,
    read_wheel_dist_info_file,
)

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib  # type: ignore[import-not-found,unused-ignore]

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence



@dataclass(frozen=True)
class Artifact:
    """One file a distribution can be installed from: a wheel or an sdist, with its sha256."""

    url: str
    """``https://...`` or ``file:///abs/path``."""
    sha256: str
    filename: str

    @property
    def is_wheel(self) -> bool:
        return self.filename.endswith(".whl")

    @property
    def local_path(self) -> Path | None:
        """The file of a ``file:`` URL; ``None`` for a remote one."""
        parts = urlsplit(self.url)
        if parts.scheme != "file":
            return None
        return Path(unquote(parts.path))

    def to_dict(self) -> dict[str, str]:
        return {"url": self.url, "sha256": self.sha256, "filename": self.filename}


@dataclass(frozen=True)
class Pin:
    """A resolved distribution: exact version, and the artifacts it may come from."""

    name: str
    """PEP 503 normalised."""
    version: str
    wheels: tuple[Artifact, ...]
    sdist: Artifact | None = None


def artifact_from_location(location: str, sha256: str | None, filename: str | None = None) -> \
        Artifact:
    """An :class:`Artifact` from a URL or an absolute path; *sha256* must be known."""
    if "://" in location:
        url = location
        name = filename or unquote(urlsplit(location).path.rsplit("/", 1)[-1])
    else:
        path = Path(location).absolute()
        url = path.as_uri()
        name = filename or path.name
    if not sha256:
        raise ResolutionError(location, "the resolver gave no sha256 for this file")
    return Artifact(url=url, sha256=sha256.lower(), filename=name)


def parse_pylock(text: str, origin: str = "pylock.toml") -> list[Pin]:
    """Pins from a PEP 751 ``pylock.toml`` as ``uv pip compile --format pylock.toml`` writes it."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ResolutionError(origin, f"the resolver wrote an unreadable lock: {exc}") from None
    pins: list[Pin] = []
    for package in data.get("packages", []):
        name = canonicalize_name(str(package.get("name", "")))
        version = str(package.get("version", ""))
        if not name or not version:
            raise ResolutionError(origin, f"a locked package lacks a name or version: {package}")
        wheels = tuple(_pylock_file(origin, name, entry) for entry in package.get("wheels", []))
        sdist = _pylock_file(origin, name, package["sdist"]) if "sdist" in package else None
        archive = package.get("archive")
        if archive is not None:
            file = _pylock_file(origin, name, archive)
            if file.is_wheel:
                wheels = (*wheels, file)
            else:
                sdist = file
        for unsupported in ("directory", "vcs"):
            if unsupported in package:
                raise ResolutionError(
                    origin, f"{name} resolved to a {unsupported}; only wheels and sdists install"
                )
        pins.append(Pin(name=str(name), version=version, wheels=wheels, sdist=sdist))
    return pins


def _pylock_file(origin: str, name: str, entry: dict[str, Any]) -> Artifact:
    location = entry.get("url") or entry.get("path")
    if not isinstance(location, str):
        raise ResolutionError(origin, f"a file of {name} has neither url nor path")
    hashes = entry.get("hashes") or {}
    return artifact_from_location(location, hashes.get("sha256"), entry.get("name"))


def parse_pip_report(text: str, origin: str = "pip report") -> list[Pin]:
    """Pins from ``pip install --dry-run --report``: one chosen artifact per distribution."""
    try:
        data = json.loads(text)
        items = data["install"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ResolutionError(origin, f"pip wrote an unreadable report: {exc}") from None
    pins: list[Pin] = []
    for item in items:
        metadata = item.get("metadata", {})
        info = item.get("download_info", {})
        url = info.get("url", "")
        archive = info.get("archive_info", {})
        sha256 = (archive.get("hashes") or {}).get("sha256")
        if sha256 is None and str(archive.get("hash", "")).startswith("sha256="):
            sha256 = archive["hash"].split("=", 1)[1]
        artifact = artifact_from_location(url, sha256 or _local_sha256(url))
        name = canonicalize_name(str(metadata.get("name", "")))
        version = str(metadata.get("version", ""))
        if artifact.is_wheel:
            pins.append(Pin(name=str(name), version=version, wheels=(artifact,)))
        else:
            pins.append(Pin(name=str(name), version=version, wheels=(), sdist=artifact))
    return pins


def _local_sha256(url: str) -> str | None:
    parts = urlsplit(url)
    if parts.scheme != "file":
        return None
    return sha256_file(Path(unquote(parts.path)))


def sha256_file(path: Path) -> str:
    """The hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


# ---- which wheel fits ------------------------------------------------------------------------

_TAGS_SCRIPT = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
from packaging.tags import sys_tags
print(json.dumps([str(tag) for tag in sys_tags()]))
"""

_tags_cache: dict[tuple[str, int, int], tuple[str, ...]] = {}


def interpreter_tags(python: Path | str) -> tuple[str, ...]:
    """The wheel tags *python* accepts, most preferred first (its own ``packaging.tags``).

    The interpreter runs with ``-I -S`` and only the host's copy of ``packaging`` on its path;
    the answer is remembered per process by the executable's identity.
    """
    real = os.path.realpath(python)
    info = os.stat(real)
    key = (real, info.st_size, info.st_mtime_ns)
    cached = _tags_cache.get(key)
    if cached is not None:
        return cached
    packaging_parent = os.path.dirname(os.path.dirname(os.path.abspath(packaging.__file__)))
    cmd = [os.fspath(python), "-I", "-S", "-c", _TAGS_SCRIPT, packaging_parent]
    try:
        result = subprocess.run(
            cmd, capture_output=True, text=True, timeout=30, check=False,
            stdin=subprocess.DEVNULL, env={"PATH": os.environ.get("PATH", "")},
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise CommandError(cmd, None, "", "", summary=str(exc)) from None
    if result.returncode != 0:
        raise CommandError(cmd, result.returncode, result.stdout, result.stderr)
    tags = tuple(json.loads(result.stdout))
    _tags_cache[key] = tags
    return tags


def select_wheel(pin: Pin, tags: Sequence[str]) -> Artifact | None:
    """The wheel of *pin* the interpreter with *tags* prefers; ``None`` when none fits."""
    priority = {tag: index for index, tag in enumerate(tags)}
    best: tuple[int, Artifact] | None = None
    for wheel in pin.wheels:
        try:
            _, _, _, wheel_tags = parse_wheel_filename(wheel.filename)
        except InvalidWheelFilename:
            continue
        ranks = [priority[str(tag)] for tag in wheel_tags if str(tag) in priority]
        if ranks and (best is None or min(ranks) < best[0]):
            best = (min(ranks), wheel)
    return None if best is None else best[1]


# ---- reading a wheel before installing it ----------------------------------------------------


def wheel_distribution(path: Path) -> tuple[str, str]:
    """``(canonical name, version)`` from a wheel's file name."""
    try:
        name, version, _, _ = parse_wheel_filename(path.name)
    except InvalidWheelFilename as exc:
        raise DistributionError(str(path), f"not a wheel file name: {exc}") from None
    return str(name), str(version)


def wheel_entry_points(path: Path) -> dict[str, tuple[EntryPoint, ...]]:
    """The entry points a wheel declares, read from the archive (nothing is installed or run)."""
    name, _version = wheel_distribution(path)
    try:
        with zipfile.ZipFile(path) as archive:
            members = _dist_info_members(archive, name, "entry_points.txt")
            if not members:
                return {}
            text = read_wheel_dist_info_file(archive, members[0], str(path))
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise DistributionError(str(path), f"not a readable wheel: {exc}") from None
    return parse_entry_points(text)


def wheel_agent_plugins(path: Path) -> AgentPluginsMarker | None:
    """The wheel's ``agent_plugins.json`` (the ``agent-plugins`` build backends' marker),
    checked, with its ``<root>/plugin.json`` in the archive; ``None`` when it has none."""
    name, _version = wheel_distribution(path)
    try:
        with zipfile.ZipFile(path) as archive:
            members = _dist_info_members(archive, name, AGENT_PLUGINS_MARKER)
            if not members:
                return None
            where = f"{path.name}: {members[0]}"  # the wheelhouse's path says nothing more
            marker = parse_agent_plugins_marker(
                read_wheel_dist_info_file(archive, members[0], str(path)), where)
            if f"{marker.root}/plugin.json" not in archive.namelist():
                raise DistributionError(where, f"root {marker.root!r}: the wheel has no "
                                        f"{marker.root}/plugin.json")
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise DistributionError(str(path), f"not a readable wheel: {exc}") from None
    return marker


def wheel_declared_plugins(path: Path, group: str) -> tuple[DeclaredPlugin, ...]:
    """The plugins a wheel declares, as :meth:`Distribution.declared_plugins` reads them once
    installed: its *group* entry points or, without any, its ``agent-plugins`` marker (checked
    here, before anything is installed)."""
    entries = wheel_entry_points(path).get(group, ())
    if entries:
        return tuple(DeclaredPlugin(entry.name, entry.module) for entry in entries)
    if wheel_agent_plugins(path) is not None:
        return (DeclaredPlugin(wheel_distribution(path)[0], None),)
    return ()


def check_wheel(path: Path) -> None:
    """Refuse a file that is not a usable wheel: a bad zip, or no ``.dist-info/METADATA``."""
    name, _ = wheel_distribution(path)
    try:
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
            if bad is not None:
                raise DistributionError(str(path), f"corrupt member {bad!r} in the wheel")
            if not _dist_info_members(archive, name, "METADATA"):
                raise DistributionError(str(path), "the wheel has no .dist-info/METADATA")
    except (zipfile.BadZipFile, OSError, EOFError) as exc:
        raise DistributionError(str(path), f"not a readable wheel: {exc}") from None


def _dist_info_members(archive: zipfile.ZipFile, name: str, leaf: str) -> list[str]:
    found = []
    for member in archive.namelist():
        top, _, rest = member.partition("/")
        if rest == leaf and top.endswith(".dist-info"):
            dist = top[: -len(".dist-info")].rsplit("-", 1)[0]
            if canonicalize_name(dist) == name:
                found.append(member)
    return found


def describe_pins(pins: Iterable[Pin]) -> str:
    """``a==1, b==2`` for messages."""
    return ", ".join(f"{pin.name}=={pin.version}" for pin in pins)
