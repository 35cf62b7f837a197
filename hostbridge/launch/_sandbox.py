"""Sandbox profiles: how every plugin process (worker, hook command, MCP server) is launched.

One mechanism for all of them. :func:`plan` turns a profile, the operator's grants and this
machine's abilities into a :class:`Launch`: the launcher command that goes before the
interpreter (``prlimit``, ``setpriv``, ``unshare``), the environment, the working directory,
the uid, and the layers the process applies to itself before any plugin code
(``ohp_worker.sandbox``: Landlock, seccomp). :func:`launcher_info` probes, once per process,
which layers work here; :func:`sandbox_layers` reports them (``ohp doctor``).

Layers, outermost first::

    Popen(user=65534)           when the host is root: an unprivileged uid
    prlimit                     rlimits that count per uid (off profile only)
    setpriv --pdeathsig KILL    dies with the host
    unshare --user --map-user=65534 --pid --fork --mount-proc [--net] --kill-child
    prlimit                     rlimits, inside the user namespace (so processes count per worker)
    python -I -S -B ...         applies Landlock and the seccomp filter to itself, then runs
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hostbridge._errors import WorkerStartError
from isolator.policy import SANDBOX_PROFILES, Permissions
from isolator.sandbox import (
    HIDDEN,
    MOUNT_PROC,
    SYSTEM_READ,
    SYSTEM_WRITE,
    UNPRIVILEGED_GID,
    UNPRIVILEGED_UID,
    UNSHARE,
    SandboxError,
    blocked_ancestor,
    die_with_parent_prefix,
    drop_privileges,
    launcher_info,
    unreachable,
)

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from hostbridge.launch._runtime import Runtime
    from isolator.store import InstalledPlugin, PluginStore

log = logging.getLogger("hostbridge.sandbox")

PROFILES = SANDBOX_PROFILES
"""Sandbox profiles, weakest first. ``off``: a process group, a minimal environment and the
limits the host sets. ``standard``: every layer that works on this machine. ``strict``: every
layer, and a process whose layer is missing here is refused."""


_BASE_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR")
# Variables that change what a program loads or runs before its own code: the dynamic loader's
# (LD_*), the C library's (the set glibc drops for setuid programs), Python's, and the shell's
# startup files. None may come from a plugin's config (an MCP server's ``env``), and none may be
# passed through to the launcher chain (``setpriv``, ``unshare``, ``prlimit``, the interpreter),
# which runs before the process's sandbox is complete.
_LOADER_PREFIXES = ("LD_", "PYTHON", "MALLOC_", "GLIBC_")
_LOADER_NAMES = frozenset({
    "GCONV_PATH", "GETCONF_DIR", "HOSTALIASES", "LOCALDOMAIN", "LOCPATH", "NIS_PATH",
    "NLSPATH", "RESOLV_HOST_CONF", "RES_OPTIONS", "TZDIR", "BASH_ENV", "ENV", "SHELLOPTS",
    "BASHOPTS", "PS4", "CLAUDE_PLUGIN_ROOT", "OH_PLUGIN_ROOT"})
_ENV_NAME_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")


@dataclass(frozen=True)
class WorkerLimits:
    """Resource limits of a plugin process (``prlimit``); None leaves a limit as it is.

    Under ``standard`` and ``strict`` they apply inside the process's user namespace, so
    *processes* counts that process tree only (threads included)."""

    memory_bytes: int | None = None
    """Address space (``RLIMIT_AS``): an allocation past it fails with MemoryError."""
    open_files: int | None = None
    cpu_seconds: int | None = None
    """CPU time over the process's whole life (``RLIMIT_CPU``): past it, SIGKILL."""
    processes: int | None = None
    """Processes and threads (``RLIMIT_NPROC``): a fork past it fails with EAGAIN."""
    file_size_bytes: int | None = None
    """Largest file it may write (``RLIMIT_FSIZE``): a write past it fails with EFBIG."""

    def over(self, base: WorkerLimits) -> WorkerLimits:
        """These limits, with *base*'s where these say None."""
        return WorkerLimits(**{f.name: getattr(self, f.name) if getattr(self, f.name)
                               is not None else getattr(base, f.name) for f in fields(self)})

    def args(self) -> list[str]:
        """``prlimit`` options."""
        options = (("--as", self.memory_bytes), ("--nofile", self.open_files),
                   ("--cpu", self.cpu_seconds), ("--nproc", self.processes),
                   ("--fsize", self.file_size_bytes))
        return [f"{option}={int(value)}" for option, value in options if value is not None]

    def prefix(self) -> list[str]:
        """``prlimit OPTIONS --``, or nothing when no limit is set."""
        args = self.args()
        if not args:
            return []
        prlimit = shutil.which("prlimit")
        if prlimit is None:
            raise WorkerStartError("worker limits", "prlimit (util-linux) is not installed")
        return [prlimit, *args, "--"]

    def to_dict(self) -> dict[str, int | None]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


