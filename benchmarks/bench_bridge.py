"""Bridge: a plugin worker's start, round trip, bulk transfer and memory against bare Python.

Everything runs in ONE host process through the Python API, each figure a ratio from this run.
The plugin is a crafted wheel with two function tools, ``echo(data: bytes) -> bytes`` and
``noop() -> None``, installed offline into a new store in a temporary directory; one untimed
worker start first creates the store's runtime (the worker's code and msgpack for the ABI).

1. ``start``: cold start to the first tool result. ``HostBridge(store)`` made anew each run,
   then ``bridge.call_tool(plugin, "noop", {})``: lease, spawn (through the launcher:
   ``setpriv --pdeathsig`` and ``unshare`` into a PID namespace, where they work), handshake
   (``hello``), ``tools.list`` and ``tools.call``; also a bare ``Worker(store, plugin)`` with
   ``start()`` and one ``tools.call`` (no ``tools.list``). Closing is not timed. Against the
   plugin venv's interpreter spawned and waited for by ``subprocess.run``: ``python -I -S -c
   pass``, and ``python -I -S -B -c "import sys; sys.path.append(DIR); import msgpack"`` with
   DIR the store's ``runtime/msgpack-<abi>-<version>``, as the worker gets it (``-B`` as the
   worker runs: that copy has no ``.pyc``); more rows: the host venv's msgpack, whose ``.pyc``
   exist, and ``pass`` behind the worker's launcher. Target: the bridge within 1.5x of the
   bare msgpack import. The bare ``Worker`` runs are timed in steps (the store lease;
   ``ensure_runtime``; the spawn through hostbridge's spawner thread, which returns once the
   launcher is exec'd; the rest of ``_spawn``: entry points, socketpair, three threads; spawn
   to ``hello`` answered; the first ``tools.call``), and a copy of the worker's command line
   (as ``Worker._spawn`` builds it, captured at the spawn, without the launcher) is run on a
   socketpair of ours with ``python -X importtime``, driven through ``hello`` and
   ``tools.call noop``: median per module over the runs. The same copy is also run against a
   copy of the runtime where this benchmark compiled everything (``compileall``,
   unchecked-hash; the store compiles the worker package but not msgpack), to show what the
   rest would save.
2. ``roundtrip``: ``ping`` through ``Worker.request`` and ``tools.call noop`` through
   ``HostBridge.call_tool``, each call timed, sequentially; then with 8 in flight:
   ``Worker.submit`` futures kept 8 deep (the oldest awaited), and 8 threads calling
   ``Worker.request`` at once. Against a raw echo: the host's Python (``-I -S -B``) as a child
   on a socketpair, with the worker's own ``protocol`` module and msgpack from the runtime,
   answering each request (``"pong"`` to ``ping``) in a loop shaped like the worker's
   (``recv``, ``Connection.receive_data``, ``sendall(Connection.send(...))``); the host side
   drives it from one thread with a ``Connection`` too (no futures, no reader thread),
   sequentially and 8 deep. The raw echo reads with ``recv(64 KiB)`` on both ends; a second
   row with ``recv(1 MiB)`` as the worker and the host's reader thread do (a fresh 1 MiB
   bytes object per read is, until the process has freed some large block, an mmap and a
   munmap; a probe in a fresh interpreter times one read each way). A third row is the same
   raw client against a copy of the worker's own command line: the worker's side alone.
   Latencies are per call (p50, p99 over every call of every pass), rates per pass (calls /
   pass time). Also ``await Worker.asubmit('ping')`` and ``await HostBridge.acall_tool(noop)``
   on an event loop of ours, sequentially and 8 at once (8 tasks awaiting in turn). Targets
   (#19): sequential ``ping``, ``call_tool`` and ``acall_tool`` p50 within 2x of the raw
   echo's; ``ping`` 8 deep, ``acall_tool`` 8 at once and 8 threads calling ``call_tool`` at
   least half the raw echo's rate 8 deep.
3. ``payload``: ``tools.call echo`` with ``data`` 1 MiB of random bytes (msgpack bin; the
   worker hands the tool bytes and returns them as bin), through ``HostBridge.call_tool``,
   ``Worker.request`` and the raw echoes (``echo`` returns its first param). MiB/s counts the
   payload ONE way: 1 MiB per call, although 2 MiB cross the socket. Target: >= 500 MiB/s.
4. ``memory``: VmRSS (and RssAnon, RssFile) from ``/proc/PID/status`` of a worker's
   interpreter (``Worker.pid``) after ``start()``, one ``tools.call noop`` and 0.5 s idle;
   then after 20 1-MiB echoes and 0.5 s more; the launcher left waiting beside it (``unshare
   --fork``) on its own row; against the bare msgpack import above and a bare interpreter,
   left sleeping. Target: <= 15 MiB for the interpreter.

Passes alternate between the sides. Judged: the best start of each side (least disturbed by
other load on the machine; the medians' ratio is printed beside it), the p50 over every call,
and the best pass's rate (calls/s, MiB/s).

    python benchmarks/bench_bridge.py [--repeat N] [--calls N] [--passes N] [--payloads N]
        [--only PART ...] [--json FILE] [--strict]

Exit status 0; 1 with ``--strict`` when a target is not met; 2 when the benchmark cannot run.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(REPO_ROOT), str(REPO_ROOT / "tests")]

from _measure import Side, finish, gc_paused, ms, print_sides  # noqa: E402
from helpers_build import make_wheel  # noqa: E402 - the repo paths must be set first

import hostbridge.launch._sandbox as sandbox_module  # noqa: E402
import hostbridge.supervision._process as process_module  # noqa: E402
from hostbridge import HostBridge, Worker  # noqa: E402
from hostbridge.launch._runtime import ensure_runtime  # noqa: E402
from hostbridge.worker import protocol  # noqa: E402
from isolator import PluginStore  # noqa: E402
from isolator.sandbox._launcher import UNSHARE as _UNSHARE  # noqa: E402
from isolator.sandbox._launcher import launcher_info  # noqa: E402

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterator, Sequence
    from concurrent.futures import Future

    from isolator.store._store import InstalledPlugin

PARTS = ("start", "roundtrip", "payload", "memory")
PLUGIN = "benchbridge"
PACKAGE = "bench-bridge-plugin"
START_RATIO_MAX = 1.5
ZYGOTE_START_RATIO_MAX = 1.0  # #19 deliverable 2: a fork beats an exec
ROUNDTRIP_RATIO_MAX = 2.0  # #19: a sequential call within 2x a raw socketpair echo
PIPELINE_RATIO_MIN = 0.5
PAYLOAD_MIBS_MIN = 500.0
RSS_MIB_MAX = 15.0
DEPTH = 8
MIB = 1 << 20
RECV_WORKER = 1 << 20  # what the worker and the host's reader thread ask recv() for
RECV_SMALL = 1 << 16  # below glibc's default mmap threshold (128 KiB)
ENV_KEYS = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR")  # what a worker gets

TOOLS_PY = '''\
"""Tools for the bridge benchmark."""


def echo(data: bytes) -> bytes:
    """Return *data* unchanged."""
    return data


def noop() -> None:
    """Do nothing."""
'''

# The raw echo: the worker's protocol module and msgpack, a loop shaped like the worker's.
ECHO_CHILD = """\
import sys
sys.path.insert(0, sys.argv[1]); sys.path.append(sys.argv[2])
import socket
from ohp_worker import protocol
sock = socket.socket(fileno=int(sys.argv[3]))
size = int(sys.argv[4])
conn = protocol.Connection()
Response = protocol.Response
while True:
    data = sock.recv(size)
    if not data:
        break
    for m in conn.receive_data(data):
        if type(m) is protocol.Request:
            result = m.params[0] if m.method == "echo" else "pong"
            sock.sendall(conn.send(Response(m.msgid, None, result)))
