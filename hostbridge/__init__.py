"""hostbridge: the host side of plugin workers (MessagePack-RPC, supervision, sandbox).

Plugin code never runs in the host; it runs in subprocess workers that use the plugin venv's
interpreter. This package is filled in by the bridge issues (#4 onwards).
"""

from __future__ import annotations

__all__: list[str] = []
