"""Errors of the host bridge: all are :class:`isolator.IsolatorError`, one line for a user."""

from __future__ import annotations

from isolator import IsolatorError


class WorkerError(IsolatorError):
    """A worker could not do what was asked of it."""

    def __init__(self, subject: str, reason: str) -> None:
        super().__init__(" ".join(f"{subject}: {reason}".split())[:1000])
        self.subject = subject
        self.reason = reason


class WorkerStartError(WorkerError):
    """A worker did not start or failed its handshake."""


class WorkerCrashedError(WorkerError):
    """The worker died or broke the protocol while calls were pending.

    ``exit_code`` is the worker's exit status (``None`` if it was killed by a signal or is
    unknown), ``signal`` the name of the signal that killed it, ``stderr_tail`` the last
    lines it wrote to stderr.
    """

    def __init__(self, subject: str, reason: str, *, exit_code: int | None = None,
                 signal: str | None = None, stderr_tail: list[str] | None = None) -> None:
        super().__init__(subject, reason)
        self.exit_code = exit_code
        self.signal = signal
        self.stderr_tail = list(stderr_tail or [])


class PluginFailedError(WorkerError):
    """The plugin's worker crashed too often; it is not started again until reset."""


class CallTimeoutError(WorkerError, TimeoutError):
    """A call got no answer within its deadline."""


class ToolNotFoundError(WorkerError, LookupError):
    """The plugin has no tool of that name."""


class ToolArgumentsError(WorkerError, ValueError):
    """The arguments do not match the tool's input schema."""


class RemoteError(WorkerError):
    """The worker answered a request with an error; its type, message and traceback."""

    def __init__(self, method: str, error: object) -> None:
        data = error if isinstance(error, dict) else {"message": str(error)}
        self.type = str(data.get("type", "Error"))
        self.message = str(data.get("message", ""))
        self.traceback = str(data.get("traceback", ""))
        super().__init__(method, f"{self.type}: {self.message}")