PROFILE_LIMITS = {
    "off": WorkerLimits(),
    "standard": WorkerLimits(open_files=1024, processes=256, file_size_bytes=1 << 30),
    "strict": WorkerLimits(memory_bytes=4 << 30, open_files=256, processes=64,
                           file_size_bytes=256 << 20),
}
"""The limits each profile sets unless the host sets its own (:meth:`WorkerLimits.over`)."""

_REQUIRED = ("pid_namespace", "host_proc_hidden", "net_namespace", "landlock", "seccomp",
             "unprivileged_uid", "rlimits")
"""The layers ``strict`` refuses to go without (net_namespace not when network is granted,
unprivileged_uid only when the host is root)."""


def loader_variable(name: str) -> bool:
    """Whether *name* is a variable that changes what a program loads before its own code
    (``LD_PRELOAD``, ``PYTHONPATH``, ``GCONV_PATH``, ``BASH_ENV``, ...) or one the host sets
    itself (``CLAUDE_PLUGIN_ROOT``)."""
    upper = name.upper()
    return upper.startswith(_LOADER_PREFIXES) or upper in _LOADER_NAMES


def check_program_env(env: Mapping[str, str], what: str) -> dict[str, str]:
    """*env* (variables from a plugin's config, such as an MCP server's ``env``) checked: names
    are environment variable names, values are text without NUL, and no name is a
    :func:`loader_variable`. Raises :class:`WorkerStartError` naming the first bad one."""
    checked: dict[str, str] = {}
    for name, value in env.items():
        if not isinstance(name, str) or not name or name[0].isdigit() or \
                not set(name) <= _ENV_NAME_CHARS:
            raise WorkerStartError(f"{what}: environment variable {name!r}",
                                   "expected a name of letters, digits and _ (not first a "
                                   "digit)")
        if not isinstance(value, str) or "\0" in value:
            raise WorkerStartError(f"{what}: environment variable {name}",
                                   "expected a text value without NUL characters")
        if loader_variable(name):
            raise WorkerStartError(f"{what}: environment variable {name}",
                                   "changes what a program loads before its own code (LD_*, "
                                   "PYTHON*, GCONV_PATH, BASH_ENV, ...) or is set by the host, "
                                   "and is refused from a plugin's config")
        checked[name] = value
    return checked


def check_profile(profile: str) -> None:
    """Raise :class:`WorkerStartError` unless *profile* is one of :data:`PROFILES`."""
    if profile not in PROFILES:
        raise WorkerStartError(f"sandbox profile {profile!r}",
                               f"expected one of {', '.join(PROFILES)}")