"""

# One small message read with recv(SIZE), in a fresh interpreter (glibc's malloc state is per
# process): microseconds per send + recv, before and after the process frees a 2 MiB block.
RECV_PROBE = """\
import socket, sys, time
a, b = socket.socketpair()
def per_read(size, count=20000):
    best = 1.0
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(count):
            a.send(b"x" * 20)
            b.recv(size)
        best = min(best, (time.perf_counter() - started) / count)
    return best * 1e6
out = [per_read(1 << 20), per_read(1 << 16)]
block = bytes(2 << 20)
del block
out.append(per_read(1 << 20))
print(*out)
"""


class BenchError(Exception):
    """The benchmark cannot run."""


def launcher() -> list[str]:
    """What ``Worker._spawn`` puts before the interpreter under the default (standard)
    profile; no limits are set here."""
    info = launcher_info()
    namespaces = [info["unshare"], *_UNSHARE] if info["pid_namespace"] else []
    if namespaces and info["net_namespace"]:
        namespaces.append("--net")
    return [*sandbox_module.die_with_parent_prefix(), *namespaces]


# ---- timing ----------------------------------------------------------------------------------


def percentile(values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile of *values*."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * len(ordered)) - 1))]


@dataclass
class Rate:
    """Calls of one side: every call's latency and each pass's calls per second."""

    label: str
    latencies: list[float] = field(default_factory=list)
    rates: list[float] = field(default_factory=list)

    def add(self, latencies: list[float], seconds: float) -> None:
        self.latencies += latencies
        self.rates.append(len(latencies) / seconds)

    @property
    def p50(self) -> float:
        return percentile(self.latencies, 0.5)

    @property
    def p99(self) -> float:
        return percentile(self.latencies, 0.99)

    @property
    def best(self) -> float:
        return max(self.rates)

    @property
    def median(self) -> float:
        return statistics.median(self.rates)

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "p50_us": round(self.p50 * 1e6, 1),
                "p99_us": round(self.p99 * 1e6, 1), "best_per_s": round(self.best),
                "median_per_s": round(self.median), "calls": len(self.latencies)}


def print_rates(title: str, rates: Sequence[Rate]) -> None:
    print(f"\n{title}")
    width = max(len(rate.label) for rate in rates) + 2
    print(f"  {'':<{width}}{'p50 us':>9}{'p99 us':>9}{'best /s':>10}{'median /s':>11}"
          f"{'calls':>7}")
    for rate in rates:
        print(f"  {rate.label:<{width}}{rate.p50 * 1e6:>9.1f}{rate.p99 * 1e6:>9.1f}"
              f"{rate.best:>10.0f}{rate.median:>11.0f}{len(rate.latencies):>7}")


# ---- the plugin and the store ----------------------------------------------------------------


@dataclass
class Setup:
    """The store with the benchmark plugin, and what a bare interpreter needs to match it."""

    tmp: Path
    store: PluginStore
    installed: InstalledPlugin
    python: str
    """The plugin venv's interpreter (``VENV/bin/python``)."""
    worker_dir: Path
    msgpack_dir: Path
    env: dict[str, str]
    hello: dict[str, Any]
    boot: Boot
    """A copy of the worker's command line, without the launcher."""


def make_setup(tmp: Path) -> Setup:
    links = tmp / "links"
    make_wheel(links, PACKAGE, "1.0.0", files={
        "bench_bridge_plugin/__init__.py": '"""Bridge benchmark plugin."""\n',
        "bench_bridge_plugin/tools.py": TOOLS_PY,
        "bench_bridge_plugin/commands/ping.md": "---\ndescription: Answer pong\n---\npong\n",
    }, entry_points={
        "openhands.plugins": {PLUGIN: "bench_bridge_plugin"},
        "openhands.tools": {"echo": "bench_bridge_plugin.tools:echo",
                            "noop": "bench_bridge_plugin.tools:noop"},
    })
    store = PluginStore(tmp / "store")
    installed = store.install(f"pypi:{PACKAGE}", find_links=[links], no_index=True)
    if installed.venv is None or installed.python is None or installed.name != PLUGIN:
        raise BenchError(f"installing {PACKAGE} gave {installed!r}")
    runtime = ensure_runtime(store.root, str(installed.python["abi_tag"]),
                             Path(os.path.realpath(installed.python["path"])))
    # The first start: the runtime is made (untimed); exec'd, so that its command line can be
    # captured (Boot) whichever way workers start by default.
    worker = Worker(store, PLUGIN, launcher=process_module.LocalLauncher(start="exec"))
    sink: dict[str, Any] = {}
    try:
        with traced_spawn(sink):
            hello = worker.start()
        if worker.request("tools.call", "noop", {}) != {"content": None, "is_error": False}:
            raise BenchError("tools.call noop answered something else")
    finally:
        worker.close()
    if not hello.get("msgpack_compiled"):
        raise BenchError("the worker runs msgpack's pure-Python fallback")
    env = {key: os.environ[key] for key in ENV_KEYS if key in os.environ}
    return Setup(tmp, store, installed, str(installed.venv / "bin" / "python"),
                 runtime.worker_dir, runtime.msgpack_dir, env, hello, Boot.captured(sink))


