"""The store on disk: its file names, atomic writes, removal, locks, and the progress and
fault-injection hooks every stage shares.

Nothing here knows a plugin: these are the primitives the generations, the install pipeline
and the lock/sync code are built from.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import secrets
import shutil
import signal
import time
from typing import TYPE_CHECKING, Any

from isolator._errors import StoreError
from isolator._redact import redact_text
from isolator.store._layout import LEASE, METADATA

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

NAME_MAX = 100

def check_name(name: str, what: str = "plugin name") -> str:
    ok = (isinstance(name, str) and 0 < len(name) <= NAME_MAX and name[0].isalnum()
          and all(c.isalnum() or c in "._-" for c in name) and name.isascii())
    if not ok:
        raise StoreError(f"{what} {name!r}", f"expected letters, digits, '.', '_' or '-' "
                         f"(starting with a letter or digit, at most {NAME_MAX} characters)")
    return name


def valid_name(name: str) -> bool:
    try:
        check_name(name)
    except StoreError:
        return False
    return True


def new_generation_id() -> str:
    return "gen-" + time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + "-" + secrets.token_hex(4)


def now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}")
    try:
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(data, handle, indent=2, sort_keys=True)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        # A venv may hold read-only files (the wheelhouse's are 0444): rmtree copes on POSIX.
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def remove_unless_leased(gen: Path) -> bool:
    """Remove generation *gen* unless a lease holds it; True when it was removed."""
    try:
        fd = os.open(gen / LEASE, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        remove(gen)  # half-built before its lease file existed, or already half-removed
        return True
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        # Metadata first: a generation without it is never mistaken for a usable one.
        with contextlib.suppress(FileNotFoundError):
            (gen / METADATA).unlink()
        remove(gen)
        return True
    finally:
        os.close(fd)


def tree_size(path: Path) -> int:
    total = 0
    try:
        if path.is_file() or path.is_symlink():
            return path.lstat().st_size
        for dirpath, _dirs, files in os.walk(path):
            for name in files:
                with contextlib.suppress(OSError):
                    total += os.lstat(os.path.join(dirpath, name)).st_size
    except OSError:
        pass
    return total


@contextlib.contextmanager
def flock(path: Path, *, shared: bool, timeout: float, what: str,
           progress: Callable[[str], None] | None = None) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        mode = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
        deadline = time.monotonic() + timeout
        told = False
        while True:
            try:
                fcntl.flock(fd, mode | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise
            if not told:
                say(progress, f"waiting for another process using {what}")
                told = True
            if time.monotonic() > deadline:
                raise StoreError(what, f"still busy after {timeout:g} s (lock {path})")
            time.sleep(0.05)
        yield
    finally:
        os.close(fd)


def say(progress: Callable[[str], None] | None, message: str) -> None:
    if progress is not None:
        progress(redact_text(message))


def checkpoint(stage: str) -> None:
    """A fault-injection point for the crash tests: ``ISOLATOR_STOP_AT=<stage>`` makes the
    process stop itself here (SIGSTOP), so a test can kill it -9 at exactly this point."""
    if os.environ.get("ISOLATOR_STOP_AT") == stage:
        os.kill(os.getpid(), signal.SIGSTOP)