def sandbox_layers() -> dict[str, dict[str, Any]]:
    """Every sandbox layer, whether it works on this machine, and which profiles use it."""
    info = launcher_info()

    def layer(works: bool | None, profiles: tuple[str, ...], what: str) -> dict[str, Any]:
        return {"works": works, "profiles": list(profiles), "what": what}

    both = ("standard", "strict")
    return {
        "environment": layer(True, PROFILES, "only PATH, HOME, LANG, LC_*, TMPDIR, what the "
                             "operator allows and what the plugin was granted"),
        "process_group": layer(True, PROFILES, "killed as a group"),
        "parent_death_signal": layer(info["parent_death_signal"], PROFILES,
                                     "dies when the host dies"),
        "rlimits": layer(info["rlimits"], PROFILES, "address space, CPU, open files, file "
                         "size, processes (WorkerLimits, PROFILE_LIMITS)"),
        "pid_namespace": layer(info["pid_namespace"], both,
                               "its whole process tree dies with it"),
        "host_proc_hidden": layer(info["host_proc_hidden"], both,
                                  "a /proc of its own: the host's processes are not there"),
        "net_namespace": layer(info["net_namespace"], both,
                               "no network (TCP, UDP, ...) unless network is granted"),
        "seccomp": layer(info["seccomp"], both,
                         "no ptrace, mount, namespaces, bpf, io_uring, keyctl...; no new "
                         "sockets (socketpair only) unless network is granted"),
        "unprivileged_uid": layer(info["unprivileged_uid"] if info["host_is_root"] else None,
                                  both, f"the host runs as root: plugin processes run as uid "
                                  f"{UNPRIVILEGED_UID}" if info["host_is_root"] else
                                  "the host is not root: plugin processes keep its uid"),
        "store_read_only": layer(bool(info["landlock"]), both, "Landlock: the store (every "
                                 "venv, uv's cache, the wheelhouse) cannot be written, and of "
                                 "it only the plugin's own generation and the worker runtime "
                                 "can be read"),
        "no_shared_writes": layer(bool(info["landlock"]), both, "Landlock: writes go to the "
                                  "process's own scratch directory only (no /tmp, /dev/shm, "
                                  "/var/tmp or home directory shared with other plugins)"),
        "landlock": layer(bool(info["landlock"]), ("strict",),
                          f"filesystem: the plugin and the interpreter read-only, one scratch "
                          f"directory writable, the rest unreachable; no signals outside; "
                          f"granted TCP ports only (ABI {info['landlock']})"),
    }


def sandbox_reach(store: PluginStore) -> dict[str, str]:
    """When the host is root: whether uid 65534 reaches the store and the interpreter plugin
    venvs are made from, path by path: directly, or through a private mount namespace that
    covers the directory it may not enter and binds back only these paths (where neither
    works, ``standard`` and ``strict`` refuse plugin processes). Empty when the host is not
    root."""
    info = launcher_info()
    if not info["host_is_root"]:
        return {}
    from isolator.store import base_interpreter, find_python  # noqa: PLC0415

    python = Path(os.path.realpath(base_interpreter(find_python(store.python)).path))
    reach = {}
    for path, directory in ((store.root, Path(os.path.realpath(store.root))),
                            (python, python.parent.parent)):
        cover = blocked_ancestor(directory)
        blocked = unreachable(path, directory if cover is not None else Path("/"))
        if blocked is not None:
            reach[str(path)] = f"blocked at {blocked} (uid {UNPRIVILEGED_UID} may not enter it)"
        elif cover is None:
            reach[str(path)] = "reachable"
        elif info.get("private_mounts"):
            reach[str(path)] = f"reachable through a private mount namespace ({cover} is " \
                f"covered; {directory} bound back)"
        else:
            reach[str(path)] = f"blocked at {cover} (uid {UNPRIVILEGED_UID} may not enter it, " \
                "and private mount namespaces do not work here)"
    return reach


@dataclass
class Launch:
    """How to start one plugin process under a profile (see :func:`plan`)."""

    profile: str
    prefix: list[str]
    """The launcher command, to put before the interpreter."""
    env: dict[str, str]
    cwd: Path
    config: dict[str, Any]
    """What the process applies to itself (``ohp_worker.sandbox.apply``)."""
    user: dict[str, Any] = field(default_factory=dict)
    """``Popen`` keywords for the uid switch (empty when there is none)."""
    scratch: Path | None = None
    """Its ``TMPDIR`` in the store (standard, strict; the one writable directory under
    strict), removed by :meth:`cleanup`."""
    layers: dict[str, Any] = field(default_factory=dict)
    """Every layer and whether it is applied to this process (False with a reason: not)."""
    limits: WorkerLimits = WorkerLimits()
    outer: list[str] = field(default_factory=list)
    """The part of :attr:`prefix` a zygote gets (``hostbridge.launch._zygote``): the
    parent-death signal and, for a root host, the private mount namespace and the uid switch,
    with ``/`` as the working directory; the rest a forked worker applies itself."""
    namespaces: dict[str, Any] = field(default_factory=dict)
    """The namespaces of :attr:`prefix`'s ``unshare`` (``pid``, ``proc``, ``net``), for a
    forked worker to unshare itself."""
    fork_refused: str | None = None
    """Why a zygote may not start this process (it keeps the exec path), or None."""

    def cleanup(self) -> None:
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)
            self.scratch = None


