"""Reading a plugin directory safely: inside its root, regular files only, under size caps.

A plugin directory is data written by someone else. Every path is resolved and must stay inside
the plugin root (a symlink that leaves it is refused); only regular files are read (a FIFO would
block, a device could be anything); a file over the size cap is refused from its ``fstat`` size
without reading a byte of it, so a 1 GiB file costs nothing.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from typing import TYPE_CHECKING

from isolator.content._model import Diagnostic

if TYPE_CHECKING:
    from collections.abc import Iterator

_O_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
_O_FLAGS |= getattr(os, "O_CLOEXEC", 0)


@dataclass(frozen=True)
class LoadLimits:
    """Caps that keep loading a hostile plugin cheap. The defaults suit real plugins."""

    max_file_bytes: int = 4 * 1024 * 1024
    """A content file (Markdown, JSON) larger than this is refused unread."""
    max_yaml_depth: int = 64
    """Frontmatter nested deeper than this is refused (real frontmatter nests 2 or 3 deep)."""
    max_dir_entries: int = 10_000
    """A folder with more entries than this is read only up to this many."""
    max_resource_files: int = 10_000
    """A skill's resource folders list at most this many files."""


@dataclass(frozen=True)
class Entry:
    """One item of a folder listing."""

    name: str
    rel: str
    """Path relative to the plugin root, POSIX, as reached (not resolved)."""
    kind: str
    """``file``, ``dir``, ``other`` (FIFO, socket, device), or ``missing`` (a dangling link)."""


def _kind(mode: int) -> str:
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "dir"
    return "other"


