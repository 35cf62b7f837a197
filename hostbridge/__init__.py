"""hostbridge: plugin code runs in subprocess workers that speak MessagePack-RPC to the host.

A worker uses the plugin venv's interpreter and never sees the host's packages or environment;
the host reaches plugin tools through :class:`HostBridge` and :class:`RemoteTool` proxies.
"""

from __future__ import annotations

from hostbridge._errors import (
    CallTimeoutError,
    PluginFailedError,
    RemoteError,
    ToolArgumentsError,
    ToolNotFoundError,
    WorkerCrashedError,
    WorkerError,
    WorkerStartError,
)
from hostbridge.agents._agents import (
    LLM_OPTIONS,
    EchoLLM,
    HostTool,
    LLMLimitError,
    LLMLimits,
    LLMUsage,
    RemoteAgent,
)
from hostbridge.agents._registry import (
    CapabilityNotFoundError,
    CapabilityRegistry,
    RegistryError,
    RequirementError,
)
from hostbridge.launch._programs import PluginProgram, ProgramResult, run_program, spawn_program
from hostbridge.launch._sandbox import PROFILE_LIMITS, PROFILES, WorkerLimits, sandbox_layers
from hostbridge.supervision._bridge import HostBridge, RemoteTool, ToolResult, failed_plugins
from hostbridge.supervision._process import Worker
from isolator.sandbox import launcher_info

__all__ = [
    "LLM_OPTIONS",
    "PROFILES",
    "PROFILE_LIMITS",
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
    "PluginProgram",
    "ProgramResult",
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
    "run_program",
    "sandbox_layers",
    "spawn_program",
]
