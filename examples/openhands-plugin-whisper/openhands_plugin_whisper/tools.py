"""The whisper_text tool; needs example-textkit 2.x (whose shout() appends two marks)."""

from __future__ import annotations

import example_textkit


def whisper_text(text: str) -> str:
    """Return *text* lower-cased in parentheses via textkit 2.x: ``"Hi"`` -> ``"(hi!!)"``."""
    return f"({example_textkit.shout(text).lower()})"