class PluginFS:
    """The plugin root and every read below it; failures become diagnostics."""

    def __init__(self, root: str, limits: LoadLimits, diagnostics: list[Diagnostic]) -> None:
        self.root = root
        """The real (resolved) absolute path of the plugin root."""
        self.limits = limits
        self.diagnostics = diagnostics
        self._prefix = root.rstrip("/") + "/"
        self._reported: set[str] = set()
        self._info: dict[str, tuple[str | None, str]] = {}

    def report(self, rel: str, reason: str, level: str = "warning") -> None:
        """Record a diagnostic, once per (path, reason)."""
        key = f"{rel}\0{reason}"
        if key in self._reported:
            return
        self._reported.add(key)
        self.diagnostics.append(Diagnostic(rel or ".", reason, level))  # type: ignore[arg-type]

    def abspath(self, rel: str) -> str:
        """The path as reached from the root, not resolved (what the model calls ``source``)."""
        return self._prefix + rel if rel else self.root

    def _resolve(self, rel: str) -> tuple[str | None, str]:
        """``(real path, kind)`` of ``rel``, cached for the load; kind is ``file``, ``dir``,
        ``other``, ``missing``, ``escape`` (resolves outside the root) or ``loop``.

        Resolved one component at a time on top of the cached parent, so a path costs one
        ``lstat`` of its last component instead of ``realpath``'s one per component.
        """
        cached = self._info.get(rel)
        if cached is not None:
            return cached
        if not rel:
            return self.root, "dir"
        parent, _, name = rel.rpartition("/")
        preal, pkind = self._resolve(parent)
        if preal is None or pkind in ("missing", "escape", "loop"):
            info: tuple[str | None, str] = (None, pkind if pkind != "dir" else "missing")
        elif pkind != "dir" or name in (".", ".."):
            info = self._resolve_slow(rel)
        else:
            path = f"{preal}/{name}"
            try:
                mode = os.lstat(path).st_mode
            except OSError:
                info = (path, "missing")
            else:
                info = self._resolve_slow(rel) if stat.S_ISLNK(mode) else (path, _kind(mode))
        self._info[rel] = info
        return info

    def _resolve_slow(self, rel: str) -> tuple[str | None, str]:
        try:
            real = os.path.realpath(self.abspath(rel), strict=False)
        except (OSError, RuntimeError, ValueError):
            return None, "loop"
        if not (real == self.root or real.startswith(self._prefix)):
            return real, "escape"
        try:
            return real, _kind(os.stat(real).st_mode)
        except OSError:
            return real, "missing"

    def _note(self, rel: str, kind: str, real: str | None) -> None:
        if kind == "escape":
            self.report(rel, f"resolves outside the plugin root (to {real}); refused")
        elif kind == "loop":
            self.report(rel, "cannot be resolved (symlink loop?); skipped")

    def real(self, rel: str, *, report: bool = True) -> str | None:
        """The resolved path of ``rel``, or None when it leaves the plugin root (reported)."""
        real, kind = self._resolve(rel)
        if kind in ("escape", "loop"):
            if report:
                self._note(rel, kind, real)
            return None
        return real if real is not None else self.abspath(rel)

    def lexists(self, rel: str) -> bool:
        """Whether the name exists, a dangling symlink included."""
        real, kind = self._resolve(rel)
        if kind != "missing":
            return True
        return real is not None and os.path.lexists(self.abspath(rel))

    def kind(self, rel: str, *, report: bool = True) -> str | None:
        """``file``/``dir``/``other``/``missing`` for a path inside the root; None if it escapes."""
        real, kind = self._resolve(rel)
        if kind in ("escape", "loop"):
            if report:
                self._note(rel, kind, real)
            return None
        return kind

    def listdir(self, rel: str) -> list[Entry]:
        """The folder's entries sorted by name, each classified after following symlinks.

        Entries that resolve outside the root are reported and left out.
        """
        real = self.real(rel)
        if real is None:
            return []
        found: list[tuple[str, str]] = []
        try:
            with os.scandir(real) as it:
                for n, e in enumerate(it):
                    if n >= self.limits.max_dir_entries:
                        self.report(
                            rel, f"has more than {self.limits.max_dir_entries} entries; "
                            "the rest were not read")
                        break
                    child = f"{rel}/{e.name}" if rel else e.name
                    # d_type from the directory read: no syscall unless the entry is a link.
                    if not e.is_symlink() and child not in self._info:
                        kind = ("dir" if e.is_dir(follow_symlinks=False) else
                                "file" if e.is_file(follow_symlinks=False) else "other")
                        self._info[child] = (e.path, kind)
                    found.append((e.name, child))
        except OSError as exc:
            self.report(rel, f"cannot be listed: {exc.strerror or exc}")
            return []
        entries = []
        for name, child in sorted(found):
            child_kind = self.kind(child)
            if child_kind is not None:
                entries.append(Entry(name, child, child_kind))
        return entries

    def walk_files(self, rel: str, limit: int) -> Iterator[str]:
        """Regular files below ``rel`` (relative to it), not following symlinked folders.

        Symlinked files count when they resolve inside the root, as the SDK counts them.
        """
        stack = [""]
        seen = 0
        base = self.real(rel, report=False)
        if base is None:
            return
        while stack:
            sub = stack.pop()
            folder = os.path.join(base, sub) if sub else base
            try:
                with os.scandir(folder) as it:
                    items = sorted((e.name, e.is_dir(follow_symlinks=False)) for e in it)
            except OSError:
                continue
            for name, is_dir in items:
                child = f"{sub}/{name}" if sub else name
                if is_dir:
                    stack.append(child)
                    continue
                if self.kind(f"{rel}/{child}", report=False) != "file":
                    continue
                seen += 1
                if seen > limit:
                    self.report(rel, f"has more than {limit} files; the rest were not listed")
                    return
                yield child

    def read_bytes(self, rel: str, *, max_bytes: int | None = None) -> bytes | None:
        """The file's bytes, or None (reported) when it is not a readable regular file in the
        root or is over the size cap."""
        cap = self.limits.max_file_bytes if max_bytes is None else max_bytes
        real = self.real(rel)
        if real is None:
            return None
        try:
            st = os.stat(real)
        except OSError as exc:
            self.report(rel, f"cannot be read: {exc.strerror or exc}")
            return None
        if not stat.S_ISREG(st.st_mode):
            self.report(rel, f"is not a regular file ({_describe(st.st_mode)}); refused")
            return None
        if st.st_size > cap:
            self.report(rel, f"is {st.st_size} bytes, over the {cap}-byte cap; refused unread")
            return None
        try:
            fd = os.open(real, _O_FLAGS)
        except OSError as exc:
            self.report(rel, f"cannot be read: {exc.strerror or exc}")
            return None
        try:
            st = os.fstat(fd)
            # Checked again on the open descriptor: the path may have been swapped meanwhile.
            if not stat.S_ISREG(st.st_mode) or st.st_size > cap:
                self.report(rel, "changed while being read; refused")
                return None
            if not self._fd_inside_root(fd):
                self.report(rel, "was swapped for a link outside the plugin root; refused")
                return None
            chunks = []
            remaining = cap + 1
            while remaining > 0:
                chunk = os.read(fd, min(remaining, 1 << 20))
                if not chunk:
                    break
                chunks.append(chunk)
                remaining -= len(chunk)
        except OSError as exc:
            self.report(rel, f"cannot be read: {exc.strerror or exc}")
            return None
        finally:
            os.close(fd)
        data = b"".join(chunks)
        if len(data) > cap:
            self.report(rel, f"grew past the {cap}-byte cap while being read; refused")
            return None
        return data

    def _fd_inside_root(self, fd: int) -> bool:
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            return True  # no /proc (macOS): the realpath check above is what we have
        return target.startswith(self._prefix)

    def read_text(self, rel: str) -> str | None:
        """The file as text, decoded as UTF-8 and with newlines normalised as Python's text
        mode does (``\\r\\n`` and ``\\r`` become ``\\n``). Invalid UTF-8 is replaced, reported."""
        data = self.read_bytes(rel)
        if data is None:
            return None
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            self.report(
                rel,
                f"is not valid UTF-8 (byte {exc.start}); undecodable bytes were replaced",
            )
            text = data.decode("utf-8", errors="replace")
        if "\r" in text:
            text = text.replace("\r\n", "\n").replace("\r", "\n")
        return text


def _describe(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISDIR(mode):
        return "a directory"
    return "not a regular file"
