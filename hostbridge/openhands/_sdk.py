"""The SDK side of the adapter: plugin worker tools as OpenHands SDK tools.

Imported only through :mod:`hostbridge.openhands`, and only where ``openhands-sdk`` is
installed (Python >= 3.12). The SDK is reached through :func:`importlib.import_module` and its
names are typed ``Any``, so mypy checks this module without the SDK.

One action type serves every worker tool, as the SDK's own MCP tools do
(``MCPToolAction(data=...)``): the arguments travel as a dict and the plugin's worker validates
them against the tool's JSON schema. No class is generated per tool, so registering a tool twice
in one process, two bridges with different versions of one plugin, and events read back after a
restart never meet the SDK's process-global "Duplicate class definition" of action kinds.
"""

import copy
import importlib
import json
import threading
import uuid
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from hostbridge._errors import CallTimeoutError, ToolArgumentsError, WorkerError
from hostbridge.openhands._names import sdk_tool_name
from hostbridge.supervision._bridge import HostBridge

_NEEDS = ("hostbridge.openhands needs openhands-sdk>=1.58,<2, which needs Python >= 3.12: "
          "pip install 'isolator[openhands]'")


def _module(name: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        raise ImportError(f"{_NEEDS} ({exc})") from exc


_tool: Any = _module("openhands.sdk.tool")
_pydantic: Any = _module("pydantic")
_plugin: Any = _module("openhands.sdk.plugin")
_hooks: Any = _module("openhands.sdk.hooks")
_skill_utils: Any = _module("openhands.sdk.skills.utils")

Action: Any = _tool.Action
Observation: Any = _tool.Observation
ToolDefinition: Any = _tool.ToolDefinition
ToolExecutor: Any = _tool.ToolExecutor
ToolSpec: Any = _tool.Tool
register_tool: Any = _tool.register_tool
list_registered_tools: Any = _tool.list_registered_tools
registered_tool_class: Any = _module("openhands.sdk.tool.registry").registered_tool_class
builtin_tool_class: Any = _module("openhands.sdk.tool.builtins").builtin_tool_class
SdkPlugin: Any = _plugin.Plugin
HookConfig: Any = _hooks.HookConfig
HookDefinition: Any = _hooks.HookDefinition
HookMatcherModel: Any = _hooks.HookMatcher
HOOK_EVENT_FIELDS: frozenset[str] = _module("openhands.sdk.hooks.config").HOOK_EVENT_FIELDS
expand_mcp_servers: Any = _skill_utils.expand_mcp_servers
Field: Any = _pydantic.Field

# The SDK adds these to every tool's schema and takes them out of the arguments again.
_META_FIELDS = ("security_risk", "summary")


class HostBridgeToolAction(Action):  # type: ignore[misc]
    """A call of a plugin's worker tool: the arguments as the model gave them."""

    worker_arguments: dict[str, Any] = Field(
        default_factory=dict,
        description="The tool's arguments; the plugin's worker validates them.")


class HostBridgeSummaryToolAction(HostBridgeToolAction):
    """The action of a worker tool whose own schema has a ``summary`` parameter.

    The SDK's agent takes ``summary`` out of the arguments unless the action type declares it;
    this one does, so the tool still receives it (``worker_arguments`` has it too).
    """

    summary: str | None = Field(default=None, description="The tool's own summary argument.")


class HostBridgeToolObservation(Observation):  # type: ignore[misc]
    """What a worker tool returned, as text; ``is_error`` when it failed or could not run."""

    plugin: str = Field(description="The plugin whose worker ran the tool.")
    tool: str = Field(description="The tool's name in its plugin.")


@dataclass
class Binding:
    """A bridge as the SDK's tool registry reaches it: by token, from a tool spec's params."""

    token: str
    bridge_ref: weakref.ref[HostBridge]
    tools: dict[tuple[str, str], tuple[str, dict[str, Any]]] = field(default_factory=dict)
    """(plugin, tool) -> (description, input schema), as listed when attached."""
    cleanups: list[Callable[[], None]] = field(default_factory=list)
    """What goes when the bridge closes: the sandboxed hook and MCP commands' scratch
    directories, environment files and generation leases."""

    def close(self) -> None:
        with _lock:
            cleanups, self.cleanups = self.cleanups, []
        for cleanup in cleanups:
            cleanup()


_lock = threading.Lock()
_bindings: dict[str, Binding] = {}
_tokens: weakref.WeakKeyDictionary[HostBridge, str] = weakref.WeakKeyDictionary()


def bind(bridge: HostBridge, tools: dict[tuple[str, str], tuple[str, dict[str, Any]]],
         cleanups: Sequence[Callable[[], None]] = ()) -> str:
    """The token that routes tool specs to *bridge* (one per bridge; kept while it lives).

    *cleanups* run when the bridge closes (:meth:`HostBridge.on_close`, after its workers
    stop), or when it is collected without closing."""
    with _lock:
        token = _tokens.get(bridge)
        if token is None:
            token = uuid.uuid4().hex[:16]
            _tokens[bridge] = token
            binding = _bindings[token] = Binding(token, weakref.ref(bridge))
            weakref.finalize(bridge, _finalize, token)
            bridge.on_close(binding.close)
        binding = _bindings[token]
        binding.tools.update(tools)
        binding.cleanups.extend(cleanups)
        return token


def _finalize(token: str) -> None:
    binding = _bindings.pop(token, None)
    if binding is not None:
        binding.close()


def _render(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, bytes):
        return content.decode("utf-8", "replace")
    return json.dumps(content, ensure_ascii=False, default=repr)


class HostBridgeExecutor(ToolExecutor):  # type: ignore[misc]
    """Runs a worker tool through its bridge; every failure is an ``is_error`` observation."""

    def __init__(self, bridge: HostBridge, plugin: str, tool: str,
                 timeout: float | None) -> None:
        self.bridge = bridge
        self.plugin = plugin
        self.tool = tool
        self.timeout = timeout

    def __call__(self, action: Any, conversation: Any = None) -> Any:
        arguments = dict(getattr(action, "worker_arguments", {}) or {})
        try:
            result = self.bridge.call_tool(self.plugin, self.tool, arguments,
                                           timeout=self.timeout)
        except ToolArgumentsError as exc:
            text = f"invalid arguments: {exc}"
        except CallTimeoutError as exc:
            text = f"timed out: {exc}"
        except WorkerError as exc:  # crashed, failed plugin, start error, unknown tool
            text = str(exc)
        except Exception as exc:  # never let one tool call end the conversation
            text = f"tool {self.tool!r} of plugin {self.plugin!r}: {type(exc).__name__}: {exc}"
        else:
            return HostBridgeToolObservation.from_text(
                _render(result.content), is_error=result.is_error, plugin=self.plugin,
                tool=self.tool)
        return HostBridgeToolObservation.from_text(text, is_error=True, plugin=self.plugin,
                                                   tool=self.tool)


class HostBridgeTool(ToolDefinition[HostBridgeToolAction, HostBridgeToolObservation]):  # type: ignore[misc]
    """A plugin's worker tool as an SDK tool (registered by name; see ``attach``)."""

    tool_name: str = Field(description="The tool's name for the model: PLUGIN__TOOL.")
    plugin: str = Field(description="The plugin whose worker runs the tool.")
    remote_name: str = Field(description="The tool's name in its plugin.")
    input_schema: dict[str, Any] = Field(description="The tool's JSON schema, as the worker "
                                         "gives it; the model sees it as is.")

    @property
    def name(self) -> str:
        return self.tool_name

    @classmethod
    def create(cls, conv_state: Any = None, **params: Any) -> Sequence[Any]:
        """Resolve a spec ``Tool(name, params={"bridge", "plugin", "tool", "timeout"})``."""
        token, plugin, tool = params.get("bridge"), params.get("plugin"), params.get("tool")
        binding = _bindings.get(str(token))
        bridge = None if binding is None else binding.bridge_ref()
        if binding is None or bridge is None:
            raise ValueError(
                f"tool {tool!r} of plugin {plugin!r}: the HostBridge it was attached with is "
                f"gone; call hostbridge.openhands.attach again with a bridge (a resumed "
                f"conversation needs the agent attach returns)")
        description, schema = binding.tools[(str(plugin), str(tool))]
        action_type = HostBridgeSummaryToolAction if "summary" in (
            schema.get("properties") or {}) else HostBridgeToolAction
        return [cls(tool_name=sdk_tool_name(str(plugin), str(tool)), plugin=plugin,
                    remote_name=tool, input_schema=schema,
                    description=description or f"Tool {tool} of plugin {plugin}.",
                    action_type=action_type, observation_type=HostBridgeToolObservation,
                    executor=HostBridgeExecutor(bridge, str(plugin), str(tool),
                                                params.get("timeout")))]

    def action_from_arguments(self, arguments: dict[str, Any]) -> Any:
        tool_arguments, structured = self._split_response_arguments(arguments)
        fields: dict[str, Any] = {"worker_arguments": tool_arguments}
        if self.action_type is HostBridgeSummaryToolAction:
            summary = tool_arguments.get("summary")
            fields["summary"] = summary if isinstance(summary, str) else None
        action = self.action_type(**fields)
        action._structured_output = structured
        return action

    def _get_tool_schema(self, add_security_risk_prediction: bool = False,
                         action_type: Any = None) -> dict[str, Any]:
        """The worker's schema as is, with the SDK's own meta fields laid over it (as the
        SDK's ClientTool does)."""
        if action_type is not None:
            raise ValueError("HostBridgeTool does not support overriding action_type")
        sdk_schema = super()._get_tool_schema(
            add_security_risk_prediction=add_security_risk_prediction)
        sdk_properties: dict[str, Any] = sdk_schema.get("properties", {})
        sdk_required: list[str] = sdk_schema.get("required") or []
        merged = copy.deepcopy(self.input_schema)
        merged.setdefault("type", "object")
        properties = merged.setdefault("properties", {})
        own = set(properties)
        meta: dict[str, Any] = {}
        for name in _META_FIELDS:
            if name in sdk_properties and name not in own:
                meta[name] = sdk_properties[name]
                if name in sdk_required:
                    required = merged.setdefault("required", [])
                    if name not in required:
                        required.append(name)
        merged["properties"] = {**meta, **properties}
        merged = self._merge_response_schema(merged)
        return dict(merged)

    def to_mcp_tool(self, input_schema: dict[str, Any] | None = None,
                    output_schema: dict[str, Any] | None = None) -> dict[str, Any]:
        if input_schema is not None or output_schema is not None:
            raise ValueError("HostBridgeTool.to_mcp_tool does not support overriding schemas")
        result: dict[str, Any] = super().to_mcp_tool(
            input_schema=self.input_schema,
            output_schema=HostBridgeToolObservation.to_mcp_schema())
        return result