def plan(
    store_root: Path,
    name: str,
    installed: InstalledPlugin,
    runtime: Runtime,
    python: Path,
    *,
    profile: str,
    grants: Permissions | None = None,
    env_allow: Iterable[str] = (),
    limits: WorkerLimits | None = None,
    what: str = "worker",
    cwd: Path | None = None,
) -> Launch:
    """The launch of *what* (a worker, a program) of plugin *name* under *profile*.

    Raises :class:`WorkerStartError` when *profile* is ``strict`` and a layer it requires does
    not work here (or the unprivileged uid cannot reach the plugin's files)."""
    check_profile(profile)
    info = launcher_info()
    grants = grants or Permissions()
    sandboxed = profile != "off"
    given_cwd = cwd
    network = bool(grants.network)
    limits = (limits or WorkerLimits()).over(PROFILE_LIMITS[profile])
    layers: dict[str, Any] = {}

    def want(layer: str, applies: bool, missing: str = "does not work here") -> bool:
        works = bool(info.get(layer))
        layers[layer] = works if applies else False
        if applies and not works:
            layers[layer] = False
            if profile == "strict":
                raise WorkerStartError(f"{what} of {name!r}", f"the strict sandbox needs "
                                       f"{layer}, which {missing} (see `ohp doctor`)")
        return applies and works

    pid_ns = want("pid_namespace", sandboxed)
    proc = pid_ns and want("host_proc_hidden", sandboxed)
    net_ns = pid_ns and want("net_namespace", sandboxed and not network)
    if network:
        layers["net_namespace"] = f"lifted: network granted ({', '.join(grants.network)})"
    seccomp = want("seccomp", sandboxed)
    landlock_abi = int(info["landlock"])
    fs_landlock = profile == "strict" and want("landlock", True)
    if profile == "strict" and limits.args():
        want("rlimits", True)

    # Who: an unprivileged uid when the host is root. Plugin code never runs as root under
    # standard or strict: where uid 65534 cannot enter a directory on the way to the
    # interpreter or the store (a pyenv Python under /root), a private mount namespace covers
    # that directory and binds back only what is needed (isolator.sandbox); where even that
    # cannot help, the process is refused.
    drop = None
    prefix_dir = Path(os.path.realpath(python)).parent.parent
    if sandboxed and info["host_is_root"]:
        needed = [(prefix_dir, True), (Path(os.path.realpath(store_root)), False)]
        if installed.pool is not None:  # a pooled venv: outside the store, read-only
            needed.append((installed.env_dir, True))
        uses = [Path(os.path.realpath(python)), installed.path, runtime.worker_dir,
                runtime.msgpack_dir, prefix_dir, installed.env_dir]
        try:
            drop = drop_privileges(needed, uses, cwd or installed.path, info,
                                   f"{what} of {name!r}")
        except SandboxError as exc:
            layers["unprivileged_uid"] = False
            raise WorkerStartError(exc.subject, f"the {profile} sandbox {exc.reason}") from None
        want("unprivileged_uid", True)
        layers["private_mounts"] = drop.bound
    as_nobody = drop is not None
    user = drop.user if drop is not None else {}
    # A zygote's view: the same covers and binds, started in / (a forked worker changes to
    # its own directory).
    zygote_drop = drop
    if drop is not None and drop.prefix:
        zygote_drop = drop_privileges(needed, uses, Path("/"), info, f"{what} of {name!r}")

    passed = (*env_allow, *grants.environment)
    refused = sorted({key for key in passed if loader_variable(key)})
    if refused:
        # The launcher chain runs with these: a loader variable would act before any layer.
        raise WorkerStartError(f"{what} of {name!r}", f"environment variable "
                               f"{', '.join(refused)} changes what a program loads before its "
                               "own code and is never passed to a plugin process (allowed or "
                               "granted)")
    env = {key: os.environ[key] for key in (*_BASE_ENV, *passed) if key in os.environ}
    cwd = cwd or installed.path
    scratch: Path | None = None
    config: dict[str, Any] = {}
    store_read_only = profile == "standard" and landlock_abi > 0
    if fs_landlock or store_read_only:
        # The one directory of the store it may write: its TMPDIR, removed afterwards.
        scratch_root = store_root / "scratch"  # not under tmp/: clean empties that
        scratch_root.mkdir(exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=f"{what}-{name}-", dir=scratch_root))
        if as_nobody:
            os.chown(scratch, UNPRIVILEGED_UID, UNPRIVILEGED_GID)
        env["TMPDIR"] = str(scratch)
    if fs_landlock:
        assert scratch is not None
        config["landlock"] = {
            "read": sorted({str(installed.path), str(installed.env_dir),
                            str(runtime.worker_dir), str(runtime.msgpack_dir), str(prefix_dir),
                            *SYSTEM_READ}),
            "write": [str(scratch), *SYSTEM_WRITE], "hidden": list(HIDDEN), "scope": True}
        cwd = scratch
        env.update(TMPDIR=str(scratch), HOME=str(scratch))
    elif store_read_only:
        # The store: read-only, and nothing of it readable but the plugin's own generation, the
        # worker runtime and its scratch (not other plugins' venvs, the bytecode pool, uv's
        # cache, the wheelhouse, the store's metadata, other workers' scratch). Writes: its
        # scratch only, so plugins share no writable place (/tmp, /var/tmp, /dev/shm, a home
        # directory: under a root host every worker is uid 65534, under another host every
        # worker is the host's uid, and file modes cannot keep them apart). The rest of the
        # filesystem stays readable, as file modes say.
        assert scratch is not None
        config["landlock"] = {
            "read_except": os.path.realpath(store_root),
            "read": sorted({str(installed.path), str(installed.env_dir),
                            str(runtime.worker_dir), str(runtime.msgpack_dir),
                            str(prefix_dir)}),
            "write": [str(scratch), *SYSTEM_WRITE]}
        env["HOME"] = str(scratch)
        layers["store_read_only"] = True
        layers["no_shared_writes"] = True
    if network and landlock_abi >= 4 and sandboxed and grants.ports is not None:
        config.setdefault("landlock", {})["connect_ports"] = list(grants.ports)
        layers["network_ports"] = list(grants.ports)
    if seccomp:
        # No socket() at all: the worker's channel is an inherited socketpair, and an AF_UNIX
        # socket could connect to the host's sockets by path (ssh-agent, dbus, docker), which
        # neither the network namespace nor Landlock (ABI <= 7) governs.
        config["seccomp"] = "any" if network else "none"
        # Under strict, no chmod/chown either: the process owns the store's files when the host
        # is not root, and a venv's files are hardlinks of uv's cache and the bytecode pool,
        # shared with every other plugin; Landlock has no right for modes.
        if profile == "strict":
            config["no_mode_changes"] = True
    layers["landlock"] = fs_landlock  # the filesystem confined (strict); see store_read_only
    layers.setdefault("store_read_only", fs_landlock)
    layers.setdefault("no_shared_writes", fs_landlock)
    for layer in _REQUIRED:
        layers.setdefault(layer, False)
    if not info["host_is_root"]:
        layers["unprivileged_uid"] = None  # nothing to drop: the host is not root
    layers["rlimits"] = limits.to_dict()
    layers["environment"] = sorted(env)

    # The launcher command. The parent-death signal is set after the uid switch (which would
    # clear it); a copy, as the prefix is cached.
    prefix: list[str] = []
    if not pid_ns:
        prefix += limits.prefix()
    prefix += [*die_with_parent_prefix()]
    if drop is not None and drop.prefix and cwd != (given_cwd or installed.path):
        # The mount namespace's script changes to the directory the process starts in: the
        # one chosen above (its scratch under strict), not the one known when it was made.
        drop = drop_privileges(needed, uses, cwd, info, f"{what} of {name!r}")
    if drop is not None:
        # As root: a private mount namespace with the covers; then uid 65534 (the parent-death
        # signal set again after the switch, which clears it).
        prefix += drop.prefix
    if pid_ns:
        prefix += [str(info["unshare"]), *UNSHARE]
        if proc:
            prefix.append(MOUNT_PROC)
        if net_ns:
            prefix.append("--net")  # only a loopback that is down: no network at all
        prefix += limits.prefix()
    outer = [*die_with_parent_prefix(), *(zygote_drop.prefix if zygote_drop else [])]
    namespaces = {"pid": pid_ns, "proc": proc, "net": net_ns, "map_to": UNPRIVILEGED_UID}
    fork_refused = None
    if sandboxed and not pid_ns:
        # Without a PID namespace a worker could see and signal the zygote (and, without
        # seccomp, trace it): the exec path, where each worker is on its own.
        fork_refused = "no PID namespace here"
    return Launch(profile, prefix, env, cwd, config, user, scratch, layers, limits, outer,
                  namespaces, fork_refused)
