"""The echo agent: one step asks the model (served by the host) and reports what it said.

``step(state)`` takes JSON-like state (``{"messages": [{"role", "content"}]}``) and yields
events as it goes; the host receives each one as it happens.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .tools import word_count

if TYPE_CHECKING:
    from collections.abc import Iterator


class EchoAgent:
    def __init__(self, llm: Any, tools: list[Any], config: dict[str, Any]) -> None:
        self.llm = llm
        self.tools = {tool.name: tool for tool in tools}
        self.greeting = str(config.get("greeting", "Hello"))

    def step(self, state: dict[str, Any]) -> Iterator[dict[str, Any]]:
        messages = list(state.get("messages", []))
        yield {"type": "status", "text": self.greeting}
        answer = self.llm.complete(messages)
        yield {"type": "message", "role": "assistant", "content": answer["content"]}
        yield {"type": "observation", "tool": "word_count",
               "result": word_count(answer["content"])}
        if "clock" in self.tools:
            yield {"type": "observation", "tool": "clock", "result": self.tools["clock"]()}


def create_agent(llm: Any, tools: list[Any], config: dict[str, Any]) -> EchoAgent:
    """The plugin's agent factory (``openhands.agents``)."""
    return EchoAgent(llm, tools, config)
