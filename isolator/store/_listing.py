"""``ohp list`` without the store's machinery: the installed plugins read from their records.

:meth:`PluginStore.list_installed` builds :class:`~isolator.store._records.InstalledPlugin`
objects, which brings the whole store (dataclasses, ``packaging``, the install pipeline): some
50 ms before the first line, several times a bare ``python``. Listing needs none of it: each
plugin's record is JSON the store wrote. :func:`list_rows` reads the same files the same way
(no lock, as the store's readers: the pointer names a finished generation, whose
``metadata.json`` was written before the pointer was switched with ``os.replace``, and which
never changes) and gives what ``InstalledPlugin.to_dict()`` and
``MarketplaceOrigin.to_dict()`` give for them.

It gives them only for records as the store writes them. Anything else (a key missing or of
another type, a source whose string does not clearly have its recorded kind, a version that
does not look like a PEP 440 specifier, a package plugin without the ``brought`` list, a
record gone while reading...) makes it return None, and the caller lists through
:class:`PluginStore`, which reports or reads it as it always has. tests/test_cli_store.py
checks that both give the same for stores of every kind of plugin.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from isolator._redact import redact_url
from isolator.store._layout import METADATA, read_pointer

_KINDS = frozenset({"pypi", "git", "directory", "wheel", "sdist"})
_SOURCE_KEYS = frozenset({"source", "kind", "version", "ref", "repo_path", "index_url",
                          "find_links", "no_index"})
_PYPI = re.compile(r"pypi:[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?\Z")
_GITHUB = re.compile(r"github:[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}/"
                     r"[A-Za-z0-9._-]{1,100}\Z")
_GIT_URL = re.compile(r"(?:git\+)?(https|ssh|file)://([^/@?#\s]*)(/[^@?#\s]*)\Z")
_VERSION = r"[0-9]+(?:\.[0-9]+)*(?:(?:a|b|rc)[0-9]+)?(?:\.post[0-9]+)?(?:\.dev[0-9]+)?"
_CLAUSE = re.compile(rf"(?:(?:==|!=)\s*{_VERSION}(?:\.\*)?|(?:<=|>=|<|>)\s*{_VERSION}"
                     rf"|~=\s*[0-9]+(?:\.[0-9]+)+(?:(?:a|b|rc)[0-9]+)?|{_VERSION})\Z")
_ARCHIVE = re.compile(rf"[A-Za-z0-9](?:[A-Za-z0-9._]*[A-Za-z0-9])?-{_VERSION}"
                      r"(?:(?:-[0-9][A-Za-z0-9_.]*)?-[A-Za-z0-9_.]+-[A-Za-z0-9_.]+-"
                      r"[A-Za-z0-9_.]+\.whl|\.tar\.gz|\.zip)\Z")
_SDIST = (".tar.gz", ".zip")
_NOT_SDIST = (".tar", ".tgz", ".tar.bz2", ".tar.xz", ".egg")
_REGISTRY = "marketplaces.json"  # isolator.store._marketplace.REGISTRY


class _Unusual(Exception):
    """A record not as the store writes it: list through :class:`PluginStore` instead."""


def list_rows(root: Path) -> list[dict[str, object]] | None:
    """``InstalledPlugin.to_dict()`` of each plugin :meth:`PluginStore.list_installed` gives,
    in its order, with ``"marketplace"``: ``MarketplaceOrigin.to_dict()`` or None (what
    ``ohp list --json`` prints). None when a record is not as the store writes it."""
    try:
        top = [found for name in _plugin_names(root) if (found := _current(root, name))]
        names = {row["name"] for row, _ in top}
        brought: dict[object, dict[str, object]] = {}
        for row, record in top:
            for dep in _brought(row, record):
                if dep["name"] not in names and dep["name"] not in brought:
                    brought[dep["name"]] = dep
        rows = sorted([row for row, _ in top] + list(brought.values()),
                      key=lambda r: r["name"])  # type: ignore[arg-type,return-value]
        origins = _origins(root) if rows else {}
    except (_Unusual, OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    for row in rows:
        rec = origins.get(row["name"])  # type: ignore[call-overload]
        origin = None
        if isinstance(rec, dict) and rec.get("source") == row["source_detail"]:
            reference = f"{rec['plugin']}@{rec['marketplace']}"
            origin = {"marketplace": rec["marketplace"], "plugin": rec["plugin"],
                      "commit": rec.get("commit"), "reference": reference}
        row["marketplace"] = origin
    return rows


def _plugin_names(root: Path) -> list[str]:
    try:
        with os.scandir(root / "plugins") as entries:
            return sorted(entry.name for entry in entries if entry.is_dir())
    except FileNotFoundError:
        return []


def _current(root: Path, name: str) -> tuple[dict[str, object], dict[str, object]] | None:
    """The row and record of plugin *name*'s current generation (None: no pointer)."""
    plugin_dir = root / "plugins" / name
    generation = read_pointer(plugin_dir)
    if generation is None:
        return None
    gen = plugin_dir / generation
    with open(gen / METADATA, encoding="utf-8") as handle:  # gone or unreadable: _Unusual's
        data = json.load(handle)
    return _row(gen, data), data


