"""A plugin's stdio MCP server started by the real OpenHands SDK through the sandbox launcher
(#17, deliverable 3): ``attach`` rewrites the server's command to ``program_command``'s; the
SDK starts it when the conversation starts, lists its tools and calls one for the agent.

The server is a plain stdio JSON-RPC program with no dependencies (tests/data/mcp_probe.py),
installed as plugin content; it reports who runs it and what it can reach.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import oracle
import pytest
from helpers_build import make_wheel

pytestmark = [pytest.mark.corpus, pytest.mark.slow]

SERVER = Path(__file__).parent / "data" / "mcp_probe.py"

_SCRIPT = r'''
import json, sys, time
from openhands.sdk import Agent, Conversation
from openhands.sdk.llm import Message, MessageToolCall, TextContent
from openhands.sdk.testing import TestLLM
from hostbridge import HostBridge
from hostbridge.openhands import attach
from isolator import PluginSource, PluginStore

cfg = json.loads(sys.argv[1])
out = {}


def call(n, name, args):
    return Message(role="assistant", content=[TextContent(text="")], tool_calls=[
        MessageToolCall(id=f"call_{n}", name=name, arguments=json.dumps(args),
                        origin="completion")])


store = PluginStore(cfg["store"])
llm = TestLLM.from_messages([call(0, "whoami", {}), call(1, "finish", {"message": "done"})])
with HostBridge(store) as bridge:
    agent, hooks = attach(bridge, [PluginSource("pypi:oh-mcp", find_links=(cfg["links"],),
                                                no_index=True)], Agent(llm=llm, tools=[]))
    server = agent.mcp_config["probe"]
    out["server"] = {"command": server.command, "args": server.args, "env": server.env}
    conv = Conversation(agent=agent, hook_config=hooks, workspace=cfg["workspace"],
                        visualizer=None)
    t = time.monotonic()
    conv.send_message("who runs the MCP server?")  # the SDK starts the server here
    out["start_seconds"] = time.monotonic() - t
    out["tools"] = sorted(conv.agent.tools_map)
    conv.run()
    out["status"] = conv.state.execution_status.value
    out["events"] = [event.model_dump(mode="json") for event in conv.state.events]
    out["content_dir"] = str(store.get("oh-mcp").content_dir)
print(json.dumps(out))
'''


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    shared = oracle.require_shared()
    try:
        python = oracle.sdk_python(shared)
    except oracle.OracleError as exc:
        pytest.fail(f"the SDK venv could not be built:\n{exc}", pytrace=False)
    root = tmp_path_factory.mktemp("mcp")
    store = root / "store"
    make_wheel(root / "links", "oh-mcp", "1.0.0", files={
        "oh_mcp/__init__.py": "",
        "oh_mcp/server.py": SERVER.read_text(encoding="utf-8"),
        "oh_mcp/.mcp.json": json.dumps({"mcpServers": {"probe": {
            "command": "python", "args": ["${CLAUDE_PLUGIN_ROOT}/server.py"],
            "env": {"MCP_SECRET": "s3cret-value", "PROBE_STORE": str(store)}}}}),
    }, entry_points={"openhands.plugins": {"oh-mcp": "oh_mcp"}})
    (root / "workspace").mkdir()
    cfg = {"store": str(store), "links": str(root / "links"),
           "workspace": str(root / "workspace")}
    proc = subprocess.run([str(python), "-I", "-c", _SCRIPT, json.dumps(cfg)],
                          env=oracle.oracle_env(), capture_output=True, text=True,
                          timeout=300, check=False, cwd=cfg["workspace"])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def test_the_sdk_starts_the_server_through_the_launcher(run: dict[str, Any]) -> None:
    server = run["server"]
    assert server["command"] == "/usr/bin/env" and server["args"][:2] == ["-i", "-C"]
    # The plugin's own variables are not on the command line the SDK logs and persists.
    assert "s3cret-value" not in json.dumps(server)
    assert not server["env"]
    assert "whoami" in run["tools"], run["tools"]


def test_the_agent_calls_the_sandboxed_server(run: dict[str, Any]) -> None:
    assert run["status"] == "finished"
    observed = [event for event in run["events"] if event["kind"] == "ObservationEvent"
                and event["tool_name"] == "whoami"]
    assert len(observed) == 1, [e["kind"] for e in run["events"]]
    text = "".join(part.get("text", "") for part in observed[0]["observation"]["content"])
    facts = dict(item.split("=", 1) for item in text.split() if "=" in item)
    assert "uid" in facts, text
    assert facts["root"] == run["content_dir"]
    assert facts["secret"] == "s3cret-value"  # the plugin's env reached the program only
    assert facts["store"] == "denied"
    assert facts["seccomp"] == "2"
    assert facts["uid"] != "0"
