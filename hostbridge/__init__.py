"""hostbridge: plugin code runs in subprocess workers that speak MessagePack-RPC to the host.

A worker uses the plugin venv's interpreter and never sees the host's packages or environment;
the host reaches plugin tools through :class:`HostBridge` and :class:`RemoteTool` proxies.
"""

from __future__ import annotations

from ._bridge import HostBridge, RemoteTool, ToolResult
from ._errors import (
    CallTimeoutError,
    RemoteError,
    ToolArgumentsError,
    ToolNotFoundError,
    WorkerCrashedError,
    WorkerError,
    WorkerStartError,
)
from ._process import Worker

__all__ = [
    "CallTimeoutError",
    "HostBridge",
    "RemoteError",
    "RemoteTool",
    "ToolArgumentsError",
    "ToolNotFoundError",
    "ToolResult",
    "Worker",
    "WorkerCrashedError",
    "WorkerError",
    "WorkerStartError",
]
