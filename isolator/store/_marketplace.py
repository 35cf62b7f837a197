"""Marketplaces: catalogues of plugins, registered in a store by name, installed from by name.

A marketplace is a git repository (or a local directory) with ``.plugin/marketplace.json`` or
``.claude-plugin/marketplace.json`` (the first that exists, as the OpenHands SDK 1.58 reads
them): ``{"name", "owner", "plugins": [{"name", "source", "description", "version", ...}]}``.
An entry's ``source`` is a path relative to the marketplace's directory (``./plugins/x``), or a
remote source: ``{"source": "github", "repo": "OWNER/REPO", "ref"?, "sha"?, "path"?}``,
``{"source": "url" | "git-subdir", "url", "ref"?, "sha"?, "path"?}``, ``{"source": "pip" |
"pypi", "package", "version"?}``, or a string in isolator's source syntax (``github:O/R``,
``pypi:NAME``, a git URL).

Registering (:meth:`Marketplaces.add`) fetches the marketplace once, reads and checks its file
(untrusted input: size, types, names, duplicate names), and records in ``ROOT/marketplaces.json``
its source, the commit it was read at, and its plugins. Installing ``PLUGIN@MARKETPLACE`` maps
the entry to an ordinary :class:`PluginSource` (a relative source becomes the marketplace's
repository at the recorded commit with ``repo_path``) and runs the normal install pipeline.
An entry whose source cannot be installed (a path leaving the repository, an absolute path, an
unknown kind) is recorded with the reason, and installing it raises that reason.

Reference rules (the SDK's ``MarketplaceRegistry.resolve_plugin``): ``PLUGIN@MARKETPLACE``
looks in that marketplace only; a bare ``PLUGIN`` looks in every registered marketplace and
must be found in exactly one. In a place that also takes sources (``ohp install``,
:meth:`PluginStore.install`), see :func:`is_reference`.
"""

from __future__ import annotations

import contextlib
import difflib
import json
import logging
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from isolator._errors import SourceError, StoreError
from isolator._redact import redact_url
from isolator.sources._sources import PluginSource, resolve_repo_path
from isolator.store._acquire import git_checkout
from isolator.store._disk import check_name, flock, now, say, write_json_atomic
from isolator.store._records import redacted

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Sequence

    from isolator.store._context import StoreContext
    from isolator.store._records import InstalledPlugin

__all__ = [
    "Marketplace",
    "MarketplaceEntry",
    "MarketplaceError",
    "MarketplaceLookupError",
    "MarketplaceOrigin",
    "MarketplacePlugin",
    "Marketplaces",
    "is_reference",
]

REGISTRY = "marketplaces.json"
REGISTRY_FORMAT = 1
_REGISTRY_LOCK = ".marketplaces.lock"  # at the root: `clean` removes stray files in locks/
MANIFEST_DIRS = (".plugin", ".claude-plugin")
MANIFEST_FILE = "marketplace.json"
MAX_MANIFEST_BYTES = 4 << 20
MAX_ENTRIES = 10_000
MAX_SOURCE_CHARS = 4096
_MAX_TEXT = 1000
_MAX_CANDIDATES = 20

_REFERENCE_RE = re.compile(r"^([A-Za-z0-9._-]+)@([A-Za-z0-9._-]+)\Z")
_BARE_RE = re.compile(r"^[A-Za-z0-9._-]+\Z")
_SCHEME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_FILE_SUFFIXES = (".whl", ".tar.gz", ".zip")
_NOT_A_SOURCE = "$not-a-source"
_logger = logging.getLogger("isolator.store")


class MarketplaceError(StoreError):
    """A marketplace cannot be registered or read, or one of its entries cannot be installed.
    Nothing installed or registered was changed."""


