"""The echo agent's tools: word_count, and textkit_version (example-textkit 2.x is pinned)."""

from __future__ import annotations

import example_textkit


def word_count(text: str) -> int:
    """Count the words of *text*.

    Args:
        text: the text to count.
    """
    return len(text.split())


def textkit_version() -> str:
    """The version of example-textkit in this plugin's venv."""
    return str(example_textkit.__version__)
