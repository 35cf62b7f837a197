"""Fast worker start: a zygote per interpreter, profile and outer launcher chain, that forks
workers (docs/security.md, "Worker start: a zygote, or exec").

A zygote is the plugin interpreter's base interpreter, started through the same outer layers
as a worker (:attr:`Launch.outer`: the parent-death signal, and for a root host the private
mount namespace and the switch to uid 65534), without any plugin's paths, environment or
configuration: it imports the worker runtime and msgpack, then forks a worker for each request
on its control socket (``ohp_worker.zygote``). Everything that belongs to one plugin (its
namespaces, rlimits, environment, working directory, Landlock rules, seccomp filter,
site-packages, tools) reaches the forked child over the worker's own socket, after the fork,
and is applied there, as the exec path's launcher and interpreter apply it.

:func:`fork_worker` returns the host's side: the worker's socket is the caller's; a
:class:`ForkedProcess` stands for the process (pid, output pipes, exit status, kill).
"""

from __future__ import annotations

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
from collections import deque
from typing import TYPE_CHECKING, Any, BinaryIO

from hostbridge._errors import WorkerStartError
from hostbridge.launch._runtime import WORKER_PACKAGE
from hostbridge.launch._spawn import spawner as _spawner

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from hostbridge.launch._runtime import Runtime
    from hostbridge.launch._sandbox import Launch

log = logging.getLogger("hostbridge.zygote")

MODES = ("zygote", "exec")
"""How a local worker starts: forked by a zygote (where the profile allows it), or exec'd
through the launcher chain."""
ENV_VAR = "ISOLATOR_WORKER_START"
DEFAULT_MODE = "zygote"

_BOOT = (
    "import sys; sys.path.insert(0, sys.argv[1]); "
    f"from {WORKER_PACKAGE}.zygote import zygote_main; zygote_main(sys.argv[2], "
    "int(sys.argv[3]))"
)
_ZYGOTE_ENV = ("PATH", "LANG", "LC_ALL", "LC_CTYPE")
"""The zygote's environment: nothing a plugin could use (each worker gets its own after the
fork)."""
_READY_TIMEOUT = 30.0
IDLE_STOP = 5.0
"""A zygote none of whose workers lives any more is stopped after this many seconds (the next
worker starts another): a host done with its plugins keeps no process for them."""
_LIMIT_KEYS = ("memory_bytes", "open_files", "cpu_seconds", "processes", "file_size_bytes")


def worker_start_mode(mode: str | None = None) -> str:
    """*mode*, else ``$ISOLATOR_WORKER_START``, else :data:`DEFAULT_MODE`; checked."""
    chosen = mode or os.environ.get(ENV_VAR) or DEFAULT_MODE
    if chosen not in MODES:
        what = f"worker start {chosen!r}" if mode else f"{ENV_VAR}={chosen!r}"
        raise WorkerStartError(what, f"expected one of {', '.join(MODES)}")
    return chosen


class Zygote:
    """One zygote process and its control socket; requests are served one at a time."""

    def __init__(self, key: tuple[Any, ...], proc: subprocess.Popen[bytes],
                 control: socket.socket) -> None:
        self.key = key
        self.proc = proc
        self.control = control
        self.lock = threading.Lock()
        self.stderr: deque[str] = deque(maxlen=20)
        self.forks = 0
        self.live = 0
        """Its workers that have not ended (or are being started); guarded by ``_lock``."""
        self._idle = 0  # which idle period a stop timer belongs to

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def fork(self, fds: list[int], timeout: float) -> int:
        """Ask for a worker on *fds* (socket, stdout, stderr, status); its child's pid."""
        with self.lock:
            self.control.settimeout(timeout)
            socket.send_fds(self.control, [b"F"], fds)
            line = b""
            while not line.endswith(b"\n"):
                chunk = self.control.recv(64)
                if not chunk:
                    raise OSError("the zygote closed its control socket")
                line += chunk
            self.forks += 1
        text = line.decode("ascii", "replace").strip()
        if text.startswith("E"):
            raise OSError(f"the zygote could not fork: {text[1:].strip()}")
        return int(text)

    def release(self) -> None:
        """One of its workers ended (or did not start): when none is left, stop it after
        :data:`IDLE_STOP` unless another starts meanwhile."""
        with _lock:
            self.live -= 1
            if self.live > 0:
                return
            self._idle += 1
            idle = self._idle
        timer = threading.Timer(IDLE_STOP, self._stop_idle, (idle,))
        timer.daemon = True
        timer.start()

    def _stop_idle(self, idle: int) -> None:
        with _lock:
            if self.live > 0 or idle != self._idle:
                return
            if _zygotes.get(self.key) is self:
                del _zygotes[self.key]
        log.debug("the zygote of %s is idle: stopped", self.key[0])
        self.stop()

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.control.close()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)