class MarketplaceLookupError(MarketplaceError, LookupError):
    """A marketplace or a plugin named in a reference is not there, or a bare plugin name is in
    several marketplaces. *candidates* are what the reference could have meant, the closest
    first: registered marketplaces, the marketplace's plugins, or ``PLUGIN@MARKETPLACE`` for
    each marketplace that has the plugin. *problem* says which case it is:
    ``"unknown-marketplace"``, ``"unknown-plugin"`` or ``"ambiguous"`` (the SDK's
    ``MarketplaceNotFoundError``, ``PluginNotFoundError``, ``AmbiguousPluginError``)."""

    def __init__(self, subject: str, reason: str, candidates: Sequence[str] = (), *,
                 problem: str = "unknown-plugin") -> None:
        self.candidates = tuple(candidates)
        self.problem = problem
        if self.candidates:
            shown = ", ".join(self.candidates[:_MAX_CANDIDATES])
            more = len(self.candidates) - _MAX_CANDIDATES
            reason += f": {shown}" + (f", ... and {more} more" if more > 0 else "")
        super().__init__(subject, reason)


@dataclass(frozen=True)
class MarketplaceEntry:
    """One plugin a marketplace lists, as recorded when the marketplace was read."""

    name: str
    source: Any
    """The entry's ``source`` as the file has it (URLs redacted): a string or an object."""
    description: str | None = None
    version: str | None = None
    error: str | None = None
    """Why this entry cannot be installed (its source), or ``None``."""

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "source": self.source, "description": self.description,
                "version": self.version, "error": self.error}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MarketplaceEntry:
        return cls(name=data["name"], source=data["source"],
                   description=data.get("description"), version=data.get("version"),
                   error=data.get("error"))


