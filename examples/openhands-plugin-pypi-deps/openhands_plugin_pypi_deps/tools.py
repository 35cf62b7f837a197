"""The to_ascii_hostname tool; needs idna (from PyPI)."""

from __future__ import annotations

import idna


def to_ascii_hostname(hostname: str) -> str:
    """Return the ASCII form of *hostname*: ``"bücher.de"`` -> ``"xn--bcher-kva.de"``."""
    return idna.encode(hostname).decode("ascii")