_zygotes: dict[tuple[Any, ...], Zygote] = {}
_lock = threading.Lock()
_key_locks: dict[tuple[Any, ...], threading.Lock] = {}


def zygotes() -> list[Zygote]:
    """The zygotes of this host process (for tests and ``ohp doctor``)."""
    with _lock:
        return list(_zygotes.values())


def stop_zygotes() -> None:
    """Stop every zygote of this host process (workers already forked keep running)."""
    with _lock:
        stopping = list(_zygotes.values())
        _zygotes.clear()
    for zygote in stopping:
        zygote.stop()


def _zygote_key(launch: Launch, python: Path, runtime: Runtime) -> tuple[Any, ...]:
    env = tuple((key, os.environ[key]) for key in _ZYGOTE_ENV if key in os.environ)
    return (str(python), launch.profile, tuple(launch.outer),
            tuple(sorted((k, str(v)) for k, v in launch.user.items())), env,
            str(runtime.worker_dir), str(runtime.msgpack_dir))


def _zygote(launch: Launch, python: Path, runtime: Runtime) -> Zygote:
    """The running zygote for *launch*, started if there is none; it counts one more live
    worker (the caller releases it when that worker ends or does not start)."""
    key = _zygote_key(launch, python, runtime)
    with _lock:
        zygote = _zygotes.get(key)
        if zygote is not None and zygote.alive:
            zygote.live += 1
            return zygote
        key_lock = _key_locks.setdefault(key, threading.Lock())
    with key_lock:
        with _lock:
            zygote = _zygotes.get(key)
            if zygote is not None and zygote.alive:
                zygote.live += 1
                return zygote
        if zygote is not None:
            log.warning("the zygote of %s (%s) died (%s): starting another", python,
                        launch.profile, zygote.proc.poll())
            zygote.stop()
        zygote = _start_zygote(key, launch, python, runtime)
        with _lock:
            _zygotes[key] = zygote
            zygote.live += 1
        return zygote


def _start_zygote(key: tuple[Any, ...], launch: Launch, python: Path,
                  runtime: Runtime) -> Zygote:
    parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    env = dict(key[4])
    cmd = [*launch.outer, str(python), "-I", "-S", "-B", "-c", _BOOT,
           str(runtime.worker_dir), str(runtime.msgpack_dir), str(child.fileno())]
    try:
        proc = _spawner.popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, env=env, cwd="/",
                              pass_fds=(child.fileno(),), start_new_session=True,
                              **launch.user)
    except OSError as exc:
        parent.close()
        raise WorkerStartError(f"zygote of {python}", f"cannot start: {exc.strerror}") \
            from None
    finally:
        child.close()
    zygote = Zygote(key, proc, parent)
    assert proc.stderr is not None
    threading.Thread(target=_drain, args=(proc.stderr, zygote.stderr),
                     name="hostbridge-zygote-stderr", daemon=True).start()
    parent.settimeout(_READY_TIMEOUT)
    try:
        ready = parent.recv(1)
    except OSError as exc:
        ready = b""
        log.warning("the zygote of %s did not start: %s", python, exc)
    if ready != b"R":
        zygote.stop()
        time.sleep(0.05)  # its last words
        tail = " | ".join(list(zygote.stderr)[-3:])
        raise WorkerStartError(f"zygote of {python}", "did not start" +
                               (f"; stderr: {tail}" if tail else ""))
    log.debug("zygote of %s (%s) started, pid %d", python, launch.profile, proc.pid)
    return zygote


def _drain(pipe: BinaryIO, lines: deque[str]) -> None:
    with contextlib.suppress(OSError, ValueError):
        for raw in pipe:
            line = raw[:4096].decode("utf-8", "replace").rstrip()
            lines.append(line)
            log.debug("zygote: %s", line)
    with contextlib.suppress(OSError):
        pipe.close()


def fork_worker(launch: Launch, python: Path, runtime: Runtime, *, config: dict[str, Any],
                parent: socket.socket, child: socket.socket, venv_python: Path,
                timeout: float = 30.0) -> ForkedProcess:
    """Start a worker of *launch* forked by the zygote of *python* (the base interpreter):
    *parent* and *child* are the two ends of the worker's socket (the caller keeps the
    first, and closes the second), *config* what an exec'd worker gets on its command line
    (``fd`` is set in the worker)."""
    assert launch.fork_refused is None
    zygote = _zygote(launch, python, runtime)
    out_r, out_w = os.pipe2(os.O_CLOEXEC)
    err_r, err_w = os.pipe2(os.O_CLOEXEC)
    status_r, status_w = os.pipe2(os.O_CLOEXEC)
    mine = [out_r, err_r, status_r]
    try:
        try:
            intermediate = zygote.fork([child.fileno(), out_w, err_w, status_w], timeout)
        finally:
            for fd in (out_w, err_w, status_w):
                os.close(fd)
    except OSError as exc:
        for fd in mine:
            os.close(fd)
        zygote.release()
        zygote.stop()  # a zygote that does not answer is not asked again
        raise WorkerStartError(f"zygote of {python}", f"cannot fork a worker: {exc}") \
            from None
    full = {**config,
            "namespaces": launch.namespaces,
            "rlimits": {key: value for key, value in launch.limits.to_dict().items()
                        if value is not None},
            "env": launch.env, "cwd": str(launch.cwd), "executable": str(venv_python)}
    data = json.dumps(full).encode("utf-8")
    process = ForkedProcess(intermediate, os.fdopen(out_r, "rb", buffering=0),
                            os.fdopen(err_r, "rb", buffering=0), status_r,
                            on_exit=zygote.release)
    try:
        # On the worker's own socket, after the fork: the zygote never holds any of it.
        parent.sendall(len(data).to_bytes(4, "big") + data)
        process.read_pid(timeout)
    except BaseException:
        process.kill()
        raise
    return process