# ---- 1: start ----------------------------------------------------------------------------------


def bare_run(setup: Setup, code: str, *, bytecode: bool = True,
             prefix: Sequence[str] = ()) -> float:
    cmd = [*prefix, setup.python, "-I", "-S", *([] if bytecode else ["-B"]), "-c", code]
    with gc_paused():
        started = time.perf_counter()
        subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, env=setup.env, check=True)
        return time.perf_counter() - started


def import_msgpack(directory: Path | str) -> str:
    return f"import sys; sys.path.append({str(directory)!r}); import msgpack"


def _timed_popen(popen: Callable[..., subprocess.Popen[bytes]],
                 sink: dict[str, Any]) -> Callable[..., subprocess.Popen[bytes]]:
    """*popen*, timed into *sink* with the command line it was given."""

    def timed_popen(cmd: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
        started = time.perf_counter()
        proc = popen(cmd, **kwargs)
        sink["popen"] = time.perf_counter() - started
        sink["cmd"] = list(cmd)
        sink["cwd"] = kwargs.get("cwd")
        return proc

    return timed_popen


class _SubprocessProxy:
    """Stands in for ``subprocess`` in ``hostbridge.supervision._process``, ``Popen`` timed."""

    def __init__(self, sink: dict[str, Any]) -> None:
        self.Popen = _timed_popen(subprocess.Popen, sink)

    def __getattr__(self, name: str) -> Any:
        return getattr(subprocess, name)


class TracedWorker(Worker):
    """A :class:`Worker` that notes when its steps end (perf_counter)."""

    marks: dict[str, float]

    def start(self, timeout: float = 30.0) -> dict[str, Any]:
        self.marks = {"start": time.perf_counter()}
        hello = super().start(timeout)
        self.marks["hello"] = time.perf_counter()
        return hello

    def _spawn(self, installed: InstalledPlugin) -> None:
        self.marks["leased"] = time.perf_counter()
        super()._spawn(installed)
        self.marks["spawned"] = time.perf_counter()


@contextlib.contextmanager
def traced_spawn(sink: dict[str, Any]) -> Iterator[None]:
    """Time ``ensure_runtime`` and the spawn inside ``Worker._spawn`` into *sink*: the
    spawner thread's ``popen`` (hand-off included) where there is one, else ``Popen``."""
    original_runtime = process_module.ensure_runtime

    def ensure(*args: Any) -> Any:
        started = time.perf_counter()
        result = original_runtime(*args)
        sink["runtime"] = time.perf_counter() - started
        return result

    process_module.ensure_runtime = ensure  # type: ignore[assignment]
    spawner = getattr(process_module, "_spawner", None)
    if spawner is not None:
        spawner.popen = _timed_popen(spawner.popen, sink)
    else:
        process_module.subprocess = _SubprocessProxy(sink)  # type: ignore[assignment]
    try:
        yield
    finally:
        process_module.ensure_runtime = original_runtime
        if spawner is not None:
            del spawner.popen
        else:
            process_module.subprocess = subprocess


def bridge_cold(setup: Setup, start: str = "exec") -> float:
    bridge = HostBridge(setup.store, worker_start=start)
    try:
        with gc_paused():
            started = time.perf_counter()
            result = bridge.call_tool(PLUGIN, "noop", {})
            seconds = time.perf_counter() - started
    finally:
        bridge.close()
    if result.is_error:
        raise BenchError(f"noop failed: {result.content}")
    return seconds


def worker_cold(setup: Setup, steps: list[dict[str, float]], sink: dict[str, Any]) -> float:
    worker = TracedWorker(setup.store, PLUGIN,
                          launcher=process_module.LocalLauncher(start="exec"))
    try:
        with gc_paused(), traced_spawn(sink):
            worker.start()
            worker.request("tools.call", "noop", {})
            done = time.perf_counter()
    finally:
        worker.close()
    marks = worker.marks
    spawn = marks["spawned"] - marks["leased"]
    steps.append({
        "host: store.lease (read the generation, flock)": marks["leased"] - marks["start"],
        "host: ensure_runtime (hashes the worker's source)": sink["runtime"],
        "host: spawn (spawner thread, Popen of the launcher)": sink["popen"],
        "host: entry points, socketpair, 3 threads": spawn - sink["runtime"] - sink["popen"],
        "worker: launcher, interpreter, boot imports, hello": marks["hello"] - marks["spawned"],
        "worker: first tools.call noop": done - marks["hello"],
    })
    return done - marks["start"]


# -X importtime of a copy of the worker's command line


@dataclass
class Boot:
    """A copy of the worker's command line, to run on a socketpair of our own."""

    cmd: list[str]
    cwd: str | None
    config: dict[str, Any]

    @classmethod
    def captured(cls, sink: dict[str, Any]) -> Boot:
        cmd = list(sink["cmd"])
        python = next(i for i, word in enumerate(cmd) if word.endswith("/bin/python"))
        return cls(cmd[python:], sink["cwd"], json.loads(cmd[-1]))

    def with_runtime(self, worker_dir: Path, msgpack_dir: Path) -> Boot:
        cmd = list(self.cmd)
        cmd[-2] = str(worker_dir)
        return Boot(cmd, self.cwd, {**self.config, "msgpack_path": str(msgpack_dir)})

    def run(self, options: Sequence[str] = ()) -> tuple[float, float, str]:
        """Spawn, ``hello``, ``tools.call noop``, ``shutdown``: the seconds to the answer of
        ``hello`` and to that of the call, and the worker's stderr."""
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        config = {**self.config, "fd": child.fileno()}
        cmd = [self.cmd[0], *options, *self.cmd[1:-1], json.dumps(config)]
        conn = protocol.Connection()
        with gc_paused():
            started = time.perf_counter()
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.PIPE, cwd=self.cwd,
                                    pass_fds=(child.fileno(),), start_new_session=True)
            child.close()
            try:
                hello = _call(parent, conn, "hello", {"protocol": protocol.PROTOCOL_VERSION})
                said = time.perf_counter()
                result = _call(parent, conn, "tools.call", "noop", {})
                answered = time.perf_counter()
                parent.sendall(conn.send(protocol.Notification("shutdown", [])))
            finally:
                assert proc.stderr is not None
                stderr = proc.stderr.read().decode("utf-8", "replace")
                proc.wait()
                parent.close()
        if hello.error is not None or result.error is not None:
            raise BenchError(f"the copied worker command failed: {hello} {result} {stderr}")
        return said - started, answered - started, stderr


