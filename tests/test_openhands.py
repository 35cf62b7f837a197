"""hostbridge.openhands against the real openhands-sdk: plugins attached to an SDK ``Agent``,
a ``LocalConversation`` driven by the SDK's ``TestLLM`` calling worker tools, then resumed.

The SDK needs Python >= 3.12, so each scenario runs as a script in a copy of the oracle venv
with this project installed (``oracle.sdk_python``, built once and cached); the script prints
what the test asserts on as JSON. Needs ../shared (skipped without it, a failure under CI=true).
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

# A plugin whose tools add, raise, sleep, crash their worker and take a `summary` argument.
_PROBE_TOOLS = '''
import os
import time


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def boom() -> str:
    """Raise an error."""
    raise RuntimeError("boom")


def slow(seconds: float) -> str:
    """Sleep for *seconds*."""
    time.sleep(seconds)
    return "woke"


def crash() -> str:
    """Kill the worker."""
    os._exit(3)


def note(summary: str) -> str:
    """Note a summary."""
    return f"noted: {summary}"
'''

_SCRIPT = r'''
import json, shutil, sys, time, uuid
started = time.monotonic()
from openhands.sdk import Agent, Conversation
from openhands.sdk.llm import Message, MessageToolCall, TextContent
from openhands.sdk.testing import TestLLM
from openhands.sdk.hooks import HookConfig
from openhands.sdk.tool.registry import resolve_tool
from hostbridge import HostBridge
from hostbridge.openhands import AttachError, attach
from isolator import PluginSource, PluginStore

cfg = json.loads(sys.argv[1])
out = {"timings": {"import": time.monotonic() - started}}


def call(n, name, args):
    return Message(role="assistant", content=[TextContent(text="")], tool_calls=[
        MessageToolCall(id=f"call_{cfg['phase']}_{n}", name=name, arguments=json.dumps(args),
                        origin="completion")])


def source(package, links):
    return PluginSource(f"pypi:{package}", find_links=tuple(links), no_index=True)


def converse(agent, hooks, script, conversation_id=None):
    llm = TestLLM.from_messages([call(n, name, args) for n, (name, args) in enumerate(script)])
    # MCP servers would start on the host, unsandboxed, until they go through the launcher
    # (#17, deliverable 3): the merged config is checked before it is dropped here.
    agent = agent.model_copy(update={"llm": llm, "mcp_config": {}})
    t = time.monotonic()
    conv = Conversation(agent=agent, hook_config=hooks, workspace=cfg["workspace"],
                        persistence_dir=cfg["persistence"], visualizer=None,
                        conversation_id=conversation_id)
    conv.send_message("Shout hi, then try the probe's tools")
    conv.run()
    out["timings"]["conversation"] = time.monotonic() - t
    out["status"] = conv.state.execution_status.value
    out["conversation_id"] = str(conv.id)
    out["events"] = [event.model_dump(mode="json") for event in conv.state.events]
    out["llm_tools"] = {name: tool.to_openai_tool(add_security_risk_prediction=True)
                        for name, tool in conv.agent.tools_map.items() if "__" in name}


store = PluginStore(cfg["store"])
links = [cfg["wheelhouse"], cfg["links"]]
base = Agent(llm=TestLLM.from_messages([]), tools=[])
with HostBridge(store) as bridge:
    if cfg["phase"] == "run":
        store.install(source("openhands-plugin-shout", links))   # installed beforehand
        t = time.monotonic()
        # greetings and oh-probe are sources: attach installs them
        agent, hooks = attach(bridge, ["shout", source("openhands-plugin-greetings", links)],
                              base)
        agent, more_hooks = attach(bridge, [source("oh-probe", links),
                                            source("oh-listed", links)], agent, timeout=1.5)
        out["timings"]["attach"] = time.monotonic() - t
        out["base_untouched"] = (base.tools == [] and base.agent_context is None
                                 and not base.mcp_config)
        out["tool_specs"] = [spec.model_dump(mode="json") for spec in agent.tools]
        out["skills"] = sorted(skill.name for skill in agent.agent_context.skills)
        out["mcp"] = sorted(agent.mcp_config)
        out["hooks"] = hooks.model_dump(mode="json", exclude_defaults=True)
        out["more_hooks"] = more_hooks.model_dump(mode="json", exclude_defaults=True)
        out["mcp_servers"] = {key: server.model_dump(mode="json")
                              for key, server in agent.mcp_config.items()}
        out["probe_root"] = str(store.get("oh-probe").content_dir)
        hooks = HookConfig.merge([hooks, more_hooks])

        errors = {}
        store.install(source("openhands-plugin-whisper", links))
        shutil.rmtree(store.get("whisper").content_dir)   # content the SDK cannot load
        for label, plugins in [("unknown", ["nope"]), ("taken", ["shout"]),
                               ("unloadable", ["oh-probe", "whisper"]),
                               ("listed_twice", ["greetings", "greetings"])]:
            try:
                attach(bridge, plugins, agent)
            except AttachError as exc:
                errors[label] = str(exc)
        out["errors"] = errors
        out["agent_unchanged"] = [s.name for s in agent.tools] == [
            s["name"] for s in out["tool_specs"]]

        # Two bridges in one process: one tool name, each agent's calls go to its bridge.
        with HostBridge(store) as other:
            other_agent, _ = attach(other, ["shout"], base)
            mine = resolve_tool(agent.tools[0], None)[0]
            theirs = resolve_tool(other_agent.tools[0], None)[0]
            out["two_bridges"] = {
                "names": [mine.name, theirs.name],
                "routed": mine.executor.bridge is bridge and theirs.executor.bridge is other,
                "results": [mine(mine.action_from_arguments({"text": "a"})).text,
                            theirs(theirs.action_from_arguments({"text": "b"})).text],
                "pids": [bridge.worker("shout").pid != other.worker("shout").pid],
            }

        converse(agent, hooks, [
            ("shout__shout", {"text": "hi"}),
            ("shout__shout", {"text": 1}),
            ("oh_probe__add", {"a": 2, "b": 3}),
            ("oh_probe__boom", {}),
            ("oh_probe__slow", {"seconds": 5}),
            ("oh_probe__crash", {}),
            ("oh_probe__note", {"summary": "remember"}),
            ("finish", {"message": "done"}),
        ])
    else:  # resume: a fresh process, a new bridge, the saved conversation
        agent, hooks = attach(bridge, ["shout", "greetings"], base)
        agent, _ = attach(bridge, ["oh-probe"], agent, timeout=1.5)
        converse(agent, hooks, [("shout__shout", {"text": "again"}),
                                ("finish", {"message": "done again"})],
                 conversation_id=uuid.UUID(cfg["conversation_id"]))
print(json.dumps(out))
'''


@pytest.fixture(scope="module")
def sdk_python() -> Path:
    shared = oracle.require_shared()
    try:
        return oracle.sdk_python(shared)
    except oracle.OracleError as exc:
        pytest.fail(f"the SDK venv could not be built:\n{exc}", pytrace=False)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory, example_wheelhouse: Path) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("openhands")
    links = root / "links"
    make_wheel(links, "oh-probe", "1.0.0", files={
        "oh_probe/__init__.py": "",
        "oh_probe/tools.py": _PROBE_TOOLS,
        "oh_probe/commands/check.md": "---\ndescription: Check things\n---\nCheck.\n",
        # A hook that reports where it runs: through the sandbox launcher (#17, deliverable 3)
        "oh_probe/hooks/hooks.json": json.dumps({"hooks": {"SessionStart": [{"hooks": [{
            "type": "command", "timeout": 10, "command":
                'echo "root=$CLAUDE_PLUGIN_ROOT"; echo "event=$OPENHANDS_EVENT_TYPE"; '
                'grep Seccomp: /proc/self/status; '
                f'ls {root / "store"} >/dev/null 2>&1 && echo store=readable || '
                'echo store=denied'}]}]}}),
    }, entry_points={
        "openhands.plugins": {"oh-probe": "oh_probe"},
        "openhands.tools": {name: f"oh_probe.tools:{name}"
                            for name in ("add", "boom", "slow", "crash", "note")},
    })
    # A list-style hooks.json, which the SDK's loader drops and isolator reads (#18).
    make_wheel(links, "oh-listed", "1.0.0", files={
        "oh_listed/__init__.py": "",
        "oh_listed/hooks/hooks.json": json.dumps({"hooks": [
            {"event": "SessionStart", "command": 'echo "listed=$OPENHANDS_EVENT_TYPE"'}]}),
    }, entry_points={"openhands.plugins": {"oh-listed": "oh_listed"}})
    (root / "workspace").mkdir()
    return {"store": str(root / "store"), "wheelhouse": str(example_wheelhouse),
            "links": str(links), "workspace": str(root / "workspace"),
            "persistence": str(root / "conversations")}


def _run(python: Path, cfg: dict[str, Any]) -> dict[str, Any]:
    proc = subprocess.run([str(python), "-I", "-c", _SCRIPT, json.dumps(cfg)],
                          env=oracle.oracle_env(), capture_output=True, text=True,
                          timeout=300, check=False, cwd=cfg["workspace"])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


@pytest.fixture(scope="module")
def first_run(sdk_python: Path, setup: dict[str, Any]) -> dict[str, Any]:
    return _run(sdk_python, {**setup, "phase": "run"})


def _exchanges(events: list[dict[str, Any]]) -> list[tuple[str, Any, str, bool]]:
    """(tool, arguments, observation text, is_error) of each tool call, in order."""
    actions = {e["tool_call_id"]: e for e in events if e["kind"] == "ActionEvent"}
    result = []
    for event in events:
        if event["kind"] == "ObservationEvent":
            action = actions[event["tool_call_id"]]["action"]
            text = "".join(c.get("text", "") for c in event["observation"]["content"])
            result.append((event["tool_name"], action.get("worker_arguments", action),
                           text, event["observation"]["is_error"]))
    return result


def test_attach_merges_content_and_tools(first_run: dict[str, Any]) -> None:
    out = first_run
    assert out["base_untouched"]
    assert [spec["name"] for spec in out["tool_specs"]] == [
        "shout__shout", "oh_probe__add", "oh_probe__boom", "oh_probe__crash",
        "oh_probe__note", "oh_probe__slow"]
    assert out["tool_specs"][0]["params"]["plugin"] == "shout"
    assert out["tool_specs"][0]["params"]["timeout"] == 300.0
    assert out["tool_specs"][1]["params"]["timeout"] == 1.5
    # skills as the SDK merges them: with command skills, named by the store's plugin name
    assert out["skills"] == ["farewell", "greet", "greetings:hello", "oh-probe:check", "shout"]
    assert out["mcp"] == ["greetings-echo"]
    # hooks and stdio MCP servers start through the sandbox launcher, with a fixed environment
    greeting_hook = out["hooks"]["session_start"][0]["hooks"][0]["command"]
    assert greeting_hook.startswith("/usr/bin/env -i -C ")
    assert 'OPENHANDS_EVENT_TYPE="${OPENHANDS_EVENT_TYPE-}"' in greeting_hook
    assert "exec_main" in greeting_hook and greeting_hook.endswith(
        "sh -c 'echo \"greetings plugin at ${CLAUDE_PLUGIN_ROOT}\"'")
    assert "seccomp" in greeting_hook
    assert out["more_hooks"]["session_start"][0]["hooks"][0]["command"].startswith("/usr/bin/env")
    server = out["mcp_servers"]["greetings-echo"]
    assert server["command"] == "/usr/bin/env" and server["args"][0] == "-i"
    assert server["args"][-4:] == ["python3", "-m", "http.server", "--help"]
    assert not server.get("env")
    # the server's own env is not on the command line: it is in a file read after the sandbox
    assert not any("GREETING" in arg for arg in server["args"])
    assert '"env_file":' in " ".join(server["args"])


def test_bad_inputs_are_clear_errors(first_run: dict[str, Any]) -> None:
    errors = first_run["errors"]
    assert errors["unknown"].startswith("plugin 'nope': not installed in the store")
    assert errors["taken"] == ("plugin 'shout': its tool 'shout' cannot be added to the agent "
                               "as 'shout__shout': the agent already has a tool of that name")
    assert errors["unloadable"].startswith("plugin 'whisper': the SDK could not load")
    assert errors["listed_twice"] == "plugin 'greetings': listed twice (attach each plugin once)"
    assert first_run["agent_unchanged"]


def test_two_bridges_in_one_process(first_run: dict[str, Any]) -> None:
    two = first_run["two_bridges"]
    assert two["names"] == ["shout__shout", "shout__shout"]
    assert two["routed"]
    assert two["results"] == ["A!", "B!"]
    assert two["pids"] == [True]


def test_conversation_calls_worker_tools(first_run: dict[str, Any]) -> None:
    out = first_run
    assert out["status"] == "finished"
    events = out["events"]
    hook = next(e for e in events if e["kind"] == "HookExecutionEvent")
    assert hook["hook_event_type"] == "SessionStart"
    assert hook["success"]
    # the probe's hook ran confined: seccomp filter, the store unreadable, its root set
    probe = [e for e in events if e["kind"] == "HookExecutionEvent"][1]
    assert probe["success"], probe
    lines = probe["stdout"].split("\n")
    assert f"root={out['probe_root']}" in lines
    assert "Seccomp:\t2" in lines
    assert "store=denied" in lines
    assert "event=SessionStart" in lines  # the SDK's hook variables reach it
    # the list-style hooks.json's command ran too (the SDK alone would drop the file)
    listed = [e for e in events if e["kind"] == "HookExecutionEvent"
              and "listed=" in e.get("stdout", "")]
    assert [e["stdout"].strip() for e in listed] == ["listed=SessionStart"], listed
    exchanges = _exchanges(events)
    assert exchanges[0] == ("shout__shout", {"text": "hi"}, "HI!", False)
    name, args, text, is_error = exchanges[1]
    assert (name, args, is_error) == ("shout__shout", {"text": 1}, True)
    assert text == ("invalid arguments: tool 'shout' of plugin 'shout': arguments.text: "
                    "expected string, got integer 1")
    assert exchanges[2] == ("oh_probe__add", {"a": 2, "b": 3}, "5", False)
    assert exchanges[3][2:] == ("RuntimeError: boom", True)
    assert exchanges[4][2].startswith("timed out: ") and exchanges[4][3]
    assert "1.5 s" in exchanges[4][2]
    assert exchanges[5][3] and "the worker closed the connection (exit status 3)" in exchanges[5][2]
    # the tool's own `summary` argument reaches it (the SDK would take it for the event's)
    assert exchanges[6] == ("oh_probe__note", {"summary": "remember"}, "noted: remember", False)
    assert exchanges[7][0] == "finish"
    system = next(e for e in events if e["kind"] == "SystemPromptEvent")
    assert "shout__shout" in [t.get("tool_name") for t in system["tools"]]
    schema = out["llm_tools"]["shout__shout"]["function"]["parameters"]
    assert schema["properties"]["text"] == {"type": "string"}
    assert list(schema["properties"]) == ["security_risk", "summary", "text"]
    assert schema["additionalProperties"] is False


def test_saved_conversation_resumes_in_a_fresh_process(
        sdk_python: Path, setup: dict[str, Any], first_run: dict[str, Any]) -> None:
    out = _run(sdk_python, {**setup, "phase": "resume",
                            "conversation_id": first_run["conversation_id"]})
    assert out["conversation_id"] == first_run["conversation_id"]
    assert out["status"] == "finished"
    exchanges = _exchanges(out["events"])
    assert exchanges[:8] == _exchanges(first_run["events"])   # read back from disk
    assert exchanges[8] == ("shout__shout", {"text": "again"}, "AGAIN!", False)


def test_the_embedding_guides_example_runs(sdk_python: Path, example_wheelhouse: Path,
                                           tmp_path: Path) -> None:
    """examples/openhands_host.py, the full example of docs/embedding.md, as a user runs it."""
    script = Path(__file__).parent.parent / "examples" / "openhands_host.py"
    store = tmp_path / "store"
    store.mkdir()
    tmp_path.chmod(0o755)
    store.chmod(0o755)
    proc = subprocess.run([str(sdk_python), str(script), "--find-links",
                           str(example_wheelhouse), "--store", str(store)],
                          env=oracle.oracle_env(), capture_output=True, text=True,
                          timeout=300, check=False, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert "tools: ['shout__shout']" in lines
    assert "ObservationEvent: shout__shout -> HELLO FROM THE HOST!" in lines
    assert "HookExecutionEvent: SessionStart ok=True" in lines
    assert lines[-1] == "status: finished"
