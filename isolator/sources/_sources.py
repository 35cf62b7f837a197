"""Plugin sources: where a plugin comes from, validated when it is parsed.

A :class:`PluginSource` is plain data the store records in its metadata. Construction validates
the form and the options (so a bad source fails before anything is downloaded); :meth:`parse`
also checks that local paths exist. Nothing here touches the network or runs a subprocess.

:func:`scan_tree` reads a plugin directory as a source provides it: a symlink is followed when
its target stays inside the source's *boundary* (a git checkout, the directory given), however
far it leaves the plugin directory itself (OpenHands/extensions links each plugin's skills to the
repository's shared ``skills/``); one that leaves the boundary, dangles, loops, or names a
special file is a problem naming the link and its target. The store and ``ohp package`` copy
what it found with :func:`copy_tree`, so a followed link becomes regular files.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import unquote, urlsplit, urlunsplit

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import (
    InvalidSdistFilename,
    InvalidWheelFilename,
    canonicalize_name,
    parse_sdist_filename,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from isolator._errors import IsolatorError, SourceError, StoreError
from isolator._redact import redact_url

if TYPE_CHECKING:
    from collections.abc import Collection, Sequence

SourceKind = Literal["pypi", "git", "directory", "wheel", "sdist"]
"""What a source points at; derived from the ``source`` string."""

DirectoryKind = Literal["package", "content-only"]
"""A plugin directory with ``pyproject.toml`` is a package; without it, content only."""

ACCEPTED_FORMS = (
    "pypi:NAME (optionally with version='1.0' or '>=1.0,<2')",
    "github:OWNER/REPO",
    "a git URL (git+https://..., https://HOST/.../REPO.git, git@HOST:OWNER/REPO.git, "
    "ssh://..., file:///path/to/repo, git+file:///path/to/repo)",
    "a local directory",
    "a local wheel (.whl) or sdist (.tar.gz, .zip)",
)

_FORMS_HINT = "expected one of: " + "; ".join(ACCEPTED_FORMS)

# PEP 508 names (the packaging spec's regex, case-insensitive).
_NAME_RE = re.compile(r"^([A-Z0-9]|[A-Z0-9][A-Z0-9._-]*[A-Z0-9])\Z", re.IGNORECASE)
# GitHub's own rules: owner is alphanumeric with single inner hyphens; repo is [A-Za-z0-9._-].
_GITHUB_OWNER_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}\Z")
_GITHUB_REPO_RE = re.compile(r"^[A-Za-z0-9._-]{1,100}\Z")
# scp-like git address: user@host:path (what `git clone git@github.com:o/r.git` accepts).
_SCP_RE = re.compile(r"^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:(?!//)[^\s]+\Z")
_SCHEME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_URL_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
# Characters git refuses in ref names (git-check-ref-format) plus whitespace and controls.
_BAD_REF_CHARS = frozenset(" ~^:?*[\\\t\n\r\x00\x7f")
# Plain http:// and git:// carry code unauthenticated: refused for git sources.
_GIT_SCHEMES = frozenset({"https", "ssh", "file"})
_INDEX_SCHEMES = frozenset({"https", "http", "file"})
_SDIST_SUFFIXES = (".tar.gz", ".zip")


@dataclass(frozen=True)
class PluginSource:
    """Where a plugin comes from, with the options that say how to fetch it.

    The fields are the proposal's (``source``, ``version``, ``ref``, ``repo_path``) plus the
    index options. Construction validates them and normalises ``source`` (local paths become
    absolute; inline git ``@ref`` and ``#subdirectory=`` move into ``ref`` and ``repo_path``).
    """

    source: str
    version: str | None = None
    """``pypi:`` only: a PEP 440 specifier (``>=1.0,<2``) or a bare version meaning ``==``."""
    ref: str | None = None
    """Git only: a branch, tag or commit."""
    repo_path: str | None = None
    """Git only: the plugin's subdirectory in the repository (relative, no ``..``)."""
    index_url: str | None = None
    """Replace PyPI with this index (http, https or file URL)."""
    find_links: tuple[str, ...] = ()
    """Extra places to find wheels: local wheelhouse directories or URLs."""
    no_index: bool = False
    """Use only ``find_links`` (an offline install from a wheelhouse)."""
    kind: SourceKind = field(init=False, compare=False)
    """Derived from ``source``."""

    def __post_init__(self) -> None:
        original = self.source
        if not isinstance(original, str):
            raise SourceError(repr(original), f"source must be a string; {_FORMS_HINT}")
        kind, source, inline_ref, inline_subdir = _classify(original)
        ref = _merge_inline(original, "ref", self.ref, inline_ref)
        repo_path = _merge_inline(original, "repo_path", self.repo_path, inline_subdir)
        _set(self, "kind", kind)
        _set(self, "source", source)

        if self.version is not None and kind != "pypi":
            raise SourceError(
                original,
                f"version= applies only to pypi: sources, not to a {kind} source"
                + (" (a git source takes ref=)" if kind == "git" else ""),
            )
        if kind != "git":
            for option, value in (("ref", ref), ("repo_path", repo_path)):
                if value is not None:
                    raise SourceError(
                        original, f"{option}= applies only to git sources, not to a {kind} source"
                    )
        if self.version is not None:
            _set(self, "version", _check_version(original, self.version))
        _set(self, "ref", None if ref is None else _check_ref(original, ref))
        if repo_path is not None:
            repo_path = _check_repo_path(original, repo_path)
        _set(self, "repo_path", repo_path)
        if self.index_url is not None:
            _set(self, "index_url", _check_index_url(original, self.index_url))
        _set(self, "find_links", _check_find_links(original, self.find_links))
        if not isinstance(self.no_index, bool):
            raise SourceError(original, "no_index must be true or false")
        if self.no_index and self.index_url is not None:
            raise SourceError(original, "no_index=True contradicts index_url=")
        if self.no_index and kind == "pypi" and not self.find_links:
            raise SourceError(
                original, "no_index=True needs find_links= (a wheelhouse) for a pypi: source"
            )

    @classmethod
    def parse(
        cls,
        source: str,
        *,
        version: str | None = None,
        ref: str | None = None,
        repo_path: str | None = None,
        index_url: str | None = None,
        find_links: Sequence[str | os.PathLike[str]] | str | os.PathLike[str] = (),
        no_index: bool = False,
    ) -> PluginSource:
        """Validate a user's source and options; unlike the constructor, local paths must exist."""
        links = (
            (os.fspath(find_links),)
            if isinstance(find_links, (str, os.PathLike))
            else tuple(os.fspath(link) for link in find_links)
        )
        parsed = cls(
            source,
            version=version,
            ref=ref,
            repo_path=repo_path,
            index_url=index_url,
            find_links=links,
            no_index=no_index,
        )
        parsed.check_local_paths()
        return parsed

    def check_local_paths(self) -> None:
        """Raise :class:`SourceError` when a local path this source names does not exist.

        Separate from construction so that metadata of a plugin whose source directory is gone
        still loads.
        """
        if self.kind == "directory" and not Path(self.source).is_dir():
            reason = "is not a directory" if Path(self.source).exists() else "does not exist"
            raise SourceError(self.source, f"local directory {reason}")
        if self.kind in ("wheel", "sdist") and not Path(self.source).is_file():
            raise SourceError(self.source, f"local {self.kind} file does not exist")
        if self.kind == "git" and self.source.startswith(("file:", "git+file:")):
            repo = _file_url_path(self.source)
            if not Path(repo).is_dir():
                raise SourceError(self.source, f"local git repository {repo} does not exist")
        for link in self.find_links:
            if not _SCHEME_RE.match(link) and not Path(link).is_dir():
                raise SourceError(self.source, f"find_links directory {link} does not exist")

    # ---- derived views -------------------------------------------------------------------

    @property
    def name(self) -> str | None:
        """The package name of a ``pypi:`` source, as given; ``None`` for other kinds."""
        return self.source[len("pypi:") :] if self.kind == "pypi" else None

    @property
    def canonical_name(self) -> str | None:
        """The PEP 503 normalised package name of a ``pypi:`` source."""
        name = self.name
        return None if name is None else canonicalize_name(name)

    @property
    def specifier(self) -> SpecifierSet:
        """The version constraint as a :class:`SpecifierSet` (empty when there is none)."""
        return _to_specifier(self.version) if self.version is not None else SpecifierSet()

    @property
    def url(self) -> str | None:
        """For a git source, the URL ``git clone`` takes; ``None`` for other kinds."""
        if self.kind != "git":
            return None
        if self.source.startswith("github:"):
            return f"https://github.com/{self.source[len('github:') :]}.git"
        if self.source.startswith("git+"):
            return self.source[len("git+") :]
        return self.source

    @property
    def path(self) -> Path | None:
        """For a local directory, wheel or sdist, its absolute path; ``None`` otherwise."""
        return Path(self.source) if self.kind in ("directory", "wheel", "sdist") else None

    @property
    def default_name(self) -> str | None:
        """The name a plugin from this source has when it has no manifest: the directory's
        name (a git source: ``repo_path``'s last part, else the repository's name);
        ``None`` for packages, which are named by their entry point."""
        if self.kind == "directory":
            return Path(self.source).name
        if self.kind != "git":
            return None
        if self.repo_path is not None:
            return PurePosixPath(self.repo_path).name
        url = self.url or ""
        last = re.split(r"[/:]", url.rstrip("/"))[-1]
        return last[: -len(".git")] if last.endswith(".git") else last

    @property
    def is_remote(self) -> bool:
        """True when the source itself is fetched over the network (pypi and non-file git)."""
        if self.kind == "pypi":
            return True
        return self.kind == "git" and not self.source.startswith(("file:", "git+file:"))

    @property
    def requires_allow_build(self) -> bool:
        """True when installing this source itself means running build code it ships.

        A git checkout and an sdist are built from code the user did not write; a local
        directory is the user's own project and is always built; wheels and ``pypi:`` need no
        build of the source itself (their dependencies are governed by the backend's
        ``allow_build``).
        """
        return self.kind in ("git", "sdist")

    def requirement(self) -> str:
        """The PEP 508 requirement for a ``pypi:`` source, e.g. ``security-scanner>=1.0,<2``."""
        if self.kind != "pypi":
            raise SourceError(self.source, f"a {self.kind} source has no PEP 508 requirement")
        return f"{self.name}{self.specifier}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data for the store's metadata; :meth:`from_dict` reads it back.

        URLs are redacted (:func:`redact_url`): credentials are never written."""
        return {
            "source": redact_url(self.source),
            "kind": self.kind,
            "version": self.version,
            "ref": self.ref,
            "repo_path": self.repo_path,
            "index_url": None if self.index_url is None else redact_url(self.index_url),
            "find_links": [redact_url(link) for link in self.find_links],
            "no_index": self.no_index,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PluginSource:
        """Rebuild a source from :meth:`to_dict` data; unknown keys are an error."""
        if not isinstance(data, dict) or not isinstance(data.get("source"), str):
            raise SourceError(repr(data)[:80], "source data must be an object with a 'source'")
        known = {"source", "kind", "version", "ref", "repo_path", "index_url", "find_links",
                 "no_index"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise SourceError(data["source"], f"unknown keys in source data: {unknown}")
        links = data.get("find_links") or ()
        if not isinstance(links, (list, tuple)):
            raise SourceError(data["source"], "find_links must be a list")
        result = cls(
            data["source"],
            version=data.get("version"),
            ref=data.get("ref"),
            repo_path=data.get("repo_path"),
            index_url=data.get("index_url"),
            find_links=tuple(links),
            no_index=bool(data.get("no_index", False)),
        )
        recorded_kind = data.get("kind")
        if recorded_kind is not None and recorded_kind != result.kind:
            raise SourceError(
                data["source"], f"recorded kind {recorded_kind!r} but the source is {result.kind}"
            )
        return result


def is_package_dir(path: Path) -> bool:
    """True when *path* (a plugin directory or a checkout) has ``pyproject.toml``: a package."""
    return (path / "pyproject.toml").is_file()


def classify_directory(path: Path) -> DirectoryKind:
    """``"package"`` (has ``pyproject.toml``: own venv) or ``"content-only"`` (copied, no venv)."""
    if not path.is_dir():
        raise SourceError(str(path), "plugin directory does not exist")
    return "package" if is_package_dir(path) else "content-only"


def resolve_repo_path(checkout: Path, repo_path: str | None) -> Path:
    """The plugin directory inside a git checkout; refuses a ``repo_path`` leaving it (symlinks)."""
    if repo_path is None:
        return checkout
    root = checkout.resolve()
    target = (root / _check_repo_path(repo_path, repo_path)).resolve()
    if target != root and root not in target.parents:
        raise SourceError(repo_path, f"repo_path resolves outside the repository {checkout}")
    if not target.is_dir():
        raise SourceError(repo_path, f"repo_path is not a directory in the repository {checkout}")
    return target


# ---- a plugin directory as its source provides it: links inside the boundary followed ----------

MAX_TREE_DEPTH = 64
"""How deep a plugin's directories may nest, links followed: deeper is a problem, not a crash."""

_MODE_KINDS = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
               (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


def file_kind(mode: int) -> str:
    """What a special file is, in words (``a FIFO``...)."""
    for test, name in _MODE_KINDS:
        if test(mode):
            return name
    return "a special file"


@dataclass
class SourceTree:
    """A plugin directory as a source provides it (:func:`scan_tree`): its regular files by
    relative POSIX path, symlinks inside the boundary followed."""

    root: str
    """The plugin directory's real path."""
    boundary: str
    """The real path every link must stay inside: the plugin directory, a repository, or the
    directory given."""
    files: dict[str, tuple[str, bool]] = field(default_factory=dict)
    """path -> (the real file to read, executable)"""
    problems: list[str] = field(default_factory=list)
    """``"path: why"`` for each entry that cannot be taken (the link and its target named)."""
    linked: list[str] = field(default_factory=list)
    """Every symlink followed, by its path in the plugin."""
    outside: dict[str, str] = field(default_factory=dict)
    """The followed symlinks of the plugin directory whose target leaves it (but not the
    boundary): path -> the link's text."""
    skipped: list[str] = field(default_factory=list)
    """Directories left out (VCS, caches, *exclude*)."""
    size: int = 0
    directories: int = 0
    boundary_name: str = "the plugin directory"
    """The boundary in words, as the problems and notices name it."""

    def notices(self, label: str | None = None) -> list[str]:
        """One line per followed link leaving the plugin directory (what the CLI shows)."""
        where = f"{label}: " if label else ""
        return [f"{where}{rel} is a symlink to {link}, outside the plugin directory but inside "
                f"{self.boundary_name}: copied as regular files"
                for rel, link in self.outside.items()]


def _within(root: str, path: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def scan_tree(
    root: str | os.PathLike[str],
    *,
    boundary: str | os.PathLike[str] | None = None,
    boundary_name: str | None = None,
    exclude: Collection[str | os.PathLike[str]] = (),
    skip_dirs: Collection[str] = frozenset(),
    skip_suffixes: tuple[str, ...] = (),
    skip_prefixes: tuple[str, ...] = (),
    max_files: int,
    max_bytes: int,
    max_depth: int = MAX_TREE_DEPTH,
    too_large: type[IsolatorError] | None = None,
) -> SourceTree:
    """Walk the plugin directory *root* as its source provides it.

    A symlink is resolved with the real filesystem (chains, ``..``, absolute targets) and
    followed when its target is inside *boundary* (default: *root*): a file link gives that
    file, a directory link that tree under the link's name, walked by the same rules (a link
    in a linked tree is resolved from where it really is). A link that leaves the boundary,
    dangles, loops, or reaches a special file (FIFO, socket, device), a link into one of
    *skip_dirs* (``.git``: a clone's config may hold credentials), a directory holding itself
    and nesting deeper than *max_depth* are problems, each naming the entry (and the link's
    text); nothing is raised for them. Directories named in *skip_dirs* and the *exclude*
    directories are left out, files ending in *skip_suffixes* too. Past *max_files* files or
    directories, or *max_bytes*, *too_large* (default :class:`StoreError`) is raised at once:
    a tree that links a directory many times cannot make the walk unbounded.
    """
    real_root = os.path.realpath(root)
    real_boundary = os.path.realpath(boundary) if boundary is not None else real_root
    if not _within(real_boundary, real_root):
        raise SourceError(str(root), f"the plugin directory is not inside {boundary} (the "
                          "directory its symlinks may reach)")
    leaves = boundary_name or ("the plugin directory" if real_boundary == real_root
                               else real_boundary)
    tree = SourceTree(root=real_root, boundary=real_boundary, boundary_name=leaves)
    excluded = {os.path.realpath(p) for p in exclude}
    error = too_large or StoreError

    def over(what: str) -> IsolatorError:
        return error(str(root), f"the plugin is too large ({what}; limits: {max_files} files "
                     f"or directories, {max_bytes >> 20} MiB, symlinks followed)")

    def resolve(path: str, rel: str, real_dir: str) -> str | None:
        """The real target of the link *path* (in *real_dir*), or None (a problem recorded)."""
        link = os.readlink(path)
        try:
            target = os.path.realpath(path, strict=True)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                tree.problems.append(f"{rel}: symlink loop (-> {link})")
            elif exc.errno in (errno.ENOENT, errno.ENOTDIR):
                tree.problems.append(f"{rel}: dangling symlink (-> {link})")
            else:
                tree.problems.append(f"{rel}: symlink cannot be resolved (-> {link}: "
                                     f"{exc.strerror})")
            return None
        if not _within(real_boundary, target):
            tree.problems.append(f"{rel}: symlink leaves {leaves} (-> {link})")
            return None
        inner = os.path.relpath(target, real_boundary).split(os.sep)
        hidden = [part for part in inner if part in skip_dirs]
        if hidden:
            tree.problems.append(f"{rel}: symlink into {hidden[0]}/ (-> {link}), which is "
                                 "never plugin content")
            return None
        tree.linked.append(rel)
        # A link of the plugin directory itself; one inside a tree linked from elsewhere is
        # part of that tree (a shared skill's own .claude-plugin -> .plugin).
        if _within(real_root, real_dir) and not _within(real_root, target):
            tree.outside[rel] = link
        return target

    def walk(real_dir: str, rel_dir: str, ancestors: frozenset[str], depth: int) -> None:
        try:
            entries = sorted(os.scandir(real_dir), key=lambda e: e.name)
        except OSError as exc:
            tree.problems.append(f"{rel_dir or '.'}: cannot be listed ({exc.strerror})")
            return
        for entry in entries:
            rel = f"{rel_dir}/{entry.name}" if rel_dir else entry.name
            try:
                rel.encode("utf-8")
            except UnicodeEncodeError:
                tree.problems.append(f"{rel!r}: the file name is not UTF-8 (a wheel needs it)")
                continue
            path = entry.path
            through = ""
            if entry.is_symlink():
                target = resolve(path, rel, real_dir)
                if target is None:
                    continue
                through = f", through the symlink -> {os.readlink(path)}"
                path = target
            try:
                info = os.stat(path, follow_symlinks=False)
            except OSError as exc:
                tree.problems.append(f"{rel}: cannot be read ({exc.strerror})")
                continue
            if stat.S_ISDIR(info.st_mode):
                if entry.name in skip_dirs or path in excluded or \
                        entry.name.startswith(skip_prefixes):
                    tree.skipped.append(rel)
                    continue
                if path in ancestors:
                    tree.problems.append(f"{rel}: symlink loop (a directory that contains "
                                         f"itself{through})")
                    continue
                if depth >= max_depth:
                    tree.problems.append(f"{rel}: nested deeper than {max_depth} directories")
                    continue
                tree.directories += 1
                if tree.directories > max_files:
                    raise over(f"more than {max_files} directories")
                walk(path, rel, ancestors | {path}, depth + 1)
            elif stat.S_ISREG(info.st_mode):
                if entry.name.endswith(skip_suffixes):
                    continue
                tree.files[rel] = (path, bool(info.st_mode & 0o111))
                tree.size += info.st_size
                if len(tree.files) > max_files:
                    raise over(f"more than {max_files} files")
                if tree.size > max_bytes:
                    raise over(f"more than {max_bytes >> 20} MiB")
            else:
                tree.problems.append(f"{rel}: not a regular file or directory "
                                     f"({file_kind(info.st_mode)}{through})")

    walk(real_root, "", frozenset({real_root}), 0)
    return tree


def copy_tree(tree: SourceTree, target: Path, *, max_bytes: int | None = None) -> None:
    """Write the files of *tree* under *target* (made here) as regular files: mode 0755 for an
    executable (a hook script), else 0644. Each file is opened without following a symlink
    and must still be a regular file within *max_bytes* (default: the tree's size)."""
    limit = tree.size if max_bytes is None else max_bytes
    target.mkdir(parents=True)
    for rel, (real, executable) in tree.files.items():
        out = target.joinpath(*rel.split("/"))
        out.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as src:
            info = os.fstat(src.fileno())
            if not stat.S_ISREG(info.st_mode) or info.st_size > limit:
                raise StoreError(real, f"changed while it was copied (expected the regular "
                                 f"file {rel} of {tree.root})")
            remaining = limit
            with open(out, "wb") as dst:
                while block := src.read(min(1 << 20, remaining + 1)):
                    remaining -= len(block)
                    if remaining < 0:
                        raise StoreError(real, f"grew while it was copied (the file {rel} "
                                         f"of {tree.root})")
                    dst.write(block)
        os.chmod(out, 0o755 if executable else 0o644)


# ---- parsing helpers -------------------------------------------------------------------------


def _set(obj: PluginSource, name: str, value: object) -> None:
    # A frozen dataclass normalises its own fields in __post_init__ only through object.__setattr__.
    object.__setattr__(obj, name, value)


def _merge_inline(source: str, option: str, given: str | None, inline: str | None) -> str | None:
    if inline is not None and given is not None and inline != given:
        raise SourceError(source, f"{option} given both in the URL ({inline!r}) and as {option}=")
    return given if given is not None else inline


def _classify(raw: str) -> tuple[SourceKind, str, str | None, str | None]:
    """Return (kind, normalised source, inline ref, inline subdirectory)."""
    text = raw.strip()
    if not text:
        raise SourceError(raw, f"empty source; {_FORMS_HINT}")
    if any(ch in text for ch in "\n\r\x00"):
        raise SourceError(raw, "source contains a line break or NUL")
    lowered = text.lower()
    if lowered.startswith("pypi:"):
        return "pypi", "pypi:" + _check_pypi_name(raw, text[len("pypi:") :].strip()), None, None
    if lowered.startswith("github:"):
        return "git", _check_github(raw, text[len("github:") :].strip()), None, None
    if lowered.startswith("git+"):
        return _parse_git_url(raw, text[len("git+") :], plus=True)
    if lowered.startswith(("https://", "ssh://", "file://")):
        if lowered.startswith("https://") and not _url_path(text).endswith(".git"):
            raise SourceError(
                raw,
                "an https URL is read as a git repository and must end in .git (or use "
                "git+https://...); for a package index use index_url=",
            )
        return _parse_git_url(raw, text, plus=False)
    if _SCP_RE.match(text) and not Path(text).exists():
        return "git", text, None, None
    url_scheme = _URL_RE.match(text)
    if url_scheme:
        scheme = url_scheme.group(1).lower()
        reason = (
            f"{scheme}:// is not accepted for git (unauthenticated); use https, ssh or file"
            if scheme in ("http", "git")
            else f"unknown URL scheme {scheme!r}"
        )
        raise SourceError(raw, f"{reason}; {_FORMS_HINT}")
    expanded = Path(text).expanduser()
    looks_like_path = (
        expanded.is_absolute()
        or text.startswith((".", "~"))
        or "/" in text
        or lowered.endswith((".whl", *_SDIST_SUFFIXES))
    )
    if not looks_like_path:
        if _SCHEME_RE.match(text):
            raise SourceError(raw, f"unknown source scheme; {_FORMS_HINT}")
        if not expanded.exists():
            hint = f" (did you mean 'pypi:{text}'?)" if _NAME_RE.match(text) else ""
            raise SourceError(raw, f"not a known source form nor an existing path{hint}; "
                                   f"{_FORMS_HINT}")
    # normpath, not resolve(): "a/../b" is cleaned, symlinks stay as the user named them.
    path = os.path.normpath(expanded.absolute())
    base = Path(path).name
    if base.lower().endswith(".whl"):
        try:
            parse_wheel_filename(base)
        except InvalidWheelFilename as exc:
            raise SourceError(raw, f"not a valid wheel file name: {exc}") from None
        return "wheel", path, None, None
    if base.lower().endswith(_SDIST_SUFFIXES):
        try:
            parse_sdist_filename(base)
        except InvalidSdistFilename as exc:
            raise SourceError(raw, f"not a valid sdist file name (NAME-VERSION.tar.gz): {exc}") \
                from None
        return "sdist", path, None, None
    if base.lower().endswith((".tar", ".tgz", ".tar.bz2", ".tar.xz", ".egg")):
        raise SourceError(raw, "unsupported archive; an sdist must be .tar.gz or .zip")
    return "directory", path, None, None


def _check_pypi_name(raw: str, name: str) -> str:
    if not name:
        raise SourceError(raw, "pypi: needs a package name, e.g. pypi:security-scanner")
    if not _NAME_RE.match(name):
        if any(ch in name for ch in "<>=!~[;@ "):
            raise SourceError(
                raw,
                "pypi:NAME takes a bare package name; pass a constraint as version= "
                "(e.g. version='>=1.0,<2')",
            )
        raise SourceError(raw, f"{name!r} is not a valid package name (PEP 508)")
    return name


def _check_github(raw: str, rest: str) -> str:
    parts = rest.split("/")
    if len(parts) != 2:
        raise SourceError(raw, "expected github:OWNER/REPO")
    owner, repo = parts
    repo = repo.removesuffix(".git")
    if not _GITHUB_OWNER_RE.match(owner):
        raise SourceError(raw, f"{owner!r} is not a valid GitHub owner name")
    if not _GITHUB_REPO_RE.match(repo) or repo in (".", ".."):
        raise SourceError(raw, f"{repo!r} is not a valid GitHub repository name")
    return f"github:{owner}/{repo}"


def _parse_git_url(
    raw: str, url: str, *, plus: bool
) -> tuple[SourceKind, str, str | None, str | None]:
    if plus and _SCP_RE.match(url):
        return "git", "git+" + url, None, None
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _GIT_SCHEMES:
        raise SourceError(
            raw,
            f"git over {scheme or 'this scheme'!s} is not accepted; use https, ssh or file URLs",
        )
    if scheme == "file":
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            raise SourceError(raw, "a file URL must be absolute: file:///path/to/repo")
    elif not parts.netloc:
        raise SourceError(raw, "the git URL has no host")
    path = parts.path
    ref: str | None = None
    # pip's form: the ref follows the last '@' of the path (the netloc may hold a user@ too).
    if "@" in path:
        path, ref = path.rsplit("@", 1)
        if not ref:
            raise SourceError(raw, "empty ref after '@' in the git URL")
    subdirectory: str | None = None
    if parts.fragment:
        for item in parts.fragment.split("&"):
            key, _, value = item.partition("=")
            if key == "subdirectory":
                subdirectory = value
            elif key != "egg":  # pip's legacy #egg= names the project; it adds nothing here
                raise SourceError(raw, f"unknown URL fragment {item!r}; use repo_path=")
    if parts.query:
        raise SourceError(raw, "a git URL takes no query string")
    if not path.strip("/"):
        raise SourceError(raw, "the git URL names no repository")
    clean = urlunsplit((scheme, parts.netloc, path, "", ""))
    return "git", ("git+" + clean) if plus else clean, ref, subdirectory


def _url_path(url: str) -> str:
    """The repository path of a URL, without a trailing ``/`` or a pip-style ``@ref``."""
    return urlsplit(url).path.rsplit("@", 1)[0].rstrip("/")


def _file_url_path(source: str) -> str:
    url = source[len("git+") :] if source.startswith("git+") else source
    return urlsplit(url).path


def _to_specifier(version: str) -> SpecifierSet:
    text = version.strip()
    try:
        return SpecifierSet(f"=={Version(text)}")
    except InvalidVersion:
        pass
    try:
        spec = SpecifierSet(text)
    except InvalidSpecifier:
        # "1.*" has no operator: read it as "==1.*", as a bare version means "==".
        spec = SpecifierSet(f"=={text}")
    if not str(spec):
        raise InvalidSpecifier(text)
    return spec


def _check_version(raw: str, version: str) -> str:
    if not isinstance(version, str) or not version.strip():
        raise SourceError(raw, "version= must be a non-empty PEP 440 version or specifier")
    try:
        _to_specifier(version)
    except InvalidSpecifier:
        raise SourceError(
            raw,
            f"version {version!r} is neither a PEP 440 version (1.0.0) nor a specifier "
            "(>=1.0,<2)",
        ) from None
    return version.strip()


def _check_ref(raw: str, ref: str) -> str:
    if not isinstance(ref, str) or not ref:
        raise SourceError(raw, "ref= must be a non-empty branch, tag or commit")
    # A ref starting with '-' would be read by git as an option.
    if (
        ref.startswith(("-", "/"))
        or ref.endswith(("/", ".", ".lock"))
        or ".." in ref
        or "@{" in ref
        or any(ch in _BAD_REF_CHARS or ord(ch) < 32 for ch in ref)
    ):
        raise SourceError(raw, f"ref {ref!r} is not a valid git branch, tag or commit")
    return ref


def _check_repo_path(raw: str, repo_path: str) -> str:
    if not isinstance(repo_path, str) or not repo_path.strip():
        raise SourceError(raw, "repo_path= must be a non-empty relative path")
    if "\\" in repo_path or "\x00" in repo_path:
        raise SourceError(raw, f"repo_path {repo_path!r} must use '/' and no NUL")
    pure = PurePosixPath(repo_path)
    if pure.is_absolute() or (len(repo_path) > 1 and repo_path[1] == ":"):
        raise SourceError(raw, f"repo_path {repo_path!r} must be relative to the repository root")
    if ".." in pure.parts:
        raise SourceError(raw, f"repo_path {repo_path!r} must not contain '..'")
    normal = pure.as_posix()
    if normal == ".":
        raise SourceError(raw, "repo_path '.' names the repository root: leave it out")
    return normal


def url_credentials(url: str) -> tuple[str, str, str] | None:
    """``(scheme://host:port, user, password)`` of a URL that carries userinfo, else None."""
    if not _SCHEME_RE.match(url):
        return None
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if "@" not in parts.netloc:
        return None
    userinfo, _, host = parts.netloc.rpartition("@")
    user, _, password = userinfo.partition(":")
    return f"{parts.scheme.lower()}://{host.lower()}", unquote(user), unquote(password)


def _check_index_url(raw: str, url: str) -> str:
    if not isinstance(url, str):
        raise SourceError(raw, "index_url= must be a URL string")
    parts = urlsplit(url.strip())
    if parts.scheme.lower() not in _INDEX_SCHEMES or (
        parts.scheme.lower() != "file" and not parts.netloc
    ):
        raise SourceError(raw, f"index_url {redact_url(url)!r} must be an http(s) or file URL")
    return url.strip()


def _check_find_links(raw: str, links: object) -> tuple[str, ...]:
    if isinstance(links, (str, os.PathLike)):
        links = (links,)  # a single wheelhouse is a common slip; accept it
    if not isinstance(links, (list, tuple)):
        raise SourceError(raw, "find_links= must be a list of directories or URLs")
    out: list[str] = []
    for link in links:
        text = os.fspath(link) if isinstance(link, os.PathLike) else link
        if not isinstance(text, str) or not text.strip():
            raise SourceError(raw, f"find_links entry {link!r} must be a non-empty path or URL")
        text = text.strip()
        if _SCHEME_RE.match(text) and not os.path.isabs(text):
            if urlsplit(text).scheme.lower() not in _INDEX_SCHEMES:
                raise SourceError(raw, f"find_links URL {redact_url(text)!r} must be http(s) "
                                  "or file")
            out.append(text)
        else:
            out.append(os.path.abspath(os.path.expanduser(text)))
    return tuple(out)
