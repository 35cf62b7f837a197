"""Faults in plugin code, and what the host makes of them.

One "faulty" plugin has a tool per fault. Every test checks three things: the host survives
(the pytest process, or a host subprocess that must end by exit status, not by a signal); the
caller gets the documented error; and a bystander, another plugin's worker started before the
fault ("shout"), keeps answering afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import secrets
import select
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from helpers_build import make_wheel

from hostbridge import (
    CallTimeoutError,
    HostBridge,
    PluginFailedError,
    WorkerCrashedError,
    WorkerLimits,
    launcher_info,
)
from isolator import PluginStore

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

FAULTY_PY = '''\
"""Tools that misbehave, one way each."""
from __future__ import annotations

import os
import resource
import subprocess
import sys
import time


def ok(text: str) -> str:
    """Return *text*."""
    return text


def whoami() -> dict:
    """This process's pid as it sees it, and NSpid (the first is the pid the host sees)."""
    nspid = []
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("NSpid:"):
                nspid = [int(p) for p in line.split()[1:]]
    return {"pid": os.getpid(), "nspid": nspid}


def limits() -> dict:
    """The worker's soft resource limits."""
    return {name: resource.getrlimit(getattr(resource, name))[0]
            for name in ("RLIMIT_AS", "RLIMIT_NOFILE", "RLIMIT_CPU")}


def exit_now(code: int) -> None:
    """Exit at once, no cleanup."""
    print(f"faulty: exiting with {code}", file=sys.stderr, flush=True)
    os._exit(code)


def segfault() -> None:
    """Read address 0."""
    print("faulty: reading address 0", file=sys.stderr, flush=True)
    import ctypes
    ctypes.string_at(0)


def hang(seconds: float = 3600.0, pidfile: str = "") -> None:
    """Sleep, uninterruptibly as far as the host is concerned."""
    if pidfile:
        with open(pidfile, "w") as f:
            f.write(str(whoami()["nspid"][0]))
    time.sleep(seconds)


def spin(seconds: float = 30.0) -> int:
    """Burn CPU."""
    end = time.monotonic() + seconds
    n = 0
    while time.monotonic() < end:
        n += 1
    return n


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def flood(megabytes: int, newlines: bool = True) -> int:
    """Write *megabytes* MiB to stdout and as much to stderr, in 1 KiB lines or as one line."""
    block = (b"x" * 1023 + b"\\n" if newlines else b"x" * 1024) * 1024
    for _ in range(megabytes):
        _write_all(1, block)
        _write_all(2, block)
    _write_all(1, b"\\nflood-end\\n")
    _write_all(2, b"\\nflood-end\\n")
    return megabytes


def garbage() -> None:
    """Write a byte that is never valid msgpack onto the host connection."""
    from ohp_worker import main
    os.write(main._session.fd, bytes([0xC1]))
    time.sleep(30)


def oversized(megabytes: int) -> None:
    """Announce a 1 GiB bin object, then send *megabytes* MiB of it."""
    from ohp_worker import main
    import socket
    sock = socket.socket(fileno=os.dup(main._session.fd))
    sock.sendall(b"\\xc6" + (1 << 30).to_bytes(4, "big"))
    chunk = bytes(1 << 20)
    for _ in range(megabytes):
        sock.sendall(chunk)
    time.sleep(30)


def hog(step_mb: int = 50, cap_mb: int = 4096) -> int:
    """Allocate *step_mb* MiB at a time until MemoryError (never more than *cap_mb*)."""
    if resource.getrlimit(resource.RLIMIT_AS)[0] == resource.RLIM_INFINITY:
        raise RuntimeError("no address-space limit: not eating the machine's memory")
    x = []
    while len(x) * step_mb < cap_mb:
        x.append(bytearray(step_mb << 20))
    return len(x)


def spawn(token: str, marker: str) -> int:
    """Start a grandchild that leaves the session (setsid) and sleeps; token is in its argv.
    A relative *marker* is a file in the worker's own scratch directory (the one place it may
    write under the standard profile)."""
    marker = os.path.join(os.environ.get("TMPDIR", "/tmp"), marker)
    code = ("import os, sys, time; os.setsid(); "
            "open(sys.argv[1], 'w').write(str(os.getpid())); time.sleep(3600)")
    proc = subprocess.Popen([sys.executable, "-c", code, marker, token])
    deadline = time.monotonic() + 10
    while not os.path.exists(marker):
        if time.monotonic() > deadline or proc.poll() is not None:
            raise RuntimeError(f"the grandchild did not start ({proc.poll()})")
        time.sleep(0.01)
    return proc.pid
