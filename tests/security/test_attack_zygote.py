"""Attacks on the zygote (#19 deliverable 2): a plugin whose worker was forked tries to reach
the zygote's control socket or another worker, to signal or trace the zygote, to fork-bomb
past its rlimits, and to read another plugin's files or secrets through what it shares with
the zygote. Each runs under standard and strict with the zygote as the start mode."""

from __future__ import annotations

import os
import signal
import time
from typing import TYPE_CHECKING, Any

import pytest
from helpers_build import make_wheel
from secsupport import alive, descendants, wait_until

import hostbridge.launch._zygote as zygote_module
from hostbridge import HostBridge, launcher_info
from isolator import PluginStore

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.skipif(not launcher_info()["pid_namespace"],
                                reason="the zygote forks only where PID namespaces work")

SECRET = "zygote-secret-" + os.urandom(6).hex()

HOSTILE_PY = '''\
import ctypes
import os
import signal
import socket
import time


def reach(pids: list) -> dict:
    """Signal, trace and open the host pids given (the zygote, another worker)."""
    libc = ctypes.CDLL(None, use_errno=True)
    out = {"kill": {}, "ptrace": {}, "mem": {}, "fds": sorted(os.listdir("/proc/self/fd"))}
    for pid in pids:
        try:
            os.kill(pid, 0)
            out["kill"][str(pid)] = "delivered"
        except OSError as exc:
            out["kill"][str(pid)] = type(exc).__name__
        result = libc.ptrace(16, pid, 0, 0)  # PTRACE_ATTACH
        out["ptrace"][str(pid)] = "attached" if result == 0 else ctypes.get_errno()
        try:
            with open(f"/proc/{pid}/mem", "rb"):
                out["mem"][str(pid)] = "opened"
        except OSError as exc:
            out["mem"][str(pid)] = type(exc).__name__
    try:
        os.kill(-1, signal.SIGKILL if False else 0)
        out["kill_all"] = "delivered"
    except OSError as exc:
        out["kill_all"] = type(exc).__name__
    try:
        socket.socket(socket.AF_UNIX, socket.SOCK_STREAM).close()
        out["socket"] = "made"
    except OSError as exc:
        out["socket"] = type(exc).__name__
    return out


def bomb(seconds: float = 3.0) -> dict:
    """Fork until refused; the children sleep."""
    children = []
    error = None
    for _ in range(100000):
        try:
            pid = os.fork()
        except OSError as exc:
            error = exc.errno
            break
        if pid == 0:
            time.sleep(seconds)
            os._exit(0)
        children.append(pid)
    return {"forked": len(children), "error": error}


def read(paths: list) -> dict:
    """Read each path (a file, or list a directory)."""
    out = {}
    for path in paths:
        try:
            if os.path.isdir(path):
                out[path] = sorted(os.listdir(path))
            else:
                with open(path, "rb") as handle:
                    out[path] = handle.read(200).decode("utf-8", "replace")
        except OSError as exc:
            out[path] = type(exc).__name__
    return out
'''

VICTIM_PY = '''\
import os


def keep() -> str:
    """Write the secret into this plugin's scratch directory; hold it in memory."""
    global held
    held = os.environ.get("ZYG_SECRET", "")
    path = os.path.join(os.environ["TMPDIR"], "secret.txt")
    with open(path, "w") as handle:
        handle.write(held)
    return path
'''


@pytest.fixture(scope="module")
def zstore(sec_root: Path) -> PluginStore:
    root = sec_root / "zygote-attacks"
    root.mkdir(exist_ok=True)
    root.chmod(0o755)
    links = root / "links"
    make_wheel(links, "zyg-hostile", "1.0.0", files={
        "zyg_hostile/__init__.py": "", "zyg_hostile/tools.py": HOSTILE_PY},
        entry_points={"openhands.plugins": {"hostile": "zyg_hostile"},
                      "openhands.tools": {name: f"zyg_hostile.tools:{name}"
                                          for name in ("reach", "bomb", "read")}})
    make_wheel(links, "zyg-victim", "1.0.0", files={
        "zyg_victim/__init__.py": "", "zyg_victim/tools.py": VICTIM_PY},
        entry_points={"openhands.plugins": {"victim": "zyg_victim"},
                      "openhands.tools": {"keep": "zyg_victim.tools:keep"}})
    store = PluginStore(root / "store")
    for name in ("zyg-hostile", "zyg-victim"):
        store.install(f"pypi:{name}", find_links=[links], no_index=True)
    return store


def _call(bridge: HostBridge, plugin: str, tool: str, **arguments: Any) -> Any:
    result = bridge.call_tool(plugin, tool, arguments, timeout=60)
    assert not result.is_error, f"{tool}: {result.content}\n{result.traceback}"
    return result.content


def _zygote(profile: str) -> zygote_module.Zygote:
    found = [z for z in zygote_module.zygotes() if z.key[1] == profile and z.alive]
    assert found, "no zygote"
    return found[-1]


