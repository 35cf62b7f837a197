"""A plugin's own OpenHands SDK agent, run in its worker, driving a host conversation.

:func:`plugin_agent` gives a :class:`PluginAgent`: an SDK ``AgentBase`` that a host
``LocalConversation`` accepts like any agent. Its ``init_state`` and ``step`` run the plugin's
agent (``create_agent(llm, tools, config)`` of its ``openhands.agents`` entry point, returning an
SDK ``AgentBase``) in the plugin's sandboxed worker, on a mirror of the conversation; during a
step the worker calls back, through one session of the bridge, for:

- ``generate``: a completion by the host's ``LLM`` (``PluginAgent.llm``): the model, its key and
  its URL stay in the host; the worker sends messages and tool names, gets the message back;
- ``tool``: one of the host's tools (``PluginAgent.tools``, resolved by the host), run by the
  host with the host's conversation, its text result sent back;
- ``event``: an SDK event the agent emitted, checked and put into the host conversation (its
  hooks run there; a PreToolUse block is sent back to the agent).

Every such call runs on the thread that is waiting for the step (the one holding the
conversation's lock), never on a thread of the bridge: the conversation is only ever touched by
the thread the SDK expects. See docs/embedding.md, "Custom agents".
"""

import importlib
import queue
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from typing import Any

from hostbridge._errors import RemoteError, WorkerError
from hostbridge.agents._agents import LLMUsage, new_agent_id
from hostbridge.supervision._bridge import HostBridge

# Imported for the SDK to know them: a plugin agent's events name these classes (its tools in
# the system prompt, its actions, its observations), and the host reads them back by kind.
from hostbridge.worker.sdk_agent import (  # noqa: F401
    PluginAgentHostTool,
    PluginAgentHostToolAction,
    PluginAgentHostToolObservation,
)

_sdk: Any = importlib.import_module("openhands.sdk")
_event: Any = importlib.import_module("openhands.sdk.event")
_llm: Any = importlib.import_module("openhands.sdk.llm")
_builtins: Any = importlib.import_module("openhands.sdk.tool.builtins")
_pydantic: Any = importlib.import_module("pydantic")
Field: Any = _pydantic.Field
PrivateAttr: Any = _pydantic.PrivateAttr

EVENT_KINDS = frozenset({
    "SystemPromptEvent", "MessageEvent", "ActionEvent", "ObservationEvent", "AgentErrorEvent",
    "UserRejectObservation", "CondensationRequest", "Condensation", "TokenEvent",
})
"""The SDK events a plugin's agent may put into the host conversation: what an agent emits.
Not the conversation's own (state updates, pauses, errors of the conversation, hook runs)."""


class _Pump:
    """The worker's session calls, run on the thread that waits for the worker's answer."""

    def __init__(self) -> None:
        self.calls: queue.SimpleQueue[tuple[Callable[..., Any], tuple[Any, ...],
                                            Future[Any]] | None] = queue.SimpleQueue()
        self.active = False

    def run(self, function: Callable[..., Any], *args: Any) -> Any:
        """Called by the bridge's thread: hand over, wait for the answer."""
        if not self.active:
            raise PermissionError("the plugin's agent is not being stepped now")
        done: Future[Any] = Future()
        self.calls.put((function, args, done))
        return done.result()

    def wait(self, start: Callable[[], Future[Any]], timeout: float | None) -> Any:
        """Start the worker's step (*start*), serve its calls until it is done; its result."""
        self.active = True  # before the request is sent: its first call may come at once
        try:
            future = start()
            future.add_done_callback(lambda _: self.calls.put(None))
            while True:
                item = self.calls.get(timeout=timeout)
                if item is None:
                    break
                function, args, done = item
                try:
                    done.set_result(function(*args))
                except BaseException as exc:  # sent back to the worker as an error
                    done.set_exception(exc)
        finally:
            self.active = False
            while True:  # the worker is gone or done: nobody waits for the rest
                try:
                    item = self.calls.get_nowait()
                except queue.Empty:
                    break
                if item is not None:
                    item[2].set_exception(WorkerError("plugin agent", "the step ended"))
        return future.result()


