"""A plugin program as a command line another program runs: hook commands and stdio MCP
servers that a host framework (the OpenHands SDK) starts itself.

:func:`program_command` prepares what :func:`hostbridge.launch._programs.spawn_program` would
start, once, and returns the command that starts it: every run goes through the same launcher
chain and in-process layers (Landlock, seccomp) as a worker, without a Python-level start of
``ohp`` per run. The command fixes its own environment, as the framework runs it with its own::

    /usr/bin/env -i -C CWD K=V ... [setpriv --reuid=65534 --regid=65534 --clear-groups --]
        LAUNCHER... PYTHON -I -S -B -c EXEC_BOOT RUNTIME CONFIG PROGRAM...

``K=V`` are :func:`hostbridge.launch._sandbox.plan`'s environment (the base variables, what the
operator allows and grants, ``TMPDIR``/``HOME`` in the scratch directory) with
``CLAUDE_PLUGIN_ROOT``/``OH_PLUGIN_ROOT`` and the plugin venv's ``bin`` first on ``PATH``. The
uid switch of a root host is in the command (``setpriv``) where ``plan`` asks for
``Popen(user=)``. The plugin's own variables (an MCP server's ``env``), and the host variables
the operator allowed or granted (which may be secrets, and a framework logs and persists the
command), are neither in the chain's environment nor on its command line: the host writes them
to a file in a directory only the plugin's uid may enter, read by ``exec_main`` after the
sandbox is complete (``env_file``), and readable (not writable) under Landlock. Host variables
are taken when the command is made, not when it runs.

The scratch directory, the environment file and the plugin's generation lease live until
:meth:`ProgramCommand.cleanup`, which the caller calls when nothing will run the command again
(``hostbridge.openhands.attach``: when the bridge closes).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hostbridge._errors import WorkerStartError
from hostbridge.launch._programs import EXEC_BOOT, prepare_program
from hostbridge.launch._sandbox import check_program_env
from isolator.sandbox import UNPRIVILEGED_GID, UNPRIVILEGED_UID, SandboxError, setpriv_switch

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence

    from hostbridge.launch._sandbox import WorkerLimits
    from isolator.policy import Permissions
    from isolator.store import PluginStore

_SYSTEM_PATH = "/usr/bin:/bin"
_NAME = re.compile(r"[A-Z_][A-Z0-9_]*\Z")
_CHAIN_ENV = frozenset({"PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR",
                        "CLAUDE_PLUGIN_ROOT", "OH_PLUGIN_ROOT"})
"""The variables on the command line (and so in the launcher chain's environment): the base
ones of :func:`plan` and the plugin root. Everything else reaches the program by the file."""


@dataclass
class ProgramCommand:
    """The command line that runs a plugin program sandboxed (:func:`program_command`)."""

    argv: list[str]
    profile: str
    layers: dict[str, Any] = field(default_factory=dict)
    _cleanups: list[Callable[[], None]] = field(default_factory=list, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def shell(self) -> str:
        """:attr:`argv` as one ``sh`` command line."""
        return shlex.join(self.argv)

    def shell_passing(self, names: Iterable[str]) -> str:
        """:attr:`shell` with the runner's variables *names* handed on to the program: the
        shell that runs the command expands each (``NAME="${NAME-}"``) before ``env -i``
        clears the rest. For a framework that gives a hook its context in its environment
        (the SDK's ``OPENHANDS_EVENT_TYPE``, ...). A name must be a plain variable name and
        not one a loader or interpreter reads (:func:`check_program_env`)."""
        passed = []
        for name in names:
            if not _NAME.match(name):
                raise ValueError(f"variable name {name!r} to pass on is not [A-Z_][A-Z0-9_]*")
            check_program_env({name: ""}, f"variable {name!r} to pass on")
            passed.append(f'{name}="${{{name}-}}"')
        head, rest = self.argv[:4], self.argv[4:]  # env -i -C CWD: options first
        return " ".join([shlex.join(head), *passed, shlex.join(rest)])

    def cleanup(self) -> None:
        """Remove the scratch directory and the environment file; release the plugin's
        generation. The command fails to start afterwards. Idempotent."""
        with self._lock:
            cleanups, self._cleanups = self._cleanups, []
        for step in reversed(cleanups):
            step()


def program_command(
    store: PluginStore,
    plugin: str,
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    profile: str | None = None,
    grants: Permissions | None = None,
    env_allow: Iterable[str] = (),
    limits: WorkerLimits | None = None,
) -> ProgramCommand:
    """The command that runs *argv* as a program of installed plugin *plugin*, sandboxed as
    :func:`spawn_program` runs it (same profile, grants, environment allowlist, limits,
    working directory, ``CLAUDE_PLUGIN_ROOT``), each time it is run, by anyone, in any
    environment. Call :meth:`ProgramCommand.cleanup` when it will not run again.

    *env* is the plugin's (its config): checked as :func:`check_program_env` does (no loader
    variables), written to a file only the plugin's uid reads, given to the program at
    ``execve``. Raises :class:`WorkerStartError` as ``spawn_program`` does."""
    if not argv:
        raise WorkerStartError(f"program of {plugin!r}", "expected a command, got nothing")
    program_env = check_program_env(dict(env or {}), f"program of {plugin!r}")
    what = f"program of {plugin!r}"
    tool = {name: shutil.which(name, path=_SYSTEM_PATH) for name in ("env",)}
    if tool["env"] is None:
        raise WorkerStartError(what, "env (coreutils) is not installed in /usr/bin or /bin")
    prepared = prepare_program(store, plugin, profile=profile, grants=grants,
                               env_allow=env_allow, limits=limits)
    launch = prepared.launch
    command = ProgramCommand([], launch.profile, dict(launch.layers),
                             [prepared.release, launch.cleanup])
    try:
        as_nobody = launch.layers.get("unprivileged_uid") is True
        config = dict(launch.config)
        # Host variables the operator allowed or granted may be secrets: like the plugin's
        # own, they go in the file, not on a command line the framework logs and persists.
        chain_env = {key: value for key, value in launch.env.items() if key in _CHAIN_ENV}
        file_env = {**{key: value for key, value in launch.env.items()
                       if key not in _CHAIN_ENV}, **program_env}
        if file_env:
            env_dir = Path(tempfile.mkdtemp(prefix=f"env-{plugin}-",
                                            dir=store.root / "scratch"))
            command._cleanups.append(lambda: shutil.rmtree(env_dir, ignore_errors=True))
            env_file = env_dir / "env.json"
            fd = os.open(env_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o400)
            with os.fdopen(fd, "w", encoding="utf-8") as stream:
                json.dump(file_env, stream)
            if as_nobody:
                os.chown(env_file, UNPRIVILEGED_UID, UNPRIVILEGED_GID)
                os.chown(env_dir, UNPRIVILEGED_UID, UNPRIVILEGED_GID)
            os.chmod(env_dir, 0o500)
            config["env_file"] = str(env_file)
            if "landlock" in config and "read" in config["landlock"]:
                landlock = dict(config["landlock"])
                landlock["read"] = sorted({*landlock["read"], str(env_dir)})
                config["landlock"] = landlock
        switch: list[str] = []
        if launch.user:
            try:
                switch = setpriv_switch(launch.user["user"], launch.user["group"])
            except SandboxError as exc:
                raise WorkerStartError(what, exc.reason) from None
        assignments = [f"{key}={value}" for key, value in sorted(chain_env.items())]
        command.argv = [
            tool["env"], "-i", "-C", str(launch.cwd), *assignments, *switch, *launch.prefix,
            str(prepared.python), "-I", "-S", "-B", "-c", EXEC_BOOT,
            str(prepared.runtime.worker_dir), json.dumps(config, separators=(",", ":")),
            *argv]
    except BaseException as exc:
        command.cleanup()
        if isinstance(exc, WorkerStartError):
            store.policy.audit("program.refused", plugin=plugin, profile=launch.profile,
                               argv=list(argv), reason=str(exc))
        raise
    store.policy.audit("program.command", plugin=plugin, profile=launch.profile,
                       argv=list(argv), sandbox=launch.layers)
    return command