def _str(value: object, *, optional: bool = False) -> str | None:
    if isinstance(value, str) or (optional and value is None):
        return value
    raise _Unusual


def _row(gen: Path, data: dict[str, object]) -> dict[str, object]:
    """``from_metadata(gen, data).to_dict()`` for a record as the store writes it."""
    if not isinstance(data, dict):
        raise _Unusual
    kind = data["kind"]
    if kind not in ("package", "content-only"):
        raise _Unusual
    pool = data.get("pool")
    if pool is not None and not (isinstance(pool, dict) and isinstance(pool.get("env"), str)):
        raise _Unusual
    base = Path(pool["env"]) if isinstance(pool, dict) else gen
    venv = base / "venv" if kind == "package" else None
    python = data.get("python")
    if python is not None and not isinstance(python, dict):
        raise _Unusual
    backend = data.get("backend")
    if backend is not None and not isinstance(backend, dict):
        raise _Unusual
    source = _source(data["source"])
    distributions = data.get("distributions", [])
    if not isinstance(distributions, list):
        raise _Unusual
    return {
        "name": _str(data["name"]),
        "version": _str(data["version"]),
        "kind": kind,
        "package": _str(data.get("package"), optional=True),
        "module": _str(data.get("module"), optional=True),
        "python": None if python is None else str(python.get("version")),
        "python_path": None if python is None else python.get("path"),
        "source": source["source"],
        "source_detail": source,
        "constraint": _str(data.get("constraint"), optional=True),
        "generation": _str(data["generation"]),
        "path": str(gen),
        "content_dir": str(base / _str(data["content_dir"])),  # type: ignore[operator]
        "venv": None if venv is None else str(venv),
        "backend": backend,
        "installed_at": _str(data["installed_at"]),
        "allow_build": bool(data.get("allow_build", False)),
        "git_commit": _str(data.get("git_commit"), optional=True),
        "brought_by": None,
        "distributions": [_distribution(d) for d in distributions],
    }


def _distribution(data: object) -> dict[str, object]:
    """``ResolvedDistribution.from_dict(data).to_dict()``."""
    if not isinstance(data, dict):
        raise _Unusual
    out: dict[str, object] = {key: _str(data[key]) for key in
                              ("name", "version", "filename", "sha256", "url")}
    built_from = data.get("built_from")
    if built_from is not None:
        if not isinstance(built_from, dict):
            raise _Unusual
        out["built_from"] = dict(built_from)
    return out


