"""Plugin agents in real workers, their model calls served by the host (#6, first part)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from typing import TYPE_CHECKING, Any

import pytest

from hostbridge import EchoLLM, HostBridge, HostTool, LLMLimits, RemoteError, launcher_info
from isolator import PluginStore
from isolator.policy._permissions import Permissions

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

SECRET = "sk-test-0123456789-DO-NOT-LEAK"


@pytest.fixture
def store(tmp_path: Path, example_wheelhouse: Path) -> PluginStore:
    store = PluginStore(tmp_path / "store")
    store.install("pypi:openhands-plugin-echo-agent", find_links=[example_wheelhouse],
                  no_index=True)
    # What `ohp install --grant all` does: the operator grants what plugin.json asks for.
    asked = Permissions.from_manifest(store.load("echo-agent").manifest.extra, "echo-agent")
    assert asked.capabilities == ("llm.complete", "tool.call")
    store.configure("echo-agent", grants=asked.grant(["all"], "echo-agent"))
    return store


@pytest.fixture
def bridge(store: PluginStore) -> Iterator[HostBridge]:
    clock = HostTool("clock", "The host's clock.", {"type": "object", "properties": {}},
                     lambda: "12:00")
    with HostBridge(store, llm=EchoLLM(api_key=SECRET), host_tools=[clock]) as b:
        yield b


def test_an_agent_step_runs_in_the_worker_with_the_hosts_model(bridge: HostBridge) -> None:
    agent = bridge.agent("echo-agent")
    seen: list[Any] = []
    events = agent.step({"messages": [{"role": "user", "content": "hello there"}]},
                        on_event=seen.append)
    assert events == [
        {"type": "status", "text": "Hello from echo-agent"},  # config from plugin.json
        {"type": "message", "role": "assistant", "content": "echo: hello there"},
        {"type": "observation", "tool": "word_count", "result": 3},
        {"type": "observation", "tool": "clock", "result": "12:00"},  # a host tool
    ]
    assert seen == events  # each event arrived as it happened, before the step returned
    usage = bridge.llm_usage["echo-agent"]
    assert (usage.calls, usage.prompt_tokens, usage.completion_tokens) == (1, 2, 3)
    assert bridge.agent("echo-agent", config={"greeting": "Hi"}).step(
        {"messages": []})[0] == {"type": "status", "text": "Hi"}


def test_the_agent_plugin_runs_with_its_own_textkit(store: PluginStore,
                                                   bridge: HostBridge) -> None:
    # echo-agent pins example-textkit 2.x (salute and shout pin 1.x): its venv has 2.0.0, and
    # so does its worker, next to the agent.
    versions = {d.name: d.version for d in store.get("echo-agent").distributions}
    assert versions == {"openhands-plugin-echo-agent": "1.0.0", "example-textkit": "2.0.0"}
    assert sorted(tool.name for tool in bridge.tools("echo-agent")) == ["textkit_version",
                                                                       "word_count"]
    assert bridge.tool("echo-agent", "textkit_version")().content == "2.0.0"


def _worker_memory_contains(pid: int, needle: bytes) -> bool:
    with open(f"/proc/{pid}/maps", encoding="ascii") as maps, \
            open(f"/proc/{pid}/mem", "rb", buffering=0) as mem:
        for line in maps:
            match = re.match(r"([0-9a-f]+)-([0-9a-f]+) (r)", line)
            if not match or "[vvar]" in line or "[vsyscall]" in line:
                continue
            start, end = int(match.group(1), 16), int(match.group(2), 16)
            try:
                mem.seek(start)
                if needle in mem.read(end - start):
                    return True
            except (OSError, ValueError, OverflowError):
                continue
    return False


def test_the_model_credentials_never_reach_the_worker(bridge: HostBridge) -> None:
    agent = bridge.agent("echo-agent")
    agent.step({"messages": [{"role": "user", "content": "x"}]})
    pid = bridge.worker("echo-agent").pid
    assert pid is not None
    with open(f"/proc/{pid}/environ", "rb") as handle:
        assert SECRET.encode() not in handle.read()
    assert not _worker_memory_contains(pid, SECRET.encode())
    # The scan can find what is there: a string the agent's step did receive.
    assert _worker_memory_contains(pid, b"echo: x")


def test_model_use_is_capped_per_plugin(store: PluginStore) -> None:
    with HostBridge(store, llm=EchoLLM(), llm_limits=LLMLimits(max_calls=1)) as bridge:
        agent = bridge.agent("echo-agent")
        agent.step({"messages": [{"role": "user", "content": "one"}]})
        with pytest.raises(RemoteError, match="model use is capped"):
            agent.step({"messages": [{"role": "user", "content": "two"}]})
        assert bridge.llm_usage["echo-agent"].refused == 1


def test_a_capability_not_granted_is_a_clear_error(store: PluginStore) -> None:
    with HostBridge(store, llm=EchoLLM(), grants={"*": []}) as bridge:
        agent = bridge.agent("echo-agent")
        with pytest.raises(RemoteError,
                           match=r"capability 'llm\.complete' is not granted to plugin") as err:
            agent.step({"messages": [{"role": "user", "content": "x"}]})
        # One readable line, not a dict: "HostCallError: PermissionError: capability ..."
        assert "HostCallError: PermissionError: capability 'llm.complete'" in str(err.value)
        assert "{" not in str(err.value)
    with HostBridge(store, llm=EchoLLM(), grants={"echo-agent": ["llm.complete"]}) as bridge:
        events = bridge.agent("echo-agent").step({"messages": []})
        assert events[1]["content"] == "echo: "


def test_cli_agent(store: PluginStore) -> None:
    def ohp(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "hostbridge.cli", *args, "--root",
                               str(store.root)], capture_output=True, text=True, timeout=120,
                              check=False)

    done = ohp("agent", "echo-agent", "--prompt", "hi there", "--json")
    assert done.returncode == 0, done.stderr
    events = json.loads(done.stdout)
    assert events[1] == {"type": "message", "role": "assistant", "content": "echo: hi there"}
    text = ohp("agent", "echo-agent", "--prompt", "yo")
    assert text.returncode == 0 and '"echo: yo"' in text.stdout
    assert "1 model call" in text.stderr
    failed = ohp("agent", "nope", "--prompt", "x")
    assert failed.returncode == 1 and failed.stderr.startswith("ohp: error: ")
    assert len(failed.stderr.splitlines()) == 1


def test_model_calls_denials_and_worker_starts_are_audited(store: PluginStore) -> None:
    with HostBridge(store, llm=EchoLLM()) as bridge:
        bridge.agent("echo-agent").step({"messages": [{"role": "user", "content": "hi"}]})
    store.configure("echo-agent", grants=Permissions())  # the operator takes the grant back
    with HostBridge(store, llm=EchoLLM()) as bridge, \
            pytest.raises(RemoteError, match="not granted"):
        bridge.agent("echo-agent").step({"messages": []})
    events = [json.loads(line) for line in
              (store.root / "audit.jsonl").read_text(encoding="utf-8").splitlines()]
    starts = [e for e in events if e["event"] == "worker.start"]
    assert len(starts) == 2 and all(e["profile"] == "standard" for e in starts)
    assert starts[0]["sandbox"]["pid_namespace"] is launcher_info()["pid_namespace"]
    calls = [e for e in events if e["event"] == "llm.call"]
    assert len(calls) == 1 and calls[0]["ok"] is True and calls[0]["plugin"] == "echo-agent"
    denied = [e for e in events if e["event"] == "deny"]
    assert denied[-1]["capability"] == "llm.complete"
