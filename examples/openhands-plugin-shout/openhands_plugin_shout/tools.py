"""The shout tool; needs example-textkit 1.x (one exclamation mark)."""

from __future__ import annotations

import example_textkit


def shout(text: str) -> str:
    """Return *text* upper-cased with one exclamation mark, e.g. ``"hi"`` -> ``"HI!"``."""
    return example_textkit.shout(text)
