"""Lock files (a store's whole plugin set, pinned with hashes) and checks of installed files.

A lock file is JSON, version 1; keys sorted, two-space indent, a final newline, so the same
store always writes the same bytes::

    {
      "plugins": {
        "greetings": {
          "kind": "package",
          "source": {...},                 the recorded PluginSource (PluginSource.to_dict)
          "package": "openhands-plugin-greetings",
          "version": "1.0.0",
          "python": "3.12",                major.minor: a lock moves between machines
          "allow_build": false,
          "git_commit": null,
          "distributions": [
            {"file": "...whl", "name": "...", "sha256": "<64 hex>", "url": "...",
             "version": "..."}
          ]
        },
        "notes": {
          "kind": "content-only",
          "source": {...},
          "version": "0.1.0",
          "git_commit": null,              the commit a git source is checked out at
          "content_sha256": "<64 hex>"     over the copied files' paths and bytes
        }
      },
      "version": 1
    }

Reading refuses every malformed input with a :class:`LockfileError` that names the file and
the key (``plugins.greetings.distributions[1].sha256``).

The second half checks a generation's files: every file a distribution's ``RECORD`` lists,
with the ``RECORD`` itself checked against the hash-pinned wheel it came from, everything else
in site-packages, and the bytecode the store's pool linked in (see :func:`check_site_packages`).
"""

from __future__ import annotations

import base64
import contextlib
import csv
import hashlib
import io
import json
import os
import re
import secrets
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename
from packaging.version import InvalidVersion, Version

from isolator._errors import DistributionError, LockfileError, SourceError, StoreError
from isolator.metadata._distinfo import read_dist_info_file, read_wheel_dist_info_file
from isolator.sources._sources import PluginSource
from isolator.store._bytecode import _key as _bytecode_key

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from isolator.store._records import InstalledPlugin

LOCK_VERSION = 1
_SHA256_RE = re.compile(r"^[0-9a-f]{64}\Z")
_PYTHON_RE = re.compile(r"^\d+\.\d+(\.\d+)?\Z")
_COMMIT_RE = re.compile(r"^[0-9a-f]{40}([0-9a-f]{24})?\Z")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}\Z")
_URL_SCHEMES = ("file:", "https:", "http:")
_KEYS = {
    "package": ({"kind", "source", "version", "package", "python", "distributions"},
                {"allow_build", "git_commit"}),
    "content-only": ({"kind", "source", "version", "content_sha256"}, {"git_commit"}),
}
_DIST_KEYS = {"name", "version", "file", "sha256", "url"}


# ---- the format ------------------------------------------------------------------------------


@dataclass(frozen=True)
class LockedDistribution:
    """One pinned file of a package plugin's venv."""

    name: str
    version: str
    file: str
    sha256: str
    url: str
    """Where the file came from: an index URL or a ``file:`` URL."""

    def to_dict(self) -> dict[str, str]:
        return {"name": self.name, "version": self.version, "file": self.file,
                "sha256": self.sha256, "url": self.url}


@dataclass(frozen=True)
class LockedPlugin:
    """One plugin of a lock: a package with every distribution pinned, or content-only."""

    name: str
    kind: Literal["package", "content-only"]
    source: PluginSource
    version: str
    python: str | None = None
    """``major.minor`` of the venv's interpreter (package plugins)."""
    package: str | None = None
    allow_build: bool = False
    git_commit: str | None = None
    distributions: tuple[LockedDistribution, ...] = ()
    content_sha256: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"kind": self.kind, "source": self.source.to_dict(),
                                "version": self.version, "git_commit": self.git_commit}
        if self.kind == "package":
            data.update(package=self.package, python=self.python, allow_build=self.allow_build,
                        distributions=[d.to_dict() for d in _sorted_dists(self.distributions)])
        else:
            data["content_sha256"] = self.content_sha256
        return data


@dataclass(frozen=True)
class Lock:
    """A whole plugin set: what :meth:`PluginStore.sync` makes a store hold, exactly."""

    plugins: Mapping[str, LockedPlugin]

    def to_dict(self) -> dict[str, Any]:
        return {"version": LOCK_VERSION,
                "plugins": {name: self.plugins[name].to_dict() for name in sorted(self.plugins)}}


