"""The salute plugin's tools; they need example-textkit 1.x (one exclamation mark).

They run only in the plugin's worker, on its venv's interpreter, where example-textkit is the
1.x this plugin pinned, whatever other plugins pinned in theirs.
"""

from __future__ import annotations

import example_textkit


def salute(name: str) -> str:
    """Salute someone by name, loudly: ``salute("Ada")`` is ``"HELLO, ADA!"``.

    Args:
        name: Who to salute.
    """
    return example_textkit.shout(f"Hello, {name}")


def textkit_version() -> str:
    """The version of example-textkit in this plugin's venv."""
    return str(example_textkit.__version__)
