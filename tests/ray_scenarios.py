"""The host side of the Ray tests, run by the Ray interpreter (tests/ray_cluster.py):
``ray_scenarios.py ADDRESS SCENARIO STORE_ROOT NODE_ROOT``; the last line printed is JSON.

Not collected by pytest (no ``test_`` prefix); tests/test_ray.py runs it.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import threading
import time
from typing import Any

from hostbridge import (
    CallTimeoutError,
    HostBridge,
    PluginFailedError,
    WorkerCrashedError,
)
from hostbridge.ray import RayLauncher
from isolator import PluginStore

PLUGIN = "ray-probe"
ECHO = {"echo": lambda text: f"host says {text}"}


def bridge_for(store: PluginStore, launcher: RayLauncher | None, **options: Any) -> HostBridge:
    return HostBridge(store, launcher=launcher, capabilities=ECHO, **options)


def parity(address: str, store: PluginStore, node_root: str) -> dict[str, Any]:
    calls = [("echo", {"text": "hi"}), ("noisy", {"lines": 3}), ("ask_host", {"text": "x"}),
             ("fail", {}), ("big", {"size": 3 << 20})]
    out: dict[str, Any] = {}
    for where in ("local", "ray"):
        launcher = RayLauncher(address, node_root=node_root) if where == "ray" else None
        started = time.perf_counter()
        with bridge_for(store, launcher) as bridge:
            out[f"{where}_start"] = [bridge.call_tool(PLUGIN, "echo", {"text": "0"}).content,
                                     time.perf_counter() - started]
            results = []
            for tool, args in calls:
                result = bridge.call_tool(PLUGIN, tool, args).to_dict()
                result.pop("traceback", None)
                if tool == "big":
                    result["content"] = len(result["content"])
                results.append(result)
            out[where] = results
            out[f"{where}_where"] = bridge.call_tool(PLUGIN, "where", {}).content
            out[f"{where}_stderr"] = list(bridge.worker(PLUGIN).logs["stderr"])
            out[f"{where}_sandbox"] = bridge.worker(PLUGIN).sandbox
            out[f"{where}_pid"] = bridge.worker(PLUGIN).pid
            out[f"{where}_can_import_ray"] = bridge.call_tool(PLUGIN, "can_import",
                                                              {"module": "ray"}).content
            if launcher is not None:
                out["placements"] = dict(launcher.placements)
                out["nodes"] = launcher.nodes()
                launcher.close()
    # A second host: the node's venv is reused (no wheel shipped, nothing built).
    launcher = RayLauncher(address, node_root=node_root)
    with bridge_for(store, launcher) as bridge:
        installed = store.get(PLUGIN)
        from hostbridge.ray._launcher import _lock_entry

        top, entry, _wheels = _lock_entry(store, PLUGIN, installed)
        node = out["placements"][PLUGIN]
        import ray

        out["missing_second_time"] = ray.get(launcher.agent(node).missing.remote(top, entry))
        out["second_where"] = bridge.call_tool(PLUGIN, "where", {}).content
    launcher.close()
    return out


def semantics(address: str, store: PluginStore, node_root: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    launcher = RayLauncher(address, node_root=node_root)
    with bridge_for(store, launcher, crash_budget=(3, 300.0), heartbeat=0.3,
                    heartbeat_timeout=5.0) as bridge:
        bridge.reset(PLUGIN)
        # Deadlines: the worker is stopped, the next call gets a new one.
        first = bridge.worker(PLUGIN).pid
        started = time.monotonic()
        try:
            bridge.call_tool(PLUGIN, "nap", {"seconds": 30}, timeout=1.0)
            out["deadline"] = "no error"
        except CallTimeoutError as exc:
            out["deadline"] = str(exc)
        out["deadline_seconds"] = time.monotonic() - started
        out["after_deadline"] = bridge.call_tool(PLUGIN, "echo", {"text": "back"}).content
        out["new_worker_after_deadline"] = bridge.worker(PLUGIN).pid != first
        out["old_worker_gone"] = _gone(first)
        # Heartbeats cross the relay: an idle worker answers them and stays.
        pid = bridge.worker(PLUGIN).pid
        time.sleep(1.5)
        out["alive_after_heartbeats"] = bridge.status(PLUGIN)["state"] == "running" and \
            bridge.worker(PLUGIN).pid == pid and bridge.worker(PLUGIN).last_ping > 0
        # Cancellation from asyncio stops the worker.
        async def cancelled() -> str:
            task = asyncio.ensure_future(bridge.acall_tool(PLUGIN, "nap", {"seconds": 30}))
            await asyncio.sleep(0.5)
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                return "cancelled"
            return "not cancelled"
        pid = bridge.worker(PLUGIN).pid
        out["cancel"] = asyncio.run(cancelled())
        time.sleep(0.5)
        out["cancel_killed_worker"] = _gone(pid)
        out["after_cancel"] = bridge.call_tool(PLUGIN, "echo", {"text": "again"}).content
        bridge.reset(PLUGIN)
        # Crashes: exit status and stderr tail, as a local worker's.
        crashes = []
        for code in (3, 4, 5):
            try:
                bridge.call_tool(PLUGIN, "die", {"code": code})
                crashes.append({"error": None})
            except WorkerCrashedError as exc:
                crashes.append({"error": str(exc), "exit_code": exc.exit_code,
                                "stderr_tail": exc.stderr_tail})
        out["crashes"] = crashes
        try:
            bridge.call_tool(PLUGIN, "echo", {"text": "x"})
            out["failed"] = "no error"
        except PluginFailedError as exc:
            out["failed"] = str(exc)
        bridge.reset(PLUGIN)
        out["after_reset"] = bridge.call_tool(PLUGIN, "echo", {"text": "reset"}).content
    # Idle shutdown: the worker on the node goes.
    with bridge_for(store, launcher, idle_timeout=0.5, heartbeat=None) as bridge:
        pid = bridge.worker(PLUGIN).pid
        deadline = time.monotonic() + 10
        while bridge.status(PLUGIN)["state"] == "running" and time.monotonic() < deadline:
            time.sleep(0.2)
        out["idle_state"] = bridge.status(PLUGIN)["state"]
        time.sleep(0.5)
        out["idle_worker_gone"] = _gone(pid)
    launcher.close()
    return out


def agent_killed(address: str, store: PluginStore, node_root: str) -> dict[str, Any]:
    import ray

    out: dict[str, Any] = {}
    launcher = RayLauncher(address, node_root=node_root)
    with bridge_for(store, launcher) as bridge:
        bridge.reset(PLUGIN)
        out["nodes"] = launcher.nodes()
        # Spread: two plugins' workers on two nodes.
        bridge.call_tool(PLUGIN, "echo", {"text": "a"})
        bridge.call_tool("shout", "shout", {"text": "b"})
        out["spread"] = dict(launcher.placements)
        node = launcher.placements[PLUGIN]
        worker_pid = bridge.worker(PLUGIN).pid
        agent_pid = ray.get(launcher.agent(node).info.remote())["pid"]
        # A call in flight when the agent dies fails, with the agent's death in its error.
        errors: list[str] = []

        def in_flight() -> None:
            try:
                bridge.call_tool(PLUGIN, "nap", {"seconds": 30})
                errors.append("no error")
            except WorkerCrashedError as exc:
                errors.append(str(exc))

        thread = threading.Thread(target=in_flight)
        thread.start()
        time.sleep(0.5)
        os.kill(agent_pid, signal.SIGKILL)
        thread.join(timeout=30)
        out["in_flight"] = errors
        out["worker_died_with_agent"] = _gone(worker_pid, wait=5.0)
        out["status_after_kill"] = bridge.status(PLUGIN)["state"]
        out["next_call"] = bridge.call_tool(PLUGIN, "echo", {"text": "back"}).content
        out["new_node"] = launcher.placements[PLUGIN]
        out["old_node"] = node
    launcher.close()
    return out


def _gone(pid: int | None, wait: float = 3.0) -> bool:
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
                if handle.read().split(") ")[-1][:1] == "Z":
                    return True
        except OSError:
            return True
        time.sleep(0.1)
    return False


def main() -> None:
    address, scenario, root, node_root = sys.argv[1:5]
    store = PluginStore(root)
    result = {"parity": parity, "semantics": semantics,
              "agent_killed": agent_killed}[scenario](address, store, node_root)
    print(json.dumps(result, default=str))


if __name__ == "__main__":
    main()
