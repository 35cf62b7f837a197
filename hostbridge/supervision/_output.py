"""A worker's stdout and stderr, drained into bounded logs, and why it died, in words.

One bounded log per stream: a flood on stdout must not push out the stderr lines that explain a
crash. The pipes are read in chunks, not lines, so that one endless line does not grow the
host's memory either.
"""

from __future__ import annotations

import collections
import logging
import os
import signal
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    import threading
    from collections.abc import Callable, Iterable

log = logging.getLogger("hostbridge.worker")

_LOG_LINES = 200
_LOG_LINE_BYTES = 4096


class Exit(NamedTuple):
    """How a worker ended, as :class:`~hostbridge.WorkerCrashedError` tells it."""

    reason: str
    exit_code: int | None
    signal: str | None
    stderr_tail: list[str]


class Output:
    """The bounded logs of one worker's stdout and stderr (*name*: its plugin, for the debug
    log), filled by one thread per stream."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.logs: dict[str, collections.deque[str]] = {
            "stdout": collections.deque(maxlen=_LOG_LINES),
            "stderr": collections.deque(maxlen=_LOG_LINES),
        }
        self._stderr_thread: threading.Thread | None = None

    def start(self, stdout: Any, stderr: Any,
              start_thread: Callable[[Callable[[], None], str], threading.Thread]) -> None:
        """Drain the worker's *stdout* and *stderr* pipes, each from a thread of its own."""
        start_thread(lambda: self._drain("stdout", stdout), "stdout")
        self._stderr_thread = start_thread(lambda: self._drain("stderr", stderr), "stderr")

    def _drain(self, stream: str, pipe: Any) -> None:
        # Chunks, not readline(): one endless line must not grow the host's memory. A line
        # longer than _LOG_LINE_BYTES keeps its start; the rest is dropped up to its newline.
        fd = pipe.fileno()
        partial = b""
        dropping = False
        while chunk := os.read(fd, 65536):
            lines = chunk.split(b"\n")
            for index, piece in enumerate(lines):
                last = index == len(lines) - 1
                if not dropping:
                    partial += piece[: _LOG_LINE_BYTES - len(partial)]
                if last:
                    if len(partial) >= _LOG_LINE_BYTES and not dropping:
                        self._log_line(stream, partial)
                        partial, dropping = b"", True
                    break
                if not dropping:
                    self._log_line(stream, partial)
                partial, dropping = b"", False
        if partial:
            self._log_line(stream, partial)
        pipe.close()

    def _log_line(self, stream: str, raw: bytes) -> None:
        line = raw.decode("utf-8", "replace")
        self.logs[stream].append(line)
        log.debug("%s %s: %s", self.name, stream, line)

    def stderr_tail(self, lines: int = 3) -> list[str]:
        """The last few lines of stderr that say something (from faulthandler's first line
        when it spoke), once the pipe is closed or after half a second."""
        if self._stderr_thread is not None:
            self._stderr_thread.join(timeout=0.5)  # the pipe closes when the worker's tree is gone
        recent = [line for line in list(self.logs["stderr"])[-40:] if line.strip()]
        for index, line in enumerate(recent):
            if line.startswith("Fatal Python error: "):
                return recent[index : index + lines]  # what faulthandler says first matters
        return recent[-lines:]

    def explain_exit(self, reason: str, code: int | None) -> Exit:
        """*reason* (why the connection ended) told with the worker's exit status *code*
        (``None`` if unknown), the signal that killed it and its last words on stderr."""
        tail = self.stderr_tail()
        if code == 1 and tail and tail[-1].startswith("unshare: sigprocmask unblock failed"):
            # util-linux unshare re-raises the signal that killed its child on itself, but
            # cannot for SIGKILL (OOM killer, RLIMIT_CPU, kill -9): it says so and exits 1.
            code = -signal.SIGKILL
            tail = tail[:-1]
        exit_code = code if code is not None and code >= 0 else None
        signame = _signal_name(code) if code is not None and code < 0 else None
        if signame is None:
            # Under unshare the worker's own death by a signal reaches us as exit status 1;
            # the worker's faulthandler said which signal it was.
            signame = _fatal_signal(self.logs["stderr"])
            if signame is not None:
                exit_code = None
        if exit_code:
            reason += f" (exit status {exit_code})"
        elif signame:
            reason += f" (killed by {signame})"
        if tail:
            reason += f"; stderr: {' | '.join(tail)}"
        return Exit(reason, exit_code, signame, tail)


def _signal_name(code: int) -> str:
    try:
        return signal.Signals(-code).name
    except ValueError:
        return f"signal {-code}"


_FATAL = {"Segmentation fault": "SIGSEGV", "Aborted": "SIGABRT", "Bus error": "SIGBUS",
          "Floating point exception": "SIGFPE", "Illegal instruction": "SIGILL"}


def _fatal_signal(lines: Iterable[str]) -> str | None:
    """The signal named by a ``Fatal Python error: ...`` line of faulthandler, if any."""
    for line in reversed(list(lines)):
        if line.startswith("Fatal Python error: "):
            return _FATAL.get(line[len("Fatal Python error: "):].strip())
    return None