def _call(sock: socket.socket, conn: protocol.Connection, method: str,
          *params: object) -> protocol.Response:
    sock.sendall(conn.send(protocol.Request(conn.next_msgid(), method, list(params))))
    while True:
        data = sock.recv(RECV_SMALL)
        if not data:
            raise BenchError(f"the worker hung up during {method}")
        for message in conn.receive_data(data):
            if isinstance(message, protocol.Response):
                return message


_IMPORT_LINE = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \|( *)(\S+)$")


@dataclass
class Imported:
    name: str
    depth: int
    own: float
    cumulative: float
    children: list[Imported] = field(default_factory=list)


def parse_importtime(text: str) -> list[Imported]:
    """The top-level imports of ``-X importtime`` output, each with its direct children."""
    top: list[Imported] = []
    pending: list[Imported] = []  # children are printed before their parent
    for line in text.splitlines():
        match = _IMPORT_LINE.match(line)
        if match is None:
            continue
        depth = (len(match.group(3)) - 1) // 2
        node = Imported(match.group(4), depth, int(match.group(1)) / 1e6,
                        int(match.group(2)) / 1e6)
        node.children = [c for c in pending if c.depth == depth + 1]
        pending = [c for c in pending if c.depth <= depth]
        if depth == 0:
            top.append(node)
            pending = []
        else:
            pending.append(node)
    return top


def importtime_rows(runs: list[list[Imported]]) -> list[tuple[str, float]]:
    """Median milliseconds per row: interpreter startup, each worker import (with the direct
    children that take 0.5 ms or more), as the first run ordered them."""
    def key(name: str, parent: str = "") -> str:
        return f"{parent}/{name}" if parent else name

    values: dict[str, list[float]] = collections.defaultdict(list)
    order: list[str] = []
    for top in runs:
        startup = 0.0
        seen_worker = False
        for node in top:
            if node.name.startswith("ohp_worker"):
                seen_worker = True
            if not seen_worker:
                startup += node.cumulative
                continue
            values[key(node.name)].append(node.cumulative)
            if key(node.name) not in order:
                order.append(key(node.name))
            for child in node.children:
                values[key(child.name, node.name)].append(child.cumulative)
                if key(child.name, node.name) not in order:
                    order.append(key(child.name, node.name))
        values["(interpreter startup: encodings, io, ...)"].append(startup)
    rows = [("(interpreter startup: encodings, io, ...)",
             statistics.median(values["(interpreter startup: encodings, io, ...)"]))]
    for name in order:
        median = statistics.median(values[name] + [0.0] * (len(runs) - len(values[name])))
        if "/" in name:
            if median >= 0.0005:
                rows.append(("  " + name.split("/", 1)[1], median))
        else:
            rows.append((name, median))
    return rows


def compiled_runtime(setup: Setup) -> tuple[Path, Path]:
    """A copy of the runtime with ``.pyc`` (the plugin interpreter's compileall)."""
    target = setup.tmp / "runtime-compiled"
    worker_dir = target / setup.worker_dir.name
    msgpack_dir = target / setup.msgpack_dir.name
    if not worker_dir.exists():
        shutil.copytree(setup.worker_dir, worker_dir)
        shutil.copytree(setup.msgpack_dir, msgpack_dir)
        subprocess.run([setup.python, "-I", "-S", "-m", "compileall", "-q",
                        "--invalidation-mode", "unchecked-hash", str(target)],
                       stdout=subprocess.DEVNULL, env=setup.env, check=True)
    return worker_dir, msgpack_dir


