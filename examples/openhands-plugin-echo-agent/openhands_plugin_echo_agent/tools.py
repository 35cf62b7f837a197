"""The word_count tool."""

from __future__ import annotations


def word_count(text: str) -> int:
    """Count the words of *text*.

    Args:
        text: the text to count.
    """
    return len(text.split())
