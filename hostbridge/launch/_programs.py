"""Plugin programs beyond workers: hook commands and MCP stdio servers, run sandboxed.

A plugin's hooks and MCP servers are programs the host would otherwise start itself, with the
host's environment and rights. :func:`spawn_program` starts one through the same launcher and
profile as a worker (:func:`hostbridge.launch._sandbox.plan`): the launcher command, then an
interpreter that applies Landlock and the seccomp filter to itself and ``execve``s the program,
which inherits both. The plugin's generation stays leased while the program runs.

The program's working directory is the plugin's content directory (its scratch directory under
``strict``), and it finds that directory in ``CLAUDE_PLUGIN_ROOT`` and ``OH_PLUGIN_ROOT``, as
hook commands expect; the plugin venv's ``bin`` comes first on ``PATH``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from hostbridge._errors import WorkerStartError
from hostbridge.launch._runtime import WORKER_PACKAGE, ensure_runtime
from hostbridge.launch._sandbox import Launch, check_profile, check_program_env, plan
from hostbridge.launch._spawn import spawner as _spawner
from isolator import StoreError
from isolator.sandbox import launcher_info, reachable_system_python, unreachable
from isolator.store import base_interpreter, find_python

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence

    from hostbridge.launch._runtime import Runtime
    from hostbridge.launch._sandbox import WorkerLimits
    from isolator.policy import Permissions
    from isolator.store import InstalledPlugin, PluginStore

EXEC_BOOT = (
    "import sys; sys.path.insert(0, sys.argv[1]); "
    f"from {WORKER_PACKAGE}.sandbox import exec_main; exec_main(sys.argv[2], sys.argv[3:])"
)
"""The interpreter's ``-c`` program: the worker runtime's ``exec_main`` (argv: the runtime's
directory, the in-process config as JSON, the program)."""


@dataclass
class PreparedProgram:
    """What starting a program of a plugin needs (:func:`prepare_program`)."""

    installed: InstalledPlugin
    launch: Launch
    python: Path
    runtime: Runtime
    release: Callable[[], None]
    """Releases the plugin's generation (the lease); idempotent."""


def prepare_program(
    store: PluginStore,
    plugin: str,
    *,
    profile: str | None = None,
    grants: Permissions | None = None,
    env_allow: Iterable[str] = (),
    limits: WorkerLimits | None = None,
) -> PreparedProgram:
    """Lease *plugin*'s generation and plan the launch of a program of it: the operator's
    profile and grants unless given, the launcher interpreter, the worker runtime, and
    ``CLAUDE_PLUGIN_ROOT``, ``OH_PLUGIN_ROOT`` and the venv's ``bin`` in the environment.
    The caller releases the lease and cleans the launch up."""
    settings = store.settings(plugin)
    requested = profile or settings.sandbox or "standard"
    check_profile(requested)
    profile = store.policy.profile_for(plugin, requested)
    grants = settings.grants if grants is None else grants
    lease = store.lease(plugin)
    installed = lease.__enter__()
    released = threading.Lock()

    def release() -> None:
        if released.acquire(blocking=False):
            lease.__exit__(None, None, None)

    try:
        _check_venv(store, installed, f"program of {plugin!r}")
        python, abi_tag = _launcher_python(installed, profile)
        runtime = ensure_runtime(store.root, abi_tag, Path(os.path.realpath(python)))
        launch = plan(store.root, plugin, installed, runtime, python, profile=profile,
                      grants=grants, env_allow=env_allow, limits=limits, what="program",
                      cwd=installed.content_dir)
    except BaseException as exc:
        release()
        if isinstance(exc, WorkerStartError):
            store.policy.audit("program.refused", plugin=plugin, profile=profile,
                               reason=str(exc))
        raise
    content = str(installed.content_dir)
    launch.env.update({"CLAUDE_PLUGIN_ROOT": content, "OH_PLUGIN_ROOT": content})
    if installed.venv is not None:
        launch.env["PATH"] = os.pathsep.join(
            [str(installed.venv / "bin"), *filter(None, [launch.env.get("PATH")])])
    return PreparedProgram(installed, launch, python, runtime, release)


@dataclass(frozen=True)
class ProgramResult:
    """How a program of a plugin ended (:func:`run_program`)."""

    returncode: int
    stdout: bytes
    stderr: bytes
    profile: str
    layers: dict[str, Any] = field(default_factory=dict)
    """Every sandbox layer and whether it applied to the program."""


