"""A harmless plugin: the bystander of the security suite."""

from __future__ import annotations

import os


def echo(text: str) -> dict[str, object]:
    """Return *text* and this worker's pid."""
    return {"text": text, "pid": os.getpid()}


def keep(text: str) -> str:
    """Write *text* to a file in TMPDIR (the scratch directory under strict); its path."""
    path = os.path.join(os.environ.get("TMPDIR", "/tmp"), "bystander-note.txt")
    with open(path, "w") as handle:
        handle.write(text)
    return path
