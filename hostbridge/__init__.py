"""hostbridge: plugin code runs in subprocess workers that speak MessagePack-RPC to the host.

A worker uses the plugin venv's interpreter and never sees the host's packages or environment;
the host reaches plugin tools through :class:`HostBridge` and :class:`RemoteTool` proxies.
"""

from __future__ import annotations

import importlib

# typing is not imported: `ohp --help` and `ohp list` start in a few ms (#19).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

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

# Everything loads on first use: `ohp --help` or a host that only reads plugins does not pay
# for the bridge, asyncio and the agents (tests/test_cli_imports.py).
_LAZY = {
    "CallTimeoutError": "hostbridge._errors",
    "PluginFailedError": "hostbridge._errors",
    "RemoteError": "hostbridge._errors",
    "ToolArgumentsError": "hostbridge._errors",
    "ToolNotFoundError": "hostbridge._errors",
    "WorkerCrashedError": "hostbridge._errors",
    "WorkerError": "hostbridge._errors",
    "WorkerStartError": "hostbridge._errors",
    "LLM_OPTIONS": "hostbridge.agents._agents",
    "EchoLLM": "hostbridge.agents._agents",
    "HostTool": "hostbridge.agents._agents",
    "LLMLimitError": "hostbridge.agents._agents",
    "LLMLimits": "hostbridge.agents._agents",
    "LLMUsage": "hostbridge.agents._agents",
    "RemoteAgent": "hostbridge.agents._agents",
    "CapabilityNotFoundError": "hostbridge.agents._registry",
    "CapabilityRegistry": "hostbridge.agents._registry",
    "RegistryError": "hostbridge.agents._registry",
    "RequirementError": "hostbridge.agents._registry",
    "PluginProgram": "hostbridge.launch._programs",
    "ProgramResult": "hostbridge.launch._programs",
    "run_program": "hostbridge.launch._programs",
    "spawn_program": "hostbridge.launch._programs",
    "PROFILE_LIMITS": "hostbridge.launch._sandbox",
    "PROFILES": "hostbridge.launch._sandbox",
    "WorkerLimits": "hostbridge.launch._sandbox",
    "sandbox_layers": "hostbridge.launch._sandbox",
    "HostBridge": "hostbridge.supervision._bridge",
    "RemoteTool": "hostbridge.supervision._bridge",
    "ToolResult": "hostbridge.supervision._bridge",
    "failed_plugins": "hostbridge.supervision._bridge",
    "Worker": "hostbridge.supervision._process",
    "launcher_info": "isolator.sandbox",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'hostbridge' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


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
