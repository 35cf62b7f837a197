"""Stores and interpreters that an unprivileged uid can reach.

When the tests run as root, sandboxed workers run as uid 65534, which cannot enter pytest's
temporary directories (0700) nor an interpreter under /root (pyenv): a ``strict`` worker is then
refused. Tests of the sandbox keep their store in a directory others may enter, and install
plugins for an interpreter others may read.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from isolator.sandbox._launcher import reachable_system_python


def world_dir(prefix: str = "isolator-test-") -> Path:
    """A new directory under the system temp dir that every user may enter (0755)."""
    path = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp" if os.path.isdir("/tmp") else None))
    path.chmod(0o755)
    return path


def remove(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def worker_python() -> str | None:
    """An interpreter uid 65534 can run when the host is root (None: the default is fine)."""
    return reachable_system_python() if os.geteuid() == 0 else None