def bench_start(setup: Setup, repeat: int, results: dict[str, Any]) -> None:
    host_msgpack = Path(protocol.msgpack.__file__).parent.parent
    sides = {key: Side(label) for key, label in (
        ("bridge", "HostBridge(store).call_tool(noop), fresh, exec"),
        ("zygote", "  same, forked by the zygote"),
        ("worker", "Worker.start() + tools.call noop (exec)"),
        ("pass", "python -I -S -c pass"),
        ("msgpack", "python -I -S -B, import msgpack (runtime copy)"),
        ("msgpack_pyc", "  same, the host venv's msgpack (has .pyc)"),
        ("launcher", "  python -I -S -c pass behind the worker's launcher"),
    )}
    steps: list[dict[str, float]] = []
    sink: dict[str, Any] = {}
    prefix = launcher()
    bare_run(setup, "pass")  # page cache
    bridge_cold(setup, "zygote")  # the zygote started (untimed: it serves every later start)
    for _ in range(repeat):
        sides["bridge"].times.append(bridge_cold(setup))
        sides["zygote"].times.append(bridge_cold(setup, "zygote"))
        sides["worker"].times.append(worker_cold(setup, steps, sink))
        sides["pass"].times.append(bare_run(setup, "pass"))
        sides["msgpack"].times.append(bare_run(setup, import_msgpack(setup.msgpack_dir),
                                               bytecode=False))
        sides["msgpack_pyc"].times.append(bare_run(setup, import_msgpack(host_msgpack)))
        sides["launcher"].times.append(bare_run(setup, "pass", prefix=prefix))
    print_sides("1. cold start to the first tool result (spawn and wait, for the bare sides)",
                list(sides.values()))
    print(f"  launcher: {' '.join(Path(word).name for word in prefix) or 'none'}")
    results["start"] = {key: side.to_dict() for key, side in sides.items()}
    for key, label, target in (("bridge", "HostBridge, exec", START_RATIO_MAX),
                               ("zygote", "HostBridge, zygote", ZYGOTE_START_RATIO_MAX),
                               ("worker", "Worker, exec", START_RATIO_MAX)):
        ratio = sides[key].best / sides["msgpack"].best
        median = sides[key].median / sides["msgpack"].median
        print(f"  {label} / bare msgpack import: {ratio:.2f}x best, {median:.2f}x median "
              f"(target <= {target:g}x)")
        if key == "bridge":
            results["summary"].append(("cold start / bare msgpack import", f"{ratio:.2f}x",
                                       f"<= {target:g}x", ratio <= target))
        if key == "zygote":
            results["summary"].append(("cold start, zygote / bare msgpack import",
                                       f"{ratio:.2f}x", f"<= {target:g}x", ratio <= target))
    results["summary"].append(("  cold start, HostBridge (best)",
                               f"{sides['bridge'].best * 1e3:.1f} ms", "none", None))
    results["summary"].append(("  cold start, HostBridge forked by the zygote (best)",
                               f"{sides['zygote'].best * 1e3:.1f} ms", "none", None))
    phases = {name: statistics.median(step[name] for step in steps) for name in steps[0]}
    print(f"  where the time goes, Worker.start() + tools.call, median of {len(steps)} runs (ms)")
    for name, seconds in phases.items():
        print(f"    {name:<54}{seconds * 1e3:>8.1f}")
    results["start"]["worker_steps_ms"] = {name: ms(s) for name, s in phases.items()}

    boot = setup.boot
    compiled = boot.with_runtime(*compiled_runtime(setup))
    copies = {"as is": Side("copy of the worker command: to hello"),
              "as is, call": Side("  to the tools.call noop result"),
              "pyc": Side("same, runtime with all .pyc: to hello"),
              "pyc, call": Side("  to the tools.call noop result")}
    imports: dict[str, list[list[Imported]]] = {"as is": [], "pyc": []}
    for _ in range(repeat):
        for key, copy in (("as is", boot), ("pyc", compiled)):
            hello, called, _stderr = copy.run()
            copies[key].times.append(hello)
            copies[f"{key}, call"].times.append(called)
            imports[key].append(parse_importtime(copy.run(["-X", "importtime"])[2]))
    print_sides("  the worker's command line, copied and run on our own socketpair "
                "(no launcher); 'all .pyc': a copy of the runtime where msgpack has .pyc too",
                list(copies.values()))
    results["start"]["copied_command"] = {key: side.to_dict() for key, side in copies.items()}
    results["start"]["importtime_ms"] = {}
    print(f"  worker imports, -X importtime of the copy, median of {repeat} runs "
          f"(cumulative ms; the tool's own module is imported by importlib, not listed)")
    rows = {key: dict(importtime_rows(runs)) for key, runs in imports.items()}
    print(f"    {'module':<46}{'as is':>8}{'all .pyc':>9}")
    for name, seconds in rows["as is"].items():
        other = rows["pyc"].get(name)
        text = "" if other is None else f"{other * 1e3:.1f}"
        print(f"    {name:<46}{seconds * 1e3:>8.1f}{text:>9}")
    results["start"]["importtime_ms"] = {key: {n: ms(s) for n, s in r.items()}
                                         for key, r in rows.items()}


# ---- 2-3: round trips ----------------------------------------------------------------------


class RawPeer:
    """A raw client: this thread sends requests on a socketpair and reads the answers itself
    (no reader thread, no futures), with ``recv(size)``."""

    def __init__(self, sock: socket.socket, proc: subprocess.Popen[bytes], size: int) -> None:
        self.sock = sock
        self.proc = proc
        self.size = size
        self.conn = protocol.Connection()

    @classmethod
    def echo(cls, setup: Setup, size: int) -> RawPeer:
        """The baseline: the host's Python as a child echoing, reading with ``recv(size)``."""
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        proc = subprocess.Popen(
            [sys.executable, "-I", "-S", "-B", "-c", ECHO_CHILD, str(setup.worker_dir),
             str(setup.msgpack_dir), str(child.fileno()), str(size)],
            stdin=subprocess.DEVNULL, pass_fds=(child.fileno(),), env=setup.env)
        child.close()
        peer = cls(parent, proc, size)
        if peer.call("ping") != "pong":
            raise BenchError("the raw echo did not answer")
        return peer

    @classmethod
    def worker_copy(cls, setup: Setup, size: int) -> RawPeer:
        """A copy of the worker's command line (no launcher), after ``hello``."""
        boot = setup.boot
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        config = {**boot.config, "fd": child.fileno()}
        proc = subprocess.Popen([*boot.cmd[:-1], json.dumps(config)], cwd=boot.cwd,
                                stdin=subprocess.DEVNULL, pass_fds=(child.fileno(),),
                                env=setup.env, start_new_session=True)
        child.close()
        peer = cls(parent, proc, size)
        hello = peer.call("hello", {"protocol": protocol.PROTOCOL_VERSION})
        if not isinstance(hello, dict) or peer.call("ping") != "pong":
            raise BenchError(f"the worker's command line did not answer: {hello!r}")
        return peer

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.sendall(self.conn.send(protocol.Notification("shutdown", [])))
        self.sock.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def _send(self, method: str, params: list[object]) -> None:
        conn = self.conn
        self.sock.sendall(conn.send(protocol.Request(conn.next_msgid(), method, params)))

    def call(self, method: str, *params: object) -> object:
        self._send(method, list(params))
        while True:
            data = self.sock.recv(self.size)
            if not data:
                raise BenchError("a raw peer hung up")
            for message in self.conn.receive_data(data):
                if not isinstance(message, protocol.Response) or message.error is not None:
                    raise BenchError(f"a raw peer answered {message!r:.200}")
                return message.result

    def pipelined(self, count: int, depth: int) -> tuple[list[float], float]:
        """*count* pings kept *depth* deep: each one's latency, and the seconds for all."""
        sent: collections.deque[float] = collections.deque()
        latencies: list[float] = []
        clock = time.perf_counter
        with gc_paused():
            started = clock()
            for _ in range(min(depth, count)):
                sent.append(clock())
                self._send("ping", [])
            while len(latencies) < count:
                for _message in self.conn.receive_data(self.sock.recv(self.size)):
                    latencies.append(clock() - sent.popleft())
                    if len(latencies) + len(sent) < count:
                        sent.append(clock())
                        self._send("ping", [])
            return latencies, clock() - started


def sequential(call: Callable[[], object], count: int) -> tuple[list[float], float]:
    latencies = [0.0] * count
    clock = time.perf_counter
    with gc_paused():
        started = clock()
        for index in range(count):
            before = clock()
            call()
            latencies[index] = clock() - before
        return latencies, clock() - started


