"""One plugin acting on another through the host: messages bound to the worker that sent them.

attack                                              what stops it
--------------------------------------------------  --------------------------------------------
forged ``agent.event`` notifications for another    an id is looked up among the sending worker's
  plugin's agent (ids were a global counter:           own agents only; ids are 128 random bits
  ``agent-1``, ``agent-2``...)
the same, with the victim's real id (leaked)         the same: the id is not the sender's

Components taking over another's capability: tests/test_registry.py. Plugins reading or writing
each other's files: test_attack_filesystem.py.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import msgpack
import pytest
from helpers_build import make_wheel
from secsupport import Bystander, attack, make_store, open_bridge

if TYPE_CHECKING:
    from pathlib import Path

    from isolator import PluginStore

VICTIM_AGENT = '''\
import time


class Slow:
    def step(self, state):
        time.sleep(float(state.get("seconds", 2.0)))
        return [{"type": "message", "text": "from the victim"}]


def create_agent(llm, tools, config):
    return Slow()
'''


@pytest.fixture(scope="module")
def victim_store(sec_root: Path, attack_wheelhouse: Path, plugin_python: str) -> PluginStore:
    store = make_store(sec_root / "crossplugin", attack_wheelhouse, plugin_python)
    links = sec_root / "crossplugin-links"
    make_wheel(links, "victim-plugin", files={
        "victim_plugin/__init__.py": "",
        "victim_plugin/agent.py": VICTIM_AGENT,
        "victim_plugin/commands/c.md": "c\n",
    }, entry_points={"openhands.plugins": {"victim": "victim_plugin"},
                     "openhands.agents": {"victim": "victim_plugin.agent:create_agent"}})
    store.install("pypi:victim-plugin", find_links=[links], no_index=True)
    return store


def _forge(bridge: Any, agent_id: str) -> None:
    frame = msgpack.packb([2, "agent.event", [agent_id, {"type": "message", "forged": True}]])
    attack(bridge, "send_raw", data_hex=frame.hex(), then_sleep=0)


@pytest.mark.parametrize("profile", ["off", "standard", "strict"])
def test_a_plugin_cannot_inject_events_into_another_plugins_agent(victim_store: PluginStore,
                                                                 profile: str) -> None:
    with open_bridge(victim_store, profile) as bridge:
        bystander = Bystander.start(bridge)
        agent = bridge.agent("victim")
        assert agent.agent_id not in {f"agent-{n}" for n in range(1, 1000)}
        seen: list[Any] = []
        stepping = threading.Thread(target=lambda: seen.extend(
            agent.step({"seconds": 2.0}, on_event=seen.append, timeout=60)))
        stepping.start()
        try:
            # Guesses at a counter's ids, then the victim's real id, as if it had leaked.
            for guess in [*(f"agent-{n}" for n in range(1, 6)), agent.agent_id]:
                _forge(bridge, guess)
        finally:
            stepping.join(timeout=60)
        assert not stepping.is_alive()
        assert [e for e in seen if isinstance(e, dict) and e.get("forged")] == [], seen
        assert {"type": "message", "text": "from the victim"} in seen
        assert attack(bridge, "ok", text="still serving") == "still serving"
        bystander.check()
