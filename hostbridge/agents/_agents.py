"""Plugin agents in workers, their model calls served by the host.

``create_agent(llm, tools, config)`` runs in the plugin's worker. Its ``llm`` is a proxy: each
``llm.complete(messages)`` is a call to the host's ``llm.complete`` capability, which the
host serves with its own model object; the model's credentials never leave the host. Its
``tools`` are proxies of :class:`HostTool` objects the host grants. The host accounts every
model call per plugin (:class:`LLMUsage`), can cap them (:class:`LLMLimits`) and logs each.
"""

from __future__ import annotations

import logging
import secrets
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from hostbridge._errors import WorkerError

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence


log = logging.getLogger("hostbridge.llm")


class LLM(Protocol):
    """What the host's model object offers: one completion for a list of messages."""

    def complete(self, messages: list[dict[str, Any]], **options: Any) -> dict[str, Any]:
        """``{"content": str, "usage": {"prompt_tokens": n, "completion_tokens": n}}``."""


class EchoLLM:
    """A deterministic local model (for ``ohp agent`` and tests): answers with the last user
    message, reversed words and all, and counts tokens as words."""

    def __init__(self, api_key: str | None = None) -> None:
        self.api_key = api_key  # held here, in the host, only

    def complete(self, messages: list[dict[str, Any]], **options: Any) -> dict[str, Any]:
        last = next((str(m.get("content", "")) for m in reversed(messages)
                     if isinstance(m, dict) and m.get("role") == "user"), "")
        reply = f"echo: {last}"
        return {"content": reply, "model": "echo",
                "usage": {"prompt_tokens": sum(len(str(m.get("content", "")).split())
                                               for m in messages if isinstance(m, dict)),
                          "completion_tokens": len(reply.split())}}


class LLMLimitError(WorkerError):
    """A plugin used up the model calls or tokens the host allows it."""


LLM_OPTIONS = ("temperature", "top_p", "max_tokens", "stop", "seed", "presence_penalty",
               "frequency_penalty")
"""The options of a completion a plugin may choose by default: sampling, never where the call
goes or with which credentials (``api_key``, ``api_base``, ``model``, ``extra_headers``, ...)."""


@dataclass(frozen=True)
class LLMLimits:
    """Caps on a plugin's model use, per host bridge, and the completion options a plugin may
    choose (*options*: the rest are the host's; asking for another is refused)."""

    max_calls: int | None = None
    max_tokens: int | None = None
    options: tuple[str, ...] = LLM_OPTIONS


