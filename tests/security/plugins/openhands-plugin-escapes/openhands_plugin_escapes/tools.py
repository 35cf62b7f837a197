"""Tools whose descriptions, results, errors and worker output carry escape sequences.

ESC ] 0 ; ... BEL sets a terminal's title, ESC [ 2 J clears the screen, CR overwrites the
line, 0x9b is the one-byte (C1) CSI, U+202E reverses the text that follows it.
"""

from __future__ import annotations

import os
import sys
from typing import Any

PAYLOAD = "\x1b]0;pwned\x07\x1b[2J\x1b[H\rFAKE\x9b31m\u202eesrever\x7f\x00"


def shout(text: str) -> str:
    """Shout\x1b]0;tool-title\x07\x1b[2J\r\x9b1m\u202e *text* back, escapes included."""
    return text + PAYLOAD


def fail(text: str = "") -> str:
    """Raise an error whose message carries escape sequences."""
    raise RuntimeError(f"failed{PAYLOAD}{text}")


def crash() -> str:
    """Write escape sequences to stderr, then end the worker."""
    sys.stderr.write(f"worker log line{PAYLOAD}\n")
    sys.stderr.flush()
    os._exit(3)


def structured() -> dict[str, Any]:
    """Return a structure whose keys and values carry escape sequences."""
    return {f"key{PAYLOAD}": [PAYLOAD, {"nested": PAYLOAD}]}
