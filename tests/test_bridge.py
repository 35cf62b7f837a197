"""Plugin tools in real workers: real venvs, real subprocesses, a real socketpair."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from helpers_build import make_wheel

from hostbridge import (
    CallTimeoutError,
    HostBridge,
    ToolArgumentsError,
    ToolNotFoundError,
    WorkerCrashedError,
    WorkerStartError,
)
from isolator import PluginStore
from isolator.policy._permissions import Permissions
from isolator.store._interpreters import list_interpreters

if TYPE_CHECKING:
    from collections.abc import Iterator

TOOLS_PY = '''\
"""Tools that probe the worker they run in."""
from __future__ import annotations

import os
import sys


def echo(data: bytes) -> bytes:
    """Return *data* unchanged."""
    return data


def fail(count: int) -> int:
    """Raise a ValueError.

    Args:
        count: how many things went wrong.
    """
    raise ValueError(f"{count} things went wrong")


def env(name: str) -> str | None:
    """The worker's environment variable *name*, or None."""
    return os.environ.get(name)


def can_import(module: str) -> bool:
    """Whether *module* can be imported in the worker."""
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def where() -> dict:
    """The worker's interpreter and path."""
    return {"executable": sys.executable, "prefix": sys.prefix, "path": sys.path,
            "version": list(sys.version_info[:3])}


async def later(text: str, times: int = 2) -> str:
    """Repeat *text*, asynchronously."""
    return text * times


def ask_host(text: str) -> object:
    """Ask the host's echo capability."""
    from ohp_worker.main import host_call
    return host_call("echo", text)


class Counter:
    name = "count"
    description = "Count the characters of a text."
    input_schema = {"type": "object", "properties": {"text": {"type": "string"}},
                    "required": ["text"], "additionalProperties": False}

    def call(self, text: str) -> int:
        return len(text)


count = Counter()


def noisy(lines: int) -> int:
    """Print *lines* lines to stdout and stderr."""
    for i in range(lines):
        print("out", i)
        print("err", i, file=sys.stderr)
    sys.stdout.flush()
    return lines


def notify(count: int) -> int:
    """Send the host *count* notifications (probe.note), then answer *count*."""
    from ohp_worker import main
    session = main._session
    for index in range(count):
        session._send(session.p.Notification("probe.note", [index]))
    return count


def slow(seconds: float) -> float:
    """Sleep *seconds*, then answer them."""
    import time
    time.sleep(seconds)
    return seconds


def garbage() -> None:
    """Write a byte that is never valid msgpack onto the host connection."""
    from ohp_worker import main
    os.write(main._session.fd, bytes([0xC1]))
    import time
    time.sleep(5)
