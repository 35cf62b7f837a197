"""Example library, version 1: text helpers."""

from __future__ import annotations

__version__ = "1.0.0"


def shout(text: str) -> str:
    """Upper-case *text* and append ``!``."""
    return text.upper() + "!"
