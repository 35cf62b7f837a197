"""What a worker sends the host: floods of output, huge results, malformed frames.

The host's side of these does not depend on the profile; they run under ``strict``.

attack                                          what stops it
----------------------------------------------  -----------------------------------------------
150 MiB on stdout and on stderr, in lines or    the host drains both into bounded logs (200
  as one endless line                             lines of at most 4096 bytes)
a result over the protocol's limits (a str      the worker's own packer refuses it: the call
  > 16 MiB, bytes > 64 MiB, a message > 64 MiB)   fails, the worker lives
raw bytes on the RPC socket: invalid msgpack,   the host's bounded unpacker: a protocol error,
  a non-message, a bad type, an absurd array      the worker is killed, the next call gets a
  header, deep nesting, invalid UTF-8, a bad      fresh one; the host's memory grows by at most
  msgid, a frame announcing 1 GiB                 its 64 MiB buffer
a response to a call never made                 ignored
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import pytest
from secsupport import Bystander, alive, attack, open_bridge, peak_rss_growth, wait_until

from hostbridge import RemoteError, WorkerCrashedError

if TYPE_CHECKING:
    from isolator import PluginStore


@pytest.mark.parametrize("newlines", [True, False], ids=["lines", "one-endless-line"])
def test_an_output_flood_leaves_the_host_bounded(store: PluginStore, newlines: bool) -> None:
    megabytes = 150  # on each stream
    with open_bridge(store, "strict") as bridge:
        bystander = Bystander.start(bridge)
        worker = bridge.worker("attacks")
        with peak_rss_growth() as growth:
            assert attack(bridge, "flood", megabytes=megabytes, newlines=newlines,
                          timeout=120) == megabytes
            assert wait_until(lambda: all(worker.logs[s] and worker.logs[s][-1] == "flood-end"
                                          for s in ("stdout", "stderr")), 20)
        assert growth[0] < 50 << 20, f"the host's RSS grew by {growth[0] >> 20} MiB"
        for stream in ("stdout", "stderr"):
            assert len(worker.logs[stream]) <= 200
            assert all(len(line) <= 4096 for line in worker.logs[stream])
        assert bridge.worker("attacks") is worker  # no harm done: the same worker goes on
        bystander.check()


@pytest.mark.parametrize(("kind", "megabytes", "limit"), [
    ("str", 100, "max_str"), ("bytes", 100, "max_bin"), ("list", 100, "max_buffer"),
])
def test_a_result_over_the_protocol_limits_is_refused(store: PluginStore, kind: str,
                                                      megabytes: int, limit: str) -> None:
    with open_bridge(store, "strict") as bridge:
        bystander = Bystander.start(bridge)
        pid = bridge.worker("attacks").pid
        with peak_rss_growth() as growth, pytest.raises(RemoteError, match=limit):
            bridge.call_tool("attacks", "huge_result", {"megabytes": megabytes, "kind": kind},
                             timeout=60)
        assert growth[0] < 50 << 20, f"the host's RSS grew by {growth[0] >> 20} MiB"
        assert bridge.worker("attacks").pid == pid  # the worker refused to send it, and lives
        bystander.check()


MALFORMED = {
    "invalid-byte": "c1",
    "not-an-array": "2a",
    "bad-message-type": "9407000000",
    "absurd-array-header": "dd7fffffff",
    "nested-too-deep": "91" * 100 + "c0",
    "invalid-utf8-method": "9302a1ffc0",
    "msgid-not-an-int": "9401a178c0c0",
}


@pytest.mark.parametrize("data_hex", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_frame_is_a_protocol_error(store: PluginStore, data_hex: str) -> None:
    with open_bridge(store, "strict") as bridge:
        bystander = Bystander.start(bridge)
        pid = bridge.worker("attacks").pid
        assert pid is not None
        started = time.monotonic()
        with pytest.raises(WorkerCrashedError, match="protocol error"):
            bridge.call_tool("attacks", "send_raw", {"data_hex": data_hex}, timeout=20)
        assert time.monotonic() - started < 5  # at once, not when the tool's sleep is over
        assert wait_until(lambda: not alive(pid), 5)
        bystander.check()  # and the attacking plugin's next call gets a fresh worker
        assert bridge.worker("attacks").pid != pid


def test_a_frame_announcing_a_gigabyte_is_a_protocol_error(store: PluginStore) -> None:
    # A bin of 1 GiB announced, 66 MiB sent: the host holds an incomplete message up to its
    # max_buffer (64 MiB), never what the frame announces.
    announce = "c6" + (1 << 30).to_bytes(4, "big").hex()
    with open_bridge(store, "strict") as bridge:
        bystander = Bystander.start(bridge)
        pid = bridge.worker("attacks").pid
        assert pid is not None
        with peak_rss_growth() as growth, \
                pytest.raises(WorkerCrashedError, match="protocol error"):
            bridge.call_tool("attacks", "send_raw", {"data_hex": announce, "padding_mb": 66},
                             timeout=30)
        assert growth[0] < 160 << 20, f"the host's RSS grew by {growth[0] >> 20} MiB"
        assert wait_until(lambda: not alive(pid), 5)
        bystander.check()


def test_a_forged_response_to_no_call_is_ignored(store: PluginStore) -> None:
    # [1, 32767, nil, nil]: a response to a msgid the host never used.
    with open_bridge(store, "strict") as bridge:
        bystander = Bystander.start(bridge)
        pid = bridge.worker("attacks").pid
        result = bridge.call_tool("attacks", "send_raw",
                                  {"data_hex": "9401cd7fffc0c0", "then_sleep": 0}, timeout=20)
        assert (result.content, result.is_error) == (None, False)
        assert bridge.worker("attacks").pid == pid
        bystander.check()
