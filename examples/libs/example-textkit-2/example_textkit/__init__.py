"""Example library, version 2: text helpers."""

from __future__ import annotations

__version__ = "2.0.0"


def shout(text: str) -> str:
    """Upper-case *text* and append ``!!``."""
    return text.upper() + "!!"