'''

TOOL_NAMES = ["ok", "whoami", "limits", "exit_now", "segfault", "hang", "spin", "flood",
              "garbage", "oversized", "hog", "spawn"]

# Large enough that no test in this file trips it by accident (crashes are remembered in the
# store); test_crash_budget sets its own.
NO_BUDGET = (10_000, 300.0)
PID_NAMESPACE = launcher_info()["pid_namespace"]
needs_pid_namespace = pytest.mark.skipif(
    not PID_NAMESPACE,
    reason="workers do not run in a PID namespace here (unshare --user --pid unavailable): "
    "a grandchild that calls setsid() escapes the worker's process group",
)


def faulty_wheel(directory: Path) -> Path:
    return make_wheel(directory, "faulty-plugin", "1.0.0", files={
        "faulty_plugin/__init__.py": "",
        "faulty_plugin/tools.py": FAULTY_PY,
    }, entry_points={
        "openhands.plugins": {"faulty": "faulty_plugin"},
        "openhands.tools": {name: f"faulty_plugin.tools:{name}" for name in TOOL_NAMES},
    })


# ---- fixtures ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory, example_wheelhouse: Path) -> PluginStore:
    """One store for the module (installing is the slow part): faulty and shout."""
    base = tmp_path_factory.mktemp("faults")
    faulty_wheel(base / "links")
    store = PluginStore(base / "store")
    for source in ("pypi:faulty-plugin", "pypi:openhands-plugin-shout"):
        store.install(source, find_links=[base / "links", example_wheelhouse], no_index=True)
    return store


@pytest.fixture(autouse=True)
def _forget_crashes(store: PluginStore) -> Iterator[None]:
    """Crashes are remembered in STORE/state/: each test starts with none (no backoff)."""
    for name in ("faulty", "shout"):
        (store.root / "state" / f"{name}.json").unlink(missing_ok=True)
    yield
    for name in ("faulty", "shout"):
        (store.root / "state" / f"{name}.json").unlink(missing_ok=True)


@pytest.fixture
def bridge(store: PluginStore) -> Iterator[HostBridge]:
    with HostBridge(store, crash_budget=NO_BUDGET) as b:
        yield b


@dataclass
class Bystander:
    """Another plugin's worker, started before the fault."""

    bridge: HostBridge
    pid: int

    def check(self, *, same_worker: bool = True) -> None:
        result = self.bridge.call_tool("shout", "shout", {"text": "still here"}, timeout=30)
        assert result.content == "STILL HERE!"
        if same_worker:  # undisturbed: not even restarted
            assert self.bridge.worker("shout").pid == self.pid


def start_bystander(bridge: HostBridge) -> Bystander:
    assert bridge.call_tool("shout", "shout", {"text": "hi"}).content == "HI!"
    pid = bridge.worker("shout").pid
    assert pid is not None
    return Bystander(bridge, pid)


@pytest.fixture
def bystander(bridge: HostBridge) -> Bystander:
    return start_bystander(bridge)


@pytest.fixture
def note(request: pytest.FixtureRequest) -> Callable[[str, object], None]:
    """Print a measurement (shown with -s or -rA): what the caller saw, how long it took."""

    def note(key: str, value: object) -> None:
        print(f"[{request.node.name}] {key}: {value}")

    return note


# ---- helpers -----------------------------------------------------------------------------


def alive(pid: int) -> bool:
    """Whether *pid* is a live process (a zombie is dead)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def gone(pid: int) -> bool:
    return not alive(pid)


def with_token(token: str) -> list[int]:
    """Live processes whose command line holds *token*."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if token.encode() in cmdline and alive(int(entry.name)):
            found.append(int(entry.name))
    return found


def wait_until(condition: Callable[[], bool], timeout: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(step)


def worker_pid(bridge: HostBridge, plugin: str = "faulty") -> int:
    """The pid (as the host sees it) of the process that runs *plugin*'s tools."""
    me = bridge.call_tool(plugin, "whoami", {}, timeout=30).content
    pid = bridge.worker(plugin).pid
    assert pid is not None
    # The worker has a /proc of its own: its NSpid there is its own namespace's pid only. The
    # host's /proc says which host pid that is.
    assert host_nspid(pid)[-1] == me["pid"]
    return pid


def host_nspid(pid: int) -> list[int]:
    """NSpid of *pid* in the host's /proc: the host's pid, then the pid in each namespace."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("NSpid:"):
            return [int(p) for p in line.split()[1:]]
    return []


def status_kib(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


@contextlib.contextmanager
def peak_rss_growth() -> Iterator[list[int]]:
    """Yields a list that receives the host's peak RSS growth (bytes) over the block."""
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS
        key = "VmHWM"
    except OSError:
        key = "VmRSS"
    before = status_kib("VmRSS")
    growth: list[int] = []
    yield growth
    growth.append((status_kib(key) - before) * 1024)


def single_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, result  # exited: neither a signal nor a traceback
    # (A worker that degrades from its profile warns on its own line.)
    lines = [line for line in result.stderr.splitlines()
             if not line.startswith("ohp: warning: ")]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("ohp: error: ")
    return lines[0]


def ohp(root: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hostbridge.cli", *args, "--root", str(root)],
                          capture_output=True, text=True, timeout=timeout, check=False)


def crash_and_recover(bridge: HostBridge, tool: str, arguments: dict[str, Any],
                      note: Callable[[str, object], None]) -> WorkerCrashedError:
    """Call a crashing *tool*; check the next call gets a new worker; return the error."""
    pid = worker_pid(bridge)
    with pytest.raises(WorkerCrashedError) as info:
        bridge.call_tool("faulty", tool, arguments, timeout=30)
    crashed = time.monotonic()
    assert bridge.call_tool("faulty", "ok", {"text": "again"}, timeout=30).content == "again"
    note("crash_to_working_s", round(time.monotonic() - crashed, 3))
    assert not alive(pid)
    assert worker_pid(bridge) != pid
    error = info.value
    assert "\n" not in str(error)
    note("error", f"{type(error).__name__}: {error}")
    return error


# ---- 1, 2: the worker dies in the middle of a call ---------------------------------------


def test_exit_mid_call(bridge: HostBridge, bystander: Bystander,
                       note: Callable[[str, object], None]) -> None:
    error = crash_and_recover(bridge, "exit_now", {"code": 3}, note)
    assert (error.exit_code, error.signal) == (3, None)
    assert "exit status 3" in str(error)
    assert any("exiting with 3" in line for line in error.stderr_tail)
    assert "exiting with 3" in str(error)
    bystander.check()


def test_segfault(bridge: HostBridge, bystander: Bystander,
                  note: Callable[[str, object], None]) -> None:
    error = crash_and_recover(bridge, "segfault", {}, note)
    assert error.signal == "SIGSEGV", error
    assert error.exit_code is None
    assert "SIGSEGV" in str(error)
    assert error.stderr_tail, "no stderr lines in the error"
    bystander.check()


# ---- 3: a hung tool --------------------------------------------------------------------


def test_hung_tool_passes_its_deadline_and_its_worker_goes(
    bridge: HostBridge, bystander: Bystander, note: Callable[[str, object], None]
) -> None:
    pid = worker_pid(bridge)
    worker = bridge.worker("faulty")
    with ThreadPoolExecutor(1) as pool:
        # Another call in flight on the same worker: the hung call below waits behind it.
        other = pool.submit(bridge.call_tool, "faulty", "hang", {}, timeout=30)
        assert wait_until(lambda: worker.busy, 5)
        started = time.monotonic()
        with pytest.raises(CallTimeoutError, match="deadline") as info:
            bridge.call_tool("faulty", "hang", {}, timeout=1)
        took = time.monotonic() - started
        assert 0.9 <= took < 3, took
        assert "\n" not in str(info.value)
        with pytest.raises(WorkerCrashedError) as other_info:
            other.result(timeout=10)
    note("deadline", f"{took:.2f} s: {info.value}")
    note("in flight", str(other_info.value))
    assert wait_until(lambda: not alive(pid), 3)
    assert bridge.call_tool("faulty", "ok", {"text": "next"}, timeout=30).content == "next"
    assert worker_pid(bridge) != pid
    bystander.check()


def test_hung_async_tool_deadline_and_cancellation(
    bridge: HostBridge, bystander: Bystander, note: Callable[[str, object], None]
) -> None:
    hang = bridge.tool("faulty", "hang")

    async def deadline() -> float:
        started = time.monotonic()
        with pytest.raises(CallTimeoutError, match="deadline"):
            await hang.acall({}, timeout=1)
        return time.monotonic() - started

    async def cancelled() -> float:
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(hang.acall({}), 1)
        return time.monotonic() - started

    for scenario in (deadline, cancelled):
        pid = worker_pid(bridge)
        took = asyncio.run(scenario())
        assert 0.9 <= took < 3, (scenario.__name__, took)
        note(scenario.__name__, f"{took:.2f} s")
        assert wait_until(functools.partial(gone, pid), 3), scenario.__name__
        assert bridge.call_tool("faulty", "ok", {"text": "next"}, timeout=30).content == "next"
        assert worker_pid(bridge) != pid
    bystander.check()


# ---- 4: output floods ------------------------------------------------------------------


@pytest.mark.parametrize("newlines", [True, False], ids=["lines", "one-endless-line"])
def test_output_flood_keeps_the_host_bounded(
    bridge: HostBridge, bystander: Bystander, newlines: bool,
    note: Callable[[str, object], None],
) -> None:
    worker = bridge.worker("faulty")
    with peak_rss_growth() as growth:
        result = bridge.call_tool("faulty", "flood", {"megabytes": 50, "newlines": newlines},
                                  timeout=60)
        assert result.content == 50
        assert wait_until(lambda: all(worker.logs[s] and worker.logs[s][-1] == "flood-end"
                                      for s in ("stdout", "stderr")), 10)
    note("host_peak_rss_growth_mib", round(growth[0] / (1 << 20), 1))
    assert growth[0] < 50 << 20, f"host RSS grew by {growth[0] >> 20} MiB"
    for stream in ("stdout", "stderr"):
        assert len(worker.logs[stream]) <= 200
        assert all(len(line) <= 4096 for line in worker.logs[stream])
    assert bridge.call_tool("faulty", "ok", {"text": "after"}).content == "after"
    assert bridge.worker("faulty") is worker
    bystander.check()


# ---- 5: malformed frames ---------------------------------------------------------------


def test_invalid_msgpack_is_a_protocol_error(
    bridge: HostBridge, bystander: Bystander, note: Callable[[str, object], None]
) -> None:
    pid = worker_pid(bridge)
    started = time.monotonic()
    with pytest.raises(WorkerCrashedError, match="protocol error") as info:
        bridge.call_tool("faulty", "garbage", {}, timeout=20)
    note("error", str(info.value))
    assert time.monotonic() - started < 5
    assert wait_until(lambda: not alive(pid), 3)
    assert bridge.call_tool("faulty", "ok", {"text": "next"}).content == "next"
    bystander.check()


def test_oversized_frame_is_a_protocol_error_not_a_blow_up(
    bridge: HostBridge, bystander: Bystander, note: Callable[[str, object], None]
) -> None:
    # A frame announcing 1 GiB. The host's unpacker cannot reject it from the header alone
    # (msgpack checks max_bin_len only when the object is complete), so the bound that trips
    # is the buffer for an incomplete message (max_buffer, 64 MiB): send a little more.
    pid = worker_pid(bridge)
    with peak_rss_growth() as growth:
        started = time.monotonic()
        with pytest.raises(WorkerCrashedError, match="protocol error") as info:
            bridge.call_tool("faulty", "oversized", {"megabytes": 66}, timeout=20)
        assert time.monotonic() - started < 10
    note("error", str(info.value))
    note("host_peak_rss_growth_mib", round(growth[0] / (1 << 20), 1))
    # The incomplete message is held up to max_buffer (64 MiB), never what it announces.
    assert growth[0] < 160 << 20, f"host RSS grew by {growth[0] >> 20} MiB"
    assert wait_until(lambda: not alive(pid), 3)
    assert bridge.call_tool("faulty", "ok", {"text": "next"}).content == "next"
    bystander.check()


# ---- 6: resource limits ----------------------------------------------------------------


def test_unbounded_allocation_under_a_memory_limit(
    store: PluginStore, note: Callable[[str, object], None]
) -> None:
    limit = 512 << 20
    with HostBridge(store, limits=WorkerLimits(memory_bytes=limit),
                    crash_budget=NO_BUDGET) as bridge:
        bystander = start_bystander(bridge)
        assert bridge.call_tool("faulty", "limits", {}).content["RLIMIT_AS"] == limit
        try:
            result = bridge.call_tool("faulty", "hog", {}, timeout=60)
        except WorkerCrashedError as exc:  # the worker died of it: acceptable too
            note("outcome", f"WorkerCrashedError: {exc}")
        else:
            note("outcome", f"is_error result: {result.content}")
            assert result.is_error, result
            assert result.content.startswith("MemoryError"), result.content
        assert bridge.call_tool("faulty", "ok", {"text": "next"}, timeout=30).content == "next"
        bystander.check()


def test_cpu_limit_kills_a_spinning_worker(
    store: PluginStore, note: Callable[[str, object], None]
) -> None:
    with HostBridge(store, limits=WorkerLimits(cpu_seconds=1),
                    crash_budget=NO_BUDGET) as bridge:
        bystander = start_bystander(bridge)
        assert bridge.call_tool("faulty", "limits", {}).content["RLIMIT_CPU"] == 1
        started = time.monotonic()
        with pytest.raises(WorkerCrashedError) as info:
            bridge.call_tool("faulty", "spin", {"seconds": 30}, timeout=20)
        assert time.monotonic() - started < 5
        note("error", str(info.value))
        assert info.value.signal in ("SIGXCPU", "SIGKILL"), info.value
        assert bridge.call_tool("faulty", "ok", {"text": "next"}, timeout=30).content == "next"
        bystander.check()


# ---- 7, 8: the whole process tree ------------------------------------------------------


@needs_pid_namespace
@pytest.mark.parametrize("end", ["close", "crash"])
def test_a_setsid_grandchild_dies_with_its_worker(
    bridge: HostBridge, bystander: Bystander, tmp_path: Path, end: str
) -> None:
    token = f"faults-grandchild-{secrets.token_hex(8)}"
    scratch = bridge.worker("faulty").scratch
    bridge.call_tool("faulty", "spawn", {"token": token, "marker": "marker"}, timeout=30)
    if scratch is not None:  # the marker is in it (else in the worker's TMPDIR, the host's)
        assert (scratch / "marker").exists()
    assert with_token(token), "the grandchild is not visible from the host"
    if end == "close":
        bridge.close()
    else:
        with pytest.raises(WorkerCrashedError, match="exit status 5"):
            bridge.call_tool("faulty", "exit_now", {"code": 5}, timeout=30)
    assert wait_until(lambda: not with_token(token), 5), with_token(token)
    assert bridge.call_tool("faulty", "ok", {"text": "next"}, timeout=30).content == "next"
    bystander.check(same_worker=end != "close")


HOST_SCRIPT = """\
import os, sys, threading, time
from isolator import PluginStore
from hostbridge import HostBridge
root, marker, mode = sys.argv[1:4]
bridge = HostBridge(PluginStore(root), crash_budget=(10_000, 300.0))
if mode == "thread":  # as an asyncio host would: acall starts workers from an executor thread
    starter = threading.Thread(target=bridge.worker, args=("faulty",))
    starter.start()
    starter.join()
me = bridge.call_tool("faulty", "whoami", {}).content
bridge.call_tool("faulty", "spawn", {"token": os.environ["FAULTS_TOKEN"], "marker": marker})
worker = bridge.worker("faulty")
# Busy in a sync tool when the host dies: the worker does not read its socket, so only a
# signal can tell it the host is gone.
threading.Thread(target=bridge.call_tool, args=("faulty", "hang", {}), daemon=True).start()
while not worker.busy:
    time.sleep(0.01)
time.sleep(0.2)
status = open(f"/proc/{worker.pid}/status").read().splitlines()
nspid = [int(p) for line in status if line.startswith("NSpid:") for p in line.split()[1:]]
print(nspid[0] if nspid[-1] == me["pid"] else -1, worker.pid, flush=True)
time.sleep(3600)
"""


def read_line(proc: subprocess.Popen[str], timeout: float) -> str:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    return proc.stdout.readline() if ready else ""


@needs_pid_namespace
@pytest.mark.parametrize("started_from", ["main", "thread"])
def test_workers_and_their_tree_die_with_a_killed_host(
    store: PluginStore, bystander: Bystander, tmp_path: Path,
    started_from: str,
) -> None:
    token = f"faults-orphan-{secrets.token_hex(8)}"  # in the grandchild's argv, not the host's
    host = subprocess.Popen(
        [sys.executable, "-c", HOST_SCRIPT, str(store.root), "marker", started_from],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "FAULTS_TOKEN": token},
    )
    pids: list[int] = []
    try:
        line = read_line(host, 60)
        assert line, host.stderr.read() if host.poll() is not None else "no output"  # type: ignore[union-attr]
        pids = [int(pid) for pid in line.split()]
        real_pid, reported_pid = pids
        assert reported_pid == real_pid  # Worker.pid is the process that runs the tools
        assert alive(real_pid) and with_token(token)
        host.send_signal(signal.SIGKILL)
        host.wait(timeout=10)
        dead = wait_until(lambda: not alive(real_pid) and not with_token(token), 10)
        assert dead, f"survived the host: {[p for p in (real_pid, *with_token(token))]}"
    finally:
        for pid in (*pids, *with_token(token)):  # what this test started, if it survived
            if alive(pid):
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
        if host.poll() is None:
            host.kill()
            host.wait()
        host.stdout.close()  # type: ignore[union-attr]
        host.stderr.close()  # type: ignore[union-attr]
    assert host.returncode == -signal.SIGKILL
    bystander.check()


# ---- 9: the crash budget ---------------------------------------------------------------


def test_crash_budget_marks_the_plugin_failed_until_reset(
    store: PluginStore, note: Callable[[str, object], None]
) -> None:
    def crash(bridge: HostBridge) -> None:
        with pytest.raises(WorkerCrashedError, match="exit status 4"):
            bridge.call_tool("faulty", "exit_now", {"code": 4}, timeout=30)

    def failed_plugins() -> list[str]:
        doctor = ohp(store.root, "doctor", "--json")
        return list(json.loads(doctor.stdout)["failed_plugins"])

    with HostBridge(store, crash_budget=(3, 60.0)) as bridge:
        bystander = start_bystander(bridge)
        for _ in range(3):
            crash(bridge)
        assert bridge.status("faulty")["state"] == "failed"
        assert bridge.status("faulty")["crashes"] == 3
        started = time.monotonic()
        with pytest.raises(PluginFailedError, match="reset") as info:
            bridge.call_tool("faulty", "ok", {"text": "x"}, timeout=30)
        assert time.monotonic() - started < 0.5  # no worker was started
        note("failed", f"{time.monotonic() - started:.3f} s: {info.value}")
        assert bridge.status("faulty")["state"] == "failed"
        assert bridge.status("shout")["state"] == "running"
        bystander.check()
        bridge.reset("faulty")
        assert bridge.status("faulty")["crashes"] == 0
        assert bridge.call_tool("faulty", "ok", {"text": "back"}, timeout=30).content == "back"
        for _ in range(3):
            crash(bridge)
    assert (store.root / "state" / "faulty.json").is_file()

    # The verdict survives the host: another host, ohp doctor and ohp call see it.
    with HostBridge(store, crash_budget=(3, 60.0)) as bridge:
        with pytest.raises(PluginFailedError):
            bridge.call_tool("faulty", "ok", {"text": "x"})
        assert bridge.status("faulty")["state"] == "failed"
    assert failed_plugins() == ["faulty"]
    refused = ohp(store.root, "call", "faulty", "ok", "--args", '{"text": "x"}')
    assert "reset" in single_error_line(refused)
    note("ohp call", refused.stderr.strip())
    reset = ohp(store.root, "reset", "faulty")
    assert reset.returncode == 0, reset
    assert failed_plugins() == []
    with HostBridge(store) as bridge:
        assert bridge.call_tool("faulty", "ok", {"text": "again"}).content == "again"


# ---- 10, 11: heartbeats and idle workers -----------------------------------------------


def test_worker_pid_is_the_process_running_the_tools(bridge: HostBridge) -> None:
    for _ in range(3):  # every start alike: a launcher must not pile up on the last one
        worker = bridge.worker("faulty")
        me = bridge.call_tool("faulty", "whoami", {}).content
        assert worker.pid is not None
        nspid = host_nspid(worker.pid)
        assert nspid[-1] == me["pid"]
        # One PID namespace of its own (NSpid: the host's pid, then 1), not namespaces nested.
        assert nspid[1:] == ([1] if PID_NAMESPACE else [])
        assert worker.hello["pid"] == (1 if PID_NAMESPACE else worker.pid)
        bridge.close()


def test_a_stopped_worker_misses_its_heartbeat_and_is_replaced(
    store: PluginStore, note: Callable[[str, object], None]
) -> None:
    with HostBridge(store, heartbeat=0.5, heartbeat_timeout=0.5,
                    crash_budget=NO_BUDGET) as bridge:
        bystander = start_bystander(bridge)
        worker = bridge.worker("faulty")
        pid = worker_pid(bridge)
        assert worker.pid == pid
        os.kill(pid, signal.SIGSTOP)
        try:
            assert wait_until(lambda: not worker.alive, 4), "the stopped worker is still used"
            assert wait_until(lambda: not alive(pid), 3)
            assert bridge.status("faulty")["state"] != "running"
            assert bridge.status("faulty")["crashes"] == 1
            assert worker.crash is not None and "heartbeat" in str(worker.crash)
            note("replaced", f"{bridge.status('faulty')}")
        finally:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGCONT)
        assert bridge.call_tool("faulty", "ok", {"text": "next"}, timeout=30).content == "next"
        assert worker_pid(bridge) != pid
        bystander.check()  # shout answered every heartbeat: the same worker


@pytest.mark.parametrize("heartbeat", [None, 0.5], ids=["no-heartbeat", "heartbeat"])
def test_an_idle_worker_is_closed(store: PluginStore, heartbeat: float | None) -> None:
    # Heartbeats must not count as use, or a pinged worker would never be idle.
    with HostBridge(store, idle_timeout=1, heartbeat=heartbeat,
                    crash_budget=NO_BUDGET) as bridge:
        bystander = start_bystander(bridge)
        worker = bridge.worker("faulty")
        pid = worker_pid(bridge)
        idle_since = time.monotonic()
        assert wait_until(lambda: not alive(pid), 4), "the idle worker is still running"
        assert time.monotonic() - idle_since >= 0.9
        assert not worker.alive
        assert bridge.status("faulty")["state"] == "stopped"
        assert bridge.status("faulty")["crashes"] == 0  # closing an idle worker is no crash
        assert bridge.call_tool("faulty", "ok", {"text": "next"}, timeout=30).content == "next"
        assert worker_pid(bridge) != pid
        bystander.check(same_worker=False)  # it was idle too


# ---- 12: the command line --------------------------------------------------------------


def test_cli_reports_a_hang_and_a_crash_in_one_line(
    store: PluginStore, bystander: Bystander, tmp_path: Path,
    note: Callable[[str, object], None],
) -> None:
    started = time.monotonic()
    hung = ohp(store.root, "call", "faulty", "hang", "--args", "{}", "--timeout", "1")
    took = time.monotonic() - started
    # The tool ran and hung (a tool that failed to start would say so, not pass a deadline).
    assert "deadline" in single_error_line(hung)
    assert took < 10, took
    note("hung", f"{took:.2f} s, exit {hung.returncode}: {hung.stderr.strip()}")
    faulty = str(store.get("faulty").path)  # in the argv of its launchers and interpreter
    assert wait_until(lambda: not with_token(faulty), 5), with_token(faulty)

    crashed = ohp(store.root, "call", "faulty", "exit_now", "--args", '{"code": 3}')
    assert "exit status 3" in single_error_line(crashed)
    note("crashed", f"exit {crashed.returncode}: {crashed.stderr.strip()}")

    done = ohp(store.root, "call", "faulty", "ok", "--args", '{"text": "fine"}')
    errors = [line for line in done.stderr.splitlines() if not line.startswith("ohp: warning:")]
    assert (done.returncode, done.stdout, errors) == (0, "fine\n", [])
    bystander.check()