def dumps_lock(lock: Lock | Mapping[str, Any]) -> str:
    """The lock file's text: sorted, stable, one final newline."""
    data = lock.to_dict() if isinstance(lock, Lock) else parse_lock(lock).to_dict()
    return json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_lock(lock: Lock | Mapping[str, Any], path: str | os.PathLike[str]) -> None:
    """Write *lock* to *path* atomically (a temporary file beside it, then ``os.replace``)."""
    target = Path(path)
    text = dumps_lock(lock)
    tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}")
    try:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def read_lock(path: str | os.PathLike[str]) -> Lock:
    """Read and check a lock file; :class:`LockfileError` names the file and the bad key."""
    origin = os.fspath(path)
    try:
        with open(origin, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        raise LockfileError(origin, "", "no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise LockfileError(origin, "", f"cannot read: {exc}") from None
    return loads_lock(text, origin)


def loads_lock(text: str, origin: str = "<lock>") -> Lock:
    """Parse lock file text (see :func:`read_lock`)."""
    try:
        data = json.loads(text, object_pairs_hook=_Object.from_pairs)
    except json.JSONDecodeError as exc:
        raise LockfileError(origin, "", f"not JSON: {exc.msg} (line {exc.lineno} column "
                            f"{exc.colno})") from None
    except RecursionError:
        raise LockfileError(origin, "", "not JSON: nested too deeply") from None
    return parse_lock(data, origin)


def parse_lock(data: object, origin: str = "<lock>") -> Lock:
    """Check lock data (parsed JSON, or :meth:`Lock.to_dict` output) and build a :class:`Lock`."""
    top = _object(data, origin, "")
    _keys(top, origin, "", {"version", "plugins"}, set())
    version = top["version"]
    if version != LOCK_VERSION or isinstance(version, bool):
        raise LockfileError(origin, "version", f"lock format {version!r}; this isolator reads "
                            f"version {LOCK_VERSION}")
    plugins = _object(top["plugins"], origin, "plugins")
    dup = _duplicates(plugins)
    if dup:
        raise LockfileError(origin, f"plugins.{dup}", "the plugin is listed twice")
    return Lock({name: _plugin(name, entry, origin) for name, entry in plugins.items()})


def locked_plugin(installed: InstalledPlugin) -> LockedPlugin:
    """The lock entry of an installed plugin's current generation."""
    source = installed.source
    if installed.kind == "content-only":
        if installed.content_sha256 is None:
            raise StoreError(f"plugin {installed.name!r}", "its record has no content hash")
        return LockedPlugin(installed.name, "content-only", source, installed.version,
                            git_commit=installed.git_commit,
                            content_sha256=installed.content_sha256)
    version = str((installed.python or {}).get("version") or "")
    if not _PYTHON_RE.match(version):
        raise StoreError(f"plugin {installed.name!r}", "its record names no Python version")
    dists = tuple(LockedDistribution(d.name, d.version, d.filename, d.sha256, d.url)
                  for d in installed.distributions)
    return LockedPlugin(installed.name, "package", source, installed.version,
                        python=".".join(version.split(".")[:2]), package=installed.package,
                        allow_build=installed.allow_build, git_commit=installed.git_commit,
                        distributions=_sorted_dists(dists))


def _sorted_dists(dists: Iterable[LockedDistribution]) -> tuple[LockedDistribution, ...]:
    return tuple(sorted(dists, key=lambda d: (canonicalize_name(d.name), d.file)))


class _Object(dict[str, Any]):
    """A JSON object that remembers a key it saw twice (json keeps the last silently)."""

    duplicate: str | None = None

    @classmethod
    def from_pairs(cls, pairs: list[tuple[str, Any]]) -> _Object:
        obj = cls()
        for key, value in pairs:
            if key in obj and obj.duplicate is None:
                obj.duplicate = key
            obj[key] = value
        return obj


def _duplicates(obj: dict[str, Any]) -> str | None:
    return obj.duplicate if isinstance(obj, _Object) else None


def _object(value: object, origin: str, key: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise LockfileError(origin, key, f"expected a JSON object, got {_kind(value)}")
    dup = _duplicates(value)
    if dup is not None and key != "plugins":
        raise LockfileError(origin, _join(key, dup), "the key appears twice")
    return value


def _keys(obj: dict[str, Any], origin: str, key: str, required: set[str],
          optional: set[str]) -> None:
    for name in sorted(required - set(obj)):
        raise LockfileError(origin, _join(key, name), "missing")
    for name in sorted(set(obj) - required - optional):
        raise LockfileError(origin, _join(key, name), "unknown key")


def _join(key: str, name: str) -> str:
    return f"{key}.{name}" if key else name


def _kind(value: object) -> str:
    names = {dict: "an object", list: "a list", str: "a string", bool: "a boolean",
             type(None): "null", int: "a number", float: "a number"}
    return names.get(type(value), type(value).__name__)


def _string(obj: dict[str, Any], origin: str, key: str, name: str, *,
            pattern: re.Pattern[str] | None = None, what: str = "") -> str:
    value = obj[name]
    if not isinstance(value, str) or not value:
        raise LockfileError(origin, _join(key, name), f"expected a non-empty string, got "
                            f"{_kind(value)}")
    if pattern is not None and not pattern.match(value):
        raise LockfileError(origin, _join(key, name), f"{value[:80]!r} is not {what}")
    return value


def _plugin(name: str, entry: object, origin: str) -> LockedPlugin:
    key = f"plugins.{name}"
    if not _NAME_RE.match(name):
        raise LockfileError(origin, key, "not a plugin name (letters, digits, '.', '_', '-')")
    obj = _object(entry, origin, key)
    if "kind" not in obj:
        raise LockfileError(origin, f"{key}.kind", "missing")
    kind = obj["kind"]
    if kind not in _KEYS:
        raise LockfileError(origin, f"{key}.kind", f"{kind!r} is not 'package' or "
                            "'content-only'")
    required, optional = _KEYS[kind]
    _keys(obj, origin, key, required, optional)
    try:
        source = PluginSource.from_dict(_object(obj["source"], origin, f"{key}.source"))
    except SourceError as exc:
        raise LockfileError(origin, f"{key}.source", str(exc)) from None
    version = _string(obj, origin, key, "version")
    commit = obj.get("git_commit")
    if commit is not None:
        commit = _string(obj, origin, key, "git_commit", pattern=_COMMIT_RE, what="a git commit id")
    if kind == "content-only":
        if source.kind not in ("directory", "git"):
            raise LockfileError(origin, f"{key}.source", f"a {source.kind} source is a "
                                "package, not content-only")
        if source.kind == "git" and commit is None:
            raise LockfileError(origin, f"{key}.git_commit", "a git source needs the commit")
        digest = _string(obj, origin, key, "content_sha256", pattern=_SHA256_RE,
                         what="a sha256 (64 lowercase hex digits)")
        return LockedPlugin(name, "content-only", source, version, git_commit=commit,
                            content_sha256=digest)
    python = _string(obj, origin, key, "python", pattern=_PYTHON_RE,
                     what="a Python version like 3.12")
    package = _string(obj, origin, key, "package")
    allow_build = obj.get("allow_build", False)
    if not isinstance(allow_build, bool):
        raise LockfileError(origin, f"{key}.allow_build", f"expected true or false, got "
                            f"{_kind(allow_build)}")
    raw = obj["distributions"]
    if not isinstance(raw, list) or not raw:
        raise LockfileError(origin, f"{key}.distributions", "expected a non-empty list")
    dists: list[LockedDistribution] = []
    seen: dict[str, int] = {}
    for index, item in enumerate(raw):
        dist = _distribution(item, origin, f"{key}.distributions[{index}]")
        canonical = canonicalize_name(dist.name)
        if canonical in seen:
            raise LockfileError(origin, f"{key}.distributions[{index}].name", f"{dist.name} is "
                                f"listed twice (also distributions[{seen[canonical]}])")
        seen[canonical] = index
        dists.append(dist)
    if canonicalize_name(package) not in seen:
        raise LockfileError(origin, f"{key}.package", f"{package} is not among the "
                            "distributions")
    return LockedPlugin(name, "package", source, version, python=python, package=package,
                        allow_build=allow_build, git_commit=commit,
                        distributions=_sorted_dists(dists))


def _distribution(item: object, origin: str, key: str) -> LockedDistribution:
    obj = _object(item, origin, key)
    _keys(obj, origin, key, _DIST_KEYS, set())
    name = _string(obj, origin, key, "name")
    version = _string(obj, origin, key, "version")
    file = _string(obj, origin, key, "file")
    sha256 = _string(obj, origin, key, "sha256", pattern=_SHA256_RE,
                     what="a sha256 (64 lowercase hex digits)")
    url = _string(obj, origin, key, "url")
    if not url.startswith(_URL_SCHEMES):
        raise LockfileError(origin, f"{key}.url", "expected an https:, http: or file: URL")
    # The file name becomes a path in the wheelhouse: a plain wheel name, nothing else.
    if "/" in file or "\\" in file or file.startswith("."):
        raise LockfileError(origin, f"{key}.file", f"{file!r} is not a plain file name")
    try:
        wheel_name, wheel_version, _, _ = parse_wheel_filename(file)
    except InvalidWheelFilename as exc:
        raise LockfileError(origin, f"{key}.file", f"not a wheel file name: {exc}") from None
    try:
        same_version = Version(version) == wheel_version
    except InvalidVersion:
        raise LockfileError(origin, f"{key}.version", f"{version!r} is not a version") from None
    if canonicalize_name(name) != wheel_name or not same_version:
        raise LockfileError(origin, f"{key}.file", f"{file} is a wheel of {wheel_name} "
                            f"{wheel_version}, not {name} {version}")
    return LockedDistribution(name, version, file, sha256, url)


# ---- checking installed files ----------------------------------------------------------------

Change = tuple[str | None, str, str]
"""``(distribution or None, path, "missing" | "modified" | "unexpected")``."""

_SEEDED_BY_VIRTUALENV = frozenset({"pip", "setuptools", "wheel"})
"""Distributions the virtualenv backend puts in every venv it creates (not in the record)."""
_VIRTUALENV_FILES = frozenset({"_virtualenv.pth", "_virtualenv.py"})
"""Files virtualenv writes into site-packages itself (with ``<dist>.virtualenv`` markers);
no RECORD lists them."""


def file_hashes(directory: Path) -> dict[str, str]:
    """``{posix relative path: sha256}`` of every regular file under *directory*."""
    found: dict[str, str] = {}
    for dirpath, _dirs, files in os.walk(directory):
        for name in files:
            path = os.path.join(dirpath, name)
            found[Path(os.path.relpath(path, directory)).as_posix()] = _sha256(path)
    return found


def check_content(content_dir: Path, recorded: Mapping[str, str]) -> tuple[list[Change], int]:
    """Compare a content-only plugin's files with the per-file hashes recorded at install."""
    changes: list[Change] = []
    present = set()
    for dirpath, _dirs, files in os.walk(content_dir):
        for name in files:
            present.add(Path(os.path.relpath(os.path.join(dirpath, name), content_dir))
                        .as_posix())
    for rel in sorted(set(recorded) | present):
        if rel not in recorded:
            changes.append((None, rel, "unexpected"))
        elif rel not in present:
            changes.append((None, rel, "missing"))
        elif not _regular(os.path.join(content_dir, rel)) or \
                _sha256(os.path.join(content_dir, rel)) != recorded[rel]:
            changes.append((None, rel, "modified"))
    return changes, len(recorded)


@dataclass
class _Expected:
    """What one distribution's files should be."""

    name: str
    hashes: dict[str, str | None]
    """Path relative to site-packages -> ``algo=b64digest`` (``None``: existence only)."""


def check_site_packages(
    site: Path,
    distributions: Iterable[tuple[str, Path | None]],
    bytecode_root: Path,
    *,
    virtualenv: bool = False,
) -> tuple[list[Change], int]:
    """Check a venv's site-packages against what its distributions installed.

    *distributions*: each recorded distribution's name and its wheel in the wheelhouse
    (already verified against the recorded sha256), or ``None`` when it is not there. Every
    file a ``RECORD`` lists is hashed: ``missing`` or ``modified``. A ``RECORD`` is itself
    checked against the wheel's: a row the wheel also has must carry the wheel's hash (else
    ``RECORD`` is ``modified``), and the wheel's hash is the one the file is checked against,
    so editing a file and its ``RECORD`` row does not hide it. Every other file in
    site-packages is ``unexpected``, except ``__pycache__/*.pyc`` files that are the store's
    bytecode pool's entry for their source as it is now (same inode: the pool links them in).
    A venv made by the *virtualenv* backend also holds what virtualenv seeds (pip: its rows
    that carry a hash are checked) and writes (``_virtualenv.pth``, ``_virtualenv.py`` and
    ``*.virtualenv`` markers: accepted by name, nothing lists their hashes).
    Returns the changes, sorted, and the number of files checked.
    """
    root = os.fspath(site)
    venv = os.path.dirname(os.path.dirname(os.path.dirname(root)))
    installed = _dist_infos(root)
    expected: list[_Expected] = []
    changes: list[Change] = []
    accounted: set[str] = set()
    for name, wheel in distributions:
        dist_info = installed.pop(canonicalize_name(name), None)
        wheel_hashes = _wheel_record(wheel) if wheel is not None else None
        if dist_info is None:
            # Its files are still checked against the wheel's RECORD, when there is one.
            tops = {path.split("/")[0] for path in wheel_hashes or {}}
            where = next((t for t in sorted(tops) if t.endswith(".dist-info")),
                         f"{name}.dist-info")
            changes.append((name, where, "missing"))
            expected.append(_Expected(name, {p: d for p, d in (wheel_hashes or {}).items()
                                             if not p.startswith(where + "/")}))
            continue
        record_rel = f"{dist_info}/RECORD"
        rows = _read_rows(os.path.join(root, record_rel))
        if rows is None:
            changes.append((name, record_rel, "missing"))
            rows = {}
        hashes: dict[str, str | None] = dict(rows)
        for path, digest in (wheel_hashes or {}).items():
            if path in rows and rows[path] != digest:
                changes.append((name, record_rel, "modified"))
            hashes[path] = digest
        hashes.setdefault(record_rel, None)
        expected.append(_Expected(name, hashes))
    for canonical, dist_info in sorted(installed.items()):
        rows = _read_rows(os.path.join(root, dist_info, "RECORD")) or {}
        if virtualenv and canonical in _SEEDED_BY_VIRTUALENV:
            # virtualenv's seeder lists directories and misplaced .pyc names without hashes.
            expected.append(_Expected(canonical, {
                **{p: d for p, d in rows.items() if d is not None},
                f"{dist_info}/RECORD": None}))
            accounted.update(_walk(os.path.join(root, dist_info), root))  # INSTALLER too
        else:
            changes.append((canonical, dist_info, "unexpected"))
            accounted.update(_normal(p) for p in rows)
            accounted.update(_walk(os.path.join(root, dist_info), root))
    owners: dict[str, str] = {}
    checked = 0
    for exp in expected:
        for path, digest in exp.hashes.items():
            rel = _normal(path)
            if os.path.isabs(rel) or (rel.startswith("../") and not os.path.normpath(
                    os.path.join(root, rel)).startswith(venv + os.sep)):
                continue  # a RECORD row outside the venv: not ours to check
            accounted.add(rel)
            owners.setdefault(rel.split("/")[0], exp.name)
            checked += 1
            full = os.path.join(root, rel)
            if not os.path.lexists(full):
                changes.append((exp.name, rel, "missing"))
            elif not _regular(full) or (digest is not None and not _matches(full, digest) and
                                        not (rel.endswith(".pyc") and
                                             _pooled(root, rel, bytecode_root))):
                changes.append((exp.name, rel, "modified"))
    for rel in _walk(root, root):
        if rel in accounted or (virtualenv and (rel in _VIRTUALENV_FILES or (
                "/" not in rel and rel.endswith(".virtualenv")))):
            continue
        owner = owners.get(rel.split("/")[0])
        if "/__pycache__/" in f"/{rel}" and rel.endswith(".pyc"):
            checked += 1
            if _pooled(root, rel, bytecode_root):
                continue
            # Bytecode of a source that is there but changed, or of no source at all.
            source = _pyc_source(rel)
            kind = "modified" if source is not None and source in accounted and \
                os.path.lexists(os.path.join(root, source)) else "unexpected"
            changes.append((owner, rel, kind))
            continue
        changes.append((owner, rel, "unexpected"))
    return sorted(set(changes), key=lambda c: (c[1], c[0] or "", c[2])), checked


def _dist_infos(root: str) -> dict[str, str]:
    found: dict[str, str] = {}
    with os.scandir(root) as entries:
        for entry in sorted(entries, key=lambda e: e.name):
            if entry.name.endswith(".dist-info") and entry.is_dir(follow_symlinks=False):
                name = entry.name[: -len(".dist-info")].rsplit("-", 1)[0]
                found.setdefault(canonicalize_name(name), entry.name)
    return found


def _read_rows(path: str) -> dict[str, str | None] | None:
    # The one capped reader of dist-info files: a RECORD a plugin made huge (or a FIFO) is
    # "not verified", never read whole into the host.
    try:
        text = read_dist_info_file(path)
    except DistributionError:
        return None
    return None if text is None else _rows(text)


def _rows(text: str) -> dict[str, str | None]:
    rows: dict[str, str | None] = {}
    for row in csv.reader(io.StringIO(text)):
        if row and row[0]:
            rows[row[0]] = row[1] if len(row) > 1 and row[1] else None
    return rows


def _wheel_record(wheel: Path) -> dict[str, str | None] | None:
    """The wheel's own RECORD rows for files installed as they are (``.data/`` is relocated)."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            names = [n for n in archive.namelist()
                     if n.count("/") == 1 and n.endswith(".dist-info/RECORD")]
            if len(names) != 1:
                return None
            text = read_wheel_dist_info_file(archive, names[0], str(wheel))
    except (zipfile.BadZipFile, OSError, UnicodeDecodeError, KeyError, DistributionError):
        return None
    return {path: digest for path, digest in _rows(text).items()
            if digest is not None and ".data/" not in path.split("/", 1)[0] + "/"}


def _normal(path: str) -> str:
    return os.path.normpath(path).replace(os.sep, "/")


def _walk(directory: str, root: str) -> list[str]:
    found = []
    for dirpath, _dirs, files in os.walk(directory):
        for name in files:
            found.append(_normal(os.path.relpath(os.path.join(dirpath, name), root)))
    return sorted(found)


def _regular(path: str) -> bool:
    """A regular file, not a link to one (nor to a device that never ends, like /dev/zero)."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def _sha256(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _matches(path: str, record_hash: str) -> bool:
    algorithm, _, expected = record_hash.partition("=")
    try:
        digest = hashlib.new(algorithm)
    except (ValueError, TypeError):
        return False  # an algorithm we cannot check is not a match
    try:
        with open(path, "rb") as handle:
            while block := handle.read(1 << 20):
                digest.update(block)
    except OSError:
        return False
    actual = base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode()
    return actual == expected


def _pyc_source(rel: str) -> str | None:
    """``pkg/__pycache__/mod.cpython-312.pyc`` -> ``pkg/mod.py``."""
    directory, _, name = rel.rpartition("/")
    if not directory.endswith("__pycache__") or name.count(".") < 2:
        return None
    parent = directory[: -len("__pycache__")].rstrip("/")
    stem = name.split(".", 1)[0]
    return f"{parent}/{stem}.py" if parent else f"{stem}.py"


def _pooled(root: str, rel: str, bytecode_root: Path) -> bool:
    """Whether *rel* is the bytecode pool's file for its source as it is now (one inode)."""
    source = _pyc_source(rel)
    if source is None or not _regular(os.path.join(root, source)):
        return False
    tag = rel.rsplit("/", 1)[1].split(".")[1]
    try:
        key = _bytecode_key(Path(root, source), source, tag)
        pooled = os.stat(bytecode_root / tag / key[:2] / f"{key}.pyc")
        here = os.lstat(os.path.join(root, rel))
    except OSError:
        return False
    return (pooled.st_dev, pooled.st_ino) == (here.st_dev, here.st_ino)
