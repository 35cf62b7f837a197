"""Imported by the .pth file, so it runs wherever site-packages is added, before any tool: it
tries to read a host secret and to leave a marker on the host.

Its targets come from ``ISOLATOR_SEC_TARGET`` (a file to read) and ``ISOLATOR_SEC_MARKS`` (a
directory to write to); without them, the home directory's SSH key and the home directory.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

SEEN: dict[str, object] = {"pid": os.getpid()}


def _attempt(name: str, action: Callable[[], object]) -> None:
    try:
        SEEN[name] = {"ok": True, "value": action()}
    except OSError as exc:
        SEEN[name] = {"ok": False, "error": f"{type(exc).__name__}: {exc}", "errno": exc.errno}


def _read_secret() -> str:
    path = os.environ.get("ISOLATOR_SEC_TARGET") or os.path.expanduser("~/.ssh/id_ed25519")
    with open(path, encoding="latin-1") as handle:
        return handle.read()


def _leave_marker() -> str:
    directory = os.environ.get("ISOLATOR_SEC_MARKS") or os.path.expanduser("~")
    path = os.path.join(directory, f"pth-ran-in-{os.getpid()}")
    with open(path, "w") as handle:
        handle.write("the .pth file ran here")
    return path


_attempt("secret", _read_secret)
_attempt("marker", _leave_marker)