@dataclass(frozen=True)
class Marketplace:
    """A registered marketplace: where it comes from, the commit it was read at, its plugins."""

    name: str
    """The name it is registered under (what ``PLUGIN@NAME`` names)."""
    source: PluginSource
    """A git source (with the ``ref`` and ``repo_path`` given) or a local directory."""
    commit: str | None
    """The commit the marketplace was read at (git); its relative entries install from it."""
    manifest: str
    """The marketplace file read, relative to the marketplace's directory."""
    plugins: tuple[MarketplaceEntry, ...]
    title: str | None = None
    """The ``name`` the file gives itself (may differ from :attr:`name`)."""
    description: str | None = None
    owner: str | None = None
    added_at: str = ""
    updated_at: str = ""

    def plugin(self, name: str) -> MarketplaceEntry | None:
        """The entry named *name* (exact match, as the SDK's ``get_plugin``), else ``None``."""
        return next((entry for entry in self.plugins if entry.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data (``ohp marketplace list --json``, and the registry's record)."""
        return {"name": self.name, "source": self.source.source,
                "source_detail": self.source.to_dict(), "ref": self.source.ref,
                "repo_path": self.source.repo_path, "commit": self.commit,
                "manifest": self.manifest, "title": self.title,
                "description": self.description, "owner": self.owner,
                "added_at": self.added_at, "updated_at": self.updated_at,
                "plugins": [entry.to_dict() for entry in self.plugins]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Marketplace:
        return cls(name=data["name"], source=PluginSource.from_dict(data["source_detail"]),
                   commit=data.get("commit"), manifest=data["manifest"],
                   plugins=tuple(MarketplaceEntry.from_dict(e) for e in data["plugins"]),
                   title=data.get("title"), description=data.get("description"),
                   owner=data.get("owner"), added_at=data.get("added_at", ""),
                   updated_at=data.get("updated_at", ""))


@dataclass(frozen=True)
class MarketplacePlugin:
    """A reference resolved: the marketplace, its entry, and the source to install."""

    marketplace: Marketplace
    entry: MarketplaceEntry
    source: PluginSource

    @property
    def reference(self) -> str:
        """``PLUGIN@MARKETPLACE``."""
        return f"{self.entry.name}@{self.marketplace.name}"


@dataclass(frozen=True)
class MarketplaceOrigin:
    """Where an installed plugin came from when it was installed from a marketplace."""

    marketplace: str
    plugin: str
    """The entry's name in the marketplace."""
    commit: str | None
    """The marketplace's commit at the time."""

    @property
    def reference(self) -> str:
        return f"{self.plugin}@{self.marketplace}"

    def to_dict(self) -> dict[str, Any]:
        return {"marketplace": self.marketplace, "plugin": self.plugin, "commit": self.commit,
                "reference": self.reference}


def is_reference(text: str, *, registered: bool) -> bool:
    """Whether *text*, given where a source is expected, is a marketplace reference.

    The rule: an existing file or directory is always a path. Otherwise ``NAME@MARKETPLACE``
    (both made of letters, digits, ``.``, ``_``, ``-``) is a reference: no source form has that
    shape (``pypi:``, ``github:``, git URLs and ``user@host:path`` all have a ``:``). A bare
    ``NAME`` of the same characters (not starting with ``.``, not a wheel or sdist file name) is
    a reference when at least one marketplace is *registered*; before, it was an error (not
    a source), and it stays one when none is.
    """
    if not isinstance(text, str) or os.path.lexists(text):
        return False
    if _REFERENCE_RE.match(text):
        return True
    return (registered and bool(_BARE_RE.match(text)) and not text.startswith(".")
            and not text.lower().endswith(_FILE_SUFFIXES))


def _close_only(word: str, references: Sequence[str]) -> list[str]:
    """The ``PLUGIN@MARKETPLACE`` of *references* whose plugin is close to *word*, closest
    first."""
    scored = []
    for ref in references:
        matcher = difflib.SequenceMatcher(None, word, ref.rpartition("@")[0])
        if matcher.ratio() >= 0.6:
            scored.append((-matcher.ratio(), ref))
    return [ref for _, ref in sorted(scored)]


def _close_first(word: str, names: Sequence[str]) -> list[str]:
    unique = list(dict.fromkeys(names))
    close = difflib.get_close_matches(word, unique, n=len(unique), cutoff=0.6)
    return close + sorted(name for name in unique if name not in close)


class Marketplaces:
    """The marketplaces registered in one store, and references resolved against them."""

    def __init__(self, ctx: StoreContext) -> None:
        self.ctx = ctx

    @property
    def path(self) -> Path:
        return self.ctx.root / REGISTRY

    # ---- reading -----------------------------------------------------------------------------

    def list(self) -> list[Marketplace]:
        """:meth:`PluginStore.marketplaces`: sorted by name."""
        data = self._read()
        return [self._record(name, data) for name in sorted(data["marketplaces"])]

    def get(self, name: str) -> Marketplace:
        """:meth:`PluginStore.get_marketplace`."""
        data = self._read()
        if name not in data["marketplaces"]:
            raise self._unknown(name, data)
        return self._record(name, data)

    def resolve(self, reference: str, *, index_url: str | None = None,
                find_links: Sequence[str | os.PathLike[str]] = (),
                no_index: bool = False) -> MarketplacePlugin:
        """:meth:`PluginStore.resolve_plugin`."""
        if not isinstance(reference, str) or not reference.strip():
            raise MarketplaceError(repr(reference), "a plugin reference must be "
                                   "'PLUGIN@MARKETPLACE' or 'PLUGIN'")
        data = self._read()
        if "@" in reference:
            plugin_name, _, market_name = reference.rpartition("@")
            if not plugin_name or not market_name:
                raise MarketplaceError(f"plugin reference {reference!r}",
                                       "expected 'PLUGIN@MARKETPLACE'")
            if market_name not in data["marketplaces"]:
                raise self._unknown(market_name, data, reference)
            market = self._record(market_name, data)
            entry = market.plugin(plugin_name)
            if entry is None:
                raise MarketplaceLookupError(
                    f"plugin {plugin_name!r}", f"not in marketplace {market_name!r}; its "
                    f"plugins are", _close_first(plugin_name, [e.name for e in market.plugins]))
            found = (market, entry)
        else:
            markets = [self._record(name, data) for name in sorted(data["marketplaces"])]
            if not markets:
                raise MarketplaceLookupError(
                    f"plugin {reference!r}", "no marketplace is registered in this store "
                    "(`ohp marketplace add NAME SOURCE`); a PyPI package is pypi:NAME")
            matches = [(m, e) for m in markets if (e := m.plugin(reference)) is not None]
            if not matches:
                close = _close_only(reference, [f"{e.name}@{m.name}" for m in markets
                                                for e in m.plugins])
                raise MarketplaceLookupError(
                    f"plugin {reference!r}", f"in no registered marketplace "
                    f"({', '.join(m.name for m in markets)}); a PyPI package is "
                    f"pypi:{reference}" + ("; close matches are" if close else ""),
                    close)
            if len(matches) > 1:
                raise MarketplaceLookupError(
                    f"plugin {reference!r}", "is in several marketplaces; name one as "
                    f"'{reference}@MARKETPLACE'", [f"{e.name}@{m.name}" for m, e in matches],
                    problem="ambiguous")
            found = matches[0]
        market, entry = found
        source = entry_source(market, entry, index_url=index_url, find_links=find_links,
                              no_index=no_index)
        return MarketplacePlugin(market, entry, source)

    def origins(self) -> dict[str, MarketplaceOrigin]:
        """Installed plugin name -> where it came from, as recorded at install (not checked
        against what is installed now: :meth:`origin` does that)."""
        data = self._read()
        return {name: MarketplaceOrigin(o["marketplace"], o["plugin"], o.get("commit"))
                for name, o in data["installed"].items()}

    def origin(self, installed: InstalledPlugin,
               recorded: dict[str, Any] | None = None) -> MarketplaceOrigin | None:
        """:meth:`PluginStore.marketplace_origin`: the record, when *installed* is still the
        plugin installed from it (same source); else ``None``."""
        data = recorded if recorded is not None else self._read()
        rec = data["installed"].get(installed.name)
        if not isinstance(rec, dict) or rec.get("source") != installed.source.to_dict():
            return None
        return MarketplaceOrigin(rec["marketplace"], rec["plugin"], rec.get("commit"))

    def raw(self) -> dict[str, Any]:
        """The registry's data (for callers that look up many origins with one read)."""
        return self._read()

    # ---- changing ----------------------------------------------------------------------------

    def add(self, name: str, source: str | PluginSource, *, ref: str | None = None,
            repo_path: str | None = None, replace: bool = False,
            progress: Callable[[str], None] | None = None,
            timeout: float | None = None) -> Marketplace:
        """:meth:`PluginStore.add_marketplace`."""
        check_name(name, "marketplace name")
        src = self._parse_source(source, ref, repo_path)
        generations = self.ctx.generations
        generations.check_store()
        if not replace and name in self._read()["marketplaces"]:
            existing = self.get(name)
            raise MarketplaceError(
                f"marketplace {name!r}", f"is registered already (from "
                f"{existing.source.source}); `ohp marketplace update {name}` reads it again, "
                f"or remove it first")
        self.ctx.policy.check_source(redacted(src))  # before anything is cloned
        with generations.operation(progress) as op:
            market = self._fetch(name, src, op, progress=progress, timeout=timeout)
            with self._locked():
                data = self._read()
                previous = data["marketplaces"].get(name)
                if previous is not None and not replace:
                    raise MarketplaceError(f"marketplace {name!r}", "was registered meanwhile")
                stamp = now()
                record = market.to_dict()
                record["added_at"] = previous["added_at"] if previous else stamp
                record["updated_at"] = stamp
                data["marketplaces"][name] = record
                self._write(data)
        market = self._record(name, data)
        self.ctx.policy.audit("marketplace-update" if previous else "marketplace-add",
                              marketplace=name, source=src.source, commit=market.commit,
                              plugins=len(market.plugins))
        return market

    def update(self, name: str, *, progress: Callable[[str], None] | None = None,
               timeout: float | None = None) -> Marketplace:
        """:meth:`PluginStore.update_marketplace`."""
        current = self.get(name)
        return self.add(name, current.source, replace=True, progress=progress,
                        timeout=timeout)

    def remove(self, name: str) -> Marketplace:
        """:meth:`PluginStore.remove_marketplace`."""
        self.ctx.generations.check_store()
        with self._locked():
            data = self._read()
            if name not in data["marketplaces"]:
                raise self._unknown(name, data)
            removed = self._record(name, data)
            del data["marketplaces"][name]
            self._write(data)
        self.ctx.policy.audit("marketplace-remove", marketplace=name,
                              source=removed.source.source)
        return removed

    def record_origin(self, installed: InstalledPlugin, resolved: MarketplacePlugin) -> None:
        """Note that *installed* came from *resolved* (entries of plugins no longer installed
        are dropped on the way). The plugin is installed already: a failure here is a warning,
        and the plugin only loses the note."""
        try:
            with self._locked():
                data = self._read()
                data["installed"] = {n: o for n, o in data["installed"].items()
                                     if n != installed.name and self._installed(n)}
                data["installed"][installed.name] = {
                    "marketplace": resolved.marketplace.name, "plugin": resolved.entry.name,
                    "commit": resolved.marketplace.commit,
                    "source": installed.source.to_dict()}
                self._write(data)
        except (OSError, StoreError) as exc:
            _logger.warning("%s is installed, but that it came from %s was not recorded: %s",
                            installed.name, resolved.reference, exc)

    def _installed(self, name: str) -> bool:
        try:
            return self.ctx.generations.current(name) is not None
        except StoreError:
            return True  # a damaged record is not ours to judge: keep the note

    # ---- internals ---------------------------------------------------------------------------

    def _parse_source(self, source: str | PluginSource, ref: str | None,
                      repo_path: str | None) -> PluginSource:
        if isinstance(source, PluginSource):
            if ref is not None or repo_path is not None:
                raise SourceError(source.source, "pass ref and repo_path inside the "
                                  "PluginSource, not beside it")
            src = source
            src.check_local_paths()
        else:
            src = PluginSource.parse(source, ref=ref, repo_path=repo_path)
        if src.kind not in ("git", "directory"):
            raise SourceError(src.source, f"a marketplace is a git repository or a local "
                              f"directory, not a {src.kind} source")
        return src

    def _fetch(self, name: str, src: PluginSource, op: Path, *,
               progress: Callable[[str], None] | None, timeout: float | None) -> Marketplace:
        commit = None
        if src.kind == "git":
            assert src.url is not None
            say(progress, f"cloning {src.url}")
            checkout = op / "checkout"
            commit = git_checkout(src.url, src.ref, checkout, timeout=timeout)
            root = checkout.resolve()
            directory = resolve_repo_path(checkout, src.repo_path)
        else:
            root = directory = Path(src.source).resolve()
        where = f"marketplace {name!r} ({redact_url(src.source)})"
        manifest, data = read_manifest(root, directory, where)
        title, description, owner, raw_entries = parse_manifest(data, f"{where}: {manifest}")
        market = Marketplace(name=name, source=redacted(src), commit=commit, manifest=manifest,
                             plugins=(), title=title, description=description, owner=owner)
        entries = []
        for raw in raw_entries:
            entry = MarketplaceEntry(**raw)
            try:
                entry_source(market, entry, checked_root=root)
            except (MarketplaceError, SourceError) as exc:
                entry = MarketplaceEntry(**{**raw, "error": _reason(exc)})
            entries.append(entry)
        return Marketplace(name=name, source=market.source, commit=commit, manifest=manifest,
                           plugins=tuple(entries), title=title, description=description,
                           owner=owner)

    def _unknown(self, name: str, data: dict[str, Any],
                 reference: str | None = None) -> MarketplaceLookupError:
        registered = sorted(data["marketplaces"])
        hint = ""
        if reference is not None:
            plugin = reference.rpartition("@")[0]
            hint = f" (a PyPI package is pypi:{plugin} with --version)"
        if not registered:
            return MarketplaceLookupError(f"marketplace {name!r}", "is not registered; none "
                                          "is (`ohp marketplace add NAME SOURCE`)" + hint,
                                          problem="unknown-marketplace")
        return MarketplaceLookupError(f"marketplace {name!r}", f"is not registered{hint}; "
                                      "registered marketplaces are",
                                      _close_first(name, registered),
                                      problem="unknown-marketplace")

    def _record(self, name: str, data: dict[str, Any]) -> Marketplace:
        try:
            return Marketplace.from_dict(data["marketplaces"][name])
        except (KeyError, TypeError, ValueError) as exc:
            raise StoreError(str(self.path), f"marketplace {name!r} has a damaged record "
                             f"({exc}); remove it and add it again") from None

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with flock(self.ctx.root / _REGISTRY_LOCK, shared=False,
                   timeout=self.ctx.generations.lock_timeout, what="the marketplaces"):
            yield

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {"format": REGISTRY_FORMAT, "marketplaces": {}, "installed": {}}
        except (OSError, ValueError) as exc:
            raise StoreError(str(self.path), f"cannot be read as JSON: {exc}") from None
        if (not isinstance(data, dict) or data.get("format") != REGISTRY_FORMAT
                or not isinstance(data.get("marketplaces"), dict)
                or not isinstance(data.get("installed", {}), dict)):
            raise StoreError(str(self.path), f"expected format {REGISTRY_FORMAT} with "
                             "'marketplaces' and 'installed' objects")
        data.setdefault("installed", {})
        return data

    def _write(self, data: dict[str, Any]) -> None:
        write_json_atomic(self.path, data)


# ---- the marketplace file ------------------------------------------------------------------


def read_manifest(root: Path, directory: Path, where: str) -> tuple[str, Any]:
    """Find and read the marketplace file of *directory* (inside *root*, the repository).

    Returns its path relative to *directory* and the decoded JSON. The file may be reached
    through a symlink (OpenHands/extensions links ``.claude-plugin`` to ``.plugin``) but must
    stay inside *root*, be a regular file and at most :data:`MAX_MANIFEST_BYTES`.
    """
    for manifest_dir in MANIFEST_DIRS:
        candidate = directory / manifest_dir / MANIFEST_FILE
        if os.path.lexists(candidate):  # the SDK takes the first that exists, then reads it
            break
    else:
        raise MarketplaceError(where, f"has no {MANIFEST_DIRS[0]}/{MANIFEST_FILE} nor "
                               f"{MANIFEST_DIRS[1]}/{MANIFEST_FILE}")
    rel = f"{manifest_dir}/{MANIFEST_FILE}"
    try:
        real = candidate.resolve(strict=True)
    except (OSError, RuntimeError):
        raise MarketplaceError(where, f"{rel} is a dangling or looping symlink") from None
    if real != root and root not in real.parents:
        raise MarketplaceError(where, f"{rel} leads outside the repository (a symlink)")
    try:
        fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        raise MarketplaceError(where, f"{rel} cannot be read: {exc.strerror}") from None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            raise MarketplaceError(where, f"{rel} is not a regular file")
        raw = handle.read(MAX_MANIFEST_BYTES + 1)
    if len(raw) > MAX_MANIFEST_BYTES:
        raise MarketplaceError(where, f"{rel} is larger than {MAX_MANIFEST_BYTES >> 20} MiB")
    try:
        return rel, json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise MarketplaceError(where, f"{rel} is not UTF-8") from None
    except ValueError as exc:
        raise MarketplaceError(where, f"{rel} is not valid JSON: {exc}") from None
    except RecursionError:
        raise MarketplaceError(where, f"{rel} nests too deeply") from None


def _text(value: object, what: str, where: str, limit: int = _MAX_TEXT) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise MarketplaceError(where, f"{what} must be a string, not {type(value).__name__}")
    return value if len(value) <= limit else value[: limit - 1] + "…"


def parse_manifest(data: object, where: str) -> tuple[
        str | None, str | None, str | None, list[dict[str, Any]]]:
    """Check a decoded marketplace file: ``(title, description, owner, entries)``, each entry
    ``{name, source, description, version}``. Raises :class:`MarketplaceError` naming the
    entry for what makes the file unusable (types, names, duplicates, sizes); an entry's source
    is checked separately (:func:`entry_source`)."""
    if not isinstance(data, dict):
        raise MarketplaceError(where, f"expected a JSON object, not {type(data).__name__}")
    title = _text(data.get("name"), "'name'", where, 200)
    metadata = data.get("metadata")
    description = data.get("description")
    if description is None and isinstance(metadata, dict):
        description = metadata.get("description")  # the SDK: "Can also be in metadata"
    description = _text(description, "'description'", where)
    owner = data.get("owner")
    owner_name = owner.get("name") if isinstance(owner, dict) else owner
    owner_name = _text(owner_name, "'owner' name", where, 200)
    plugins = data.get("plugins", [])
    if not isinstance(plugins, list):
        raise MarketplaceError(where, f"'plugins' must be a list, not {type(plugins).__name__}")
    if len(plugins) > MAX_ENTRIES:
        raise MarketplaceError(where, f"lists {len(plugins)} plugins (at most {MAX_ENTRIES})")
    entries: list[dict[str, Any]] = []
    seen: set[str] = set()
    for index, item in enumerate(plugins):
        label = f"{where}: plugins[{index}]"
        if not isinstance(item, dict):
            raise MarketplaceError(label, f"expected an object, not {type(item).__name__}")
        name = item.get("name")
        if not isinstance(name, str):
            raise MarketplaceError(label, "has no 'name' string")
        label = f"{where}: plugin {name[:100]!r}"
        try:
            check_name(name, "name")
        except StoreError as exc:
            raise MarketplaceError(label, _reason(exc)) from None
        if name in seen:
            raise MarketplaceError(label, "is listed twice")
        seen.add(name)
        if "source" not in item:
            raise MarketplaceError(label, "has no 'source'")
        entries.append({
            "name": name, "source": _recorded_source(item["source"]),
            "description": _text(item.get("description"), "'description'", label),
            "version": _text(item.get("version"), "'version'", label, 100)})
    return title, description, owner_name, entries


def _recorded_source(value: object) -> Any:
    """The entry's source as it is kept: URLs redacted, large values cut (they are refused
    later, when the entry is checked, with the reason recorded)."""
    if isinstance(value, str):
        return redact_url(value[: MAX_SOURCE_CHARS + 1])
    if isinstance(value, dict):
        kept = {k: v for k, v in value.items() if isinstance(k, str) and len(k) <= 100
                and (v is None or isinstance(v, (str, bool, int, float)))}
        return {k: redact_url(v[: MAX_SOURCE_CHARS + 1]) if isinstance(v, str) else v
                for k, v in list(kept.items())[:20]}
    return {_NOT_A_SOURCE: type(value).__name__}  # refused when checked, as what it was


def _reason(exc: Exception) -> str:
    return str(getattr(exc, "reason", exc))


def entry_source(market: Marketplace, entry: MarketplaceEntry, *,
                 index_url: str | None = None,
                 find_links: Sequence[str | os.PathLike[str]] = (),
                 no_index: bool = False,
                 checked_root: Path | None = None) -> PluginSource:
    """The source that installs *entry* of *market*, with the index options given.

    A relative path: the marketplace's repository at its recorded commit, ``repo_path`` the
    marketplace's directory joined with it (a local marketplace: that directory). Refused with
    :class:`MarketplaceError` naming the entry: ``..`` in a path, an absolute path, an unknown
    source kind, a ``file:`` URL in a marketplace that is not local, malformed fields.
    """
    label = f"plugin {entry.name!r} of marketplace {market.name!r}"
    if entry.error is not None:
        raise MarketplaceError(label, entry.error)
    options: dict[str, Any] = {"index_url": index_url, "find_links": tuple(
        os.fspath(link) for link in find_links), "no_index": no_index}
    raw = entry.source
    try:
        if isinstance(raw, str):
            src = _string_source(market, raw, options, checked_root)
        elif isinstance(raw, dict) and _NOT_A_SOURCE not in raw:
            src = _object_source(raw, options)
        else:
            kind = raw.get(_NOT_A_SOURCE) if isinstance(raw, dict) else type(raw).__name__
            raise MarketplaceError(label, f"'source' must be a string or an object, not {kind}")
    except SourceError as exc:
        raise MarketplaceError(label, f"source: {exc.reason}") from None
    except MarketplaceError as exc:
        if exc.subject == label:
            raise
        raise MarketplaceError(label, f"{exc.subject}: {exc.reason}") from None
    relative = isinstance(raw, str) and ":" not in raw
    if not relative and (src.kind not in ("pypi", "git")
                         or (src.url or "").startswith("file:")):
        # What a marketplace names on this machine is only inside its own directory.
        raise MarketplaceError(label, "source: a file: URL or a local path outside the "
                               "marketplace is not accepted; expected ./PATH in the "
                               "marketplace's repository or a remote source")
    return src


def _string_source(market: Marketplace, raw: str, options: dict[str, Any],
                   checked_root: Path | None) -> PluginSource:
    if len(raw) > MAX_SOURCE_CHARS:
        raise MarketplaceError("source", f"is longer than {MAX_SOURCE_CHARS} characters")
    if any(ord(ch) < 32 or ch == "\x7f" for ch in raw):
        raise MarketplaceError("source", "contains control characters")
    text = raw.strip()
    if not text:
        raise MarketplaceError("source", "is empty")
    if text.startswith(("/", "~")) or (len(text) > 1 and text[1] == ":" and text[0].isalpha()):
        raise MarketplaceError("source", f"{text!r} is an absolute path; expected a path "
                               "relative to the marketplace (./plugins/NAME) or a remote source")
    if ":" in text:  # the SDK: '://' is a URL; isolator's forms: github:, pypi:, git+...
        lowered = text.lower()
        if lowered.startswith("https://") and not lowered.rstrip("/").endswith(".git"):
            text = "git+" + text  # a repository URL the way the SDK's `url` source has it
        if not (_SCHEME_RE.match(text) and ("://" in text or lowered.startswith(
                ("github:", "pypi:", "git+")))):
            raise MarketplaceError("source", f"{text!r} is no known source kind; expected "
                                   "./PATH, github:OWNER/REPO, pypi:NAME or a git URL")
        return PluginSource(text, **options)
    if "\\" in text:
        raise MarketplaceError("source", f"{text!r} must use '/' separators")
    parts = [p for p in PurePosixPath(text).parts if p != "."]
    if ".." in parts:
        raise MarketplaceError("source", f"{text!r} leaves the marketplace's directory "
                               "('..' is not accepted)")
    base = market.source
    if base.kind == "directory":
        directory = Path(base.source).resolve()
        target = directory.joinpath(*parts)
        with contextlib.suppress(OSError, RuntimeError):
            real = target.resolve()
            if real != directory and directory not in real.parents:
                raise MarketplaceError("source", f"{text!r} leads outside the marketplace's "
                                       "directory (a symlink)")
        if checked_root is not None and not target.is_dir():
            raise MarketplaceError("source", f"{text!r} is not a directory of the marketplace")
        return PluginSource(str(target), **options)
    joined = "/".join([*([base.repo_path] if base.repo_path else []), *parts])
    if checked_root is not None and joined:
        # At registration the checkout is at hand: say now that the directory is missing or
        # leaves the repository (a symlink), not only at install time.
        resolve_repo_path(checked_root, joined)
    return PluginSource(base.source, ref=market.commit or base.ref, repo_path=joined or None,
                        **options)


def _field(raw: dict[str, Any], key: str) -> str | None:
    value = raw.get(key)
    if value is not None and not isinstance(value, str):
        raise MarketplaceError("source", f"'{key}' must be a string")
    return value or None


def _object_source(raw: dict[str, Any], options: dict[str, Any]) -> PluginSource:
    kind = raw.get("source")
    if not isinstance(kind, str):
        raise MarketplaceError("source", "an object source needs a 'source' kind string "
                               "(github, url, git-subdir, pip)")
    ref = _field(raw, "sha") or _field(raw, "ref")  # Claude Code's sha pins a commit
    path = _field(raw, "path")
    if kind == "github":
        repo = _field(raw, "repo")
        if repo is None:
            raise MarketplaceError("source", "a github source needs 'repo' (OWNER/REPO)")
        return PluginSource(f"github:{repo}", ref=ref, repo_path=path, **options)
    if kind in ("url", "git-subdir"):
        url = _field(raw, "url")
        if url is None:
            raise MarketplaceError("source", f"a {kind} source needs 'url'")
        if kind == "git-subdir" and path is None:
            raise MarketplaceError("source", "a git-subdir source needs 'path'")
        if url.lower().startswith("https://") and not url.lower().rstrip("/").endswith(".git"):
            url = "git+" + url
        if not url.lower().startswith(("git+", "https://", "ssh://", "file://")):
            raise MarketplaceError("source", f"'url' {url!r} is not a git URL (https, ssh, "
                                   "file)")
        return PluginSource(url, ref=ref, repo_path=path, **options)
    if kind in ("pip", "pypi"):
        package = _field(raw, "package")
        if package is None:
            raise MarketplaceError("source", f"a {kind} source needs 'package'")
        if raw.get("registry") is not None:
            raise MarketplaceError("source", "'registry' is not supported (the store's "
                                   "index options choose the index)")
        return PluginSource(f"pypi:{package}", version=_field(raw, "version"), **options)
    if kind == "npm":
        raise MarketplaceError("source", "npm packages are not supported")
    raise MarketplaceError("source", f"unknown source kind {kind[:40]!r}; expected github, "
                           "url, git-subdir or pip")
