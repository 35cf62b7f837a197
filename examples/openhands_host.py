"""An agent host on the OpenHands SDK whose plugins come from an isolator store.

Run it in a Python >= 3.12 venv holding the SDK and this project (from a clone:
``python3.12 -m venv v && v/bin/pip install -e '.[openhands]'``)::

    v/bin/ohp demo --keep        # builds the example plugins' wheels: ROOT/wheelhouse
    v/bin/python examples/openhands_host.py --find-links ROOT/wheelhouse [--store DIR]

It installs the example plugins ``shout`` and ``greetings`` into the store from those wheels
(offline; a real host would install ``pypi:NAME`` or a git source), joins them to an SDK
``Agent`` with ``attach`` (skills, commands, MCP config, hooks, and shout's worker tool as the SDK
tool ``shout__shout``), and runs a conversation. With ``LLM_MODEL`` (and ``LLM_API_KEY``) in the
environment a real model drives it; without, the SDK's ``TestLLM`` plays a scripted model that
calls the tool and finishes, so the example runs offline. The tool runs in shout's own venv, in a
sandboxed worker; the greetings plugin's hook runs sandboxed too.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile

from openhands.sdk import LLM, Agent, Conversation
from openhands.sdk.llm import Message, MessageToolCall, TextContent
from openhands.sdk.testing import TestLLM

from hostbridge import HostBridge
from hostbridge.openhands import attach
from isolator import PluginSource, PluginStore


def model() -> LLM:
    """A real model from the environment, or a scripted one: shout, then finish."""
    if os.environ.get("LLM_MODEL"):
        return LLM(model=os.environ["LLM_MODEL"], api_key=os.environ.get("LLM_API_KEY"))

    def call(n: int, name: str, arguments: dict[str, str]) -> Message:
        return Message(role="assistant", content=[TextContent(text="")], tool_calls=[
            MessageToolCall(id=f"call_{n}", name=name, arguments=json.dumps(arguments),
                            origin="completion")])

    return TestLLM.from_messages([call(0, "shout__shout", {"text": "hello from the host"}),
                                  call(1, "finish", {"message": "Shouted."})])


def sources(find_links: str) -> list[PluginSource]:
    return [PluginSource(f"pypi:openhands-plugin-{name}", find_links=(find_links,),
                         no_index=True) for name in ("shout", "greetings")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--store", default=None, help="the store (default: a new temporary one)")
    parser.add_argument("--find-links", required=True,
                        help="a directory of the example plugins' wheels (ohp demo --keep)")
    args = parser.parse_args()
    root = args.store
    if root is None:  # a new store; the sandbox's uid 65534 must be able to enter it
        root = tempfile.mkdtemp(prefix="ohp-host-")
        os.chmod(root, 0o755)
    store = PluginStore(root)
    workspace = tempfile.mkdtemp(prefix="ohp-host-workspace-")
    with HostBridge(store) as bridge:
        # Sources are installed first (each into its own venv); installed names are used as is.
        agent, hooks = attach(bridge, sources(args.find_links), Agent(llm=model(), tools=[]))
        print("skills:", sorted(skill.name for skill in agent.agent_context.skills))
        print("tools:", [spec.name for spec in agent.tools])
        conversation = Conversation(agent=agent, hook_config=hooks, workspace=workspace,
                                    visualizer=None)
        conversation.send_message("Shout a greeting with the shout tool, then finish.")
        conversation.run()
        for event in conversation.state.events:
            kind = type(event).__name__
            if kind == "ObservationEvent":
                text = "".join(getattr(c, "text", "") for c in event.observation.to_llm_content)
                print(f"{kind}: {event.tool_name} -> {text}")
            elif kind == "HookExecutionEvent":
                print(f"{kind}: {event.hook_event_type} ok={event.success}")
            else:
                print(kind)
        print("status:", conversation.state.execution_status.value)


if __name__ == "__main__":
    main()