def futures_deep(submit: Callable[[], Future[Any]], count: int,
                 depth: int) -> tuple[list[float], float]:
    window: collections.deque[tuple[float, Future[Any]]] = collections.deque()
    latencies: list[float] = []
    clock = time.perf_counter
    with gc_paused():
        started = clock()
        for _ in range(count):
            if len(window) == depth:
                sent, future = window.popleft()
                future.result()
                latencies.append(clock() - sent)
            window.append((clock(), submit()))
        while window:
            sent, future = window.popleft()
            future.result()
            latencies.append(clock() - sent)
        return latencies, clock() - started


def threaded(call: Callable[[], object], count: int, threads: int) -> tuple[list[float], float]:
    per_thread = count // threads
    barrier = threading.Barrier(threads + 1)
    latencies: list[list[float]] = [[] for _ in range(threads)]
    errors: list[BaseException] = []

    def run(index: int) -> None:
        out = latencies[index]
        clock = time.perf_counter
        barrier.wait()
        try:
            for _ in range(per_thread):
                before = clock()
                call()
                out.append(clock() - before)
        except BaseException as exc:  # reported below
            errors.append(exc)

    workers = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for thread in workers:
        thread.start()
    with gc_paused():
        barrier.wait()
        started = time.perf_counter()
        for thread in workers:
            thread.join()
        seconds = time.perf_counter() - started
    if errors:
        raise BenchError(f"a calling thread failed: {errors[0]!r}")
    return [t for out in latencies for t in out], seconds


def async_sequential(loop: asyncio.AbstractEventLoop, call: Callable[[], Awaitable[object]],
                     count: int) -> tuple[list[float], float]:
    """*count* awaited calls one after another on *loop*, each timed."""

    async def run() -> tuple[list[float], float]:
        latencies = [0.0] * count
        clock = time.perf_counter
        started = clock()
        for index in range(count):
            before = clock()
            await call()
            latencies[index] = clock() - before
        return latencies, clock() - started

    with gc_paused():
        return loop.run_until_complete(run())