class ForkedProcess:
    """A worker forked by a zygote, as a :class:`subprocess.Popen` is for an exec'd one:
    ``pid`` (the worker's, as the host sees it), ``stdout`` and ``stderr`` (pipes), ``poll``,
    ``wait`` and ``kill`` (its whole tree: it is PID 1 of its namespace, or the leader of
    its process group)."""

    def __init__(self, group: int, stdout: BinaryIO, stderr: BinaryIO, status: int, *,
                 on_exit: Callable[[], None] | None = None) -> None:
        self.group = group
        """The pid of the zygote's child: the worker's parent and process group."""
        self.pid = 0
        self.stdout = stdout
        self.stderr = stderr
        self.returncode: int | None = None
        self._status = status
        self._buffer = b""
        self._pidfds: list[int] = []
        self._lock = threading.Lock()
        self._on_exit = on_exit
        with contextlib.suppress(OSError):
            self._pidfds.append(os.pidfd_open(group))

    def read_pid(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not self._read(left):
                raise WorkerStartError("forked worker", "did not start" if left > 0 else
                                       f"did not start within {timeout:g} s")
        line, self._buffer = self._buffer.split(b"\n", 1)
        words = line.split()
        if len(words) != 2 or words[0] != b"pid":
            raise WorkerStartError("forked worker", f"said {line[:80]!r}")
        self.pid = int(words[1])
        with contextlib.suppress(OSError):
            self._pidfds.append(os.pidfd_open(self.pid))

    def _read(self, timeout: float | None) -> bool:
        """Read from the status pipe; False at its end."""
        if self._status < 0:
            return False
        ready, _, _ = select.select([self._status], [], [], timeout)
        if not ready:
            return True
        chunk = os.read(self._status, 256)
        if not chunk:
            return False
        self._buffer += chunk
        return True

    def _settle(self, timeout: float | None) -> int | None:
        with self._lock:
            if self.returncode is not None:
                return self.returncode
            deadline = None if timeout is None else time.monotonic() + timeout
            while True:
                for line in self._buffer.split(b"\n")[:-1]:
                    words = line.split()
                    if len(words) == 2 and words[0] == b"exit":
                        self._done(int(words[1]))
                        return self.returncode
                left = None if deadline is None else max(0.0, deadline - time.monotonic())
                if not self._read(left):
                    # The child died before it could say: it was killed (by us, or by the
                    # kernel with its namespace).
                    self._done(-signal.SIGKILL)
                    return self.returncode
                if left == 0:
                    return None

    def _done(self, code: int) -> None:
        self.returncode = code
        if self._status >= 0:
            os.close(self._status)
            self._status = -1
        for fd in self._pidfds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._pidfds = []
        on_exit, self._on_exit = self._on_exit, None
        if on_exit is not None:
            on_exit()

    def poll(self) -> int | None:
        return self._settle(0.0)

    def wait(self, timeout: float | None = None) -> int:
        code = self._settle(timeout)
        if code is None:
            raise subprocess.TimeoutExpired("forked worker", timeout or 0.0)
        return code

    def kill(self) -> None:
        """SIGKILL the worker (its PID namespace goes with it) and its parent's process
        group, through pidfds where it can (no pid reused meanwhile is hit)."""
        with self._lock:
            pidfds = list(self._pidfds)
            exited = self.returncode is not None
        for fd in reversed(pidfds):
            with contextlib.suppress(OSError):
                signal.pidfd_send_signal(fd, signal.SIGKILL)
        if not exited:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.group, signal.SIGKILL)

    def __del__(self) -> None:
        if self._on_exit is not None:  # never waited for: its zygote may still stop
            with contextlib.suppress(Exception):
                self._on_exit()
        with contextlib.suppress(Exception):
            if self._status >= 0:
                os.close(self._status)
            for fd in self._pidfds:
                os.close(fd)
