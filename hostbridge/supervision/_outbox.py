"""The host's send path to one worker: non-blocking sends, and an outbox for what waits.

The host never blocks on a send (docs/bridge.md, "Bounds on what a worker can cost the host"):
what the socket does not take at once waits in the outbox, in order, and a writer thread
(started on first need) writes it as the worker reads. The lock is held only across sends that
do not block (``MSG_DONTWAIT``), so a worker that stops reading holds up no caller and no lock.
"""

from __future__ import annotations

import collections
import select
import socket
import threading
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

_NO_WAIT = getattr(socket, "MSG_DONTWAIT", 0x40)


class Outbox:
    """What the host writes to one worker's socket. *start_thread(target, what)* starts the
    writer thread (the worker's, so that it is joined with the others)."""

    def __init__(self, sock: socket.socket,
                 start_thread: Callable[[Callable[[], None], str], object]) -> None:
        self._sock = sock
        self._start_thread = start_thread
        # What the socket has not taken yet, in order, each with what runs once it is sent.
        self._queue: collections.deque[tuple[memoryview, Callable[[], None] | None]] = \
            collections.deque()
        # The lock (a plain one: the send path takes it on every call) and the writer's wait.
        self._mutex = threading.Lock()
        self._lock = threading.Condition(self._mutex)
        self._writer: object | None = None
        self._ended = False

    def send(self, data: bytes, done: Callable[[], None] | None = None) -> None:
        """Write *data* to the worker, never blocking: what the socket does not take at once
        waits for the writer thread (a worker busy in a tool, or one that does not read, holds
        up no caller and no lock). *done* runs once all of it is sent. Raises OSError when the
        connection is gone."""
        with self._mutex:
            if self._queue:
                sent = 0
            else:
                try:
                    sent = self._sock.send(data, _NO_WAIT)
                except BlockingIOError:
                    sent = 0
            if sent < len(data):
                self._queue.append((memoryview(data)[sent:], done))
                if self._writer is None:
                    self._writer = self._start_thread(self._write_loop, "writer")
                self._lock.notify()
                return
        if done is not None:
            done()

    def end(self) -> None:
        """Drop what is not sent yet and let the writer end (the worker is gone)."""
        with self._lock:
            self._ended = True
            self._queue.clear()
            self._lock.notify_all()

    def close(self) -> None:
        """:meth:`end`, and close the socket: under the lock, so the writer sends nothing
        more."""
        with self._lock:
            self._ended = True
            self._queue.clear()
            self._lock.notify_all()
            self._sock.close()

    def _write_loop(self) -> None:
        sock = self._sock
        poller = select.poll()
        poller.register(sock.fileno(), select.POLLOUT)
        while True:
            with self._lock:
                while not self._queue:
                    if self._ended or sock.fileno() < 0:
                        return
                    self._lock.wait(1.0)
            # Until the socket takes more, or a tick (to notice the end); no lock held.
            poller.poll(500)
            finished: list[Callable[[], None]] = []
            with self._lock:
                try:
                    while self._queue:
                        view, done = self._queue[0]
                        sent = sock.send(view, _NO_WAIT)
                        if sent < len(view):
                            self._queue[0] = (view[sent:], done)
                            break
                        self._queue.popleft()
                        if done is not None:
                            finished.append(done)
                except BlockingIOError:
                    pass
                except OSError:  # the worker is gone: the reader says why
                    self._queue.clear()
                    return
            for done in finished:
                done()
