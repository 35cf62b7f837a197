"""Attacks on what the host spends on one worker: each writes raw msgpack-rpc frames onto the
worker's connection to the host (the runtime's session holds its descriptor), the way a plugin
that ignores the runtime would.

* :func:`requests`: calls to the host (capability requests) without ever reading an answer;
* :func:`empty_maps`: one message of 1-byte empty maps, which decode to about 80 bytes each;
* :func:`flood`: notifications or stray responses, as fast as the host takes them.
"""

from __future__ import annotations

import os
import select
import time


def _fd() -> int:
    from ohp_worker import main  # the worker's runtime; its session holds the socket

    session = main._session
    assert session is not None
    return session.fd


def _write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _str(text: bytes) -> bytes:
    return b"\xa1" + text if len(text) == 1 else b"\xd9" + bytes([len(text)]) + text


def _bin(size: int) -> bytes:
    return b"\xc6" + size.to_bytes(4, "big") + bytes(size)


def ok(text: str) -> str:
    """Return *text*: the harmless call that shows a worker still serves."""
    return text


def requests(count: int, size: int, then_sleep: float = 120.0) -> int:
    """Send *count* requests ``[0, msgid, "flood.nothing", [bin of size bytes]]`` to the host
    and never read its answers; then sleep. The writes block once the host stops reading."""
    fd = _fd()
    for index in range(count):
        msgid = (1 << 31) + index
        frame = (b"\x94\x00\xce" + msgid.to_bytes(4, "big") + _str(b"flood.nothing")
                 + b"\x91" + _bin(size))
        _write_all(fd, frame)
    time.sleep(then_sleep)
    return count


def empty_maps(megabytes: int, then_sleep: float = 30.0) -> None:
    """One notification whose params are *megabytes* arrays of 1 Mi empty maps each (1 byte on
    the wire, about 80 bytes each once decoded); then sleep."""
    fd = _fd()
    _write_all(fd, b"\x93\x02" + _str(b"flood.maps") + b"\xdc" + megabytes.to_bytes(2, "big"))
    array = b"\xdd" + (1 << 20).to_bytes(4, "big") + b"\x80" * (1 << 20)
    for _ in range(megabytes):
        _write_all(fd, array)
    time.sleep(then_sleep)


def flood(kind: str, seconds: float, size: int = 0) -> int:
    """Write messages as fast as the host takes them for *seconds*; how many were written.

    *kind*: ``notification`` (``[2, "agent.event", ["agent-x", bin]]``, for no agent) or
    ``response`` (``[1, 2**32-1, nil, bin]``, to no call); each carries *size* bytes.
    """
    if kind == "notification":
        frame = b"\x93\x02" + _str(b"agent.event") + b"\x92" + _str(b"agent-x") + _bin(size)
    elif kind == "response":
        frame = b"\x94\x01\xce\xff\xff\xff\xff\xc0" + _bin(size)
    else:
        raise ValueError(f"unknown kind {kind!r}")
    batch = frame * max(1, 65536 // len(frame))
    fd = _fd()
    sent = 0
    pending = memoryview(b"")
    os.set_blocking(fd, False)
    try:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if not pending:
                pending = memoryview(batch)
            try:
                written = os.write(fd, pending)
            except BlockingIOError:
                select.select([], [fd], [], 0.05)
                continue
            sent += written
            pending = pending[written:]
    finally:
        os.set_blocking(fd, True)
    _write_all(fd, pending)  # the last frame whole: the stream must stay valid
    return sent // len(frame)
