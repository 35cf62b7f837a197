"""A plugin's own OpenHands SDK agent (``create_agent`` returning an SDK ``Agent`` subclass) run
in its worker, driving a host ``LocalConversation`` (#17, deliverable 4).

The plugin's venv holds the real ``openhands-sdk`` (installed from PyPI: marked ``network``); the
host runs in a copy of the oracle venv (``oracle.sdk_python``), the SDK's ``TestLLM`` is the
host's model. Each phase runs as a script there and prints what the tests assert on as JSON.
"""

from __future__ import annotations

import json
import os
import ssl
import subprocess
from typing import TYPE_CHECKING, Any

import oracle
import pytest
from helpers_build import make_wheel

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = [pytest.mark.corpus, pytest.mark.slow, pytest.mark.network]

SDK_REQUIREMENT = "openhands-sdk==1.58.0"

# The plugin's agent: its own system prompt and its own step (a note before the SDK's step);
# config picks a misbehaviour for the bad-input cases.
_AGENT = '''
import os

from openhands.sdk import Agent, LLM
from openhands.sdk.event import MessageEvent, PauseEvent
from openhands.sdk.llm import Message, TextContent


class ReviewerAgent(Agent):
    """A plugin's agent: its own system prompt and its own step."""

    mode: str = "review"

    def step(self, conversation, on_event, on_token=None):
        if self.mode == "crash":
            os._exit(7)
        if self.mode == "hostile":
            on_event(PauseEvent())
            return
        on_event(MessageEvent(source="agent", llm_message=Message(
            role="assistant", content=[TextContent(
                text=f"reviewer step in pid {os.getpid()}; llm is "
                     f"{type(self.llm).__name__}, model {self.llm.model}, "
                     f"key {self.llm.api_key}")])))
        super().step(conversation, on_event, on_token)


def create_agent(llm, tools, config):
    mode = config.get("mode", "review")
    if mode == "plain":
        return object()
    return ReviewerAgent(llm=llm, tools=tools, mode=mode,
                         system_prompt=f"You are {config.get('persona', 'a reviewer')}.")
'''

