"""A plugin's OpenHands SDK agent, in its worker (the proposal's custom agents, phase 2).

Loaded only when the host asks for an SDK agent (``agent.create`` with the ``sdk`` flavour),
from the plugin's own venv, which must hold ``openhands-sdk``. What the plugin's
``create_agent(llm, tools, config)`` gets:

- ``llm``: a :class:`HostServedLLM`, a real SDK ``LLM`` whose completions the host makes with
  its own model object (``agent.session ... generate``): no model name, key or URL of the host
  is in this process;
- ``tools``: tool specs (``Tool(name=...)``) of the host's tools; each resolves to a
  :class:`PluginAgentHostTool` whose executor asks the host to run the tool (``... tool``);
- ``config``: the host's configuration for the agent.

It returns an ``AgentBase`` (usually a subclass of ``Agent`` with its own system prompt or its
own ``step``). The worker keeps a mirror of the host's conversation: a ``LocalConversation``
without persistence, fed the host's events; ``init_state`` and ``step`` run on the mirror, and
every event they emit is sent to the host at once (``... event``), which validates it, puts it
in the real conversation (hooks run there) and answers whether a hook blocked it.
"""

from __future__ import annotations

import importlib
import tempfile
from typing import Any

# The worker sets LITELLM_LOCAL_MODEL_COST_MAP and OPENHANDS_SUPPRESS_BANNER before it imports
# this module (main.py): the host imports it too, for the classes below, and keeps its own.

_sdk: Any = importlib.import_module("openhands.sdk")
_llm: Any = importlib.import_module("openhands.sdk.llm")
_tool: Any = importlib.import_module("openhands.sdk.tool")
_event: Any = importlib.import_module("openhands.sdk.event")
_metrics: Any = importlib.import_module("openhands.sdk.llm.utils.metrics")
_pydantic: Any = importlib.import_module("pydantic")
_litellm_types: Any = importlib.import_module("litellm.types.utils")

Field: Any = _pydantic.Field
PrivateAttr: Any = _pydantic.PrivateAttr

SESSION_METHOD = "agent.session"
"""The host capability every call of an SDK agent goes through: ``[agent_id, op, ...]``."""


# The classes a plugin agent's events name (its tools in the system prompt, its actions and
# observations): hostbridge.openhands imports this module, so the host reads those events back
# by kind with the very same classes.
class PluginAgentHostToolAction(_tool.Action):  # type: ignore[misc]
    """A call of one of the host's tools: the arguments as the model gave them."""

    arguments: dict[str, Any] = Field(default_factory=dict,
                                      description="The tool's arguments; the host checks them.")


class PluginAgentHostToolObservation(_tool.Observation):  # type: ignore[misc]
    """What the host's tool returned, as text."""

    tool: str = Field(default="", description="The host tool's name.")


class PluginAgentHostTool(_tool.ToolDefinition):  # type: ignore[misc]
    """One of the host's tools as the plugin's agent sees it: run by the host."""

    tool_name: str = Field(description="The host tool's name.")
    input_schema: dict[str, Any] = Field(default_factory=dict,
                                         description="The host tool's JSON schema.")

    @property
    def name(self) -> str:
        return str(self.tool_name)

    @classmethod
    def create(cls, conv_state: Any = None, **params: Any) -> list[Any]:
        spec = _host_tools[str(params.get("host_tool"))]
        return [cls(tool_name=spec["name"], input_schema=spec.get("input_schema") or {},
                    description=str(spec.get("description") or spec["name"]),
                    action_type=PluginAgentHostToolAction,
                    observation_type=PluginAgentHostToolObservation,
                    executor=_HostToolExecutor(str(params.get("agent_id")), spec["name"]))]

    def action_from_arguments(self, arguments: dict[str, Any]) -> Any:
        tool_arguments, structured = self._split_response_arguments(arguments)
        action = PluginAgentHostToolAction(arguments=tool_arguments)
        action._structured_output = structured
        return action

    def _get_tool_schema(self, add_security_risk_prediction: bool = False,
                         action_type: Any = None) -> dict[str, Any]:
        schema = dict(self.input_schema)
        schema.setdefault("type", "object")
        schema.setdefault("properties", {})
        return schema


class _HostToolExecutor(_tool.ToolExecutor):  # type: ignore[misc]
    def __init__(self, agent_id: str, tool: str) -> None:
        self.agent_id = agent_id
        self.tool = tool

    def __call__(self, action: Any, conversation: Any = None) -> Any:
        answer = _call(SESSION_METHOD, self.agent_id, "tool", self.tool,
                       dict(action.arguments))
        return PluginAgentHostToolObservation.from_text(
            str(answer.get("text", "")), is_error=bool(answer.get("is_error")), tool=self.tool)