@dataclass
class LLMUsage:
    """What one plugin's agents asked of the model."""

    calls: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    refused: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def to_dict(self) -> dict[str, int]:
        return {"calls": self.calls, "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens, "refused": self.refused}

    def take(self, plugin: str, limits: LLMLimits) -> None:
        """Count one model call of *plugin*, or raise :class:`LLMLimitError` when its calls or
        tokens are used up (counted as refused)."""
        with self.lock:
            if (limits.max_calls is not None and self.calls >= limits.max_calls) or \
                    (limits.max_tokens is not None and self.tokens >= limits.max_tokens):
                self.refused += 1
                raise LLMLimitError(f"plugin {plugin!r}", f"model use is capped (calls "
                                    f"{self.calls}/{limits.max_calls}, tokens "
                                    f"{self.tokens}/{limits.max_tokens})")
            self.calls += 1

    def add(self, prompt_tokens: int, completion_tokens: int) -> None:
        """Count the tokens of a call."""
        with self.lock:
            self.prompt_tokens += max(0, int(prompt_tokens or 0))
            self.completion_tokens += max(0, int(completion_tokens or 0))


def llm_capability(plugin: str, llm: LLM, usage: LLMUsage,
                   limits: LLMLimits) -> Callable[..., dict[str, Any]]:
    """The ``llm.complete`` capability for *plugin*: counted, capped, logged."""

    allowed = frozenset(limits.options)

    def complete(messages: list[dict[str, Any]], options: dict[str, Any] | None = None) \
            -> dict[str, Any]:
        # The host decides what reaches its model client: the messages as role and text, and
        # only the options it lets plugins choose (never api_key, api_base, model, headers).
        checked_messages = _checked_messages(plugin, messages)
        checked_options = _checked_options(plugin, options, allowed)
        usage.take(plugin, limits)
        answer = llm.complete(checked_messages, **checked_options)
        counted = answer.get("usage") or {}
        usage.add(counted.get("prompt_tokens", 0), counted.get("completion_tokens", 0))
        log.info("plugin %s: model call %d (%s tokens in, %s out)", plugin, usage.calls,
                 counted.get("prompt_tokens", "?"), counted.get("completion_tokens", "?"))
        return {"content": answer.get("content", ""), "model": answer.get("model"),
                "usage": counted}

    return complete


_OPTION_VALUES = (str, int, float, bool, type(None))


def _checked_options(plugin: str, options: object,
                     allowed: frozenset[str]) -> dict[str, Any]:
    if options is None:
        return {}
    if not isinstance(options, dict):
        raise PermissionError(f"plugin {plugin!r}: model options must be a mapping, not "
                              f"{type(options).__name__}")
    refused = sorted(str(key) for key in options if key not in allowed)
    if refused:
        raise PermissionError(f"plugin {plugin!r} may not choose the model option(s) "
                              f"{', '.join(refused)}: the host decides them (a plugin may "
                              f"choose {', '.join(sorted(allowed)) or 'none'})")
    for key, value in options.items():
        ok = isinstance(value, _OPTION_VALUES) or (
            isinstance(value, list) and all(isinstance(item, str) for item in value))
        if not ok:
            raise PermissionError(f"plugin {plugin!r}: model option {key} must be a number, "
                                  "text, a list of texts or null")
    return dict(options)


def _checked_messages(plugin: str, messages: object) -> list[dict[str, Any]]:
    if not isinstance(messages, list):
        raise PermissionError(f"plugin {plugin!r}: messages must be a list, not "
                              f"{type(messages).__name__}")
    checked = []
    for index, message in enumerate(messages):
        if not isinstance(message, dict) or not isinstance(message.get("role"), str) or \
                not isinstance(message.get("content", ""), (str, list)):
            raise PermissionError(f"plugin {plugin!r}: message {index} must be "
                                  "{'role': str, 'content': str}")
        checked.append({"role": message["role"], "content": message.get("content", "")})
    return checked


@dataclass(frozen=True)
class HostTool:
    """A tool of the host that it grants to plugin agents (called from the worker)."""

    name: str
    description: str
    input_schema: dict[str, Any]
    function: Callable[..., Any]

    def spec(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description,
                "input_schema": self.input_schema}


def tool_capability(tools: Sequence[HostTool]) -> Callable[..., Any]:
    """The ``tool.call`` capability: run a granted host tool by name."""
    by_name = {tool.name: tool for tool in tools}

    def call(name: str, arguments: Mapping[str, Any] | None = None) -> Any:
        tool = by_name.get(name)
        if tool is None:
            raise LookupError(f"host tool {name!r} is not granted")
        return tool.function(**dict(arguments or {}))

    return call


class Requester(Protocol):
    """What an agent needs of its worker: a call that waits for its result (a
    :class:`hostbridge.Worker`; structural, so that agents sit below the supervision)."""

    def request(self, method: str, *params: object, timeout: float | None = None) -> Any: ...


class RemoteAgent:
    """An agent built by a plugin's ``create_agent`` in its worker; steps run there."""

    def __init__(self, worker: Requester, plugin: str, agent_id: str, kind: str) -> None:
        self.worker = worker
        self.plugin = plugin
        self.agent_id = agent_id
        self.kind = kind
        self._listeners: list[Callable[[dict[str, Any]], None]] = []

    def __repr__(self) -> str:
        return f"<RemoteAgent {self.kind} of plugin {self.plugin!r}>"

    def step(self, state: Mapping[str, Any], *,
             on_event: Callable[[dict[str, Any]], None] | None = None,
             timeout: float | None = None) -> list[Any]:
        """Run one step with *state*; *on_event* sees each event as the worker sends it.
        Returns the step's events."""
        if on_event is not None:
            self._listeners.append(on_event)
        try:
            return list(self.worker.request("agent.step", self.agent_id, dict(state),
                                            timeout=timeout))
        finally:
            if on_event is not None:
                self._listeners.remove(on_event)

    def _event(self, event: Any) -> None:
        for listener in list(self._listeners):
            listener(event)


def new_agent_id() -> str:
    """A fresh agent id: unguessable (128 random bits), so no id names another worker's
    agent, and in any case an id is only looked up among its own worker's agents."""
    return f"agent-{secrets.token_hex(16)}"
