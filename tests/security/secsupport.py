"""Helpers of the security suite: stores and the interpreter their venvs use, running an
attack, and the checks that the host survived it. The fixtures are in conftest.py."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import stat
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hostbridge import HostBridge
from isolator import PluginStore

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

SECURITY_DIR = Path(__file__).resolve().parent
PLUGINS_DIR = SECURITY_DIR / "plugins"
REPO_ROOT = SECURITY_DIR.parent.parent
NOBODY = 65534
AS_ROOT = os.geteuid() == 0
# Crashes are the point here: no plugin of the suite may be marked failed by them.
NO_BUDGET = (10_000, 300.0)
ATTACK_PLUGINS = ("pypi:openhands-plugin-attacks", "pypi:openhands-plugin-bystander")


# ---- the interpreter of plugin venvs -----------------------------------------------------------


def _world_usable(path: Path) -> bool:
    """Whether any user may run *path*: every directory above it searchable, the file readable
    and executable by others (a worker may run as nobody when the host is root)."""
    try:
        real = path.resolve(strict=True)
    except OSError:
        return False
    for parent in real.parents:
        if not os.stat(parent).st_mode & stat.S_IXOTH:
            return False
    mode = os.stat(real).st_mode
    return bool(mode & stat.S_IROTH and mode & stat.S_IXOTH)


def _version_ok(python: str) -> bool:
    try:
        out = subprocess.run([python, "-I", "-S", "-c", "import sys; print(sys.version_info[:2]"
                              " == tuple(map(int, sys.argv[1].split('.'))))",
                              f"{sys.version_info[0]}.{sys.version_info[1]}"],
                             capture_output=True, text=True, timeout=30, check=False)
    except OSError:
        return False
    return out.stdout.strip() == "True"


def world_python() -> str | None:
    """An interpreter of the host's Python version that every user may run, or None.

    The host's own comes first; as root it often lives under /root (pyenv), which the
    unprivileged uid of a worker cannot reach, so the system's ``python3`` is next. The same
    minor version keeps the store's msgpack runtime a copy of the host's.
    """
    real = Path(sys.executable).resolve()
    candidates = [Path(sys.executable), real,
                  Path(f"/usr/bin/python{sys.version_info[0]}.{sys.version_info[1]}"),
                  Path("/usr/bin/python3"), Path("/usr/local/bin/python3")]
    found = shutil.which("python3")
    if found:
        candidates.append(Path(found))
    for candidate in candidates:
        if _world_usable(candidate) and _version_ok(str(candidate)):
            return str(candidate.resolve())
    return None


def make_store(directory: Path, wheels: Path, python: str,
               sources: tuple[str, ...] = ATTACK_PLUGINS) -> PluginStore:
    """A store in *directory* with *sources* installed from *wheels*, offline."""
    directory.mkdir(mode=0o755, parents=True, exist_ok=True)
    store = PluginStore(directory / "store", python=python)
    for source in sources:
        store.install(source, find_links=[wheels], no_index=True)
    return store


# ---- waiting and processes -------------------------------------------------------------------


def wait_until(condition: Callable[[], bool], timeout: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(step)


def alive(pid: int) -> bool:
    """Whether *pid* is a live process (a zombie is dead)."""
    try:
        stat_line = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat_line.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def descendants(pid: int) -> set[int]:
    """The live processes below *pid* (children, grandchildren, ...), from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] not in ("Z", "X"):
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found: set[int] = set()
    stack = [pid]
    while stack:
        for child in children.get(stack.pop(), ()):
            if child not in found:
                found.add(child)
                stack.append(child)
    return found


def status_field(pid: int | str, key: str) -> list[str]:
    """A line of /proc/PID/status, split (``Uid`` -> real, effective, saved, fs)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name == key:
            return value.split()
    raise KeyError(key)


@contextlib.contextmanager
def peak_rss_growth() -> Iterator[list[int]]:
    """Yields a list that receives the host's peak RSS growth (bytes) over the block."""
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
        key = "VmHWM"
    except OSError:
        key = "VmRSS"
    before = int(status_field("self", "VmRSS")[0])
    growth: list[int] = []
    yield growth
    growth.append((int(status_field("self", key)[0]) - before) * 1024)


# ---- the host survived -----------------------------------------------------------------------


@dataclass
class Bystander:
    """Another plugin's worker, started before the attack: it must keep answering, undisturbed
    (the same worker process), and the attacking plugin must serve its next call."""

    bridge: HostBridge
    pid: int

    @classmethod
    def start(cls, bridge: HostBridge) -> Bystander:
        result = bridge.call_tool("bystander", "echo", {"text": "hi"}, timeout=30)
        assert result.content["text"] == "hi", result
        pid = bridge.worker("bystander").pid
        assert pid is not None
        return cls(bridge, pid)

    def check(self, *, same_worker: bool = True) -> None:
        result = self.bridge.call_tool("bystander", "echo", {"text": "still here"}, timeout=30)
        assert result.content["text"] == "still here", result
        if same_worker:
            assert self.bridge.worker("bystander").pid == self.pid, "the bystander was restarted"
        again = self.bridge.call_tool("attacks", "ok", {"text": "next"}, timeout=30)
        assert again.content == "next", again


def attempt_failed(outcome: dict[str, Any], *errnos: int) -> None:
    """Assert that a tool's report says the attempt failed, with one of *errnos* if given."""
    assert outcome.get("ok") is False, f"the attack succeeded: {outcome}"
    if errnos:
        assert outcome.get("errno") in errnos, f"unexpected failure: {outcome}"


# ---- running attacks -------------------------------------------------------------------------


def open_bridge(store: PluginStore, profile: str, **kwargs: Any) -> HostBridge:
    """A bridge over *store* under *profile* whose plugins no crash marks failed."""
    kwargs.setdefault("crash_budget", NO_BUDGET)
    return HostBridge(store, profile=profile, **kwargs)


def attack(bridge: HostBridge, tool: str, *, timeout: float = 60, **arguments: Any) -> Any:
    """Run one attack tool; its report (the tool itself must not raise)."""
    result = bridge.call_tool("attacks", tool, arguments, timeout=timeout)
    assert not result.is_error, f"{tool} raised: {result.content}\n{result.traceback}"
    return result.content


def assert_absent(secret: str, *seen: object) -> None:
    """*secret* appears nowhere in what the attack got."""
    text = json.dumps(seen, default=repr)
    assert secret not in text, f"the secret leaked: {text[:2000]}"
