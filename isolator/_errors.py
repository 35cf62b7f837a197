"""One error root for the package; the CLI maps these to an exit code and a one-line message."""

from __future__ import annotations

from isolator._redact import redact_text


class IsolatorError(Exception):
    """Root of every error isolator raises on purpose. ``str()`` is one line for a user (a
    :class:`PackagingError` adds one indented line per problem it lists)."""


class PluginLoadError(IsolatorError):
    """A plugin directory cannot be loaded at all: missing directory or unusable manifest."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


def _one_line(text: str, limit: int = 300) -> str:
    """Collapse *text* to one line of at most *limit* characters, for ``str()`` of an error,
    with the credentials of every URL in it redacted (an index's ``user:token@``)."""
    line = " ".join(redact_text(text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


class SandboxError(IsolatorError):
    """A sandboxed process cannot be started as its sandbox requires."""

    def __init__(self, subject: str, reason: str) -> None:
        super().__init__(f"{subject}: {reason}")
        self.subject = subject
        self.reason = reason


class SourceError(IsolatorError, ValueError):
    """A plugin source (or one of its options) is malformed; raised at parse time."""

    def __init__(self, source: str, reason: str) -> None:
        super().__init__(_one_line(f"invalid plugin source {source!r}: {reason}", 1000))
        self.source = redact_text(source)
        self.reason = redact_text(reason)


class DistributionError(IsolatorError):
    """An installed distribution's metadata is missing, unreadable, or does not say what we need."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(_one_line(f"{path}: {reason}"))
        self.path = path
        self.reason = reason


class InterpreterNotFoundError(IsolatorError, LookupError):
    """No usable Python interpreter matches a spec (a version, a path, or a command name)."""

    def __init__(self, spec: str, reason: str, found: tuple[str, ...] = ()) -> None:
        message = f"no Python interpreter for {spec!r}: {reason}"
        if found:
            message += f" (found: {', '.join(found)})"
        super().__init__(_one_line(message, 1000))
        self.spec = spec
        self.reason = reason
        self.found = found


class BackendUnavailableError(IsolatorError):
    """An installer backend cannot be used here: its tool is missing or too old."""

    def __init__(self, backend: str, reason: str) -> None:
        super().__init__(_one_line(f"backend {backend!r} is unavailable: {reason}"))
        self.backend = backend
        self.reason = reason


class CommandError(IsolatorError):
    """A subprocess (uv, pip, virtualenv, an interpreter probe) failed; carries its full output."""

    def __init__(
        self,
        cmd: list[str],
        returncode: int | None,
        stdout: str,
        stderr: str,
        *,
        summary: str | None = None,
    ) -> None:
        self.cmd = cmd
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        self.summary = summary if summary is not None else _error_summary(stderr or stdout)
        super().__init__(self._message())

    @property
    def program(self) -> str:
        """A short name for the command: ``uv pip install``, ``python -m pip``, ..."""
        if not self.cmd:
            return "<empty command>"
        words = [self.cmd[0].rsplit("/", 1)[-1]]
        # The subcommand words that say what was attempted, up to the first option.
        for word in self.cmd[1:3]:
            if word.startswith("-") or "/" in word:
                break
            words.append(word)
        return " ".join(words)

    def _message(self) -> str:
        status = "was killed" if self.returncode is None else f"exited with {self.returncode}"
        if self.returncode is not None and self.returncode < 0:
            status = f"was killed by signal {-self.returncode}"
        tail = f": {self.summary}" if self.summary else ""
        return _one_line(f"`{self.program}` {status}{tail}", 400)


class CommandTimeoutError(CommandError):
    """A subprocess ran past its deadline and was killed with its whole process group."""

    def __init__(self, cmd: list[str], timeout: float, stdout: str, stderr: str) -> None:
        self.timeout = timeout
        super().__init__(cmd, None, stdout, stderr, summary=f"timed out after {timeout:g} s")


def _error_summary(output: str) -> str:
    """The line of a tool's output that says what went wrong (uv and pip both print ``error:``)."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    if not lines:
        return ""
    # A cause the tool reports deep in its chain but that explains everything: say it first.
    for line in lines:
        if "No space left on device" in line or "os error 28" in line:
            return f"no space left on device ({line})"
    for index, line in enumerate(lines):
        lowered = line.lower()
        if lowered.startswith(("error:", "\u00d7 ")):
            # uv puts the cause on the following lines ("cause: ...", "╰─▶ ..."): keep one.
            follow = lines[index + 1] if index + 1 < len(lines) else ""
            if follow.startswith(("cause:", "╰─▶", "Caused by:")):
                return f"{line} {follow}"
            return line
    return lines[-1]


class StoreError(IsolatorError):
    """The plugin store refused or failed an operation; installed state is left as it was."""

    def __init__(self, subject: str, reason: str) -> None:
        super().__init__(_one_line(f"{subject}: {reason}", 1000))
        self.subject = redact_text(subject)
        self.reason = redact_text(reason)


class PluginNotFoundError(StoreError, LookupError):
    """No installed plugin has this name (the proposal's ``PluginNotFoundError``)."""

    def __init__(self, name: str, reason: str = "no plugin of that name is installed") -> None:
        super().__init__(f"plugin {name!r}", reason)
        self.name = name


class PluginCollisionError(StoreError):
    """A plugin name is taken by another package already installed in the store."""


class ResolutionError(StoreError):
    """A source's distributions cannot be resolved or fetched (no fitting wheel, no build, ...)."""


class HashMismatchError(StoreError):
    """A file's sha256 differs from the one recorded or announced: it is refused, never used."""

    def __init__(self, path: str, expected: str, actual: str) -> None:
        super().__init__(
            path, f"sha256 is {actual}, expected {expected}: refusing a file that was changed"
        )
        self.path = path
        self.expected = expected
        self.actual = actual


class LockfileError(IsolatorError, ValueError):
    """A lock file is unreadable or malformed; the message names the file and the key."""

    def __init__(self, path: str, key: str, reason: str) -> None:
        where = f"{path}: {key}" if key else path
        super().__init__(_one_line(f"{where}: {reason}", 1000))
        self.path = path
        self.key = key
        self.reason = reason


class PolicyError(StoreError):
    """The operator's policy cannot be used: ``policy.json`` is malformed, a policy plugin fails
    to load or raises, or a hook gives an answer outside what it may answer."""


class PolicyDeniedError(StoreError):
    """The operator's policy denies a source, an index or a package; nothing was changed."""

    def __init__(self, what: str, subject: str, reason: str) -> None:
        super().__init__(f"{what} {subject!r}", f"denied by policy: {reason}")
        self.what = what  # "source", "index" or "package"
        self.denied = subject
        self.policy_reason = reason


class PackagingError(IsolatorError):
    """A plugin cannot be packaged or checked: the message names the path and what was expected.

    Nothing is written when it is raised: an existing project or wheel is left as it was.
    """

    def __init__(self, path: str, reason: str, problems: tuple[str, ...] = ()) -> None:
        message = _one_line(f"{path}: {reason}", 1000)
        if problems:
            message += "".join(f"\n  {p}" for p in problems[:50])
            if len(problems) > 50:
                message += f"\n  ... and {len(problems) - 50} more"
        super().__init__(message)
        self.path = path
        self.reason = reason
        self.problems = problems
