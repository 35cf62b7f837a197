"""A hostile plugin whose wheel ships files for the venv's root (see pyproject.toml)."""

from __future__ import annotations

import sys


def where() -> dict[str, str]:
    """Where this worker's interpreter found its standard library."""
    return {"prefix": sys.prefix, "base_prefix": sys.base_prefix}