class PluginProgram:
    """A running program of a plugin; a context manager that kills it (and its tree) on exit."""

    def __init__(self, proc: subprocess.Popen[bytes], launch: Launch,
                 release: Callable[[], None]) -> None:
        self.proc = proc
        self.launch = launch
        self._release = release

    @property
    def profile(self) -> str:
        return self.launch.profile

    @property
    def layers(self) -> dict[str, Any]:
        return self.launch.layers

    @property
    def stdin(self) -> IO[bytes] | None:
        return self.proc.stdin

    @property
    def stdout(self) -> IO[bytes] | None:
        return self.proc.stdout

    def communicate(self, input: bytes | None = None,
                    timeout: float | None = None) -> tuple[bytes, bytes]:
        """As :meth:`subprocess.Popen.communicate`; on timeout the program is killed."""
        try:
            out, err = self.proc.communicate(input, timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            out, err = self.proc.communicate()
            raise
        finally:
            if self.proc.returncode is not None:
                self.close()
        return out or b"", err or b""

    def wait(self, timeout: float | None = None) -> int:
        try:
            return self.proc.wait(timeout)
        finally:
            if self.proc.returncode is not None:
                self.close()

    def kill(self) -> None:
        """Kill the program's whole process group (its PID namespace goes with it)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)

    def close(self) -> None:
        """Kill the program if it still runs; release the plugin's generation."""
        if self.proc.poll() is None:
            self.kill()
        for pipe in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if pipe is not None:
                with contextlib.suppress(OSError):
                    pipe.close()
        self.launch.cleanup()
        self._release()

    def __enter__(self) -> PluginProgram:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def spawn_program(
    store: PluginStore,
    plugin: str,
    argv: Sequence[str],
    *,
    profile: str | None = None,
    grants: Permissions | None = None,
    env_allow: Iterable[str] = (),
    env: Mapping[str, str] | None = None,
    limits: WorkerLimits | None = None,
    stdin: int | IO[Any] | None = subprocess.PIPE,
    stdout: int | IO[Any] | None = subprocess.PIPE,
    stderr: int | IO[Any] | None = subprocess.PIPE,
) -> PluginProgram:
    """Start *argv* as a program of installed plugin *plugin*, sandboxed.

    *profile* and *grants* default to what the operator chose for the plugin
    (:meth:`PluginStore.settings`, ``standard`` when nothing was chosen); *env* adds variables
    (``CLAUDE_PLUGIN_ROOT``-style values a host computes), *env_allow* passes host variables
    through. Standard streams are pipes unless given (None: the host's own).

    *env* is the plugin's to choose (its config), so it never reaches the launcher chain: the
    program gets it at ``execve``, after its sandbox is complete. A variable that changes what
    a program loads (``LD_*``, ``PYTHON*``, ``GCONV_PATH``, ``BASH_ENV``, ...) is refused with
    :class:`WorkerStartError`."""
    if not argv:
        raise WorkerStartError(f"program of {plugin!r}", "expected a command, got nothing")
    program_env = check_program_env(dict(env or {}), f"program of {plugin!r}")
    prepared = prepare_program(store, plugin, profile=profile, grants=grants,
                               env_allow=env_allow, limits=limits)
    launch, python, runtime = prepared.launch, prepared.python, prepared.runtime
    profile = launch.profile
    try:
        # The plugin's variables travel in a memfd that the launcher reads only after the
        # sandbox is complete (not on the command line, which every local user can read).
        env_fd = _env_memfd(program_env)
        config = {**launch.config, "env_fd": env_fd}
        cmd = [*launch.prefix, str(python), "-I", "-S", "-B", "-c", EXEC_BOOT,
               str(runtime.worker_dir), json.dumps(config), *argv]
        try:
            proc = _spawner.popen(cmd, stdin=stdin, stdout=stdout, stderr=stderr,
                                  env=launch.env, cwd=launch.cwd, start_new_session=True,
                                  pass_fds=(env_fd,), **launch.user)
        except OSError as exc:
            launch.cleanup()
            raise WorkerStartError(f"program of {plugin!r}", f"cannot start {python}: "
                                   f"{exc.strerror}") from None
        finally:
            os.close(env_fd)
    except BaseException as exc:
        prepared.release()
        if isinstance(exc, WorkerStartError):
            store.policy.audit("program.refused", plugin=plugin, profile=profile,
                               argv=list(argv), reason=str(exc))
        raise
    store.policy.audit("program.start", plugin=plugin, profile=profile, argv=list(argv),
                       program_pid=proc.pid, sandbox=launch.layers)
    return PluginProgram(proc, launch, prepared.release)


def run_program(
    store: PluginStore,
    plugin: str,
    argv: Sequence[str],
    *,
    profile: str | None = None,
    grants: Permissions | None = None,
    env_allow: Iterable[str] = (),
    env: Mapping[str, str] | None = None,
    limits: WorkerLimits | None = None,
    timeout: float | None = None,
    input: bytes | None = None,
) -> ProgramResult:
    """Run *argv* as a program of *plugin* to its end (see :func:`spawn_program`); on
    *timeout* the program's tree is killed and :class:`subprocess.TimeoutExpired` raised."""
    with spawn_program(store, plugin, argv, profile=profile, grants=grants,
                       env_allow=env_allow, env=env, limits=limits) as program:
        out, err = program.communicate(input, timeout=timeout)
        return ProgramResult(program.proc.returncode, out, err, program.profile,
                             dict(program.layers))


def _check_venv(store: PluginStore, installed: InstalledPlugin, what: str) -> None:
    """The files of the venv that its interpreter reads before any sandbox layer applies
    (``pyvenv.cfg``, ``bin/python*``) must be as the store made them."""
    try:
        store.check_interpreter_files(installed)
    except StoreError as exc:
        raise WorkerStartError(what, f"not started: {exc}") from None


def _env_memfd(env: Mapping[str, str]) -> int:
    """A sealed-size anonymous file holding *env* as JSON, positioned at its start."""
    fd = os.memfd_create("ohp-program-env", 0)  # not CLOEXEC: passed with pass_fds
    try:
        data = json.dumps(dict(env)).encode("utf-8")
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.lseek(fd, 0, os.SEEK_SET)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _launcher_python(installed: InstalledPlugin, profile: str) -> tuple[Path, str]:
    """The interpreter that applies the in-process layers: the plugin venv's, else (content
    only) the host's base interpreter, else, when the host is root and uid 65534 cannot read
    that one, the system's ``python3``."""
    if installed.venv is not None and installed.python is not None:
        return installed.venv / "bin" / "python", str(installed.python["abi_tag"])
    interpreter = base_interpreter(find_python(None))
    info = launcher_info()
    if profile != "off" and info["host_is_root"] and not info.get("private_mounts") \
            and unreachable(interpreter.path) is not None:
        system = reachable_system_python()
        if system is not None:
            interpreter = find_python(system)
    return interpreter.path, interpreter.abi_tag