class PluginAgent(_sdk.AgentBase):  # type: ignore[misc]
    """A plugin's SDK agent, run in its worker (see the module's docstring)."""

    plugin: str = Field(description="The plugin whose create_agent builds the agent.")
    config: dict[str, Any] = Field(default_factory=dict,
                                   description="What the plugin's create_agent gets as config.")
    _bridge: Any = PrivateAttr(default=None)
    _timeout: float | None = PrivateAttr(default=None)
    _remote: tuple[Any, str] | None = PrivateAttr(default=None)
    _known: set[str] = PrivateAttr(default_factory=set)  # event ids the worker's mirror has
    _conversation: Any = PrivateAttr(default=None)
    _on_event: Any = PrivateAttr(default=None)
    _pump: _Pump = PrivateAttr(default_factory=_Pump)

    # ---- the SDK's agent interface -----------------------------------------------------------

    def init_state(self, state: Any, on_event: Any) -> None:
        self._initialize(state)
        worker, agent_id = self._ensure_remote()
        events = [event.model_dump(mode="json") for event in state.events]
        self._known = {event.id for event in state.events}
        self._drive(worker, "agent.sdk_init", [agent_id, str(state.id), events],
                    conversation=None, state=state, on_event=on_event)

    def step(self, conversation: Any, on_event: Any, on_token: Any = None) -> None:
        state = conversation.state
        worker, agent_id = self._ensure_remote()
        new = [event for event in state.events if event.id not in self._known]
        self._known.update(event.id for event in new)
        result = self._drive(worker, "agent.sdk_step",
                             [agent_id, [event.model_dump(mode="json") for event in new],
                              state.execution_status.value],
                             conversation=conversation, state=state, on_event=on_event)
        status = type(state.execution_status)(result["status"])
        if status != state.execution_status:
            state.execution_status = status

    # ---- the worker ----------------------------------------------------------------------------

    def _ensure_remote(self) -> tuple[Any, str]:
        """The worker's agent, created (and its mirror filled) again after a worker restart."""
        bridge = self._bridge
        if bridge is None:
            raise WorkerError(f"plugin agent {self.plugin!r}", "is not bound to a HostBridge: "
                              "make it with hostbridge.openhands.plugin_agent(bridge, ...)")
        worker = bridge.worker(self.plugin)
        if self._remote is not None and self._remote[0] is worker:
            return self._remote
        ref, _defaults = bridge.agent_entry(self.plugin)
        agent_id = new_agent_id()
        specs = [_tool_spec(tool) for tool in self.tools_map.values()
                 if type(tool).__name__ not in _builtins.BUILT_IN_TOOL_CLASSES]
        try:
            worker.request("agent.create", agent_id, ref, dict(self.config), specs, "sdk",
                           timeout=self._timeout)
        except RemoteError as exc:
            raise WorkerError(f"agent of plugin {self.plugin!r}",
                              f"create_agent failed: {exc.message}") from None
        if self._remote is not None and self._conversation is not None:
            # A new worker (the last one died): its mirror gets the whole conversation.
            state = self._conversation.state
            self._known = {event.id for event in state.events}
            self._remote = (worker, agent_id)
            self._drive(worker, "agent.sdk_init",
                        [agent_id, str(state.id),
                         [event.model_dump(mode="json") for event in state.events]],
                        conversation=self._conversation, state=state, on_event=self._on_event)
        self._remote = (worker, agent_id)
        return self._remote

    def _drive(self, worker: Any, method: str, params: list[Any], *, conversation: Any,
               state: Any, on_event: Any) -> Any:
        """Send *method*, serving the worker's session calls here until it answers."""
        agent_id = params[0]
        if conversation is not None:
            self._conversation = conversation
            self._on_event = on_event
        session = _Session(self, state, conversation, on_event)
        close = self._bridge.open_session(self.plugin, agent_id,
                                          lambda op, *args: self._pump.run(session.serve,
                                                                           op, *args))
        try:
            return self._pump.wait(lambda: worker.submit(method, *params), self._timeout)
        except RemoteError as exc:
            raise WorkerError(f"agent of plugin {self.plugin!r}", exc.message) from None
        except queue.Empty:
            worker.kill(f"killed: the agent's step passed its deadline of {self._timeout} s")
            raise WorkerError(f"agent of plugin {self.plugin!r}",
                              f"the step passed its deadline of {self._timeout} s") from None
        finally:
            close()