@pytest.fixture
def bridges(zstore: PluginStore, request: pytest.FixtureRequest,
            monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("ZYG_SECRET", SECRET)
    profile = request.param
    victim = HostBridge(zstore, profile=profile, worker_start="zygote",
                        env_allow=["ZYG_SECRET"], crash_budget=(1000, 300.0))
    hostile = HostBridge(zstore, profile=profile, worker_start="zygote",
                         crash_budget=(1000, 300.0))
    try:
        yield profile, victim, hostile
    finally:
        hostile.close()
        victim.close()


BOTH = pytest.mark.parametrize("bridges", ["standard", "strict"], indirect=True)


@BOTH
def test_a_worker_cannot_reach_the_zygote_or_another_worker(bridges: Any) -> None:
    profile, victim, hostile = bridges
    _call(victim, "victim", "keep")
    victim_worker = victim.worker("victim")
    _call(hostile, "hostile", "read", paths=[])  # started
    assert hostile.worker("hostile").sandbox["start"] == "zygote"
    zygote = _zygote(profile)
    targets = [zygote.proc.pid, victim_worker.pid, victim_worker._proc.group]
    seen = _call(hostile, "hostile", "reach", pids=targets)
    for pid in map(str, targets):
        # In its own PID namespace the host's pids name nobody (or itself, PID 1).
        assert seen["kill"][pid] == "ProcessLookupError", seen
        assert seen["ptrace"][pid] != "attached", seen
        assert seen["mem"][pid] != "opened", seen
    assert seen["socket"] != "made"  # no socket() to connect anywhere by path
    # Its descriptors: stdin, stdout, stderr, its own socket (and the listing's).
    assert len(seen["fds"]) <= 5, seen["fds"]
    assert zygote.alive and victim_worker.alive
    assert _call(victim, "victim", "keep")


@BOTH
def test_a_fork_bomb_stays_within_its_rlimits(bridges: Any) -> None:
    profile, victim, hostile = bridges
    _call(victim, "victim", "keep")
    outcome = _call(hostile, "hostile", "bomb", seconds=4.0)
    limit = 256 if profile == "standard" else 64
    assert outcome["error"] == 11 and outcome["forked"] < limit, outcome  # EAGAIN
    zygote = _zygote(profile)
    # The bomb counts in its own user namespace: the zygote still forks, the victim answers.
    assert _call(victim, "victim", "keep")
    fresh = HostBridge(victim.store, profile=profile, worker_start="zygote")
    try:
        assert _call(fresh, "victim", "keep")
    finally:
        fresh.close()
    assert zygote.alive
    # Closing the bomb's worker takes its whole tree with it.
    worker = hostile.worker("hostile")
    group = worker._proc.group
    tree = descendants(group)
    assert len(tree) > outcome["forked"] // 2
    hostile.close()
    assert wait_until(lambda: not any(alive(pid) for pid in tree), 10)


@BOTH
def test_a_worker_reads_nothing_of_another_plugin_through_the_zygote(bridges: Any) -> None:
    profile, victim, hostile = bridges
    secret_file = _call(victim, "victim", "keep")
    installed = victim.store.get("victim")
    victim_files = [secret_file, str(installed.path), str(installed.env_dir)]
    seen = _call(hostile, "hostile", "read", paths=victim_files)
    for path in victim_files:
        assert seen[path] == "PermissionError", seen
    # Its own plugin stays readable: no Landlock of another plugin's was left in the zygote.
    own = hostile.store.get("hostile")
    assert isinstance(_call(hostile, "hostile", "read", paths=[str(own.path)])[str(own.path)],
                      list)
    # Neither the victim's granted variable nor its value is in the forked worker's memory
    # (read by the host: a needle passed to the worker would be in its memory)...
    hostile_pid = hostile.worker("hostile").pid
    assert _memory_holds(hostile_pid, SECRET.encode()) is False
    assert _memory_holds(victim.worker("victim").pid, SECRET.encode()) is True  # the probe works
    # ...nor in the zygote's (no plugin's configuration ever reaches it).
    zygote = _zygote(profile)
    try:
        with open(f"/proc/{zygote.proc.pid}/environ", "rb") as handle:
            environ = handle.read()
    except PermissionError:  # not dumpable: only root reads it
        assert os.geteuid() != 0
    else:
        assert SECRET.encode() not in environ
        assert b"ZYG_SECRET" not in environ
    assert _memory_holds(zygote.proc.pid, SECRET.encode()) in (False, None)


def _memory_holds(pid: int, needle: bytes) -> bool | None:
    """Whether *needle* is in the memory of process *pid* (None: this host may not read it,
    as a host that is not root may not read a zygote, which is not dumpable)."""
    try:
        maps = open(f"/proc/{pid}/maps", encoding="ascii")  # noqa: SIM115
        mem = open(f"/proc/{pid}/mem", "rb", buffering=0)  # noqa: SIM115
    except PermissionError:
        return None
    with maps, mem:
        for line in maps:
            fields = line.split()
            if "r" not in fields[1] or (len(fields) > 5 and fields[5] == "[vsyscall]"):
                continue
            start, end = (int(x, 16) for x in fields[0].split("-"))
            try:
                mem.seek(start)
                if needle in mem.read(end - start):
                    return True
            except (OSError, OverflowError, ValueError):
                continue
    return False


@BOTH
def test_signals_from_the_worker_do_not_reach_the_host_side(bridges: Any) -> None:
    profile, _victim, hostile = bridges
    _call(hostile, "hostile", "read", paths=[])
    zygote = _zygote(profile)
    before = zygote.forks
    seen = _call(hostile, "hostile", "reach", pids=[os.getpid(), zygote.proc.pid])
    assert seen["kill_all"] in ("delivered", "ProcessLookupError")  # its own namespace only
    assert seen["kill"][str(os.getpid())] == "ProcessLookupError"
    time.sleep(0.1)
    assert zygote.alive and zygote.forks == before
    os.kill(os.getpid(), 0)  # the host lives
    assert signal.SIGKILL  # (kill(-1) with 0 only probes)
