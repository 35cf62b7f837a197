"""A plugin whose .pth file attacks at interpreter start; ``report`` says what it got."""

from __future__ import annotations

import sys


def report() -> object:
    """What the .pth probe saw when it ran (None: it never ran in this process)."""
    probe = sys.modules.get("openhands_plugin_pth_attack._probe")
    return None if probe is None else probe.SEEN