class _Session:
    """What the worker may ask during one init or step (on the stepping thread)."""

    def __init__(self, agent: PluginAgent, state: Any, conversation: Any,
                 on_event: Callable[[Any], None]) -> None:
        self.agent = agent
        self.state = state
        self.conversation = conversation
        self.on_event = on_event

    def serve(self, op: str, *args: Any) -> Any:
        if op == "event":
            return self.event(args[0] if args else None)
        if op == "generate":
            return self.generate(args[0] if args else None)
        if op == "tool":
            return self.tool(str(args[0]) if args else "", args[1] if len(args) > 1 else {})
        raise LookupError(f"unknown plugin agent call {op!r}")

    def event(self, data: object) -> dict[str, Any]:
        plugin = self.agent.plugin
        if not isinstance(data, dict) or data.get("kind") not in EVENT_KINDS:
            kind = data.get("kind") if isinstance(data, dict) else type(data).__name__
            raise PermissionError(f"plugin {plugin!r}: its agent may not emit {kind!r} events "
                                  f"(it may emit {', '.join(sorted(EVENT_KINDS))})")
        event = _event.Event.model_validate(data)
        if event.id in self.agent._known:
            raise PermissionError(f"plugin {plugin!r}: its agent emitted event {event.id!r} "
                                  "again (an event id is the conversation's once)")
        self.agent._known.add(event.id)
        self.on_event(event)
        blocked = None
        if type(event).__name__ == "ActionEvent":
            blocked = self.state.pop_blocked_action(event.id)
        return {"blocked": blocked}

    def generate(self, request: object) -> dict[str, Any]:
        if not isinstance(request, dict) or not isinstance(request.get("messages"), list):
            raise PermissionError(f"plugin {self.agent.plugin!r}: a completion request is "
                                  "{'messages': [...], 'tools': [...]}")
        messages = [_llm.Message.model_validate(m) for m in request["messages"]]
        tools_map = self.agent.tools_map
        names = [str(name) for name in request.get("tools") or ()]
        unknown = [name for name in names if name not in tools_map]
        if unknown:
            raise LookupError(f"plugin {self.agent.plugin!r}: its agent asked for tools the "
                              f"host does not have: {', '.join(unknown)} (it has "
                              f"{', '.join(sorted(tools_map))})")
        kwargs: dict[str, Any] = {}
        if self.conversation is not None:
            kwargs["call_context"] = self.conversation.get_llm_call_context()
        # Counted and capped as every model call of a plugin (HostBridge.llm_limits), audited.
        bridge, plugin, llm = self.agent._bridge, self.agent.plugin, self.agent.llm
        usage = bridge.llm_usage.setdefault(plugin, LLMUsage())
        usage.take(plugin, bridge.llm_limits)
        before = _tokens(llm)
        try:
            response = llm.generate(
                messages=messages, tools=[tools_map[name] for name in names],
                add_security_risk_prediction=bool(request.get("add_security_risk_prediction")),
                **kwargs)
        except Exception as exc:
            bridge.store.policy.audit("llm.call", plugin=plugin, agent="sdk", ok=False,
                                      error=str(exc))
            raise
        after = _tokens(llm)
        usage.add(after[0] - before[0], after[1] - before[1])
        bridge.store.policy.audit("llm.call", plugin=plugin, agent="sdk", ok=True,
                                  model=str(llm.model), usage={
                                      "prompt_tokens": after[0] - before[0],
                                      "completion_tokens": after[1] - before[1]})
        return {"message": response.message.model_dump(mode="json"),
                "metrics": response.metrics.model_dump(mode="json"),
                "id": str(response.id), "model": str(self.agent.llm.model)}

    def tool(self, name: str, arguments: object) -> dict[str, Any]:
        tools_map = self.agent.tools_map
        tool = tools_map.get(name)
        if tool is None or type(tool).__name__ in _builtins.BUILT_IN_TOOL_CLASSES:
            raise LookupError(f"plugin {self.agent.plugin!r}: no host tool {name!r}")
        if not isinstance(arguments, dict):
            return {"text": f"invalid arguments for {name}: expected an object", "is_error": True}
        try:
            action = tool.action_from_arguments(dict(arguments))
            observation = tool(action, self.conversation)
        except Exception as exc:  # the tool's failure is the agent's observation
            return {"text": f"{type(exc).__name__}: {exc}", "is_error": True}
        text = "".join(getattr(part, "text", "") for part in observation.to_llm_content)
        return {"text": text, "is_error": bool(getattr(observation, "is_error", False))}


def _tokens(llm: Any) -> tuple[int, int]:
    """The prompt and completion tokens *llm* has counted so far."""
    usage = getattr(getattr(llm, "metrics", None), "accumulated_token_usage", None)
    if usage is None:
        return 0, 0
    return int(usage.prompt_tokens or 0), int(usage.completion_tokens or 0)


def _tool_spec(tool: Any) -> dict[str, Any]:
    function = tool.to_openai_tool(add_security_risk_prediction=False)["function"]
    return {"name": tool.name, "description": str(function.get("description") or ""),
            "input_schema": dict(function.get("parameters") or {})}


def plugin_agent(bridge: HostBridge, plugin: str, *, llm: Any,
                 tools: Sequence[Any] = (), config: Mapping[str, Any] | None = None,
                 timeout: float | None = None, **fields: Any) -> PluginAgent:
    """*plugin*'s own SDK agent as a host agent: pass it to ``Conversation(agent=...)``.

    *llm* is the host's model (it makes every completion; the worker never sees it), *tools*
    the host's tool specs the agent may use (run by the host), *config* what ``create_agent``
    gets (default: the manifest's ``parameters``). *timeout*: how long a step may go without a
    word from the worker (then it is stopped). The plugin must be
    installed and declare an ``openhands.agents`` entry point; its venv must hold
    ``openhands-sdk``. Other *fields* are the SDK's ``AgentBase`` fields (``agent_context``,
    ``mcp_config``, ...), as :func:`attach` sets them."""
    _ref, defaults = bridge.agent_entry(plugin)  # unknown plugin or no agent: raises here
    agent = PluginAgent(plugin=plugin, config=dict(defaults if config is None else config),
                        llm=llm, tools=list(tools), **fields)
    agent._bridge = bridge
    agent._timeout = timeout
    return agent