def async_deep(loop: asyncio.AbstractEventLoop, call: Callable[[], Awaitable[object]],
               count: int, depth: int) -> tuple[list[float], float]:
    """*count* calls on *loop*, *depth* of them in flight (one task each, awaiting in turn)."""

    async def lane(share: int, out: list[float]) -> None:
        clock = time.perf_counter
        for _ in range(share):
            before = clock()
            await call()
            out.append(clock() - before)

    async def run() -> tuple[list[float], float]:
        lanes: list[list[float]] = [[] for _ in range(depth)]
        started = time.perf_counter()
        await asyncio.gather(*(lane(count // depth, out) for out in lanes))
        return [t for out in lanes for t in out], time.perf_counter() - started

    with gc_paused():
        return loop.run_until_complete(run())


def bench_roundtrip(setup: Setup, calls: int, passes: int, results: dict[str, Any]) -> None:
    raw = RawPeer.echo(setup, RECV_SMALL)
    raw_big = RawPeer.echo(setup, RECV_WORKER)
    copy = RawPeer.worker_copy(setup, RECV_SMALL)
    bridge = HostBridge(setup.store)
    worker = bridge.worker(PLUGIN)
    noop: dict[str, Any] = {}
    loop = asyncio.new_event_loop()
    bridge.tool(PLUGIN, "noop")  # tools listed: calls go straight to the worker

    def acall_tool() -> Awaitable[object]:
        return bridge.acall_tool(PLUGIN, "noop", noop)
    try:
        seq = {key: Rate(label) for key, label in (
            ("raw", "raw echo, recv(64 KiB): ping"),
            ("raw_big", "  raw echo, recv(1 MiB) as the worker: ping"),
            ("copy", "  raw client -> worker command copy: ping"),
            ("ping", "Worker.request('ping')"),
            ("noop_worker", "Worker.request('tools.call', noop)"),
            ("noop", "HostBridge.call_tool(noop)"),
            ("aping", "await Worker.asubmit('ping')"),
            ("acall", "await HostBridge.acall_tool(noop)"),
        )}
        deep = {key: Rate(label) for key, label in (
            ("raw", f"raw echo, recv(64 KiB): ping, {DEPTH} deep"),
            ("raw_big", f"  raw echo, recv(1 MiB): ping, {DEPTH} deep"),
            ("copy", f"  raw client -> worker copy: ping, {DEPTH} deep"),
            ("ping", f"Worker.submit('ping'), {DEPTH} deep"),
            ("noop", f"Worker.submit('tools.call', noop), {DEPTH} deep"),
            ("threads", f"{DEPTH} threads, Worker.request('ping')"),
            ("threads_noop", f"{DEPTH} threads, HostBridge.call_tool(noop)"),
            ("aping", f"Worker.asubmit('ping'), {DEPTH} awaited at once"),
            ("acall", f"HostBridge.acall_tool(noop), {DEPTH} awaited at once"),
        )}
        actions: dict[str, Callable[[], tuple[list[float], float]]] = {
            "seq raw": lambda: sequential(lambda: raw.call("ping"), calls),
            "seq raw_big": lambda: sequential(lambda: raw_big.call("ping"), calls),
            "seq copy": lambda: sequential(lambda: copy.call("ping"), calls),
            "seq ping": lambda: sequential(lambda: worker.request("ping"), calls),
            "seq noop_worker": lambda: sequential(
                lambda: worker.request("tools.call", "noop", noop), calls),
            "seq noop": lambda: sequential(lambda: bridge.call_tool(PLUGIN, "noop", noop), calls),
            "deep raw": lambda: raw.pipelined(calls, DEPTH),
            "deep raw_big": lambda: raw_big.pipelined(calls, DEPTH),
            "deep copy": lambda: copy.pipelined(calls, DEPTH),
            "deep ping": lambda: futures_deep(lambda: worker.submit("ping"), calls, DEPTH),
            "deep noop": lambda: futures_deep(
                lambda: worker.submit("tools.call", "noop", noop), calls, DEPTH),
            "deep threads": lambda: threaded(lambda: worker.request("ping"), calls, DEPTH),
            "deep threads_noop": lambda: threaded(
                lambda: bridge.call_tool(PLUGIN, "noop", noop), calls, DEPTH),
            "seq aping": lambda: async_sequential(loop, lambda: worker.asubmit("ping"), calls),
            "seq acall": lambda: async_sequential(loop, acall_tool, calls),
            "deep aping": lambda: async_deep(loop, lambda: worker.asubmit("ping"), calls, DEPTH),
            "deep acall": lambda: async_deep(loop, acall_tool, calls, DEPTH),
        }
        for action in actions.values():  # a warm-up pass
            action()
        for _ in range(passes):
            for name, action in actions.items():
                kind, key = name.split()
                (seq if kind == "seq" else deep)[key].add(*action())
    finally:
        loop.close()
        bridge.close()
        for peer in (raw, raw_big, copy):
            peer.close()
    probe = subprocess.run([sys.executable, "-I", "-S", "-c", RECV_PROBE], capture_output=True,
                           text=True, env=setup.env, check=True).stdout.split()
    big, small, after = map(float, probe)
    print_rates(f"2. round trips, sequential ({passes} passes of {calls} calls)",
                list(seq.values()))
    print(f"  one 20-byte message sent and read in a fresh interpreter: recv(1 MiB) {big:.1f} us, "
          f"recv(64 KiB) {small:.1f} us;\n  recv(1 MiB) again after the process freed a 2 MiB "
          f"block (glibc then raises its mmap threshold) {after:.1f} us")
    print_rates(f"   {DEPTH} in flight", list(deep.values()))
    results["roundtrip"] = {"sequential": {k: r.to_dict() for k, r in seq.items()},
                            "in_flight": {k: r.to_dict() for k, r in deep.items()},
                            "recv_probe_us": {"recv_1mib": big, "recv_64kib": small,
                                              "recv_1mib_after_free": after}}
    ratio = seq["ping"].p50 / seq["raw"].p50
    print(f"  sequential p50 / raw echo p50: ping {ratio:.2f}x (target <= "
          f"{ROUNDTRIP_RATIO_MAX:g}x), tools.call noop through HostBridge "
          f"{seq['noop'].p50 / seq['raw'].p50:.2f}x; raw echo with recv(1 MiB) "
          f"{seq['raw_big'].p50 / seq['raw'].p50:.2f}x, worker copy "
          f"{seq['copy'].p50 / seq['raw'].p50:.2f}x")
    rate = deep["ping"].best / deep["raw"].best
    print(f"  {DEPTH} deep, rate / raw echo's: Worker ping {rate:.2f} best, "
          f"{deep['ping'].median / deep['raw'].median:.2f} median (target >= "
          f"{PIPELINE_RATIO_MIN:g}); {DEPTH} threads {deep['threads'].best / deep['raw'].best:.2f}")
    acall_ratio = seq["acall"].p50 / seq["raw"].p50
    acall_rate = deep["acall"].best / deep["raw"].best
    call_ratio = seq["noop"].p50 / seq["raw"].p50
    threads_rate = deep["threads_noop"].best / deep["raw"].best
    print(f"  {DEPTH} threads calling HostBridge.call_tool(noop), rate / raw echo's {DEPTH} deep "
          f"{threads_rate:.2f} best, {deep['threads_noop'].median / deep['raw'].median:.2f} "
          f"median (target >= {PIPELINE_RATIO_MIN:g})")
    print(f"  acall: sequential p50 / raw echo p50 {acall_ratio:.2f}x; {DEPTH} at once, rate / "
          f"raw echo's {DEPTH} deep {acall_rate:.2f} best, "
          f"{deep['acall'].median / deep['raw'].median:.2f} median (target >= "
          f"{PIPELINE_RATIO_MIN:g})")
    results["summary"] += [
        ("sequential ping p50 / raw echo", f"{ratio:.2f}x", f"<= {ROUNDTRIP_RATIO_MAX:g}x",
         ratio <= ROUNDTRIP_RATIO_MAX),
        ("sequential call_tool p50 / raw echo", f"{call_ratio:.2f}x",
         f"<= {ROUNDTRIP_RATIO_MAX:g}x", call_ratio <= ROUNDTRIP_RATIO_MAX),
        ("sequential acall p50 / raw echo", f"{acall_ratio:.2f}x",
         f"<= {ROUNDTRIP_RATIO_MAX:g}x", acall_ratio <= ROUNDTRIP_RATIO_MAX),
        (f"acall {DEPTH} in flight rate / raw echo", f"{acall_rate:.2f}",
         f">= {PIPELINE_RATIO_MIN:g}", acall_rate >= PIPELINE_RATIO_MIN),
        (f"{DEPTH} threads call_tool rate / raw echo", f"{threads_rate:.2f}",
         f">= {PIPELINE_RATIO_MIN:g}", threads_rate >= PIPELINE_RATIO_MIN),
        ("  sequential ping p50", f"{seq['ping'].p50 * 1e6:.0f} us", "none", None),
        ("  raw echo p50", f"{seq['raw'].p50 * 1e6:.0f} us", "none", None),
        ("  tools.call noop p50 (HostBridge)", f"{seq['noop'].p50 * 1e6:.0f} us", "none", None),
        (f"ping {DEPTH} deep rate / raw echo", f"{rate:.2f}", f">= {PIPELINE_RATIO_MIN:g}",
         rate >= PIPELINE_RATIO_MIN),
        (f"  ping {DEPTH} deep", f"{deep['ping'].best:.0f}/s", "none", None),
    ]


def bench_payload(setup: Setup, count: int, passes: int, results: dict[str, Any]) -> None:
    payload = os.urandom(MIB)
    raw = RawPeer.echo(setup, RECV_SMALL)
    raw_big = RawPeer.echo(setup, RECV_WORKER)
    bridge = HostBridge(setup.store)
    worker = bridge.worker(PLUGIN)
    arguments = {"data": payload}
    try:
        answers = [raw.call("echo", payload), raw_big.call("echo", payload),
                   worker.request("tools.call", "echo", arguments)["content"],
                   bridge.call_tool(PLUGIN, "echo", arguments).content]
        if any(answer != payload for answer in answers):
            raise BenchError("an echo did not return the payload")
        sides = {key: Rate(label) for key, label in (
            ("raw", "raw echo, recv(64 KiB): echo(1 MiB)"),
            ("raw_big", "  raw echo, recv(1 MiB): echo(1 MiB)"),
            ("worker", "Worker.request('tools.call', echo, 1 MiB)"),
            ("bridge", "HostBridge.call_tool(echo, 1 MiB)"),
        )}
        actions: dict[str, Callable[[], object]] = {
            "raw": lambda: raw.call("echo", payload),
            "raw_big": lambda: raw_big.call("echo", payload),
            "worker": lambda: worker.request("tools.call", "echo", arguments),
            "bridge": lambda: bridge.call_tool(PLUGIN, "echo", arguments),
        }
        for _ in range(passes):
            for key, action in actions.items():
                sides[key].add(*sequential(action, count))
    finally:
        bridge.close()
        raw.close()
        raw_big.close()
    print_rates(f"3. 1 MiB payloads, sequential ({passes} passes of {count} calls)",
                list(sides.values()))
    print(f"  {'MiB/s, the payload counted one way (1 MiB a call; x2 for both ways)':<66}"
          f"{'best':>8}{'median':>8}")
    for rate in sides.values():
        print(f"    {rate.label:<64}{rate.best:>8.0f}{rate.median:>8.0f}")
    results["payload"] = {k: {**r.to_dict(), "best_mib_s_one_way": round(r.best, 1)}
                          for k, r in sides.items()}
    results["summary"] += [
        ("1 MiB echo, HostBridge, one way", f"{sides['bridge'].best:.0f} MiB/s",
         f">= {PAYLOAD_MIBS_MIN:g} MiB/s", sides["bridge"].best >= PAYLOAD_MIBS_MIN),
        ("  raw echo, one way", f"{sides['raw'].best:.0f} MiB/s", "none", None),
    ]


# ---- 4: memory -------------------------------------------------------------------------------


def rss(pid: int) -> dict[str, float]:
    """VmRSS, RssAnon, RssFile and RssShmem of *pid* in MiB."""
    out: dict[str, float] = {}
    with open(f"/proc/{pid}/status", encoding="ascii") as status:
        for line in status:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "RssAnon", "RssFile", "RssShmem"):
                out[key] = int(value.split()[0]) / 1024
    return out


def bench_memory(setup: Setup, results: dict[str, Any]) -> None:
    rows: list[tuple[str, dict[str, float]]] = []
    bridge = HostBridge(setup.store)
    try:
        worker = bridge.worker(PLUGIN)
        pid = worker.pid
        if pid is None:
            raise BenchError("the worker has no pid")
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            argv = handle.read().split(b"\0")
        # An exec'd worker is VENV/bin/python; a forked one shows its zygote's command line
        # (the base interpreter, python3.X).
        if not argv[0].rsplit(b"/", 1)[-1].startswith(b"python"):
            raise BenchError(f"Worker.pid {pid} is not the interpreter: {argv[:3]!r}")
        bridge.call_tool(PLUGIN, "noop", {})
        time.sleep(0.5)
        rows.append(("worker: start, tools.call noop, idle 0.5 s", rss(pid)))
        payload = os.urandom(MIB)
        for _ in range(20):
            bridge.call_tool(PLUGIN, "echo", {"data": payload})
        time.sleep(0.5)
        rows.append(("  then 20 echoes of 1 MiB, idle 0.5 s", rss(pid)))
        launcher_pid = worker._proc.pid if worker._proc is not None else pid
        if launcher_pid != pid:
            rows.append(("  its launcher, waiting (unshare --fork)", rss(launcher_pid)))
    finally:
        bridge.close()
    for label, code, bytecode in (
            ("python -I -S -B, import msgpack (runtime copy)",
             import_msgpack(setup.msgpack_dir), False),
            ("python -I -S, nothing imported", "", True)):
        cmd = [setup.python, "-I", "-S", *([] if bytecode else ["-B"]), "-c",
               f"{code}\nimport time; time.sleep(30)"]
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, env=setup.env)
        try:
            time.sleep(0.8)
            rows.append((label, rss(proc.pid)))
        finally:
            proc.kill()
            proc.wait()
    print("\n4. resident memory (MiB, /proc/PID/status)")
    print(f"  {'':<48}{'VmRSS':>8}{'RssAnon':>9}{'RssFile':>9}{'RssShmem':>10}")
    for label, values in rows:
        print(f"  {label:<48}{values['VmRSS']:>8.1f}{values['RssAnon']:>9.1f}"
              f"{values['RssFile']:>9.1f}{values['RssShmem']:>10.1f}")
    idle = rows[0][1]["VmRSS"]
    bare = dict(rows)["python -I -S -B, import msgpack (runtime copy)"]["VmRSS"]
    results["memory"] = dict(rows)
    results["summary"] += [
        ("idle worker VmRSS", f"{idle:.1f} MiB", f"<= {RSS_MIB_MAX:g} MiB", idle <= RSS_MIB_MAX),
        ("  bare msgpack import VmRSS", f"{bare:.1f} MiB", "none", None),
    ]


# ---- main ----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15, help="cold starts per side (15)")
    parser.add_argument("--calls", type=int, default=2000, help="calls per round-trip pass (2000)")
    parser.add_argument("--passes", type=int, default=5, help="passes per side (5)")
    parser.add_argument("--payloads", type=int, default=100,
                        help="1 MiB calls per payload pass (100)")
    parser.add_argument("--only", nargs="+", choices=PARTS, default=list(PARTS))
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the result here")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is not met")
    args = parser.parse_args(argv)
    if min(args.repeat, args.passes, args.payloads) < 1 or args.calls < DEPTH:
        parser.error(f"counts must be at least 1, --calls at least {DEPTH}")
    if not sys.platform.startswith("linux"):
        print("bench_bridge: Linux only (/proc, socketpair workers)", file=sys.stderr)
        return 2

    results: dict[str, Any] = {"summary": []}
    try:
        with tempfile.TemporaryDirectory(prefix="bench-bridge-") as scratch:
            setup = make_setup(Path(scratch))
            hello = setup.hello
            print(f"bridge benchmark: host Python {sys.version.split()[0]}, worker Python "
                  f"{hello['python']}, msgpack {hello['msgpack']} (compiled), "
                  f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
            print(f"  worker interpreter {setup.python}\n  runtime {setup.msgpack_dir.parent}")
            results["setup"] = {"host_python": sys.version.split()[0], "cpus": os.cpu_count(),
                                "hello": hello,
                                "launcher": launcher()}
            if "start" in args.only:
                bench_start(setup, args.repeat, results)
            if "roundtrip" in args.only:
                bench_roundtrip(setup, args.calls, args.passes, results)
            if "payload" in args.only:
                bench_payload(setup, args.payloads, args.passes, results)
            if "memory" in args.only:
                bench_memory(setup, results)
    except BenchError as exc:
        print(f"bench_bridge: {exc}", file=sys.stderr)
        return 2
    return finish(results, args.json, args.strict,
                  f"  (load average at the end: {os.getloadavg()[0]:.2f})")


if __name__ == "__main__":
    sys.exit(main())
