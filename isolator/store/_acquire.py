"""Getting a source's files: a git checkout, and a safe copy of a content-only plugin directory."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from isolator._errors import CommandError, SourceError, StoreError
from isolator._redact import redact_url
from isolator.store._commands import run_command, scrubbed_env

if TYPE_CHECKING:
    from collections.abc import Callable

MAX_CONTENT_FILES = 20_000
MAX_CONTENT_BYTES = 256 << 20
_SKIPPED_DIRS = frozenset({".git", ".hg", ".svn", "__pycache__", ".venv", "node_modules"})
# Hooks or config of the user's git must not act on a checkout of someone else's repository.
_GIT_SAFE = ["-c", "core.hooksPath=/dev/null", "-c", "advice.detachedHead=false",
             "-c", "core.symlinks=true"]


def git_checkout(
    url: str,
    ref: str | None,
    target: Path,
    *,
    progress: Callable[[str], None] | None = None,
    timeout: float | None = None,
) -> str:
    """Clone *url* into *target* and check out *ref* (default branch when ``None``).

    Returns the commit checked out. git runs with the store's scrubbed environment (no
    ``GIT_*`` variables) and without hooks.
    """
    env = scrubbed_env({"GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_NOSYSTEM": "1"})
    try:
        run_command(["git", *_GIT_SAFE, "clone", "--quiet", "--no-checkout", "--", url,
                     os.fspath(target)], env=env, progress=progress, timeout=timeout)
        wanted = ref if ref is not None else "HEAD"
        run_command(["git", *_GIT_SAFE, "-C", os.fspath(target), "checkout", "--quiet",
                     wanted, "--"], env=env, progress=progress, timeout=timeout)
        result = run_command(["git", "-C", os.fspath(target), "rev-parse", "HEAD"], env=env,
                             timeout=timeout)
    except CommandError as exc:
        what = f"ref {ref!r} of " if ref is not None else ""
        raise SourceError(redact_url(url), f"cannot check out {what}the repository: "
                          f"{exc.summary}") from None
    return result.stdout.strip()


def copy_content(source: Path, target: Path) -> str:
    """Copy a content-only plugin directory; return a sha256 over its paths and bytes.

    Only regular files and directories are copied. A symlink is followed only when it stays
    inside *source* (it becomes a plain copy); one that leaves it, and any special file, is
    skipped: the copy must not smuggle in a file from outside the plugin. VCS and cache
    directories are left out. Raises :class:`StoreError` past the size caps.
    """
    root = source.resolve()
    digest = hashlib.sha256()
    files = 0
    total = 0
    target.mkdir(parents=True)
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        here = Path(dirpath)
        rel_dir = here.relative_to(root)
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIPPED_DIRS)
        for name in list(dirnames):
            if (here / name).is_symlink():
                dirnames.remove(name)
                resolved = (here / name).resolve()
                if resolved.is_dir() and _inside(root, resolved):
                    # Walked as its own tree below its link name.
                    sub_hash, sub_files, sub_bytes = _copy_linked_dir(
                        root, resolved, target / rel_dir / name, rel_dir / name
                    )
                    digest.update(sub_hash)
                    files += sub_files
                    total += sub_bytes
            else:
                (target / rel_dir / name).mkdir()
        for name in sorted(filenames):
            copied = _copy_file(root, here / name, target / rel_dir / name)
            if copied is None:
                continue
            files += 1
            total += copied[1]
            digest.update(f"{(rel_dir / name).as_posix()}\0{copied[0]}\n".encode())
            if files > MAX_CONTENT_FILES or total > MAX_CONTENT_BYTES:
                raise StoreError(
                    str(source),
                    f"content-only plugin is too large (limits: {MAX_CONTENT_FILES} files, "
                    f"{MAX_CONTENT_BYTES >> 20} MiB)",
                )
    return digest.hexdigest()


def _copy_linked_dir(root: Path, real: Path, target: Path, rel: Path) -> tuple[bytes, int, int]:
    digest = hashlib.sha256()
    files = total = 0
    target.mkdir(parents=True, exist_ok=True)
    for dirpath, dirnames, filenames in os.walk(real, followlinks=False):
        here = Path(dirpath)
        sub = here.relative_to(real)
        dirnames[:] = sorted(d for d in dirnames
                             if d not in _SKIPPED_DIRS and not (here / d).is_symlink())
        for name in dirnames:
            (target / sub / name).mkdir(parents=True, exist_ok=True)
        for name in sorted(filenames):
            copied = _copy_file(root, here / name, target / sub / name)
            if copied is not None:
                files += 1
                total += copied[1]
                digest.update(f"{(rel / sub / name).as_posix()}\0{copied[0]}\n".encode())
    return digest.digest(), files, total


def _inside(root: Path, path: Path) -> bool:
    return path == root or root in path.parents


def _copy_file(root: Path, path: Path, target: Path) -> tuple[str, int] | None:
    try:
        real = path.resolve(strict=True)
    except (OSError, RuntimeError):
        return None  # a dangling or looping symlink
    if not _inside(root, real):
        return None
    try:
        fd = os.open(real, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_NONBLOCK", 0))
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        mode = os.fstat(handle.fileno()).st_mode
        if not stat.S_ISREG(mode):
            return None
        digest = hashlib.sha256()
        size = 0
        with open(target, "wb") as out:
            while block := handle.read(1 << 20):
                digest.update(block)
                out.write(block)
                size += len(block)
                if size > MAX_CONTENT_BYTES:
                    raise StoreError(str(path), "file too large for a content-only plugin")
    # Hook scripts stay executable; nothing else of the source's mode is kept.
    os.chmod(target, 0o755 if mode & 0o111 else 0o644)
    return digest.hexdigest(), size
