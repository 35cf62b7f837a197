"""A tool whose module hangs on import when FLOOD_HANG_ON_LIST is set (the host must allow the
variable): the worker then never answers ``tools.list``, which loads every tool."""

from __future__ import annotations

import os
import time

if os.environ.get("FLOOD_HANG_ON_LIST"):
    time.sleep(3600)


def hang() -> str:
    """Return "loaded"."""
    return "loaded"
