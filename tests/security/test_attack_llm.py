"""A plugin's agent choosing how the host calls its model.

The worker's ``llm.complete(messages, **options)`` is served by the host's model client. Before
#15 the worker chose the client's keyword arguments: ``api_base`` and ``api_key`` would have sent
the host's key to the attacker's server. Now the host passes the messages as role and text and
only the options it lets plugins choose (``LLMLimits.options``: sampling); anything else is
refused, audited, and never reaches the model client.
"""

from __future__ import annotations

import json
import threading
from typing import TYPE_CHECKING, Any

import pytest
from helpers_build import make_wheel
from secsupport import make_store

from hostbridge import HostBridge, LLMLimits

if TYPE_CHECKING:
    from pathlib import Path

    from isolator import PluginStore

AGENT = '''\
class Asker:
    def __init__(self, llm):
        self.llm = llm

    def step(self, state):
        try:
            answer = self.llm.complete(state["messages"], **state.get("options", {}))
        except Exception as exc:
            return [{"error": f"{type(exc).__name__}: {exc}"}]
        return [{"answer": answer["content"]}]


def create_agent(llm, tools, config):
    return Asker(llm)
'''


class RecordingLLM:
    """The host's model client: records every call it gets (the key stays here)."""

    def __init__(self) -> None:
        self.calls: list[tuple[list[Any], dict[str, Any]]] = []
        self.lock = threading.Lock()
        self.api_key = "sk-host-secret"

    def complete(self, messages: list[dict[str, Any]], **options: Any) -> dict[str, Any]:
        with self.lock:
            self.calls.append((messages, options))
        return {"content": "fine", "usage": {"prompt_tokens": 1, "completion_tokens": 1}}


@pytest.fixture(scope="module")
def llm_store(sec_root: Path, attack_wheelhouse: Path, plugin_python: str) -> PluginStore:
    store = make_store(sec_root / "llm", attack_wheelhouse, plugin_python, sources=())
    links = sec_root / "llm-links"
    make_wheel(links, "asker-plugin", files={
        "asker_plugin/__init__.py": "",
        "asker_plugin/agent.py": AGENT,
        "asker_plugin/commands/c.md": "c\n",
    }, entry_points={"openhands.plugins": {"asker": "asker_plugin"},
                     "openhands.agents": {"asker": "asker_plugin.agent:create_agent"}})
    store.install("pypi:asker-plugin", find_links=[links], no_index=True)
    return store


MESSAGES = [{"role": "user", "content": "hi"}]


@pytest.mark.parametrize("options", [
    {"api_base": "http://127.0.0.1:9/steal", "api_key": "mine"},
    {"model": "attacker/expensive"},
    {"extra_headers": {"X-Forward-Key": "1"}},
    {"temperature": 0.2, "base_url": "http://127.0.0.1:9"},
])
def test_the_host_decides_what_reaches_its_model_client(llm_store: PluginStore, sec_tmp: Path,
                                                       options: dict[str, Any]) -> None:
    llm = RecordingLLM()
    with HostBridge(llm_store, llm=llm, grants={"asker": ["llm.complete"]},
                    profile="standard") as bridge:
        agent = bridge.agent("asker")
        events = agent.step({"messages": MESSAGES, "options": options}, timeout=60)
    assert llm.calls == [], llm.calls  # nothing reached the model client
    assert len(events) == 1 and "PermissionError" in events[0]["error"], events
    refused = sorted(set(options) - set(LLMLimits().options))
    assert all(name in events[0]["error"] for name in refused), events
    audit = [json.loads(line) for line in (llm_store.root / "audit.jsonl").read_text()
             .splitlines()]
    assert any(e.get("event") == "llm.call" and e.get("ok") is False for e in audit)


def test_allowed_options_and_plain_messages_pass(llm_store: PluginStore) -> None:
    llm = RecordingLLM()
    messages = [{"role": "user", "content": "hi", "api_key": "smuggled"}]
    with HostBridge(llm_store, llm=llm, grants={"asker": ["llm.complete"]},
                    profile="standard") as bridge:
        events = bridge.agent("asker").step(
            {"messages": messages, "options": {"temperature": 0.5, "stop": ["\n"]}},
            timeout=60)
    assert events == [{"answer": "fine"}]
    # Only role and content of each message, and only the allowed options.
    assert llm.calls == [([{"role": "user", "content": "hi"}],
                          {"temperature": 0.5, "stop": ["\n"]})]


def test_an_operator_may_allow_more_options(llm_store: PluginStore) -> None:
    llm = RecordingLLM()
    limits = LLMLimits(options=(*LLMLimits().options, "response_format"))
    with HostBridge(llm_store, llm=llm, llm_limits=limits, grants={"asker": ["llm.complete"]},
                    profile="standard") as bridge:
        events = bridge.agent("asker").step(
            {"messages": MESSAGES, "options": {"response_format": "json"}}, timeout=60)
    assert events == [{"answer": "fine"}]
    assert llm.calls[0][1] == {"response_format": "json"}