_SCRIPT = r'''
import json, os, sys, time, uuid
from openhands.sdk import Agent, Conversation
from openhands.sdk.hooks import HookConfig
from openhands.sdk.llm import Message, MessageToolCall, TextContent
from openhands.sdk.testing import TestLLM
from pydantic import SecretStr
from hostbridge import HostBridge, LLMLimits
from hostbridge.openhands import attach, plugin_agent
from isolator import PluginSource, PluginStore

cfg = json.loads(sys.argv[1])
out = {"timings": {}, "host_pid": os.getpid()}


def call(n, name, args):
    return Message(role="assistant", content=[TextContent(text="")], tool_calls=[
        MessageToolCall(id=f"call_{cfg['phase']}_{n}", name=name, arguments=json.dumps(args),
                        origin="completion")])


def llm_for(script):
    return TestLLM.from_messages([call(n, name, args) for n, (name, args) in enumerate(script)],
                                 api_key=SecretStr("host-secret-key"))


store = PluginStore(cfg["store"])
blocker = HookConfig.model_validate({"PreToolUse": [{"matcher": "shout__shout", "hooks": [{
    "type": "command", "command": "grep -q blockme && exit 2 || exit 0"}]}]})


def run(agent, conversation_id=None):
    conv = Conversation(agent=agent, hook_config=blocker, workspace=cfg["workspace"],
                        persistence_dir=cfg["persistence"], visualizer=None,
                        conversation_id=conversation_id)
    t = time.monotonic()
    error = None
    try:
        conv.send_message("please review")  # the agent is initialised here
        conv.run()
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
    out["timings"].setdefault("run", []).append(time.monotonic() - t)
    return conv, error


with HostBridge(store) as bridge:
    if cfg["phase"] == "run":
        t = time.monotonic()
        store.install(PluginSource("pypi:oh-sdk-agent", find_links=(cfg["links"],)),
                      python=sys.executable)
        store.install(PluginSource("pypi:openhands-plugin-shout",
                                   find_links=(cfg["wheelhouse"],), no_index=True))
        out["timings"]["install"] = time.monotonic() - t
        host_llm = llm_for([("shout__shout", {"text": "hi"}),
                            ("shout__shout", {"text": "blockme"}),
                            ("finish", {"message": "reviewed"})])
        base, hooks = attach(bridge, ["shout"], Agent(llm=host_llm, tools=[]))
        agent = plugin_agent(bridge, "oh-sdk-agent", llm=host_llm, tools=base.tools,
                             config={"persona": "Reviewer Bob"})
        conv, error = run(agent)
        out["error"] = error
        out["status"] = conv.state.execution_status.value
        out["conversation_id"] = str(conv.id)
        out["events"] = [event.model_dump(mode="json") for event in conv.state.events]
        out["worker_pid"] = bridge.worker("oh-sdk-agent").pid
        out["persisted_agent"] = conv.state.agent.model_dump(mode="json")
        out["usage"] = bridge.llm_usage["oh-sdk-agent"].to_dict()
        # Under the strict profile too (Landlock: the SDK's import reads only what it may).
        with HostBridge(store, profile="strict") as strict:
            llm = llm_for([("finish", {"message": "strict"})])
            conv, error = run(plugin_agent(strict, "oh-sdk-agent", llm=llm))
            out["strict"] = {"error": error, "status": conv.state.execution_status.value,
                             "profile": strict.worker("oh-sdk-agent").profile}
        # The bridge's cap on a plugin's model use holds for its SDK agent too.
        with HostBridge(store, llm_limits=LLMLimits(max_calls=1)) as capped:
            tight = llm_for([("shout__shout", {"text": "one"}), ("finish", {"message": "x"})])
            base, _ = attach(capped, ["shout"], Agent(llm=tight, tools=[]))
            conv, error = run(plugin_agent(capped, "oh-sdk-agent", llm=tight, tools=base.tools))
            out["capped"] = {"error": error, "usage": capped.llm_usage["oh-sdk-agent"].to_dict()}

        # Bad inputs: each a clear error, nothing half made.
        errors = {}
        for label, make in [
            ("no_agent", lambda: plugin_agent(bridge, "shout", llm=host_llm)),
            ("unknown", lambda: plugin_agent(bridge, "nope", llm=host_llm)),
        ]:
            try:
                make()
            except Exception as exc:
                errors[label] = f"{type(exc).__name__}: {exc}"
        for mode in ("plain", "hostile", "crash"):
            bad = plugin_agent(bridge, "oh-sdk-agent", llm=llm_for([]), config={"mode": mode})
            conv, error = run(bad)
            errors[mode] = error or "no error"
            out.setdefault("bad_status", {})[mode] = conv.state.execution_status.value
            out.setdefault("bad_kinds", {})[mode] = [e.kind for e in conv.state.events]
        out["errors"] = errors
        # After the crash: the next conversation gets a new worker and works.
        again = plugin_agent(bridge, "oh-sdk-agent", llm=llm_for([("finish", {"message": "ok"})]))
        conv, error = run(again)
        out["after_crash"] = {"error": error, "status": conv.state.execution_status.value,
                              "pid": bridge.worker("oh-sdk-agent").pid}
    else:  # resume: a fresh process, a new bridge, the saved conversation
        host_llm = llm_for([("shout__shout", {"text": "again"}), ("finish", {"message": "2"})])
        base, hooks = attach(bridge, ["shout"], Agent(llm=host_llm, tools=[]))
        agent = plugin_agent(bridge, "oh-sdk-agent", llm=host_llm, tools=base.tools,
                             config={"persona": "Reviewer Bob"})
        conv, error = run(agent, conversation_id=uuid.UUID(cfg["conversation_id"]))
        out["error"] = error
        out["status"] = conv.state.execution_status.value
        out["events"] = [event.model_dump(mode="json") for event in conv.state.events]
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
    root = tmp_path_factory.mktemp("sdk-agent")
    links = root / "links"
    make_wheel(links, "oh-sdk-agent", "1.0.0", deps=[SDK_REQUIREMENT], files={
        "oh_sdk_agent/__init__.py": "",
        "oh_sdk_agent/agent.py": _AGENT,
    }, entry_points={"openhands.plugins": {"oh-sdk-agent": "oh_sdk_agent"},
                     "openhands.agents": {"oh-sdk-agent": "oh_sdk_agent.agent:create_agent"}})
    (root / "workspace").mkdir()
    return {"store": str(root / "store"), "wheelhouse": str(example_wheelhouse),
            "links": str(links), "workspace": str(root / "workspace"),
            "persistence": str(root / "conversations")}


def _run(python: Path, cfg: dict[str, Any]) -> dict[str, Any]:
    env = {**oracle.oracle_env(), "SSL_CERT_FILE": _ca_bundle()}
    proc = subprocess.run([str(python), "-I", "-c", _SCRIPT, json.dumps(cfg)], env=env,
                          capture_output=True, text=True, timeout=900, check=False,
                          cwd=cfg["workspace"])
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-6000:]
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def _ca_bundle() -> str:
    return os.environ.get("SSL_CERT_FILE") or ssl.get_default_verify_paths().openssl_cafile


@pytest.fixture(scope="module")
def first_run(sdk_python: Path, setup: dict[str, Any]) -> dict[str, Any]:
    return _run(sdk_python, {**setup, "phase": "run"})


def _texts(event: dict[str, Any], key: str) -> str:
    part = event.get(key) or {}
    return "".join(c.get("text", "") for c in part.get("content", []))


def test_custom_agent_drives_the_host_conversation(first_run: dict[str, Any]) -> None:
    events = first_run["events"]
    assert first_run["error"] is None and first_run["status"] == "finished", first_run["error"]
    kinds = [event["kind"] for event in events]
    assert kinds[:2] == ["SystemPromptEvent", "MessageEvent"], kinds
    # The plugin's own system prompt, and the host's tool as it declared it.
    system = events[0]
    assert system["system_prompt"]["text"] == "You are Reviewer Bob."
    assert "shout__shout" in [tool.get("tool_name", tool.get("title")) for tool in system["tools"]]
    # Its own step ran in its worker, with an SDK LLM that holds nothing of the host's model.
    notes = [_texts(e, "llm_message") for e in events
             if e["kind"] == "MessageEvent" and e["source"] == "agent"]
    assert notes and all("reviewer step in pid" in note for note in notes), notes
    pid = int(notes[0].split("pid ")[1].split(";")[0])  # the worker's, in its PID namespace
    assert pid != first_run["host_pid"]
    assert "llm is HostServedLLM, model host-served, key None" in notes[0]
    assert "host-secret-key" not in json.dumps(events)
    # The host ran its tool (the shout worker's tool) and the result came back as an event.
    observations = {e["tool_call_id"]: e for e in events if e["kind"] == "ObservationEvent"}
    shout = observations["call_run_0"]
    assert shout["tool_name"] == "shout__shout"
    assert _texts(shout, "observation") == "HI!"
    assert shout["observation"]["kind"] == "PluginAgentHostToolObservation"
    # The host's PreToolUse hook saw the agent's action and blocked it.
    rejected = [e for e in events if e["kind"] == "UserRejectObservation"]
    assert [e["tool_call_id"] for e in rejected] == ["call_run_1"], kinds
    assert observations["call_run_2"]["tool_name"] == "finish"


def test_custom_agent_runs_under_strict(first_run: dict[str, Any]) -> None:
    strict = first_run["strict"]
    assert strict["profile"] == "strict"
    assert strict["error"] is None and strict["status"] == "finished", strict


def test_custom_agent_persists_as_a_plugin_agent(first_run: dict[str, Any]) -> None:
    persisted = first_run["persisted_agent"]
    assert persisted["kind"] == "PluginAgent"
    assert persisted["plugin"] == "oh-sdk-agent"
    assert persisted["config"] == {"persona": "Reviewer Bob"}


def test_custom_agent_model_use_is_counted_and_capped(first_run: dict[str, Any]) -> None:
    # Three completions: shout, the blocked shout, finish.
    assert first_run["usage"]["calls"] == 3, first_run["usage"]
    capped = first_run["capped"]
    assert capped["error"] is not None and "model use is capped" in capped["error"], capped
    assert capped["usage"]["calls"] == 1 and capped["usage"]["refused"] == 1, capped


def test_bad_custom_agents_are_clear_errors(first_run: dict[str, Any]) -> None:
    errors = first_run["errors"]
    assert "declares no 'openhands.agents' entry point" in errors["no_agent"]
    assert "'nope'" in errors["unknown"] and "not installed" in errors["unknown"]
    assert "not an openhands.sdk AgentBase" in errors["plain"], errors["plain"]
    assert "may not emit 'PauseEvent' events" in errors["hostile"], errors["hostile"]
    assert "oh-sdk-agent" in errors["crash"] and "7" in errors["crash"], errors["crash"]
    assert first_run["bad_status"]["crash"] == "error"
    assert "PauseEvent" not in first_run["bad_kinds"]["hostile"]
    # Nothing half made: after its worker died, the next conversation runs in a new one.
    after = first_run["after_crash"]
    assert after["error"] is None and after["status"] == "finished", after
    assert after["pid"] != first_run["worker_pid"]


def test_saved_custom_agent_conversation_resumes(sdk_python: Path, setup: dict[str, Any],
                                                 first_run: dict[str, Any]) -> None:
    resumed = _run(sdk_python, {**setup, "phase": "resume",
                                "conversation_id": first_run["conversation_id"]})
    assert resumed["error"] is None and resumed["status"] == "finished", resumed["error"]
    events = resumed["events"]
    assert [e["kind"] for e in events].count("SystemPromptEvent") == 1
    assert len(events) > len(first_run["events"])
    texts = [_texts(e, "observation") for e in events if e["kind"] == "ObservationEvent"]
    assert "AGAIN!" in texts