class HostServedLLM(_sdk.LLM):  # type: ignore[misc]
    """The SDK ``LLM`` a plugin's agent gets: each completion is made by the host."""

    model: str = Field(default="host-served")
    _agent_id: str = PrivateAttr(default="")

    def uses_responses_api(self) -> bool:
        return False

    def completion(self, messages: list[Any], tools: Any = None,
                   add_security_risk_prediction: bool = False, on_token: Any = None,
                   call_context: Any = None, **kwargs: Any) -> Any:
        answer = _call(SESSION_METHOD, self._agent_id, "generate", {
            "messages": [message.model_dump(mode="json") for message in messages],
            "tools": [tool.name for tool in tools or ()],
            "add_security_risk_prediction": bool(add_security_risk_prediction),
        })
        message = _llm.Message.model_validate(answer["message"])
        metrics = _metrics.MetricsSnapshot.model_validate(answer["metrics"])
        raw = _litellm_types.ModelResponse(id=str(answer.get("id") or "host"),
                                           model=str(answer.get("model") or self.model))
        return _llm.LLMResponse(message=message, metrics=metrics, raw_response=raw)

    def responses(self, messages: list[Any], tools: Any = None, include: Any = None,  # noqa: PLR0917 - the SDK's signature
                  store: Any = None, add_security_risk_prediction: bool = False,
                  on_token: Any = None, call_context: Any = None, **kwargs: Any) -> Any:
        return self.completion(messages, tools, add_security_risk_prediction)


_host_tools: dict[str, dict[str, Any]] = {}
_call: Any = None


class SdkAgentSession:
    """A plugin's SDK agent and its mirror of the host's conversation."""

    def __init__(self, agent_id: str, agent: Any) -> None:
        self.agent_id = agent_id
        self.agent = agent
        self.conversation: Any = None

    def _relay(self, event: Any) -> None:
        answer = _call(SESSION_METHOD, self.agent_id, "event", event.model_dump(mode="json"))
        blocked = answer.get("blocked") if isinstance(answer, dict) else None
        if blocked is not None and self.conversation is not None:
            self.conversation.state.block_action(event.id, str(blocked))

    def _append(self, events: list[Any]) -> None:
        log = self.conversation.state.events
        for data in events:
            log.append(_event.Event.model_validate(data))

    def init(self, conversation_id: str, events: list[Any]) -> dict[str, Any]:
        """Mirror the host's conversation (all its *events*) and run ``init_state``."""
        import uuid  # noqa: PLC0415

        workspace = tempfile.mkdtemp(prefix="agent-workspace-")
        self.conversation = _sdk.LocalConversation(
            agent=self.agent, workspace=workspace, persistence_dir=None,
            conversation_id=uuid.UUID(conversation_id), callbacks=[self._relay],
            visualizer=None, stuck_detection=False)
        self._append(events)
        self.conversation._ensure_agent_ready()
        return self._summary()

    def step(self, events: list[Any], status: str) -> dict[str, Any]:
        """Take the host's new *events*, then one step of the agent on the mirror."""
        if self.conversation is None:
            raise RuntimeError(f"agent {self.agent_id!r} was not initialised")
        state = self.conversation.state
        with state:
            self._append(events)
            state.execution_status = type(state.execution_status)(status)
            self.agent.step(self.conversation, on_event=self.conversation._on_event)
        return self._summary()

    def _summary(self) -> dict[str, Any]:
        state = self.conversation.state
        return {"status": state.execution_status.value, "events": len(state.events)}


def create(call: Any, agent_id: str, factory: Any, config: dict[str, Any],
           specs: list[dict[str, Any]]) -> SdkAgentSession:
    """Build the plugin's agent with a host-served LLM and the host's *specs* as tools."""
    global _call  # noqa: PLW0603 - one host connection per worker process
    _call = call
    registered = set(_tool.list_registered_tools())
    tools = []
    for spec in specs:
        key = f"host:{spec['name']}"
        _host_tools[key] = spec
        if key not in registered:
            _tool.register_tool(key, PluginAgentHostTool)
        tools.append(_tool.Tool(name=key, params={"host_tool": key, "agent_id": agent_id}))
    llm = HostServedLLM(model="host-served", usage_id=f"plugin-agent-{agent_id[-8:]}")
    llm._agent_id = agent_id
    agent = factory(llm, tools, dict(config))
    if not isinstance(agent, _sdk.AgentBase):
        raise TypeError(f"create_agent returned {type(agent).__name__}, not an "
                        "openhands.sdk AgentBase (an SDK agent is asked for)")
    return SdkAgentSession(agent_id, agent)