def _source(data: object) -> dict[str, object]:
    """``PluginSource.from_dict(data).to_dict()`` for a source as the store records it: its
    string already normalised, redacted, and clearly of its recorded kind."""
    if not isinstance(data, dict) or set(data) != _SOURCE_KEYS:
        raise _Unusual
    source, kind = _str(data["source"]), data["kind"]
    if kind not in _KINDS or _kind_of(source) != kind:  # type: ignore[arg-type]
        raise _Unusual
    version = _str(data["version"], optional=True)
    if version is not None and (kind != "pypi" or not _is_specifier(version)):
        raise _Unusual
    ref = _str(data["ref"], optional=True)
    repo_path = _str(data["repo_path"], optional=True)
    if kind != "git" and (ref is not None or repo_path is not None):
        raise _Unusual
    if ref is not None and (not ref or ref != ref.strip() or ref.startswith("-")):
        raise _Unusual
    if repo_path is not None and (not repo_path or repo_path.startswith("/") or
                                  ".." in repo_path.split("/") or repo_path.strip() != repo_path
                                  or "\\" in repo_path or "//" in repo_path
                                  or repo_path.endswith("/") or repo_path == "."):
        raise _Unusual
    index_url = _str(data["index_url"], optional=True)
    links = data["find_links"]
    if not isinstance(links, list) or not isinstance(data["no_index"], bool):
        raise _Unusual
    for link in links:
        if not isinstance(link, str) or not os.path.isabs(link) or \
                os.path.normpath(link) != link:
            raise _Unusual  # a URL, or a path not as the store records it
    for url in (source, index_url):
        if url is not None and (redact_url(url) != url or url != url.strip()):
            raise _Unusual
    if index_url is not None and not index_url.startswith(("https://", "http://", "file:/")):
        raise _Unusual
    if data["no_index"] and (index_url is not None or (kind == "pypi" and not links)):
        raise _Unusual
    return {"source": source, "kind": kind, "version": version, "ref": ref,
            "repo_path": repo_path, "index_url": index_url, "find_links": list(links),
            "no_index": data["no_index"]}


def _kind_of(source: str) -> str | None:
    """The kind of a source string as the store records it (normalised), when it is plainly
    of that kind; else None (the sources module reads it on the full way)."""
    if _PYPI.match(source):
        return "pypi"
    if source.startswith("github:"):
        repo = source.rpartition("/")[2]
        ok = _GITHUB.match(source) and repo not in (".", "..") and not repo.endswith(".git")
        return "git" if ok else None
    url = _GIT_URL.match(source)
    if url is not None:
        scheme, netloc, path = url.groups()
        if (netloc == "") != (scheme == "file") or not path.strip("/") or \
                (scheme == "https" and not source.startswith("git+") and
                 not path.endswith(".git")):
            return None
        return "git"
    if not os.path.isabs(source) or os.path.normpath(source) != source or \
            any(c in source for c in "\n\r\x00") or source != source.strip():
        return None
    base = os.path.basename(source)
    lowered = base.lower()
    if lowered.endswith((".whl", *_SDIST)):
        # Its name is checked by packaging when read the full way: here only a plain one.
        if not _ARCHIVE.match(base) or lowered.endswith(".whl") != base.endswith(".whl"):
            return None
        return "wheel" if base.endswith(".whl") else "sdist"
    if lowered.endswith(_NOT_SDIST):
        return None
    return "directory"


def _is_specifier(version: str) -> bool:
    """A bare version or comma-separated clauses such as ``>=1.0,<2`` (what the store
    records after checking it with packaging); a looser form goes the full way."""
    return version == version.strip() and \
        all(_CLAUSE.match(clause.strip()) for clause in version.split(","))  # no empty one


def _brought(row: dict[str, object], record: dict[str, object]) -> list[dict[str, object]]:
    """The rows of the plugins *row*'s venv brings, from its record's ``brought`` list
    (``Catalog.brought_plugins``)."""
    if row["venv"] is None:
        return []
    recorded = record.get("brought")
    if not isinstance(recorded, list):
        raise _Unusual  # a generation from before the list: the venv is read the full way
    env_dir = Path(str(row["venv"])).parent
    out = []
    for d in recorded:
        if not isinstance(d, dict):
            raise _Unusual
        out.append({**row, "name": _str(d["name"]), "version": _str(d["version"]),
                    "package": _str(d["package"]),
                    "module": _str(d["module"], optional=True),
                    "constraint": None,
                    "content_dir": str(env_dir / _str(d["content_dir"])),  # type: ignore[operator]
                    "brought_by": row["name"]})
    return out


def _origins(root: Path) -> dict[str, object]:
    """The registry's ``installed`` records (``Marketplaces.raw()``)."""
    try:
        with open(root / _REGISTRY, encoding="utf-8") as handle:
            data = json.load(handle)
    except FileNotFoundError:
        return {}
    if not isinstance(data, dict) or data.get("format") != 1 or \
            not isinstance(data.get("marketplaces"), dict):
        raise _Unusual
    installed = data.get("installed", {})
    if not isinstance(installed, dict):
        raise _Unusual
    for rec in installed.values():
        if isinstance(rec, dict) and not (isinstance(rec.get("marketplace"), str)
                                          and isinstance(rec.get("plugin"), str)):
            raise _Unusual
    return installed
