"""The sans-I/O msgpack-rpc core (hostbridge/worker/protocol.py), in memory only.

Most tests run twice: with msgpack's compiled extension and with its pure-Python fallback
(what a worker gets on an interpreter without a wheel), since the two unpackers raise and
buffer differently.
"""

from __future__ import annotations

import copy
import itertools
import json
import pickle
import time
from array import array
from typing import TYPE_CHECKING, Any

import msgpack
import msgpack.fallback
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hostbridge.worker import protocol
from hostbridge.worker.protocol import (
    NOTIFICATION,
    PROTOCOL_VERSION,
    REQUEST,
    RESPONSE,
    Connection,
    Limits,
    Message,
    Notification,
    ProtocolError,
    Request,
    Response,
    error_data,
    pack,
)

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

HAS_C = msgpack.Unpacker is not msgpack.fallback.Unpacker
HYPOTHESIS = settings(deadline=None, max_examples=200,
                      suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(params=["c", "fallback"])
def impl(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Run the test with the compiled msgpack, then with the pure-Python one."""
    if request.param == "c":
        if not HAS_C:
            pytest.skip("msgpack's compiled extension is not installed")
    else:
        monkeypatch.setattr(msgpack, "Unpacker", msgpack.fallback.Unpacker)
        monkeypatch.setattr(msgpack, "Packer", msgpack.fallback.Packer)
    yield request.param


def raw(obj: object) -> bytes:
    """Bytes of any object, bypassing the protocol's own checks (to forge bad input)."""
    return msgpack.packb(obj, use_bin_type=True)  # type: ignore[no-any-return]


def nest(levels: int) -> list[Any]:
    """An array nested *levels* deep: nest(1) == [], nest(2) == [[]]."""
    value: list[Any] = []
    for _ in range(levels - 1):
        value = [value]
    return value


def feed_all(conn: Connection, chunks: Sequence[bytes], eof: bool = True) -> list[Message]:
    messages: list[Message] = []
    for chunk in chunks:
        messages.extend(conn.receive_data(chunk))
    if eof:
        assert conn.receive_data(b"") == []
    return messages


def split(data: bytes, cuts: Sequence[int]) -> list[bytes]:
    """*data* cut at the given offsets into non-empty chunks (b"" would mean end of stream)."""
    points = [0, *sorted(set(cuts)), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(points) if b > a]


def assert_dead(conn: Connection) -> None:
    assert conn.closed
    for data in (b"\x90", b""):
        with pytest.raises(ProtocolError):
            conn.receive_data(data)
    with pytest.raises(ProtocolError):
        conn.send(Notification("x", []))
    conn.close()  # idempotent
    assert conn.closed


SAMPLES: list[Message] = [
    Request(0, "tools.call", ["echo", {"text": "héllo ☃ 𝄞", "n": 3, "flags": [True, False]}]),
    Request(2**32 - 1, "", []),
    Request(7, "m", [None, 2**64 - 1, -(2**63), 0, -1, 1.5, -0.0, b"", b"\x00\xff" * 10,
                     "", "x" * 300, [[[[]]]], {}, {"k": {"k": {"k": [b"v"]}}}, {b"bin": 1}]),
    Response(0, None, None),
    Response(1, None, {"content": [1, 2, 3], "is_error": False}),
    Response(2**32 - 1, {"type": "ValueError", "message": "bad", "traceback": "..."}, None),
    Response(3, None, b"\x01" * 70000),
    Notification("log", ["info", "ünïcødé"]),
    Notification("shutdown", []),
]


# ---- round trips -----------------------------------------------------------------------------


@pytest.mark.parametrize("message", SAMPLES, ids=repr)
def test_round_trip_each_kind(impl: str, message: Message) -> None:
    conn = Connection()
    data = conn.send(message)
    assert data == pack(message)
    assert Connection().receive_data(data) == [message]


def test_wire_format_is_plain_msgpack_rpc() -> None:
    assert pack(Request(5, "m", [1])) == raw([0, 5, "m", [1]])
    assert pack(Response(5, None, "r")) == raw([1, 5, None, "r"])
    assert pack(Notification("n", [b"b"])) == raw([2, "n", [b"b"]])
    assert (REQUEST, RESPONSE, NOTIFICATION, PROTOCOL_VERSION) == (0, 1, 2, 1)
    # bytes go as bin and come back as bytes, str as str
    [message] = Connection().receive_data(pack(Request(1, "m", [b"abc", "abc"])))
    assert isinstance(message, Request)
    assert [type(p) for p in message.params] == [bytes, str]


def test_tuples_are_sent_as_arrays(impl: str) -> None:
    [message] = Connection().receive_data(pack(Notification("n", [(1, (2, 3)), {"t": ()}])))
    assert message == Notification("n", [[1, [2, 3]], {"t": []}])


def test_two_connections_call_each_other(impl: str) -> None:
    """A host and a worker, each calling the other while a call of its own is in flight."""
    host, worker = Connection(), Connection()
    pending: dict[int, str] = {}

    # the host makes two calls before the worker reads anything
    wire = b""
    for text in ("a", "b"):
        msgid = host.next_msgid()
        pending[msgid] = text
        wire += host.send(Request(msgid, "upper", [text]))
    requests = worker.receive_data(wire)
    assert [r.msgid for r in requests if isinstance(r, Request)] == [0, 1]

    # serving the first, the worker calls back into the host ("log")...
    callback = Request(worker.next_msgid(), "log", ["serving a"])
    [seen] = host.receive_data(worker.send(callback))
    assert seen == callback
    # ...the host answers it; the worker correlates by msgid
    [answer] = worker.receive_data(host.send(Response(callback.msgid, None, "logged")))
    assert answer == Response(callback.msgid, None, "logged")

    # the worker answers out of order; the host correlates by msgid
    wire = b""
    for request in reversed(requests):
        assert isinstance(request, Request)
        wire += worker.send(Response(request.msgid, None, request.params[0].upper()))
    wire += worker.send(Notification("event", [{"done": True}]))
    results = {}
    for message in host.receive_data(wire):
        if isinstance(message, Response):
            results[pending.pop(message.msgid)] = message.result
    assert results == {"a": "A", "b": "B"}
    assert not pending

    # an error crosses as data
    failing = Request(host.next_msgid(), "divide", [1, 0])
    [request] = worker.receive_data(host.send(failing))
    try:
        1 / 0  # noqa: B018
    except ZeroDivisionError as exc:
        reply = Response(request.msgid if isinstance(request, Request) else -1,
                         error_data(exc, "Traceback ..."), None)
    [message] = host.receive_data(worker.send(reply))
    assert isinstance(message, Response)
    assert message.msgid == failing.msgid
    assert message.error == {"type": "ZeroDivisionError", "message": "division by zero",
                             "traceback": "Traceback ..."}


def test_next_msgid_counts_and_wraps() -> None:
    conn = Connection()
    assert [conn.next_msgid() for _ in range(3)] == [0, 1, 2]
    other = Connection()
    assert other.next_msgid() == 0  # per connection
    conn._next_msgid = 2**32 - 2
    assert [conn.next_msgid() for _ in range(3)] == [2**32 - 2, 2**32 - 1, 0]


# ---- chunking --------------------------------------------------------------------------------


def test_byte_by_byte_equals_one_feed(impl: str) -> None:
    data = b"".join(pack(m) for m in SAMPLES[:3] + SAMPLES[-2:])
    one = feed_all(Connection(), [data])
    assert one == SAMPLES[:3] + SAMPLES[-2:]
    assert feed_all(Connection(), [data[i : i + 1] for i in range(len(data))]) == one


def test_message_split_at_every_point(impl: str) -> None:
    message = Request(9, "tools.call", ["x" * 40, b"y" * 300, {"z": [1, 2.5, None]}])
    data = pack(message)
    for cut in range(1, len(data)):
        conn = Connection()
        assert conn.receive_data(data[:cut]) == []
        assert conn.receive_data(data[cut:]) == [message]


def test_several_messages_in_one_feed_and_a_tail(impl: str) -> None:
    data = b"".join(pack(m) for m in SAMPLES)
    conn = Connection()
    tail = pack(Notification("late", [1]))
    assert conn.receive_data(data + tail[:2]) == SAMPLES
    assert conn.receive_data(tail[2:]) == [Notification("late", [1])]


def test_accepts_any_bytes_like(impl: str) -> None:
    data = pack(Notification("n", [1]))
    assert Connection().receive_data(bytearray(data)) == [Notification("n", [1])]
    assert Connection().receive_data(memoryview(data)) == [Notification("n", [1])]
    assert len(data) % 2 == 0
    words = array("H", data)  # a buffer of 2-byte items: fed as its bytes
    assert Connection().receive_data(words) == [Notification("n", [1])]  # type: ignore[arg-type]


def test_many_small_messages_in_a_read_larger_than_max_buffer(impl: str) -> None:
    limits = Limits(max_buffer=64)
    messages = [Notification("n", [i, "x" * 10]) for i in range(200)]
    data = b"".join(pack(m) for m in messages)
    assert len(data) > 40 * limits.max_buffer
    assert feed_all(Connection(limits), [data]) == messages


def test_big_bytes_payload_round_trips_quickly(impl: str) -> None:
    payload = bytes(range(256)) * 4096  # 1 MiB
    message = Request(1, "write", ["file", payload])
    sender, receiver = Connection(), Connection()
    rounds = 20 if impl == "c" else 3
    start = time.perf_counter()
    for _ in range(rounds):
        [got] = receiver.receive_data(sender.send(message))
    elapsed = time.perf_counter() - start
    assert got == message
    assert isinstance(got, Request) and type(got.params[1]) is bytes
    # ~0.5 ms a round with the compiled msgpack: per-byte Python work would take seconds
    assert elapsed < rounds * 0.05


def test_unpacker_buffer_is_not_kept_after_a_huge_message(impl: str) -> None:
    conn = Connection()
    before = conn._unpacker
    big = Notification("big", [b"x" * (5 << 20)])
    data = pack(big)
    assert feed_all(conn, [data[: 1 << 20], data[1 << 20 :]], eof=False) == [big]
    assert conn._unpacker is not before
    assert conn.receive_data(pack(Notification("small", []))) == [Notification("small", [])]


# ---- hypothesis ------------------------------------------------------------------------------

texts = st.text(st.characters(codec="utf-8"), max_size=30)
leaves = (st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1)
          | st.floats(allow_nan=False) | texts | st.binary(max_size=40))
values = st.recursive(
    leaves,
    lambda children: (st.lists(children, max_size=4)
                      | st.dictionaries(texts | st.binary(max_size=8), children, max_size=4)),
    max_leaves=12,
)
msgids = st.integers(0, 2**32 - 1)
params = st.lists(values, max_size=4)
messages = st.one_of(
    st.builds(Request, msgids, texts, params),
    st.builds(Response, msgids, values, values),
    st.builds(Notification, texts, params),
)


@st.composite
def chunked(draw: st.DrawFn, data: bytes) -> list[bytes]:
    cuts = draw(st.lists(st.integers(0, len(data)), max_size=min(len(data), 30)))
    return split(data, cuts)


@HYPOTHESIS
@given(st.lists(messages, max_size=8), st.data())
def test_any_messages_survive_any_chunking(impl: str, sent: list[Message],
                                           data: st.DataObject) -> None:
    conn = Connection()
    wire = b"".join(conn.send(m) for m in sent)
    assert feed_all(Connection(), data.draw(chunked(wire))) == sent


def outcome(limits: Limits, chunks: Sequence[bytes]) -> tuple[list[Message], bool]:
    """Feed *chunks* then EOF: the messages returned, and whether a ProtocolError ended it."""
    conn = Connection(limits)
    got: list[Message] = []
    try:
        for chunk in [*chunks, b""]:
            result = conn.receive_data(chunk)
            assert isinstance(result, list)
            got.extend(result)
    except ProtocolError:
        assert_dead(conn)
        return got, True
    assert not conn.closed
    return got, False


def check_valid(message: Message) -> None:
    assert isinstance(message, Message)
    if isinstance(message, (Request, Response)):
        assert type(message.msgid) is int and 0 <= message.msgid < 2**32
    if isinstance(message, (Request, Notification)):
        assert type(message.method) is str
        assert type(message.params) is list


TINY = Limits(max_buffer=48, max_bin=8, max_str=8, max_array=4, max_map=4, max_depth=4)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    """A valid stream, then bytes replaced, inserted, removed or cut off."""
    wire = bytearray(b"".join(pack(m) for m in draw(st.lists(messages, min_size=1,
                                                              max_size=4))))
    for _ in range(draw(st.integers(1, 4))):
        where = draw(st.integers(0, len(wire)))
        action = draw(st.sampled_from(["replace", "insert", "delete", "truncate"]))
        if action == "replace" and where < len(wire):
            wire[where] = draw(st.integers(0, 255))
        elif action == "insert":
            wire[where:where] = draw(st.binary(min_size=1, max_size=6))
        elif action == "delete":
            del wire[where : where + draw(st.integers(1, 6))]
        else:
            del wire[where:]
    return bytes(wire)


@HYPOTHESIS
@given(st.binary(max_size=300) | mutated(), st.sampled_from([Limits(), TINY]), st.data())
def test_any_bytes_give_messages_or_one_protocol_error(impl: str, stream: bytes, limits: Limits,
                                                        data: st.DataObject) -> None:
    # Byte by byte delivers every message before the first error; any other chunking
    # delivers a prefix of those (the rest of a read that fails is dropped), and fails too.
    reference, failed = outcome(limits, [stream[i : i + 1] for i in range(len(stream))])
    for message in reference:
        check_valid(message)
    got, chunked_failed = outcome(limits, data.draw(chunked(stream)))
    assert chunked_failed == failed
    assert got == reference[: len(got)]
    if not failed:
        assert got == reference


# ---- refusals --------------------------------------------------------------------------------


def refused(data: bytes, limits: Limits | None = None, *, chunks: int = 1) -> str:
    """Feed *data* (in *chunks* pieces) then EOF; return the ProtocolError's text."""
    conn = Connection(limits)
    size = max(1, -(-len(data) // chunks))
    with pytest.raises(ProtocolError) as info:
        for i in range(0, len(data), size):
            conn.receive_data(data[i : i + size])
        conn.receive_data(b"")
    assert_dead(conn)
    return str(info.value)


@pytest.mark.parametrize("obj", [
    [3, 1], [0, "x", "m", []], [0, 1, 2, []], [1, 1, None], 5, [], None, "text", b"bin",
    {"a": 1}, [-1, 1, "m", []], [True, 1, "m", []], [1.0, 1, None, None],
    [0, -1, "m", []], [0, 2**32, "m", []], [0, True, "m", []], [0, 1.0, "m", []],
    [0, 1, b"m", []], [0, 1, "m", {}], [0, 1, "m", None], [0, 1, "m"],
    [0, 1, "m", [], None], [1, 1, None, None, None], [1, "1", None, None], [2, "m"],
    [2, "m", [], 1], [2, 1, []], [2, "m", "p"],
], ids=repr)
def test_wrong_shapes_are_refused(impl: str, obj: object) -> None:
    refused(raw(obj))


@pytest.mark.parametrize(("data", "why"), [
    (b"\xc1", "FormatError"),                        # never used in msgpack
    (b"\x94\x00\x01\xa2\xff\xfe\x90", "utf-8"),      # method not UTF-8
    (b"\x93\x02\xa1m\x91\xc7\x00\x05", "ext"),        # ext type, even empty
    (b"\x93\x02\xa1m\x91\xd6\xff\x00\x00\x00\x00", "ext"),  # a timestamp is an ext too
    (b"\x93\x02\xa1m\x91\x81\x01\x02", "map key"),   # int key
    (b"\x93\x02\xa1m\x91\x81\xc0\x02", "map key"),   # nil key
    (b"\x93\x02\xa1m\x91\x81\x90\x02", "map key"),   # array key
])
def test_bad_msgpack_is_refused(impl: str, data: bytes, why: str) -> None:
    assert why.lower() in refused(data).lower()


@pytest.mark.parametrize(("obj", "what"), [
    ([2, "m", [b"x" * 17]], "bin"),
    ([2, "m", ["x" * 17]], "str"),
    ([2, "x" * 17, []], "str"),
    ([2, "m", [{"x" * 17: 1}]], "str"),
    ([2, "m", list(range(17))], "array"),
    ([2, "m", [{str(i): i for i in range(17)}]], "map"),
    ([2, "m", nest(16)], "depth"),
])
def test_limits_are_enforced(impl: str, obj: object, what: str) -> None:
    limits = Limits(max_buffer=1000, max_bin=16, max_str=16, max_array=16, max_map=16,
                    max_depth=16)
    text = refused(raw(obj), limits)
    assert what in text
    # the same in small pieces
    refused(raw(obj), limits, chunks=7)
    # exactly at the limit is fine
    at_limit = {"bin": [2, "m", [b"x" * 16]], "str": [2, "m", ["x" * 16]],
                "array": [2, "m", list(range(16))],
                "map": [2, "m", [{str(i): i for i in range(16)}]],
                "depth": [2, "m", nest(15)]}[what]
    assert len(feed_all(Connection(limits), [raw(at_limit)])) == 1


def test_default_depth_limit(impl: str) -> None:
    # the message's array is level 1, its params level 2
    assert feed_all(Connection(), [raw([2, "m", nest(63)])]) == [Notification("m", nest(63))]
    assert "max_depth (64)" in refused(raw([2, "m", nest(64)]))
    assert "max_depth" in refused(raw([2, "m", nest(100)]))
    assert "max_depth" in refused(raw([1, 0, None, [{"k": nest(99)}]]))
    # deeper than the C unpacker's own stack: still a protocol error
    refused(b"\x93\x02\xa1m" + b"\x91" * 5000 + b"\xc0")
    # nested headers that each announce max_array items (preallocated by the C unpacker)
    refused((b"\xdd" + (1 << 20).to_bytes(4, "big")) * 1100)


def test_decoded_size_is_budgeted(impl: str) -> None:
    # Empty maps: 1 byte each on the wire, about 80 once decoded. Each array or map is
    # charged 64, each array item 64 more, each map entry 160.
    limits = Limits(max_decoded=64 * 1000)
    maps = [2, "m", [[{} for _ in range(300)] for _ in range(2)]]
    assert "max_decoded" in refused(raw(maps), limits)
    assert "max_decoded" in refused(raw(maps), limits, chunks=50)
    assert "max_decoded" in refused(raw([1, 0, None, {str(i): i for i in range(400)}]), limits)
    # each message has its own budget: many small ones in one read are fine
    small = raw([2, "m", [{} for _ in range(100)]])
    assert len(feed_all(Connection(limits), [small * 20])) == 20
    # the default: 63 MiB of empty maps is refused long before it is decoded
    header = b"\x93\x02\xa1m\xdc\x00\x3f"
    array = b"\xdd" + (1 << 20).to_bytes(4, "big") + b"\x80" * (1 << 20)
    conn = Connection()
    with pytest.raises(ProtocolError, match="max_decoded"):
        conn.receive_data(header)
        for _ in range(63):
            conn.receive_data(array)
    assert_dead(conn)


def test_send_refuses_what_the_peer_would_not_decode(impl: str) -> None:
    limits = Limits(max_decoded=64 * 1000)
    conn = Connection(limits)
    with pytest.raises(ValueError, match="max_decoded"):
        conn.send(Notification("m", [[{} for _ in range(300)] for _ in range(2)]))
    with pytest.raises(ValueError, match="max_decoded"):
        conn.send(Response(1, None, {str(i): i for i in range(400)}))
    assert not conn.closed
    # what the sender lets through, the receiver takes (same estimate)
    fits = Notification("m", [[{} for _ in range(100)] for _ in range(2)])
    assert feed_all(Connection(limits), [conn.send(fits)]) == [fits]


def test_a_received_message_has_its_size_on_the_wire(impl: str) -> None:
    first, second = Request(1, "m", [b"x" * 100]), Notification("n", [])
    got = feed_all(Connection(), [pack(first) + pack(second)])
    assert got == [first, second]
    assert [m.size for m in got] == [len(pack(first)), len(pack(second))]
    assert first.size == 0  # made here
    assert pickle.loads(pickle.dumps(got[0])) == first


def test_incomplete_message_larger_than_max_buffer(impl: str) -> None:
    limits = Limits(max_buffer=1024)
    header = b"\x93\x02\xa1m\x91\xc6" + (100_000).to_bytes(4, "big")
    conn = Connection(limits)
    conn.receive_data(header)
    with pytest.raises(ProtocolError, match="max_buffer"):
        for _ in range(100):
            conn.receive_data(b"\x00" * 100)
    assert_dead(conn)
    # a single large read fails at once
    assert "max_buffer" in refused(header + b"\x00" * 5000, limits)
    # a complete message of exactly max_buffer bytes is fine, one more byte is not
    message = Notification("m", [b"x" * (1024 - len(pack(Notification("m", [b""]))) - 1)])
    data = pack(message)
    if len(data) < 1024:  # bin8 -> bin16 header: pad the bin to land exactly on 1024
        message = Notification("m", [message.params[0] + b"x" * (1024 - len(data))])
        data = pack(message)
    assert len(data) == 1024
    assert feed_all(Connection(limits), [data]) == [message]
    assert feed_all(Connection(limits), split(data, range(0, 1024, 100))) == [message]
    bigger = pack(Notification("m", [message.params[0] + b"x"]))
    assert "max_buffer" in refused(bigger, limits)
    assert "max_buffer" in refused(bigger, limits, chunks=10)


@pytest.mark.parametrize("cut", [1, 2, 5, -1])
def test_eof_inside_a_message(impl: str, cut: int) -> None:
    data = pack(Request(1, "method", [[1, 2], {"k": b"v" * 10}]))
    assert "end of stream" in refused(data[:cut])


def test_eof_inside_a_message_after_whole_ones(impl: str) -> None:
    conn = Connection()
    assert conn.receive_data(pack(Notification("a", [])) + b"\x94") == [Notification("a", [])]
    with pytest.raises(ProtocolError, match="end of stream"):
        conn.receive_data(b"")
    assert_dead(conn)


def test_clean_eof(impl: str) -> None:
    conn = Connection()
    assert conn.receive_data(pack(Notification("a", []))) == [Notification("a", [])]
    assert conn.receive_data(b"") == []
    assert conn.receive_data(b"") == []
    assert not conn.closed
    assert conn.send(Notification("bye", []))  # half-closed: we may still write
    with pytest.raises(ProtocolError, match="after the end"):
        conn.receive_data(b"\x90")
    assert_dead(conn)


def test_error_then_everything_fails(impl: str) -> None:
    conn = Connection()
    with pytest.raises(ProtocolError, match="bad message type") as first:
        conn.receive_data(raw([3, 1]))
    with pytest.raises(ProtocolError) as second:
        conn.receive_data(pack(Notification("fine", [])))
    assert str(first.value) in str(second.value)  # later errors say why it died
    assert_dead(conn)


def test_close(impl: str) -> None:
    conn = Connection()
    conn.close()
    assert_dead(conn)


# ---- sending ---------------------------------------------------------------------------------


class Opaque:
    pass


@pytest.mark.parametrize(("message", "error"), [
    (Request(1, "m", [Opaque()]), TypeError),
    (Request(1, "m", [2**64]), ValueError),
    (Request(1, "m", [-(2**63) - 1]), ValueError),
    (Request(1, "m", ["\udc80"]), ValueError),
    (Request(1, "m", [{1: "int key"}]), ValueError),
    (Request(1, "m", [{None: "nil key"}]), ValueError),
    (Request(1, "m", [msgpack.ExtType(1, b"x")]), ValueError),
    (Request(1, "m", [msgpack.Timestamp(0)]), ValueError),
    (Request(1, "m", nest(64)), ValueError),
    (Response(1, nest(64), None), ValueError),
    (Request(-1, "m", []), ValueError),
    (Request(2**32, "m", []), ValueError),
    (Request(True, "m", []), TypeError),
    (Request("1", "m", []), TypeError),  # type: ignore[arg-type]
    (Request(1, b"m", []), TypeError),  # type: ignore[arg-type]
    (Request(1, "m", ("tuple",)), TypeError),  # type: ignore[arg-type]
    (Notification("m", None), TypeError),  # type: ignore[arg-type]
    (Response(1.5, None, None), TypeError),  # type: ignore[arg-type]
    ([0, 1, "m", []], TypeError),
])
def test_unencodable_messages(impl: str, message: Message, error: type[Exception]) -> None:
    conn = Connection()
    with pytest.raises(error):
        conn.send(message)
    with pytest.raises(error):
        pack(message)
    assert not conn.closed  # nothing was written: the connection is fine
    assert conn.receive_data(conn.send(Notification("ok", []))) == [Notification("ok", [])]


def test_cycles_are_refused(impl: str) -> None:
    loop: list[Any] = []
    loop.append(loop)
    with pytest.raises(ValueError, match="max_depth"):
        pack(Notification("m", [loop]))
    mapping: dict[str, Any] = {}
    mapping["self"] = mapping
    with pytest.raises(ValueError, match="max_depth"):
        pack(Response(1, None, mapping))


def test_send_applies_the_connection_limits(impl: str) -> None:
    limits = Limits(max_buffer=100, max_bin=10, max_str=10, max_array=3, max_map=3, max_depth=4)
    conn = Connection(limits)
    params: list[Any]
    for params in ([b"x" * 11], [bytearray(11)], [memoryview(b"x" * 11)], ["x" * 11],
                   ["é" * 6], [{"x" * 11: 1}], [{b"x" * 11: 1}], [[1, 2, 3, 4]],
                   [(1, 2, 3, 4)], [{"a": 1, "b": 2, "c": 3, "d": 4}], [[[[]]]], [b"x"] * 4):
        with pytest.raises(ValueError, match="max_"):
            conn.send(Notification("m", params))
    with pytest.raises(ValueError, match="max_str"):
        conn.send(Notification("m" * 11, []))
    with pytest.raises(ValueError, match="max_buffer"):
        conn.send(Notification("m", [[b"x" * 10] * 3] * 3))
    # what it sends, a peer with the same limits accepts
    ok = Notification("m", [b"x" * 10, "é" * 5, {"k": (1, 2, 3)}])
    assert Connection(limits).receive_data(conn.send(ok)) == \
        [Notification("m", [b"x" * 10, "é" * 5, {"k": [1, 2, 3]}])]


# ---- values ----------------------------------------------------------------------------------


def test_messages_are_frozen_values() -> None:
    request = Request(1, "m", [1])
    assert request == Request(1, "m", [1])
    assert request != Request(2, "m", [1])
    assert Notification("m", []) != Request(0, "m", [])
    assert request != (1, "m", [1])
    assert repr(request) == "Request(msgid=1, method='m', params=[1])"
    assert repr(Response(1, None, "r")) == "Response(msgid=1, error=None, result='r')"
    assert repr(Notification("n", [])) == "Notification(method='n', params=[])"
    assert Response(1, None, "r").result == "r"
    with pytest.raises(AttributeError):
        request.msgid = 2
    with pytest.raises(AttributeError):
        del request.method
    with pytest.raises(AttributeError):
        request.extra = 1  # type: ignore[attr-defined]
    assert hash(Response(1, None, "r")) == hash(Response(1, None, "r"))
    with pytest.raises(TypeError):
        hash(request)  # params is a list, as with a frozen dataclass
    assert pickle.loads(pickle.dumps(request)) == request
    assert copy.deepcopy(request) == request
    assert isinstance(request, Message) and not isinstance(request.params, Message)
    reply: Message = Response(4, None, [1])
    match reply:
        case Request():
            pytest.fail("a Response is no Request")
        case Response(msgid, None, [first]):
            assert (msgid, first) == (4, 1)
        case _:
            pytest.fail("no match")


def test_limits() -> None:
    assert Limits() == Limits(max_buffer=64 << 20, max_bin=64 << 20, max_str=16 << 20,
                              max_array=1 << 20, max_map=1 << 20, max_depth=64,
                              max_decoded=256 << 20)
    assert Limits(max_depth=3).max_depth == 3
    assert Connection().limits == Limits()
    for bad in ({"max_depth": 0}, {"max_buffer": -1}, {"max_str": True}, {"max_map": 1.5}):
        with pytest.raises(ValueError, match="positive int"):
            Limits(**bad)
    with pytest.raises(TypeError):
        Limits(1024)  # type: ignore[call-arg]
    with pytest.raises(AttributeError):
        Limits().max_depth = 5


class CustomError(Exception):
    pass


class Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no")


def test_error_data() -> None:
    assert error_data(ValueError("bad value")) == {
        "type": "ValueError", "message": "bad value", "traceback": ""}
    data = error_data(CustomError("custom"), "Traceback (most recent call last):\n  ...")
    assert data["type"] == f"{__name__}.CustomError"
    assert data["message"] == "custom"
    assert data["traceback"].startswith("Traceback")
    try:
        json.loads("{")
    except json.JSONDecodeError as exc:
        assert error_data(exc)["type"] == "json.decoder.JSONDecodeError"
        assert "Expecting" in error_data(exc)["message"]
    assert error_data(KeyError("k"))["message"] == "'k'"
    assert error_data(Unprintable())["message"] == f"<unprintable {__name__}.Unprintable object>"
    # encodable whatever the exception holds: lone surrogates are escaped, huge texts cut
    odd = error_data(OSError(2, "No such file", "caf\udce9"), "x" * 1_000_000)
    assert "caf\\udce9" in odd["message"]
    assert len(odd["traceback"]) < 70_000
    assert "characters cut" in odd["traceback"]
    message = Response(1, odd, None)
    assert Connection().receive_data(pack(message)) == [message]


def test_protocol_module_imports_only_msgpack() -> None:
    """It runs in workers: the standard library's cheap modules and msgpack, nothing else."""
    import ast
    import inspect

    tree = ast.parse(inspect.getsource(protocol))
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module or "")
    assert imported == {"__future__", "msgpack", "typing"}
    # typing only under TYPE_CHECKING (which is False at run time)
    assert protocol.TYPE_CHECKING is False
    assert not hasattr(protocol, "Any")
