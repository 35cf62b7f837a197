"""What a worker can make the host spend: time (a deadline that never fires), memory, CPU.

The attacks are tools of ``openhands-plugin-flood``, which write raw msgpack-rpc frames onto the
worker's connection. The host's side of these does not depend on the profile; they run under
``strict``.

attack                                          what stops it
----------------------------------------------  -----------------------------------------------
calls to the host (1 KiB or 1 MiB each) sent    the host never blocks on a send (a worker that
  without end, answers never read                 does not read gets its answers queued) and
                                                  serves at most a few of a worker's calls at
                                                  once: past that its reader stops reading. The
                                                  call's deadline fires, the worker is killed
one message of 63 Mi empty maps (1 byte each,   the decoded size is budgeted as it decodes: a
  about 80 bytes once decoded)                    protocol error, the worker is killed
notifications or stray responses, as fast as    a token bucket per worker: the reader waits, so
  the host takes them                             the host's CPU stays low; the worker lives
a worker that never answers tools.list          the call's deadline covers the tools.list it
                                                  needs first
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from typing import TYPE_CHECKING, Any

import pytest
from secsupport import alive, make_store, open_bridge, peak_rss_growth, wait_until

from hostbridge import CallTimeoutError, WorkerCrashedError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from hostbridge import HostBridge
    from isolator import PluginStore

# A backstop: each test bounds its own waits and fails (not hangs) when the host stalls.
pytestmark = pytest.mark.timeout(300)

SOURCES = ("pypi:openhands-plugin-flood", "pypi:openhands-plugin-bystander")
# A deadline "fires" when the call returns within this much of it.
LATE = 3.0


@pytest.fixture(scope="module")
def store(sec_root: Path, attack_wheelhouse: Path, plugin_python: str) -> PluginStore:
    """The flood plugin and the bystander (the suite's store has the other attacks)."""
    return make_store(sec_root / "test_attack_host", attack_wheelhouse, plugin_python,
                      sources=SOURCES)


class Hung(AssertionError):
    pass


def bounded(seconds: float, function: Callable[[], Any], *, unstick: Callable[[], None]) -> Any:
    """Run *function* in a thread; its result, or raise what it raised. If it has not returned
    after *seconds*, the host stalled: *unstick* (kill the attacking worker, so the stuck
    threads can go on) and fail."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = function()
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        unstick()
        thread.join(10)
        raise Hung(f"the host stalled: no return within {seconds:g} s")
    if "error" in box:
        raise box["error"]
    return box.get("value")


def killer(pid: int | None) -> Callable[[], None]:
    def kill() -> None:
        if pid is not None:
            with contextlib.suppress(OSError):
                os.killpg(os.getpgid(pid), signal.SIGKILL)
    return kill


@contextlib.contextmanager
def bridge_with_bystander(store: PluginStore, **kwargs: Any) -> Iterator[tuple[HostBridge, int]]:
    """A bridge (strict) whose bystander and flood workers run; closing it must not stall."""
    bridge = open_bridge(store, "strict", **kwargs)
    try:
        assert bridge.call_tool("bystander", "echo", {"text": "hi"}, timeout=30).content["text"]
        bystander_pid = bridge.worker("bystander").pid
        assert bystander_pid is not None
        yield bridge, bystander_pid
    finally:
        flood = bridge._workers.get("flood")
        bounded(20, bridge.close, unstick=killer(flood.pid if flood else None))


def survived(bridge: HostBridge, bystander_pid: int) -> None:
    """The bystander answers, unrestarted; the flood plugin serves its next call."""
    result = bridge.call_tool("bystander", "echo", {"text": "still here"}, timeout=30)
    assert result.content["text"] == "still here", result
    assert bridge.worker("bystander").pid == bystander_pid, "the bystander was restarted"
    again = bridge.call_tool("flood", "ok", {"text": "next"}, timeout=30)
    assert again.content == "next", again


@pytest.mark.parametrize(("count", "size"), [(200_000, 1024), (2000, 1 << 20)],
                         ids=["1KiB-requests", "1MiB-requests"])
def test_calls_to_the_host_that_never_read_an_answer(store: PluginStore, count: int,
                                                     size: int) -> None:
    # Before: the host's reader queued every request (1.3 GiB for 1 MiB ones) and the
    # answers' sendall blocked holding the worker's lock, so the deadline's kill() hung.
    with bridge_with_bystander(store) as (bridge, bystander_pid):
        bridge.call_tool("flood", "ok", {"text": "warm"}, timeout=30)
        pid = bridge.worker("flood").pid
        assert pid is not None
        with peak_rss_growth() as growth:
            started = time.monotonic()
            with pytest.raises(CallTimeoutError, match="deadline of 5 s"):
                bounded(30, lambda: bridge.call_tool("flood", "requests",
                                                     {"count": count, "size": size},
                                                     timeout=5),
                        unstick=killer(pid))
            took = time.monotonic() - started
        print(f"{count} requests of {size} B: deadline of 5 s fired after {took:.1f} s; "
              f"RSS +{growth[0] >> 20} MiB")
        assert took < 5 + LATE, f"the deadline of 5 s fired after {took:.1f} s"
        assert growth[0] < 100 << 20, f"the host's RSS grew by {growth[0] >> 20} MiB"
        assert wait_until(lambda: not alive(pid), 5)
        survived(bridge, bystander_pid)


def test_kill_and_close_do_not_wait_for_a_worker_that_does_not_read(store: PluginStore) -> None:
    # No deadline at all: the host's own kill() (and close()) must still return at once.
    with bridge_with_bystander(store) as (bridge, bystander_pid):
        bridge.call_tool("flood", "ok", {"text": "warm"}, timeout=30)
        worker = bridge.worker("flood")
        pid = worker.pid
        outcome: dict[str, BaseException] = {}

        def call() -> None:
            try:
                bridge.call_tool("flood", "requests", {"count": 200_000, "size": 1024})
            except BaseException as exc:
                outcome["error"] = exc

        caller = threading.Thread(target=call, daemon=True)
        caller.start()
        time.sleep(3)  # the worker's writes block: it sent all the host would take
        started = time.monotonic()
        bounded(10, lambda: worker.kill("killed by the test"), unstick=killer(pid))
        caller.join(10)
        assert not caller.is_alive(), "the call did not end when its worker was killed"
        assert isinstance(outcome.get("error"), WorkerCrashedError), outcome
        assert "killed by the test" in str(outcome["error"])
        assert time.monotonic() - started < 10
        survived(bridge, bystander_pid)


def test_a_message_of_empty_maps_is_refused_by_decoded_size(store: PluginStore) -> None:
    # Before: 63 MiB of empty maps decoded to about 5 GiB in the host.
    with bridge_with_bystander(store) as (bridge, bystander_pid):
        bridge.call_tool("flood", "ok", {"text": "warm"}, timeout=30)
        pid = bridge.worker("flood").pid
        assert pid is not None
        with peak_rss_growth() as growth, \
                pytest.raises(WorkerCrashedError, match=r"protocol error.*decoded"):
            bounded(120, lambda: bridge.call_tool("flood", "empty_maps", {"megabytes": 63},
                                                  timeout=60),
                    unstick=killer(pid))
        print(f"63 MiB of empty maps: RSS +{growth[0] >> 20} MiB")
        assert growth[0] < 400 << 20, f"the host's RSS grew by {growth[0] >> 20} MiB"
        assert wait_until(lambda: not alive(pid), 5)
        survived(bridge, bystander_pid)


@pytest.mark.parametrize(("kind", "size"), [("notification", 0), ("response", 0),
                                            ("notification", 64 << 10)],
                         ids=["notifications", "stray-responses", "64KiB-notifications"])
def test_a_flood_of_messages_is_slowed_not_served(store: PluginStore, kind: str,
                                                  size: int) -> None:
    # Before: the host's reader served them as fast as they came, a core of the host's CPU.
    seconds = 4.0
    with bridge_with_bystander(store) as (bridge, bystander_pid):
        bridge.call_tool("flood", "ok", {"text": "warm"}, timeout=30)
        worker = bridge.worker("flood")
        pid = worker.pid
        box: dict[str, Any] = {}

        def call() -> None:
            try:
                box["result"] = bridge.call_tool("flood", "flood", {
                    "kind": kind, "seconds": seconds, "size": size}, timeout=60)
            except BaseException as exc:
                box["error"] = exc

        with peak_rss_growth() as growth:
            cpu, wall = time.process_time(), time.monotonic()
            caller = threading.Thread(target=call, daemon=True)
            caller.start()
            time.sleep(1.0)
            # The bystander keeps answering promptly while the flood goes on.
            echo_started = time.monotonic()
            assert bridge.call_tool("bystander", "echo", {"text": "during"},
                                    timeout=10).content["text"] == "during"
            echo = time.monotonic() - echo_started
            time.sleep(max(0.0, seconds - (time.monotonic() - wall)))
            cpu, wall = time.process_time() - cpu, time.monotonic() - wall
            caller.join(60)
        if caller.is_alive():
            killer(pid)()
            raise Hung("the flood call did not return")
        assert "error" not in box, box.get("error")
        written = box["result"].content
        share = cpu / wall
        print(f"{kind} x {size} B: {written} written in {seconds:g} s; host CPU {share:.0%} "
              f"of a core; RSS +{growth[0] >> 20} MiB; bystander echo {echo * 1000:.0f} ms")
        assert share < 0.10, f"the host spent {share:.0%} of a core on the flood"
        assert growth[0] < 100 << 20, f"the host's RSS grew by {growth[0] >> 20} MiB"
        assert echo < 1.0, f"the bystander took {echo:.2f} s to answer during the flood"
        assert bridge.worker("flood") is worker  # slowed down, not killed
        survived(bridge, bystander_pid)


def test_a_worker_that_never_answers_tools_list_meets_the_deadline(
        store: PluginStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOOD_HANG_ON_LIST", "1")
    with bridge_with_bystander(store, env_allow=["FLOOD_HANG_ON_LIST"]) as (bridge,
                                                                            bystander_pid):
        worker = bridge.worker("flood")
        started = time.monotonic()
        with pytest.raises(CallTimeoutError, match="deadline of 3 s"):
            bounded(30, lambda: bridge.call_tool("flood", "ok", {"text": "x"}, timeout=3),
                    unstick=killer(worker.pid))
        took = time.monotonic() - started
        assert took < 3 + LATE, f"the deadline of 3 s fired after {took:.1f} s"
        result = bridge.call_tool("bystander", "echo", {"text": "still here"}, timeout=30)
        assert result.content["text"] == "still here"
        assert bridge.worker("bystander").pid == bystander_pid