'''

TOOL_NAMES = ["echo", "fail", "env", "can_import", "where", "later", "ask_host", "count",
              "noisy", "garbage", "notify", "slow"]


def probe_wheel(directory: Path) -> Path:
    return make_wheel(directory, "probe-plugin", "1.0.0", files={
        "probe_plugin/__init__.py": "",
        "probe_plugin/tools.py": TOOLS_PY,
        "probe_plugin/commands/c.md": "c\n",
    }, entry_points={
        "openhands.plugins": {"probe": "probe_plugin"},
        "openhands.tools": {name: f"probe_plugin.tools:{name}" for name in TOOL_NAMES},
    })


@pytest.fixture
def store(tmp_path: Path, example_wheelhouse: Path) -> PluginStore:
    links = tmp_path / "links"
    probe_wheel(links)
    store = PluginStore(tmp_path / "store")
    for source in ("pypi:probe-plugin", "pypi:openhands-plugin-shout",
                   "pypi:openhands-plugin-whisper"):
        store.install(source, find_links=[links, example_wheelhouse], no_index=True)
    store.configure("probe", grants=Permissions(capabilities=("echo",)))  # as the operator
    return store


@pytest.fixture
def bridge(store: PluginStore) -> Iterator[HostBridge]:
    with HostBridge(store, capabilities={"echo": lambda text: f"host says {text}"}) as b:
        yield b


def test_example_tools_run_each_in_its_own_venv(bridge: HostBridge, store: PluginStore) -> None:
    shout = bridge.tool("shout", "shout")
    assert shout.input_schema["properties"]["text"]["type"] == "string"
    assert shout.input_schema["required"] == ["text"]
    assert "upper-cased" in shout.description
    assert shout(text="hi").content == "HI!"  # example-textkit 1.x in shout's venv
    assert bridge.call_tool("whisper", "whisper_text", {"text": "Hi"}).content == "(hi!!)"
    for name in ("shout", "whisper"):
        venv = store.get(name).venv
        assert venv is not None
        assert bridge.worker(name).hello["executable"].startswith(str(venv))
    assert bridge.worker("shout").pid != bridge.worker("whisper").pid
    assert bridge.worker("shout").hello["msgpack_compiled"] is True


def test_tools_list_with_schemas_from_hints_and_objects(bridge: HostBridge) -> None:
    tools = {t.name: t for t in bridge.tools("probe")}
    assert sorted(tools) == sorted(TOOL_NAMES)
    fail = tools["fail"].input_schema
    assert fail["properties"]["count"]["type"] == "integer"
    assert fail["properties"]["count"].get("description") == "how many things went wrong."
    assert tools["count"].description == "Count the characters of a text."
    assert tools["later"].input_schema["required"] == ["text"]


def test_results_errors_and_bad_arguments(bridge: HostBridge) -> None:
    assert bridge.call_tool("probe", "count", {"text": "four"}).content == 4
    assert bridge.call_tool("probe", "later", {"text": "ab"}).content == "abab"
    failed = bridge.call_tool("probe", "fail", {"count": 3})
    assert failed.is_error
    assert failed.content == "ValueError: 3 things went wrong"
    assert failed.traceback is not None and "raise ValueError" in failed.traceback
    # The worker survives a failing tool.
    assert bridge.call_tool("probe", "count", {"text": "x"}).content == 1
    with pytest.raises(ToolArgumentsError, match="count"):
        bridge.call_tool("probe", "fail", {"count": "three"})
    with pytest.raises(ToolArgumentsError):
        bridge.call_tool("probe", "count", {})
    with pytest.raises(ToolNotFoundError, match="no such tool"):
        bridge.call_tool("probe", "nope", {})


def test_the_worker_sees_neither_host_packages_nor_host_environment(
    bridge: HostBridge, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ISOLATOR_TEST_SECRET", "s3cret")
    bridge.close()  # a worker started from now on
    assert bridge.call_tool("probe", "env", {"name": "ISOLATOR_TEST_SECRET"}).content is None
    # HOME: the host's, unless the worker has a scratch directory of its own (standard and
    # strict where Landlock works), whose HOME is that directory: plugins share no home.
    scratch = bridge.worker("probe").scratch
    home = str(scratch) if scratch is not None else os.environ["HOME"]
    assert bridge.call_tool("probe", "env", {"name": "HOME"}).content == home
    for host_only in ("isolator", "pytest", "hostbridge", "yaml"):
        assert bridge.call_tool("probe", "can_import", {"module": host_only}).content is False
    where = bridge.call_tool("probe", "where", {}).content
    site = [p for p in where["path"] if p.endswith("site-packages")]
    venv = str(Path(where["executable"]).parent.parent)
    assert site and all(p.startswith(venv + "/") for p in site)
    assert not any(p.startswith(sys.prefix + "/") for p in where["path"])


def test_payloads_async_calls_and_host_capabilities(bridge: HostBridge) -> None:
    blob = os.urandom(1 << 20)
    assert bridge.call_tool("probe", "echo", {"data": blob}).content == blob
    assert bridge.call_tool("probe", "ask_host", {"text": "hi"}).content == "host says hi"

    async def many() -> list[object]:
        tool = bridge.tool("probe", "later")
        results = await asyncio.gather(*(tool.acall({"text": str(i)}) for i in range(8)))
        return [r.content for r in results]

    assert asyncio.run(many()) == [str(i) * 2 for i in range(8)]


def test_worker_output_goes_to_bounded_logs_not_the_protocol(bridge: HostBridge) -> None:
    assert bridge.call_tool("probe", "noisy", {"lines": 5000}).content == 5000
    worker = bridge.worker("probe")
    deadline = time.monotonic() + 10
    # Each stream is drained by its own thread: wait for both to have caught up.
    while ("out 4999" not in worker.logs["stdout"] or "err 4999" not in worker.logs["stderr"]) \
            and time.monotonic() < deadline:
        time.sleep(0.05)
    assert list(worker.logs["stdout"])[-1] == "out 4999"
    assert list(worker.logs["stderr"])[-1] == "err 4999"
    assert len(worker.logs["stdout"]) == len(worker.logs["stderr"]) == 200
    assert bridge.call_tool("probe", "count", {"text": "ok"}).content == 2


def test_a_protocol_error_closes_the_connection_and_stops_the_worker(
    bridge: HostBridge,
) -> None:
    worker = bridge.worker("probe")
    with pytest.raises(WorkerCrashedError, match="protocol error"):
        bridge.call_tool("probe", "garbage", {}, timeout=30)
    assert not worker.alive
    # The next use starts a fresh worker.
    assert bridge.call_tool("probe", "count", {"text": "abc"}).content == 3
    assert bridge.worker("probe") is not worker


def test_one_worker_per_plugin_reused_and_closed(bridge: HostBridge) -> None:
    first = bridge.worker("probe")
    assert bridge.worker("probe") is first
    pid = first.pid
    assert pid is not None
    bridge.close()
    assert not first.alive
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_content_only_and_unknown_plugins_have_no_worker(
    tmp_path: Path, store: PluginStore
) -> None:
    plugin = tmp_path / "content"
    (plugin / "commands").mkdir(parents=True)
    (plugin / "commands" / "c.md").write_text("c\n")
    store.install(str(plugin))
    with HostBridge(store) as bridge:
        with pytest.raises(WorkerStartError, match="content-only"):
            bridge.tools("content")
        with pytest.raises(Exception, match="not installed"):
            bridge.tools("missing")


def test_workers_are_stopped_when_the_host_exits(store: PluginStore, tmp_path: Path) -> None:
    script = (
        "import sys\nfrom isolator import PluginStore\nfrom hostbridge import HostBridge\n"
        f"b = HostBridge(PluginStore({str(store.root)!r}))\n"
        "print(b.worker('probe').pid, flush=True)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=120, check=True).stdout
    pid = int(out.strip())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)


def test_cli_tools_and_call(store: PluginStore) -> None:
    def ohp(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "hostbridge.cli", *args, "--root",
                               str(store.root)], capture_output=True, text=True, timeout=120,
                              check=False)

    listed = json.loads(ohp("tools", "shout", "--json").stdout)
    assert listed[0]["name"] == "shout" and listed[0]["input_schema"]["required"] == ["text"]
    assert "text: string" in ohp("tools", "shout").stdout
    done = ohp("call", "shout", "shout", "--args", '{"text": "hey"}')
    assert (done.returncode, done.stdout) == (0, "HEY!\n")
    result = json.loads(ohp("call", "probe", "fail", "--args", '{"count": 1}', "--json").stdout)
    assert result["is_error"] is True and "ValueError" in result["content"]
    for args, expected in [
        (["call", "nope", "x"], "not installed"),
        (["call", "shout", "nope"], "no such tool"),
        (["call", "shout", "shout", "--args", '{"text": 1}'], "expected string"),
        (["call", "shout", "shout", "--args", "{bad"], "not JSON"),
        (["call", "shout", "shout", "--args", "[1]"], "expected a JSON object"),
    ]:
        failed = ohp(*args)
        assert failed.returncode == 1, failed
        # (A worker that degrades from its profile warns on its own line.)
        lines = [line for line in failed.stderr.splitlines()
                 if not line.startswith("ohp: warning: ")]
        assert len(lines) == 1 and lines[0].startswith("ohp: error: ") and expected in lines[0]


def _other_python() -> str | None:
    for interpreter in list_interpreters():
        if interpreter.version[:2] != sys.version_info[:2] and interpreter.version >= (3, 10):
            return str(interpreter.path)
    return None


@pytest.mark.network  # msgpack for another ABI comes from PyPI (or uv's cache)
def test_a_worker_on_another_python_gets_a_compiled_msgpack(
    tmp_path: Path, example_wheelhouse: Path
) -> None:
    other = _other_python()
    if other is None:
        pytest.skip("no second CPython >= 3.10 on this machine")
    store = PluginStore(tmp_path / "store")
    store.install("pypi:openhands-plugin-shout", python=other, find_links=[example_wheelhouse],
                  no_index=True)
    with HostBridge(store) as bridge:
        hello = bridge.worker("shout").hello
        assert hello["python"] != ".".join(map(str, sys.version_info[:3]))
        assert hello["msgpack_compiled"] is True
        assert bridge.call_tool("shout", "shout", {"text": "a"}).content == "A!"


def test_on_close_callbacks_run_once_after_the_workers_stop(tmp_path: Path) -> None:
    ran: list[str] = []
    bridge = HostBridge(PluginStore(tmp_path / "store"))

    def failing() -> None:
        ran.append("failing")
        raise RuntimeError("one callback fails")

    bridge.on_close(failing)
    bridge.on_close(lambda: ran.append("second"))
    bridge.close()
    assert ran == ["failing", "second"]  # a failing one does not keep the others from running
    bridge.close()
    assert ran == ["failing", "second"]  # once


# ---- fast calls (#19 deliverable 3) -------------------------------------------------------------


def test_a_lone_sync_call_reads_its_own_reply_on_the_calling_thread(
        bridge: HostBridge) -> None:
    bridge.call_tool("probe", "echo", {"data": b"x"})  # started, tools listed
    worker = bridge.worker("probe")
    threads: list[str] = []
    answer = worker._on_response

    def recording(message: object) -> bool:
        threads.append(threading.current_thread().name)
        return answer(message)  # type: ignore[arg-type]

    worker._on_response = recording  # type: ignore[method-assign]
    for index in range(20):
        assert bridge.call_tool("probe", "echo", {"data": bytes([index])}).content == \
            bytes([index])
    assert worker.request("ping") == "pong"
    assert threads == [threading.current_thread().name] * 21
    # A capability call from the worker during such a call is handed to the reader thread.
    assert bridge.call_tool("probe", "ask_host", {"text": "hi"}).content == "host says hi"


def test_calls_from_threads_and_asyncio_at_once_are_all_answered(bridge: HostBridge) -> None:
    errors: list[BaseException] = []

    def calls(index: int) -> None:
        try:
            for step in range(40):
                data = f"{index}-{step}".encode()
                assert bridge.call_tool("probe", "echo", {"data": data}).content == data
                if step % 10 == 0:
                    assert bridge.call_tool("probe", "ask_host", {"text": data.decode()}
                                            ).content == f"host says {data.decode()}"
        except BaseException as exc:  # reported below
            errors.append(exc)

    async def acalls() -> list[object]:
        tool = bridge.tool("probe", "echo")
        results = await asyncio.gather(*(tool.acall({"data": bytes([i])}) for i in range(64)))
        return [r.content for r in results]

    threads = [threading.Thread(target=calls, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    assert asyncio.run(acalls()) == [bytes([i]) for i in range(64)]
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    assert not bridge.worker("probe").busy


def test_acall_goes_straight_to_the_worker_without_an_executor(bridge: HostBridge) -> None:
    class NoExecutor(concurrent.futures.ThreadPoolExecutor):
        def submit(self, *args: object, **kwargs: object) -> concurrent.futures.Future[object]:
            raise AssertionError("acall used the loop's executor")

    async def run() -> list[object]:
        tool = bridge.tool("probe", "later")
        first = await tool.acall({"text": "a"})  # may start the worker: off the loop
        asyncio.get_running_loop().set_default_executor(NoExecutor())
        rest = await asyncio.gather(*(tool.acall({"text": str(i)}) for i in range(16)))
        return [first.content, *(r.content for r in rest)]

    assert asyncio.run(run()) == ["aa", *(str(i) * 2 for i in range(16))]


def test_a_blocking_call_on_the_loops_thread_while_the_loop_reads(bridge: HostBridge) -> None:
    bridge.call_tool("probe", "echo", {"data": b"x"})

    async def run() -> list[object]:
        tool = bridge.tool("probe", "echo")
        pending = asyncio.ensure_future(tool.acall({"data": b"a"}))
        await asyncio.sleep(0)  # sent: the loop reads the socket now
        # A synchronous call from a coroutine blocks the loop: it must not wait on the loop.
        blocking = bridge.call_tool("probe", "echo", {"data": b"b"}, timeout=20).content
        return [blocking, (await asyncio.wait_for(pending, 20)).content]

    assert asyncio.run(run()) == [b"b", b"a"]


def test_a_loop_that_stops_reading_does_not_hold_up_other_callers(bridge: HostBridge) -> None:
    bridge.call_tool("probe", "echo", {"data": b"x"})
    worker = bridge.worker("probe")
    loop = asyncio.new_event_loop()
    try:
        # The loop sends a call and is then never run again: nobody awaits the reply there.
        loop.run_until_complete(_send_only(worker))
        assert worker._owner == "loop"
        results: list[object] = []
        thread = threading.Thread(target=lambda: results.append(
            bridge.call_tool("probe", "echo", {"data": b"other"}, timeout=20).content))
        thread.start()
        thread.join(timeout=30)
        assert results == [b"other"]
    finally:
        loop.close()
    assert bridge.call_tool("probe", "echo", {"data": b"after"}).content == b"after"


async def _send_only(worker: object) -> None:
    worker.asubmit("tools.call", "echo", {"data": b"never awaited"})  # type: ignore[attr-defined]


def test_requests_a_loop_makes_in_one_turn_go_in_one_send(bridge: HostBridge) -> None:
    bridge.call_tool("probe", "echo", {"data": b"x"})
    worker = bridge.worker("probe")
    outbox = worker._outbox
    assert outbox is not None
    sends: list[int] = []
    send = outbox.send

    def counting(data: bytes, done: object = None) -> None:
        sends.append(bytes(data).count(b"tools.call"))
        send(data, done)  # type: ignore[arg-type]

    outbox.send = counting  # type: ignore[method-assign]

    async def run() -> list[object]:
        tool = bridge.tool("probe", "echo")
        results = await asyncio.gather(*(tool.acall({"data": bytes([i])}) for i in range(8)))
        return [r.content for r in results]

    assert asyncio.run(run()) == [bytes([i]) for i in range(8)]
    # The first goes at once (nothing in flight); the 7 made in the same turn, in one send.
    assert sends == [1, 7]


def test_a_blocked_loop_does_not_hold_back_the_requests_it_queued(bridge: HostBridge) -> None:
    bridge.call_tool("probe", "echo", {"data": b"x"})
    worker = bridge.worker("probe")
    outbox = worker._outbox
    assert outbox is not None
    senders: list[str] = []
    send = outbox.send

    def recording(data: bytes, done: object = None) -> None:
        senders.append(threading.current_thread().name)
        send(data, done)  # type: ignore[arg-type]

    outbox.send = recording  # type: ignore[method-assign]

    async def run() -> tuple[int, list[object]]:
        calls = [worker.asubmit("tools.call", "echo", {"data": bytes([i])}) for i in range(4)]
        # The loop is blocked before its turn ends: the reader thread takes the socket back
        # and sends the 3 queued requests; every answer is in before the loop runs again.
        deadline = time.monotonic() + 20
        while worker._pending and time.monotonic() < deadline:
            time.sleep(0.01)
        left = len(worker._pending)
        return left, [r["content"] for r in await asyncio.gather(*calls)]

    assert asyncio.run(run()) == (0, [bytes([i]) for i in range(4)])
    assert senders[0] == threading.current_thread().name
    assert senders[1].endswith("-reader"), senders


def test_replies_read_together_reach_their_own_callers(bridge: HostBridge) -> None:
    bridge.call_tool("probe", "echo", {"data": b"x"})
    worker = bridge.worker("probe")
    reads: list[int] = []
    receive = worker._conn.receive_data

    def counting(data: bytes) -> list[object]:
        messages = receive(data)
        reads.append(len(messages))
        return messages  # type: ignore[return-value]

    worker._conn.receive_data = counting  # type: ignore[method-assign,assignment]

    async def run() -> list[object]:
        tool = bridge.tool("probe", "echo")
        calls = [asyncio.ensure_future(tool.acall({"data": bytes([i])})) for i in range(32)]
        await asyncio.sleep(0)  # the tasks ran: their requests are queued
        await asyncio.sleep(0)  # and sent
        # The loop is blocked (nor may the reader thread take the socket): the answers pile
        # up in the socket, and the loop then reads them together.
        with worker._read_lock:
            time.sleep(0.3)
        return [r.content for r in await asyncio.gather(*calls)]

    assert asyncio.run(run()) == [bytes([i]) for i in range(32)]
    assert max(reads) > 1, reads
    # The reader thread's reads: a notification handler holds it while the answers pile up.
    reads.clear()
    gate = threading.Event()
    worker.on_notification = lambda *_: gate.wait(20)  # type: ignore[assignment]
    futures = [worker.submit("tools.call", "notify", {"count": 1})]
    futures += [worker.submit("tools.call", "echo", {"data": bytes([i])}) for i in range(32)]
    time.sleep(0.3)
    gate.set()
    results = [f.result(timeout=20)["content"] for f in futures]
    assert results == [1, *(bytes([i]) for i in range(32))]
    assert max(reads) > 1, reads
    assert not worker.busy


def test_notifications_reach_the_host_before_the_reply_they_precede(
        bridge: HostBridge) -> None:
    bridge.call_tool("probe", "echo", {"data": b"x"})
    worker = bridge.worker("probe")
    seen: list[object] = []

    def note(_worker: object, method: str, params: list[object]) -> None:
        if method == "probe.note":
            time.sleep(0.002)  # a slow handler: a reply passing it would be seen early
            seen.append(params[0])

    worker.on_notification = note
    for count in (1, 5, 40):  # a caller reading its own reply hands the rest over, in order
        seen.clear()
        assert bridge.call_tool("probe", "notify", {"count": count}).content == count
        assert seen == list(range(count))

    async def run() -> None:  # the loop reading
        for count in (1, 5, 40):
            seen.clear()
            result = await bridge.acall_tool("probe", "notify", {"count": count})
            assert result.content == count
            assert seen == list(range(count))

    asyncio.run(run())
    for count in (1, 5, 40):  # the reader thread
        seen.clear()
        assert worker.submit("tools.call", "notify", {"count": count}).result(
            timeout=20)["content"] == count
        assert seen == list(range(count))


def test_an_async_deadline_stops_the_worker(bridge: HostBridge) -> None:
    bridge.call_tool("probe", "echo", {"data": b"x"})
    first = bridge.worker("probe").pid

    async def run() -> float:
        started = time.monotonic()
        with pytest.raises(CallTimeoutError, match=r"deadline of 0\.5 s"):
            await bridge.acall_tool("probe", "slow", {"seconds": 30}, timeout=0.5)
        took = time.monotonic() - started
        # A call within its deadline: its timer goes with it.
        assert (await bridge.acall_tool("probe", "echo", {"data": b"y"}, timeout=0.5)
                ).content == b"y"
        await asyncio.sleep(0.7)
        return took

    assert asyncio.run(run()) < 10
    second = bridge.worker("probe").pid
    assert second != first
    assert bridge.call_tool("probe", "echo", {"data": b"z"}).content == b"z"
    assert bridge.worker("probe").pid == second
