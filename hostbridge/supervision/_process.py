"""One worker process: spawned with the plugin venv's interpreter, spoken to over a socketpair.

The host side of the connection runs one reader thread, which completes the futures of pending
calls and serves the worker's calls to host capabilities; any number of threads (or an asyncio
loop, through :func:`asyncio.wrap_future`) may call at once. The worker's stdout and stderr are
drained by two more threads into a bounded log. The worker holds a lease on its plugin's
generation for its whole life, so an upgrade never removes the venv under it.

What a worker can cost the host is bounded (docs/bridge.md, "Bounds on what a worker can cost
the host"): the host never blocks on a send (what the worker does not read waits in an outbox,
written by a writer thread), so no lock is held across I/O and a deadline always fires; the
worker's own calls to the host are served a few at a time, and messages it starts are paced by
a token bucket, both by making the reader wait (the worker's writes then block, not the host);
the decoded size of a message is budgeted by the protocol (``Limits.max_decoded``).

:class:`Worker` composes one collaborator per concern: :class:`~._outbox.Outbox` (the send
path and its writer thread), :class:`~._flow.Flow` (the token bucket and the capability slots)
and :class:`~._output.Output` (the bounded logs of stdout and stderr, and the words of a crash).
It keeps its life, its calls and the reader, which dispatches what the worker sends.
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import os
import select
import signal
import socket
import subprocess
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from hostbridge._errors import (
    CallTimeoutError,
    RemoteError,
    WorkerCrashedError,
    WorkerStartError,
)
from hostbridge.launch._runtime import WORKER_PACKAGE, ensure_runtime
from hostbridge.launch._sandbox import Launch, WorkerLimits, check_profile, plan
from hostbridge.launch._spawn import spawner as _spawner
from hostbridge.launch._zygote import fork_worker, worker_start_mode
from hostbridge.supervision._flow import Flow
from hostbridge.supervision._outbox import Outbox
from hostbridge.supervision._output import Output
from hostbridge.worker import protocol
from isolator import StoreError
from isolator.metadata import find_site_packages
from isolator.policy import Permissions

if TYPE_CHECKING:
    import asyncio
    from collections.abc import Callable, Iterable, Mapping

    from isolator.store import InstalledPlugin, PluginStore

log = logging.getLogger("hostbridge.worker")

_BOOT = (
    "import sys; sys.path.insert(0, sys.argv[1]); "
    f"from {WORKER_PACKAGE}.main import main; main(sys.argv[2])"
)
# One read: the messages it holds are decoded together (at most about 64 bytes each of its
# bytes at the worst: 1-byte empty containers).
_RECV = 256 << 10
# How long the reader thread stays parked after a caller read its own reply, unless woken
# (another call in flight, messages handed over, close): what the worker sends while no call is
# in flight (a notification, a crash) is read within this.
_PARK = 0.01
_POLLIN = select.POLLIN | select.POLLHUP | select.POLLERR
_EOF = object()  # handed over by a caller that read the end of the stream


class _Waiter:
    """A synchronous caller's pending call (:meth:`Worker.call`), lighter than a
    :class:`concurrent.futures.Future` (no condition variable, no callbacks): a caller that
    reads its own reply finds it set; one that waits for another reader blocks on a lock the
    setter releases. Set once, by whoever takes the call out of ``_pending``."""

    __slots__ = ("error", "finished", "lock", "value")

    def __init__(self) -> None:
        self.finished = False
        self.value: object = None
        self.error: BaseException | None = None
        self.lock: Any = None

    def done(self) -> bool:
        return self.finished

    def set_result(self, value: object) -> None:
        self.value = value
        self._finish()

    def set_exception(self, error: BaseException) -> None:
        self.error = error
        self._finish()

    def _finish(self) -> None:
        self.finished = True
        lock = self.lock  # read after the flag: a waiter arriving now sees one or the other
        if lock is not None:
            lock.release()

    def result(self, timeout: float | None) -> Any:
        """The result (or raise the error); the builtin :class:`TimeoutError` after
        *timeout* s."""
        if not self.finished:
            lock = threading.Lock()
            lock.acquire()
            self.lock = lock
            if not self.finished and \
                    not lock.acquire(timeout=-1 if timeout is None else max(0.0, timeout)):
                raise TimeoutError
        if self.error is not None:
            raise self.error
        return self.value


class _LoopFuture:
    """A pending call's completion for an asyncio caller: set directly by the loop when it
    reads the reply itself, else (the reader thread, a caller reading) through
    ``call_soon_threadsafe``, with no thread-pool hop."""

    __slots__ = ("future", "loop")

    def __init__(self, loop: asyncio.AbstractEventLoop, future: asyncio.Future[Any]) -> None:
        self.loop = loop
        self.future = future

    def done(self) -> bool:
        return self.future.done()

    def set_result(self, value: object) -> None:
        _hand_to_loop(self.loop, [(self.future, value, None)])

    def set_exception(self, error: BaseException) -> None:
        _hand_to_loop(self.loop, [(self.future, None, error)])


class _LoopReading:
    """An event loop that reads a worker's socket itself (``add_reader`` on a duplicate of
    its descriptor, so that closing the socket never leaves the loop watching a reused
    number): dropped by the loop, or by the reader thread once the loop is closed. *cork*:
    the requests of this loop's calls made while others are in flight, sent together once
    per turn of the loop (or by the reader thread when it takes the socket back)."""

    __slots__ = ("active", "busy", "cork", "fd", "loop", "thread")

    def __init__(self, loop: asyncio.AbstractEventLoop, fd: int) -> None:
        self.loop = loop
        self.fd = fd
        self.thread = threading.get_ident()
        self.active = time.monotonic()
        self.busy = False  # in a read: the reader thread must not take the socket back
        self.cork: list[bytes] = []

    def drop(self) -> None:
        fd, self.fd = self.fd, -1
        if fd < 0:
            return
        if not self.loop.is_closed():
            with contextlib.suppress(Exception):
                self.loop.remove_reader(fd)
        with contextlib.suppress(OSError):
            os.close(fd)


_Settled = tuple["asyncio.Future[Any]", object, "BaseException | None"]


def _hand_to_loop(loop: asyncio.AbstractEventLoop, settled: list[_Settled]) -> None:
    """Set futures of *loop* from another thread: one wake-up of the loop for them all."""
    with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
        loop.call_soon_threadsafe(_settle, settled)


def _settle(settled: list[_Settled]) -> None:
    for future, value, error in settled:
        if future.done():  # cancelled by its caller meanwhile
            continue
        if error is not None:
            future.set_exception(error)
        else:
            future.set_result(value)


class Worker:
    """A running worker for one installed plugin. Use :meth:`start`, then :meth:`request`."""

    capability_calls = 8
    """How many of the worker's calls to host capabilities are served or queued at once (and
    ``capability_bytes``, their bytes on the wire); the reader waits for one to end before it
    reads on."""
    capability_bytes = 64 << 20
    message_rate = 5000.0
    """Tokens a second for the messages the worker starts (its calls to the host, its
    notifications, responses to no call): one a message, one more each 16 KiB. Past the burst
    the reader waits (the worker's writes block), so what the host spends on them is bounded."""
    message_burst = 5000.0

    def __init__(
        self,
        store: PluginStore,
        name: str,
        *,
        env_allow: Iterable[str] = (),
        capabilities: Mapping[str, Callable[..., Any]] | None = None,
        limits: WorkerLimits | None = None,
        on_crash: Callable[[Worker, WorkerCrashedError], None] | None = None,
        on_notification: Callable[[Worker, str, list[Any]], None] | None = None,
        profile: str = "standard",
        grants: Permissions | None = None,
        launcher: Launcher | None = None,
    ) -> None:
        self.store = store
        self.launcher: Launcher = launcher if launcher is not None else LocalLauncher()
        """Starts the worker's process (:class:`Launcher`): here, or elsewhere (Ray)."""
        self.name = name
        self.env_allow = tuple(env_allow)
        self.capabilities = dict(capabilities or {})
        self.limits = limits or WorkerLimits()
        self.on_crash = on_crash
        self.on_notification = on_notification
        self._capability_pool: ThreadPoolExecutor | None = None
        check_profile(profile)
        self.profile = profile
        self.grants = grants or Permissions()
        """What the operator granted the plugin (environment, network, capabilities)."""
        self.sandbox: dict[str, Any] = {}
        """Every sandbox layer and whether it applies to this worker (set by :meth:`start`)."""
        self._launch: Launch | None = None
        self.last_used = time.monotonic()
        """When a caller last used the worker (heartbeats do not count)."""
        self.last_ping = 0.0
        self.crash: WorkerCrashedError | None = None
        """Why the worker died, when it died on its own (not closed by the host)."""
        self._closing = False
        self.hello: dict[str, Any] = {}
        self._output = Output(name)
        self.logs = self._output.logs
        """The last lines of the worker's stdout and stderr, one bounded log per stream."""
        self._conn = protocol.Connection()
        self._pending: dict[int, tuple[str, Future[Any] | _LoopFuture | _Waiter]] = {}
        # Guards _pending and msgids; never held across I/O or a wait.
        self._lock = threading.Lock()
        # Who reads the socket: None, "reader" (the reader thread) or "caller" (a synchronous
        # caller reading its own reply, nothing else in flight). Guarded by _read_lock, never
        # held across I/O. What a caller read but does not handle itself (anything but a
        # response to a pending call, the end of the stream, an error) goes to _backlog, for
        # the reader thread, in order.
        self._read_lock = threading.Lock()
        self._read_cond = threading.Condition(self._read_lock)
        self._owner: str | None = None
        self._polling = False
        self._backlog: collections.deque[object] = collections.deque()
        self._wake: tuple[int, int] | None = None  # wakes the reader thread out of poll()
        self._buffer = bytearray(_RECV)
        self._view = memoryview(self._buffer)
        # While the reader dispatches one read: the asyncio answers in it, by loop.
        self._batch: dict[asyncio.AbstractEventLoop, list[_Settled]] | None = None
        # Owner "loop": an event loop reads the socket itself while it has calls in flight.
        self._loop_reading: _LoopReading | None = None
        # The reader's waits (capability slots, tokens); kill() and close() end them.
        self._flow = Flow(self)
        self._sock: socket.socket | None = None
        self._outbox: Outbox | None = None  # set with _sock
        self._proc: Any = None  # a Popen, or a launcher's process (Launched.process)
        self._lease: contextlib.AbstractContextManager[InstalledPlugin] | None = None
        self._threads: list[threading.Thread] = []
        self._dead_reason: str | None = None
        self._worker_pid: int | None = None
        self.installed: InstalledPlugin | None = None
        self.agents: dict[str, Any] = {}
        """The agents built in this worker, by id (ids are per worker and unguessable)."""

    # ---- life ------------------------------------------------------------------------------

    def start(self, timeout: float = 30.0) -> dict[str, Any]:
        """Spawn the worker and shake hands; returns what the worker said about itself."""
        lease = self.store.lease(self.name)
        installed = lease.__enter__()
        self._lease = lease
        try:
            self.installed = installed
            if installed.venv is None or installed.python is None:
                raise WorkerStartError(f"plugin {self.name!r}",
                                       "is content-only: it has no code to run")
            self._spawn(installed)
            self.hello = self.request("hello", {"protocol": protocol.PROTOCOL_VERSION},
                                      timeout=timeout)
        except WorkerCrashedError as exc:
            self.close(timeout=1.0)
            tail = list(self.logs["stderr"])[-3:]
            if tail and not exc.stderr_tail:
                raise WorkerCrashedError(exc.subject, f"{exc.reason}; stderr: "
                                         f"{' | '.join(tail)}", exit_code=exc.exit_code,
                                         signal=exc.signal, stderr_tail=tail) from None
            raise
        except BaseException:
            self.close(timeout=1.0)
            raise
        self.sandbox["applied_in_worker"] = self.hello.get("sandbox", {})
        if not self.hello.get("msgpack_compiled", False):
            log.warning("worker for %s uses msgpack's pure-Python fallback (slow)", self.name)
        return self.hello

    def _spawn(self, installed: InstalledPlugin) -> None:
        launched = self.launcher.start(self.store, self.name, installed, profile=self.profile,
                                       grants=self.grants, env_allow=self.env_allow,
                                       limits=self.limits)
        self._launch, self._proc = launched.launch, launched.process
        self.sandbox = dict(launched.sandbox)
        parent = launched.sock
        self._sock = parent
        self._outbox = Outbox(parent, self._thread)
        self._wake = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._thread(self._read_loop, "reader")
        self._output.start(self._proc.stdout, self._proc.stderr, self._thread)

    @property
    def scratch(self) -> Path | None:
        """The worker's ``TMPDIR`` in the store, removed with it (where Landlock keeps the
        store read-only); under strict, the one directory it may write at all."""
        return self._launch.scratch if self._launch is not None else None

    @property
    def pid_namespace(self) -> bool:
        """Whether this worker runs as PID 1 of its own PID namespace."""
        return bool(self.sandbox.get("pid_namespace"))

    @property
    def net_namespace(self) -> bool:
        """Whether this worker has a network namespace of its own (no network)."""
        return self.sandbox.get("net_namespace") is True

    def _thread(self, target: Callable[[], None], what: str) -> threading.Thread:
        thread = threading.Thread(target=target, name=f"hostbridge-{self.name}-{what}",
                                  daemon=True)
        thread.start()
        self._threads.append(thread)
        return thread

    @property
    def alive(self) -> bool:
        """True while the worker runs and is not being closed or killed."""
        return not self._closing and self._dead_reason is None and self._proc is not None \
            and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        """The worker interpreter's process id as the host sees it (under the PID namespace
        launcher, the child of ``unshare``)."""
        if self._proc is None:
            return None
        if self._worker_pid is None:
            if not isinstance(self._proc, subprocess.Popen):
                return int(self._proc.pid)  # a launcher's process says its worker's pid
            child = _python_child(self._proc.pid)
            if child == self._proc.pid and self.pid_namespace:
                return child  # the launcher has not forked yet: ask again later
            self._worker_pid = child
        return self._worker_pid

    @property
    def busy(self) -> bool:
        """True while calls are in flight."""
        return bool(self._pending)

    def kill(self, reason: str) -> None:
        """Kill the worker now (a hung call cannot be interrupted otherwise); calls in flight
        fail with :class:`WorkerCrashedError` giving *reason*."""
        self._closing = True
        self._flow.stop()
        self._fail_all(reason)
        if self._proc is not None:
            _kill(self._proc)
        sock = self._sock
        if sock is not None:  # a caller reading its own reply stops reading
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        self._rouse()

    def close(self, timeout: float = 5.0) -> None:
        """Ask the worker to stop; kill its process group if it does not within *timeout*."""
        self._closing = True
        self._flow.stop()
        proc, sock, outbox = self._proc, self._sock, self._outbox
        if outbox is not None and self._dead_reason is None:
            with contextlib.suppress(OSError, protocol.ProtocolError):
                outbox.send(self._conn.send(protocol.Notification("shutdown", [])))
        if proc is not None:
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                _kill(proc)
        if sock is not None and outbox is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            outbox.close()  # the writer sends nothing more
        self._fail_all("the worker was closed")
        if self._capability_pool is not None:
            self._capability_pool.shutdown(wait=False, cancel_futures=True)
        self._rouse()
        for thread in self._threads:
            thread.join(timeout=2.0)
        if self._wake is not None:
            for fd in self._wake:
                with contextlib.suppress(OSError):
                    os.close(fd)
            self._wake = None
        if self._launch is not None:
            self._launch.cleanup()
        if self._lease is not None:
            self._lease.__exit__(None, None, None)
            self._lease = None

    # ---- calls -----------------------------------------------------------------------------

    def submit(self, method: str, *params: object) -> Future[Any]:
        """Send a request; the future holds its result or a :class:`WorkerError`."""
        future: Future[Any] = Future()
        self._send_request(method, list(params), future)
        self._rouse()
        return future

    def asubmit(self, method: str, *params: object) -> asyncio.Future[Any]:
        """:meth:`submit` for asyncio: the running loop's future, with no thread-pool hop.

        When nothing else is in flight, the loop reads the replies itself (``add_reader``)
        for as long as it has calls in flight; the requests its calls make while others are
        in flight are sent together, once per turn of the loop (one send, one wake-up of the
        worker, for the calls of all its tasks). Otherwise the reader thread sets the future
        with ``call_soon_threadsafe``."""
        import asyncio  # noqa: PLC0415 - only asyncio callers pay for it

        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        entry = _LoopFuture(loop, future)
        with self._read_lock:
            reading = self._loop_reading
            if reading is not None and reading.loop is loop:
                mine = True
            elif self._owner is None and not self._backlog and not self._pending \
                    and self._dead_reason is None and self._sock is not None:
                # Nothing else in flight: this loop reads the replies itself (no thread hop).
                reading = _LoopReading(loop, os.dup(self._sock.fileno()))
                self._loop_reading = reading
                self._owner = "loop"
                mine = True
                if self._polling:
                    self._poke()
                loop.add_reader(reading.fd, self._loop_read, reading)
            else:
                mine = False
            corked = mine and bool(self._pending)
        if not corked:
            self._send_request(method, list(params), entry)
            if not mine:
                self._rouse()
            return future
        assert reading is not None
        data = self._send_request(method, list(params), entry, cork=True)
        if data is not None:
            with self._read_lock:
                cork = reading.cork
                cork.append(data)
                first = len(cork) == 1
            if first:
                loop.call_soon(self._uncork, reading)
        return future

    def _uncork(self, reading: _LoopReading) -> None:
        """(On the loop, once per turn.) Send what the loop's calls queued, in one send."""
        with self._read_lock:
            cork = reading.cork
            if not cork:
                return  # sent by the reader thread, which took the socket back
            reading.cork = []
        self._send_corked(cork)

    def _send_corked(self, cork: list[bytes]) -> None:
        outbox = self._outbox
        if outbox is None:
            return
        # A connection that is gone fails the calls from the reading side (end of stream).
        with contextlib.suppress(OSError):
            outbox.send(cork[0] if len(cork) == 1 else b"".join(cork))

    def _loop_read(self, reading: _LoopReading) -> None:
        """The event loop's reader (``add_reader``): like :meth:`_read_own`, for the loop's
        calls (and any other reply that comes meanwhile; the loop's own futures are set at
        once). It lets go of the socket when it reads something else, or when the reader
        thread took the socket back: after :data:`_PARK` with nothing in flight, or when the
        loop stopped reading."""
        with self._read_lock:
            if self._loop_reading is not reading:
                reading.drop()
                return
            reading.active = time.monotonic()
            reading.busy = True
        handed = False
        try:
            try:
                count = self._sock.recv_into(self._view, 0, socket.MSG_DONTWAIT)  # type: ignore[union-attr]
            except BlockingIOError:
                return
            except OSError as exc:
                self._backlog.append(exc)
                handed = True
                return
            if not count:
                self._backlog.append(_EOF)
                handed = True
                return
            try:
                messages = self._conn.receive_data(self._view[:count])
            except protocol.ProtocolError as exc:
                self._backlog.append(exc)
                handed = True
                return
            loop = reading.loop
            for index, message in enumerate(messages):
                if type(message) is not protocol.Response or \
                        not self._on_response(message, loop):
                    self._backlog.extend(messages[index:])
                    handed = True
                    return
        finally:
            reading.busy = False
            if handed:
                self._loop_lets_go(reading)

    def _loop_lets_go(self, reading: _LoopReading) -> None:
        """The loop read what only the reader thread handles: the socket goes back to it."""
        with self._read_lock:
            if self._loop_reading is reading:
                self._loop_reading = None
                self._owner = None
                if self._backlog or self._pending:
                    self._read_cond.notify()
        reading.drop()

    def call(self, method: str, *params: object, timeout: float | None = None) -> Any:
        """Call *method* and wait for its result; raises the builtin :class:`TimeoutError`
        after *timeout* s (the worker is left as it is: see :meth:`request`).

        When nothing else is in flight, the calling thread reads its own reply from the socket
        (no hop through the reader thread); anything else it reads (the worker's calls to the
        host, notifications, stray responses, the end of the stream) it hands to the reader
        thread, in order, and waits as any other caller."""
        deadline = None if timeout is None else time.monotonic() + timeout
        waiter = _Waiter()
        cork: list[bytes] = []
        with self._read_lock:
            reading = self._loop_reading
            if reading is not None and reading.thread == threading.get_ident():
                # A blocking call on the loop's own thread: the loop cannot read meanwhile.
                self._loop_reading = None
                self._owner = None
                cork, reading.cork = reading.cork, []
            mine = self._owner is None and not self._backlog and self._dead_reason is None \
                and (not self._pending or reading is not None)
            if mine:
                self._owner = "caller"
                if self._polling:
                    self._poke()  # the reader thread leaves poll() and parks
        if cork:
            self._send_corked(cork)  # what the loop's calls queued goes first
        if not mine:
            self._send_request(method, list(params), waiter)
            self._rouse()
            return waiter.result(timeout)
        try:
            self._send_request(method, list(params), waiter)
            if not waiter.finished:
                self._read_own(waiter, deadline)
        finally:
            with self._read_lock:
                self._owner = None
                if self._backlog or self._pending:
                    self._read_cond.notify()
        return waiter.result(None if deadline is None else
                             max(0.0, deadline - time.monotonic()))

    def request(self, method: str, *params: object, timeout: float | None = None) -> Any:
        """Call *method* and wait for its result (raises on error or after *timeout* s)."""
        try:
            return self.call(method, *params, timeout=timeout)
        except TimeoutError:
            self.kill(f"killed: {method} passed its deadline of {timeout:g} s")
            raise CallTimeoutError(f"{method} in worker of {self.name!r}",
                                   f"the deadline of {timeout:g} s passed; the worker was "
                                   "stopped") from None

    def _send_request(self, method: str, params: list[Any],
                      future: Future[Any] | _LoopFuture | _Waiter,
                      cork: bool = False) -> bytes | None:
        """Register the call and send its request (*cork*: return its bytes instead, for the
        caller to send with others). A call that cannot be sent fails its future; an
        argument msgpack cannot carry raises (TypeError, ValueError)."""
        if method != "ping":
            self.last_used = time.monotonic()
        outbox = self._outbox
        if self._dead_reason is not None or outbox is None:
            future.set_exception(WorkerCrashedError(f"worker of {self.name!r}",
                                                    self._dead_reason or "not started"))
            return None
        with self._lock:
            msgid = self._conn.next_msgid()
            self._pending[msgid] = (method, future)
        try:
            data = self._conn.send(protocol.Request(msgid, method, params))
        except BaseException:
            with self._lock:
                self._pending.pop(msgid, None)
            raise
        ended = self._ended()
        if ended is not None:  # the reader failed every call meanwhile
            self._fail_one(msgid, future, ended)
            return None
        if cork:
            return data
        try:
            outbox.send(data)
        except OSError as exc:
            self._fail_one(msgid, future, f"cannot send: {exc.strerror or exc}")
        return None

    def _fail_one(self, msgid: int, future: Future[Any] | _LoopFuture | _Waiter,
                  reason: str) -> None:
        with self._lock:
            if self._pending.pop(msgid, None) is None:
                return  # failed (or answered) meanwhile
        future.set_exception(WorkerCrashedError(f"worker of {self.name!r}", reason))

    def _ended(self) -> str | None:
        """Why the connection ended (set by the reader thread), or None."""
        return self._dead_reason

    def _read_own(self, waiter: _Waiter, deadline: float | None) -> None:
        """Read the socket on the calling thread until *waiter* is done; hand what is not a
        response to a pending call to the reader thread (its waits, the worker's calls and
        notifications, are the reader's: a caller's deadline must always fire)."""
        sock = self._sock
        assert sock is not None
        poller = None
        view = self._view
        while not waiter.finished:
            if deadline is not None:
                if poller is None:
                    poller = select.poll()
                    poller.register(sock.fileno(), _POLLIN)
                left = deadline - time.monotonic()
                if left <= 0 or not poller.poll(max(1, int(left * 1000) + 1)):
                    if deadline - time.monotonic() <= 0:
                        return  # the caller's deadline: waiter.result() says so
                    continue
            try:
                count = sock.recv_into(view)
            except OSError as exc:
                self._backlog.append(exc)
                return
            if not count:
                self._backlog.append(_EOF)
                return
            try:
                messages = self._conn.receive_data(view[:count])
            except protocol.ProtocolError as exc:
                self._backlog.append(exc)
                return
            for index, message in enumerate(messages):
                if type(message) is not protocol.Response or not self._on_response(message):
                    self._backlog.extend(messages[index:])
                    return

    def _poke(self) -> None:
        if self._wake is not None:
            with contextlib.suppress(OSError):
                os.write(self._wake[1], b"\0")

    def _rouse(self) -> None:
        """Wake the reader thread if it is parked (a call waits for it, or the end). Not
        while it reads (it reads on while calls are in flight) or a caller reads (which hands
        the socket back, waking it, when calls are in flight)."""
        if self._owner not in ("caller", "reader"):
            with self._read_lock:
                self._read_cond.notify()

    # ---- the reader --------------------------------------------------------------------------

    def _read_loop(self) -> None:
        reason = "the worker closed the connection"
        try:
            self._read()
        except protocol.ProtocolError as exc:
            reason = f"protocol error: {exc}"
            self._kill_worker()
        except OSError as exc:
            reason = f"connection lost: {exc.strerror or exc}"
        with self._read_lock:
            self._owner = "reader"  # for good: no caller reads any more
            self._loop_reading = None  # a loop reading lets go at its next read
        code = self._proc.poll() if self._proc is not None else None
        if code is None and self._proc is not None:
            try:
                code = self._proc.wait(timeout=0.5)
            except subprocess.TimeoutExpired:
                code = None
        ended = self._output.explain_exit(reason, code)
        self._dead_reason = ended.reason
        self._flow.stop()
        assert self._outbox is not None
        self._outbox.end()  # the writer ends
        error = WorkerCrashedError(f"worker of {self.name!r}", ended.reason,
                                   exit_code=ended.exit_code, signal=ended.signal,
                                   stderr_tail=ended.stderr_tail)
        try:
            # Recorded before any caller hears of it: a caller that retries at once must see
            # the crash (backoff, budget, status).
            if not self._closing:
                self.crash = error
                if self.on_crash is not None:
                    self.on_crash(self, error)
        finally:
            self._fail_all(ended.reason, error)

    def _read(self) -> None:
        """The reader thread: read and dispatch until the end of the stream (returns) or an
        error (raises); what a caller handed over first, in order. While a caller or a loop
        reads, the thread is parked (:meth:`call`, :meth:`asubmit`).

        Idle, it waits in ``poll()`` (so that a caller can take the socket: a thread sitting
        in ``recv`` would read its reply first); once it reads and calls are in flight, it
        reads on with a blocking ``recv`` (one system call a read) until none is: meanwhile
        nobody else may take the socket, as calls of others are in flight."""
        sock = self._sock
        wake = self._wake
        assert sock is not None and wake is not None
        poller = select.poll()
        poller.register(sock.fileno(), _POLLIN)
        poller.register(wake[0], select.POLLIN)
        cond = self._read_cond
        lock = self._read_lock
        backlog = self._backlog
        recv_into = sock.recv_into
        view = self._view
        while True:
            corked: list[bytes] = []
            with lock:
                while self._owner in ("caller", "loop"):
                    cond.wait(_PARK)
                    if self._owner == "loop":
                        corked += self._take_from_loop(sock)
                if backlog:
                    items = list(backlog)
                    backlog.clear()
                    self._owner = "reader"
                else:
                    items = None
                    self._polling = True
            if corked:
                self._send_corked(corked)
            if items is not None:
                try:
                    for item in items:
                        if item is _EOF:
                            self._conn.receive_data(b"")  # a message cut short: an error
                            return
                        if isinstance(item, BaseException):
                            raise item
                        self._on_message(item)  # type: ignore[arg-type]
                finally:
                    with lock:
                        self._owner = None
                continue
            events = poller.poll()
            with lock:
                self._polling = False
                if any(fd == wake[0] for fd, _ in events):
                    with contextlib.suppress(OSError):
                        os.read(wake[0], 4096)
                if self._owner is not None or backlog or \
                        not any(fd != wake[0] for fd, _ in events):
                    continue
                self._owner = "reader"
            try:
                flags: int = socket.MSG_DONTWAIT
                while True:
                    try:
                        count = recv_into(view, 0, flags)
                    except BlockingIOError:  # a caller read it meanwhile
                        break
                    if not count:
                        self._conn.receive_data(b"")
                        return
                    self._dispatch(count)
                    if not self._pending:
                        break  # idle: back to poll(), where a caller may take the socket
                    flags = 0
            finally:
                with lock:
                    self._owner = None

    def _dispatch(self, count: int) -> None:
        """(The reader thread.) Dispatch the messages of one read of *count* bytes: each
        loop's answers in it are set with one wake-up of that loop."""
        self._batch = {}
        try:
            for message in self._conn.receive_data(self._view[:count]):
                self._on_message(message)
        finally:
            batch, self._batch = self._batch, None
            for loop, settled in batch.items():
                _hand_to_loop(loop, settled)

    def _take_from_loop(self, sock: socket.socket) -> list[bytes]:
        """(Under _read_lock, on the reader thread.) Take the socket back from an event loop
        that has not read for a while and either has nothing in flight or has something to
        read or to send (it is blocked, stopped or closed): calls of other threads must not
        wait on it. Returns what the loop's calls queued and the loop did not send, for the
        reader to send."""
        reading = self._loop_reading
        if reading is None or reading.busy or time.monotonic() - reading.active < _PARK:
            return []
        if self._pending and not reading.cork:
            probe = select.poll()
            probe.register(sock.fileno(), _POLLIN)
            if not probe.poll(0):
                return []
        self._loop_reading = None
        self._owner = None
        cork, reading.cork = reading.cork, []
        if reading.loop.is_closed():
            reading.drop()
        # else the loop lets go of its descriptor at its next read (_loop_read)
        return cork

    def _on_response(self, message: protocol.Response,
                     loop: asyncio.AbstractEventLoop | None = None) -> bool:
        """Complete the call *message* answers; False when it answers no pending call.
        *loop*: the event loop running this (its own futures are set at once)."""
        with self._lock:
            entry = self._pending.pop(message.msgid, None)
        if entry is None:
            return False
        method, future = entry
        if method != "ping":
            self.last_used = time.monotonic()
        error = None if message.error is None else RemoteError(method, message.error)
        if type(future) is _LoopFuture:
            if future.loop is loop:
                waiting = future.future
                if not waiting.done():  # cancelled by its caller meanwhile
                    if error is None:
                        waiting.set_result(message.result)
                    else:
                        waiting.set_exception(error)
            elif self._batch is not None:
                # The reader's read: the loop is woken once for every answer in it.
                self._batch.setdefault(future.loop, []).append(
                    (future.future, message.result, error))
            else:
                _hand_to_loop(future.loop, [(future.future, message.result, error)])
        elif error is not None:
            future.set_exception(error)
        else:
            future.set_result(message.result)
        return True

    def _on_message(self, message: protocol.Message) -> None:
        if isinstance(message, protocol.Response):
            if not self._on_response(message):
                self._flow.pace(message.size)  # a response to no call: the worker's own doing
        elif isinstance(message, protocol.Request):
            self._flow.pace(message.size)
            if not self._flow.take_slot(message.size):
                return  # the worker is being stopped
            # Off the reader thread: a slow capability (a model call) must not hold up the
            # answers to other calls.
            if self._capability_pool is None:
                self._capability_pool = ThreadPoolExecutor(
                    max_workers=4, thread_name_prefix=f"hostbridge-{self.name}-capability")
            try:
                self._capability_pool.submit(self._serve_capability, message)
            except RuntimeError:  # shut down by close()
                self._flow.free_slot(message.size)
        else:
            self._flow.pace(message.size)
            if self.on_notification is not None and not self._flow.stopping:
                # The worker that sent it goes with it: a message is only ever about what
                # that worker owns (its agents), never another plugin's.
                self.on_notification(self, message.method, message.params)

    # ---- the worker's calls to host capabilities ---------------------------------------

    def _serve_capability(self, request: protocol.Request) -> None:
        # The call holds its slot until its answer is written: a worker that does not read
        # its answers gets no more calls served.
        handed_over = False
        try:
            handler = self.capabilities.get(request.method)
            error: object = None
            result: object = None
            if handler is None:
                error = {"type": "PermissionError", "message": f"capability {request.method!r} "
                         f"is not granted to plugin {self.name!r}", "traceback": ""}
            else:
                try:
                    result = handler(*request.params)
                except Exception as exc:
                    error = protocol.error_data(exc)
            try:
                data = self._conn.send(protocol.Response(request.msgid, error, result))
            except (TypeError, ValueError) as exc:  # a result msgpack cannot carry
                data = self._conn.send(
                    protocol.Response(request.msgid, protocol.error_data(exc), None))
            outbox = self._outbox
            if outbox is None or self._dead_reason is not None:
                return
            with contextlib.suppress(OSError):
                outbox.send(data, lambda: self._flow.free_slot(request.size))
                handed_over = True
        except protocol.ProtocolError:
            pass
        finally:
            if not handed_over:
                self._flow.free_slot(request.size)

    def _fail_all(self, reason: str, error: WorkerCrashedError | None = None) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
        for method, future in pending.values():
            if not future.done():
                future.set_exception(WorkerCrashedError(
                    f"{method} in worker of {self.name!r}", reason,
                    exit_code=error.exit_code if error else None,
                    signal=error.signal if error else None,
                    stderr_tail=error.stderr_tail if error else None))

    def _kill_worker(self) -> None:
        if self._proc is not None:
            _kill(self._proc)




class Launched(NamedTuple):
    """A worker process a :class:`Launcher` started: the host's end of its channel, the
    process and the sandbox layers applied to it."""

    sock: socket.socket
    """The host's end of a stream socket; the worker speaks MessagePack-RPC on the other."""
    process: Any
    """A :class:`subprocess.Popen`, or an object with the same ``pid``, ``stdout`` and
    ``stderr`` (pipes to drain), ``poll()``, ``wait(timeout)`` (raising
    :class:`subprocess.TimeoutExpired`) and a ``kill()`` that kills its whole tree."""
    sandbox: Mapping[str, Any]
    launch: Launch | None = None
    """The local launch (its scratch directory is removed when the worker closes)."""


class Launcher(Protocol):
    """Where and how a worker's process starts: the seam between :class:`Worker` (the
    protocol, calls, supervision) and the process. :class:`LocalLauncher` starts it on this
    machine; ``hostbridge.ray.RayLauncher`` on a Ray cluster's node."""

    def start(self, store: PluginStore, name: str, installed: InstalledPlugin, *,
              profile: str, grants: Permissions, env_allow: Iterable[str],
              limits: WorkerLimits) -> Launched: ...


class LocalLauncher:
    """Starts the worker here, connected by a socketpair (the default): forked by a zygote
    of the plugin's interpreter and profile (*start* ``"zygote"``, where the profile allows
    it), or the plugin venv's interpreter exec'd under the profile's launcher (``"exec"``).
    *start* None: ``$ISOLATOR_WORKER_START``, else ``"zygote"`` (docs/security.md)."""

    def __init__(self, start: str | None = None) -> None:
        if start is not None:
            worker_start_mode(start)  # checked now
        self.mode = start

    def start(self, store: PluginStore, name: str, installed: InstalledPlugin, *,
              profile: str, grants: Permissions, env_allow: Iterable[str],
              limits: WorkerLimits) -> Launched:
        assert installed.venv is not None and installed.python is not None
        mode = worker_start_mode(self.mode)
        try:
            # pyvenv.cfg and bin/python* are read by the interpreter before any layer applies.
            store.check_interpreter_files(installed)
        except StoreError as exc:
            raise WorkerStartError(f"plugin {name!r}", f"not started: {exc}") from None
        runtime = ensure_runtime(store.root, str(installed.python["abi_tag"]),
                                 os.path.realpath(installed.python["path"]))
        python = installed.venv / "bin" / "python"
        launch = plan(store.root, name, installed, runtime, python,
                      profile=profile, grants=grants, env_allow=env_allow,
                      limits=limits)
        tools = {ep.name: ep.value
                 for ep in store.entry_points(name)["openhands.tools"]}
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        config: dict[str, Any] = {
            "fd": child.fileno(), "plugin": name,
            "site_packages": str(find_site_packages(installed.venv)),
            "msgpack_path": str(runtime.msgpack_dir), "tools": tools, **launch.config}
        if mode == "zygote" and launch.fork_refused is None:
            base = Path(os.path.realpath(installed.python["path"]))
            try:
                process = fork_worker(launch, base, runtime, config=config, parent=parent,
                                      child=child, venv_python=python)
            except BaseException:
                parent.close()
                launch.cleanup()
                raise
            finally:
                child.close()
            return Launched(parent, process, {**launch.layers, "start": "zygote"}, launch)
        launch.layers["start"] = "exec" if mode == "exec" else \
            f"exec ({launch.fork_refused})"
        # Die with the host. The kernel's parent-death signal follows the spawning *thread*,
        # so every worker is spawned by one thread that lives as long as the process.
        cmd = [*launch.prefix, str(python), "-I", "-S", "-B", "-c", _BOOT,
               str(runtime.worker_dir), json.dumps(config)]
        try:
            proc = _spawner.popen(
                cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                env=launch.env, cwd=launch.cwd, pass_fds=(child.fileno(),),
                start_new_session=True, **launch.user,
            )
        except OSError as exc:
            parent.close()
            raise WorkerStartError(f"plugin {name!r}", f"cannot start {python}: "
                                   f"{exc.strerror}") from None
        finally:
            child.close()
        return Launched(parent, proc, launch.layers, launch)


def _kill(proc: Any) -> None:
    if not isinstance(proc, subprocess.Popen):  # a launcher's own process: it kills its tree
        proc.kill()
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if isinstance(proc, subprocess.Popen):
            os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)


def _python_child(pid: int) -> int:
    """The child of a launcher process (``unshare --fork``), else *pid* itself."""
    try:
        with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as handle:
            children = handle.read().split()
    except OSError:
        return pid
    return int(children[0]) if children else pid
