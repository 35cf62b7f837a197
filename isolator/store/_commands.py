"""The subprocess runner every tool of the store runs through (uv, pip, git, the compiler).

:func:`run_command` gives every child a scrubbed environment (:func:`scrubbed_env`: the
machine's pip.conf, ``PIP_*``, ``UV_*``, ``VIRTUAL_ENV``, ``PYTHONPATH`` must not steer an
install; certificates and proxies must still reach it), its own process group (killed whole
when the caller is interrupted, and when the caller dies), and captured output for the error.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from isolator._errors import CommandError, CommandTimeoutError
from isolator._redact import redact_text
from isolator.sandbox._launcher import die_with_parent_prefix

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence
    from pathlib import Path

# Variables a child may see. Everything else (PIP_*, UV_*, VIRTUAL_ENV, PYTHON*, CONDA_*, GIT_*)
# is dropped: an allowlist cannot be bypassed by a variable name we did not think of.
_PASSED_VARS = frozenset({
    "PATH", "HOME", "USER", "LOGNAME", "LANG", "LANGUAGE", "TZ",
    "TMPDIR", "TEMP", "TMP", "SYSTEMROOT", "SYSTEMDRIVE", "COMSPEC", "PATHEXT", "WINDIR",
    "APPDATA", "LOCALAPPDATA", "USERPROFILE",
    # uv's default cache location follows XDG; keeping it shares the user's warm cache.
    "XDG_CACHE_HOME",
    # Trust and reach: without SSL_CERT_FILE uv rejects PyPI's certificate here (UnknownIssuer).
    "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE",
    "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY",
    "http_proxy", "https_proxy", "no_proxy", "all_proxy",
    # git@host sources authenticate through the user's ssh agent.
    "SSH_AUTH_SOCK",
})
_KILL_GRACE = 5.0


def scrubbed_env(
    extra: Mapping[str, str] | None = None, *, base: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The environment a tool runs in: the allowlisted variables of *base* plus *extra*."""
    source = os.environ if base is None else base
    env = {
        key: value
        for key, value in source.items()
        if key in _PASSED_VARS or key.startswith("LC_")
    }
    if extra:
        env.update(extra)
    return env


@dataclass(frozen=True)
class CommandResult:
    """A finished, successful subprocess."""

    cmd: list[str]
    returncode: int
    stdout: str
    stderr: str
    duration: float


def run_command(
    cmd: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    progress: Callable[[str], None] | None = None,
    timeout: float | None = None,
    check: bool = True,
) -> CommandResult:
    """Run *cmd* in its own process group with a scrubbed environment and captured output.

    *env* defaults to :func:`scrubbed_env`. *progress* is called with every output line (stdout
    and stderr) as it arrives, in the calling thread. On a non-zero exit (when *check*) raises
    :class:`CommandError`; past *timeout* seconds kills the group and raises
    :class:`CommandTimeoutError`. If anything interrupts the wait (``KeyboardInterrupt``, an
    exception from *progress*), the whole process group is killed before it propagates.
    """
    argv = [os.fspath(part) for part in cmd]
    launch = [*die_with_parent_prefix(), *argv]
    shown = [redact_text(part) for part in argv]  # errors and progress never show credentials
    if progress is not None:
        report = progress
        progress = lambda line: report(redact_text(line))  # noqa: E731
    started = time.monotonic()
    try:
        proc = subprocess.Popen(
            launch,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=dict(scrubbed_env() if env is None else env),
            cwd=cwd,
            start_new_session=True,  # a group of its own: one killpg takes uv and its builds
        )
    except OSError as exc:
        raise CommandError(shown, None, "", "", summary=redact_text(exc.strerror or str(exc))) \
            from None
    try:
        stdout, stderr, timed_out = _collect(proc, progress, timeout)
    except BaseException:
        _kill_group(proc)
        raise
    if timed_out:
        assert timeout is not None  # timed_out implies a deadline
        raise CommandTimeoutError(shown, timeout, redact_text(stdout), redact_text(stderr))
    if check and proc.returncode != 0:
        raise CommandError(shown, proc.returncode, redact_text(stdout), redact_text(stderr))
    return CommandResult(argv, proc.returncode, stdout, stderr, time.monotonic() - started)


def _collect(
    proc: subprocess.Popen[bytes],
    progress: Callable[[str], None] | None,
    timeout: float | None,
) -> tuple[str, str, bool]:
    """Read both pipes until EOF and reap; return (stdout, stderr, timed out)."""
    assert proc.stdout is not None and proc.stderr is not None
    deadline = None if timeout is None else time.monotonic() + timeout
    out_fd, err_fd = proc.stdout.fileno(), proc.stderr.fileno()
    chunks: dict[int, list[bytes]] = {out_fd: [], err_fd: []}
    partial: dict[int, bytes] = {out_fd: b"", err_fd: b""}

    def result(timed_out: bool) -> tuple[str, str, bool]:
        out = b"".join(chunks[out_fd]).decode("utf-8", "replace")
        err = b"".join(chunks[err_fd]).decode("utf-8", "replace")
        return out, err, timed_out

    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        selector.register(proc.stderr, selectors.EVENT_READ)
        while selector.get_map():
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                _kill_group(proc)
                return result(True)
            for key, _ in selector.select(remaining):
                fd = key.fd
                data = os.read(fd, 65536)
                if not data:
                    selector.unregister(key.fileobj)
                    if progress is not None and partial[fd]:
                        progress(partial[fd].decode("utf-8", "replace"))
                    continue
                chunks[fd].append(data)
                if progress is not None:
                    lines = (partial[fd] + data).split(b"\n")
                    partial[fd] = lines.pop()
                    for line in lines:
                        progress(line.rstrip(b"\r").decode("utf-8", "replace"))
    remaining = None if deadline is None else max(deadline - time.monotonic(), 0.0)
    try:
        proc.wait(remaining)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        return result(True)
    proc.stdout.close()
    proc.stderr.close()
    return result(False)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """SIGKILL the child's whole process group, then reap the child."""
    # Only before the child is reaped is its pid (= the group id) guaranteed not reused.
    if proc.returncode is None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(_KILL_GRACE)
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            with contextlib.suppress(OSError):
                stream.close()
