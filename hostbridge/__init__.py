"""hostbridge: plugin code runs in subprocess workers that speak MessagePack-RPC to the host.

A worker uses the plugin venv's interpreter and never sees the host's packages or environment;
the host reaches plugin tools through :class:`HostBridge` and :class:`RemoteTool` proxies.
"""

from __future__ import annotations

from ._agents import EchoLLM, HostTool, LLMLimitError, LLMLimits, LLMUsage, RemoteAgent
from ._bridge import HostBridge, RemoteTool, ToolResult, failed_plugins
from ._errors import (
    CallTimeoutError,
    PluginFailedError,
    RemoteError,
    ToolArgumentsError,
    ToolNotFoundError,
    WorkerCrashedError,
    WorkerError,
    WorkerStartError,
)
from ._process import PROFILES, Worker, WorkerLimits, launcher_info, sandbox_layers
from ._registry import (
    CapabilityNotFoundError,
    CapabilityRegistry,
    RegistryError,
    RequirementError,
)

__all__ = [
    "PROFILES",
    "CallTimeoutError",
    "CapabilityNotFoundError",
    "CapabilityRegistry",
    "EchoLLM",
    "HostBridge",
    "HostTool",
    "LLMLimitError",
    "LLMLimits",
    "LLMUsage",
    "PluginFailedError",
    "RegistryError",
    "RemoteAgent",
    "RemoteError",
    "RemoteTool",
    "RequirementError",
    "ToolArgumentsError",
    "ToolNotFoundError",
    "ToolResult",
    "Worker",
    "WorkerCrashedError",
    "WorkerError",
    "WorkerLimits",
    "WorkerStartError",
    "failed_plugins",
    "launcher_info",
    "sandbox_layers",
]
