"""The launcher of every sandboxed process: plugin workers, plugin programs (hook commands,
MCP servers) and the build backends of projects the store builds.

Below the store and the bridge (both use it; it imports neither). :func:`launcher_info` probes,
once per process, which layers work on this machine. :func:`drop_privileges` plans how a root
host runs a process as the unprivileged uid: directly (``Popen(user=65534)``), or, where that
uid may not enter a directory on the way to what the process needs (a pyenv interpreter under
``/root``, a store or build directory under a 0700 directory), through a private mount
namespace that covers that directory with an empty tmpfs and binds back only what is needed
(:func:`overlay_script`), then ``setpriv --reuid``. The in-process layers (Landlock, seccomp)
are :mod:`isolator.sandbox.confine`'s.
"""

from __future__ import annotations

import functools
import os
import shutil
import stat
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from isolator._errors import SandboxError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

UNPRIVILEGED_UID = UNPRIVILEGED_GID = 65534
"""``nobody``/``nogroup``: the identity of plugin processes when the host is root, and the
identity a plugin process sees for itself inside its user namespace."""

UNSHARE = ["--user", f"--map-user={UNPRIVILEGED_UID}", f"--map-group={UNPRIVILEGED_GID}",
           "--pid", "--fork", "--kill-child=SIGKILL"]
"""``unshare`` options of every sandboxed process: a user namespace where it is not root, a PID
namespace whose death takes the whole tree."""
MOUNT_PROC = "--mount-proc"
SYSTEM_READ = ("/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin", "/etc/ssl",
               "/etc/ca-certificates", "/etc/localtime", "/etc/ld.so.cache",
               "/etc/nsswitch.conf", "/etc/resolv.conf", "/etc/hosts", "/dev/random",
               "/dev/urandom", "/dev/zero", "/proc/self", "/etc/mime.types")
"""Read-only under a confining Landlock ruleset besides what the process itself needs: what a
process needs of the system (shared libraries, programs, certificates, time zone, the MIME
types Python's mimetypes reads when the file exists, as the OpenHands SDK does at import)."""
SYSTEM_WRITE = ("/dev/null",)
HIDDEN = ("/proc/self/mountinfo", "/proc/self/mounts", "/proc/self/mountstats",
          "/proc/self/task")
"""Cut out of ``/proc/self``: the mount tables (the host's mount points) and the threads'
copies of them."""


def _root() -> bool:
    return sys.platform.startswith("linux") and os.geteuid() == 0


@functools.cache
def launcher_info() -> dict[str, Any]:
    """Which layers work here, probed once: a PID namespace (``unshare``; then a worker's death
    takes every descendant with it, ``setsid()`` or not), a ``/proc`` of its own, a network
    namespace (no network), Landlock (its ABI), seccomp, rlimits, the uid switch."""
    unshare = shutil.which("unshare")
    linux = sys.platform.startswith("linux")
    user = {"user": UNPRIVILEGED_UID, "group": UNPRIVILEGED_GID, "extra_groups": []} \
        if _root() else {}
    pid_ns = proc = net_ns = False
    if unshare is not None and linux:
        pid_ns = _runs([unshare, *UNSHARE, "true"], user)
        proc = pid_ns and _runs([unshare, *UNSHARE, MOUNT_PROC, "true"], user)
        net_ns = pid_ns and _runs([unshare, *UNSHARE, "--net", "true"], user)
    from isolator.sandbox.confine import seccomp  # noqa: PLC0415
    from isolator.sandbox.confine.landlock import abi_version  # noqa: PLC0415

    return {"pid_namespace": pid_ns, "host_proc_hidden": proc, "net_namespace": net_ns,
            "landlock": abi_version() if linux else 0,
            "seccomp": linux and seccomp.supported() and _seccomp_works(),
            "unshare": unshare if pid_ns else None,
            "parent_death_signal": bool(die_with_parent_prefix()),
            "rlimits": shutil.which("prlimit") is not None,
            "unprivileged_uid": _root() and (not unshare or _runs(["true"], user)),
            "private_mounts": _private_mounts_work(unshare) if _root() and linux else False,
            "host_is_root": _root(),
            "process_group": True}


_MOUNT_TOOLS = ("mount", "mkdir")


def _private_mounts_work(unshare: str | None) -> bool:
    """Whether a root host can give a plugin process a private mount namespace in which a
    tmpfs covers a directory (the ones uid 65534 may not enter) and a bind mount puts back the
    paths the process needs (:func:`overlay_script`)."""
    tools = [shutil.which(tool, path="/usr/bin:/bin") for tool in _MOUNT_TOOLS]
    if unshare is None or None in tools:
        return False
    script = overlay_script({"/tmp": []}, "/")
    return _runs([unshare, "--mount", "--propagation", "private", "--", "/bin/sh", "-c",
                  script, "ohp-mounts", "true"], {})


def overlay_script(covers: Mapping[str, list[tuple[str, bool]]], cwd: str) -> str:
    """A ``sh`` script, run as root in a private mount namespace before the uid switch, that
    covers each key of *covers* (a directory uid 65534 may not enter: ``/root`` for a pyenv
    interpreter) with an empty read-only tmpfs and binds back, at the same paths, only the
    directories listed for it (``(path, read_only)``: the interpreter's prefix read-only, the
    store as it is). Paths stay as they were, so venvs and their ``pyvenv.cfg`` need no change;
    the rest of the covered directory (root's home) is hidden from the process. Then it
    ``cd``s to *cwd* and runs its arguments. Every path is the host's (interpreter, store).

    Each directory is opened before its cover hides it and bound from ``/proc/self/fd``: a
    descriptor opened in this mount namespace may be bound in it."""
    import shlex  # noqa: PLC0415

    q = shlex.quote
    mount = shutil.which("mount", path="/usr/bin:/bin") or "mount"
    mkdir = shutil.which("mkdir", path="/usr/bin:/bin") or "mkdir"
    lines = ["set -e"]
    for cover, paths in covers.items():
        if len(paths) > 7:
            raise SandboxError(cover, "too many directories to bind beneath it (at most 7)")
        opened = list(enumerate(paths, start=3))
        lines += [f"exec {fd}<{q(path)}" for fd, (path, _ro) in opened]
        lines.append(f"{mount} -t tmpfs -o mode=0755,size=64k,nosuid,nodev,noexec "
                     f"ohp-cover {q(cover)}")
        for fd, (path, read_only) in opened:
            lines.append(f"{mkdir} -p {q(path)}")
            lines.append(f"{mount} --no-canonicalize --bind /proc/self/fd/{fd} {q(path)}")
            if read_only:
                lines.append(f"{mount} --no-canonicalize -o remount,bind,ro,nosuid,nodev "
                             f"{q(path)}")
        lines.append(f"{mount} --no-canonicalize -o remount,ro,nosuid,nodev,noexec "
                     f"{q(cover)}")
        lines += [f"exec {fd}<&-" for fd, _path in opened]
    lines += [f"cd {q(cwd)}", 'exec "$@"']
    return "\n".join(lines)


def _runs(cmd: list[str], user: Mapping[str, Any]) -> bool:
    try:
        return subprocess.run(cmd, capture_output=True, timeout=10, check=False, cwd="/",
                              **user).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def _seccomp_works() -> bool:
    probe = ("import sys; sys.path.insert(0, sys.argv[1]); from seccomp import install; "
             "install('none'); import socket\ntry: socket.socket()\nexcept OSError: pass\n"
             "else: raise SystemExit(3)")
    from isolator.sandbox import confine as _confine  # noqa: PLC0415

    worker = str(Path(_confine.__file__).parent)
    return _runs([sys.executable, "-I", "-S", "-c", probe, worker], {})


def reachable_system_python() -> str | None:
    """The system's ``python3``, when uid 65534 can run it (for a root host whose own
    interpreter lives where that uid cannot go, such as pyenv under /root)."""
    for candidate in ("/usr/bin/python3", "/usr/local/bin/python3"):
        if os.path.exists(candidate) and unreachable(Path(os.path.realpath(candidate))) is None:
            return candidate
    return None


def blocked_ancestor(path: Path) -> str | None:
    """The first directory above *path* that the unprivileged uid cannot search; None when
    it may search every one."""
    current = Path("/")
    for part in path.parts[1:]:
        if not _allows(current, stat.S_IXOTH):
            return str(current)
        current /= part
    return None


def _base(path: Path, roots: list[Path]) -> Path:
    """The directory of *roots* (bound back into a private mount namespace) that holds
    *path*, else ``/``."""
    return next((root for root in roots if path.is_relative_to(root)), Path("/"))


def unreachable(path: Path, start: Path = Path("/")) -> str | None:
    """The first directory on the way to *path* (from *start*) that the unprivileged uid
    cannot search, or *path* itself when it cannot read it; None when it can."""
    current = start
    for part in path.parts[len(start.parts):]:
        if not _allows(current, stat.S_IXOTH):
            return str(current)
        current /= part
    return None if _allows(current, stat.S_IROTH) else str(current)


def _allows(path: Path, other_bit: int) -> bool:
    try:
        info = path.stat()
    except OSError:
        return True  # not there: the process says so itself, more clearly
    if info.st_uid == UNPRIVILEGED_UID:
        return bool(info.st_mode & (other_bit << 6))
    if info.st_gid == UNPRIVILEGED_GID:
        return bool(info.st_mode & (other_bit << 3))
    return bool(info.st_mode & other_bit)


@functools.cache
def die_with_parent_prefix() -> tuple[str, ...]:
    """``setpriv --pdeathsig KILL --`` when available, so a child dies even if we are SIGKILLed.

    A new session protects the group from our terminal's signals, but nothing kills it when
    the host dies hard; the parent-death signal does (Linux only, util-linux's setpriv; a
    ``preexec_fn`` would do the same but is unsafe in a threaded host).
    """
    if not sys.platform.startswith("linux"):
        return ()
    setpriv = shutil.which("setpriv", path="/usr/bin:/bin")
    if setpriv is None:
        return ()
    try:
        result = subprocess.run(
            [setpriv, "--pdeathsig", "KILL", "--", "true"],
            capture_output=True, timeout=5, check=False, stdin=subprocess.DEVNULL,
        )
    except (OSError, subprocess.TimeoutExpired):
        return ()
    return (setpriv, "--pdeathsig", "KILL", "--") if result.returncode == 0 else ()


@dataclass
class Drop:
    """How a process of a root host becomes the unprivileged uid (:func:`drop_privileges`)."""

    prefix: list[str] = field(default_factory=list)
    """Run as root, before the rest of the launcher command: a private mount namespace with
    the covers, then ``setpriv --reuid`` (empty when ``Popen(user=)`` does)."""
    user: dict[str, Any] = field(default_factory=dict)
    """``Popen`` keywords of the uid switch (empty when :attr:`prefix` does it)."""
    bound: list[str] = field(default_factory=list)
    """The directories bound back into a private mount namespace."""


def drop_privileges(needed: Sequence[tuple[Path, bool]], uses: Sequence[Path], cwd: Path,
                    info: Mapping[str, Any], what: str) -> Drop:
    """Plan how a root host starts a process as uid 65534 that needs the directories *needed*
    (``(directory, read_only)``) and, beneath them, the paths *uses*, starting in *cwd*.

    Where the uid may not enter a directory above one of *needed*, that directory is covered
    in a private mount namespace and the needed directory bound back (read-only where asked),
    at the same path. Raises :class:`SandboxError` naming the path when even that cannot make
    it reachable: a root host never runs plugin code as root under a sandbox."""
    covers: dict[str, list[tuple[str, bool]]] = {}
    blocked: str | None = None
    for directory, read_only in needed:
        cover = blocked_ancestor(directory)
        if cover is None:
            continue
        if not info.get("private_mounts"):
            blocked = cover
            break
        bound = covers.setdefault(cover, [])
        if not any(directory.is_relative_to(other) for other, _ro in bound):
            bound.append((str(directory), read_only))
    roots = [Path(path) for paths in covers.values() for path, _ro in paths]
    if blocked is None:
        # Beneath the directories bound back, the usual modes decide.
        blocked = next((b for b in (unreachable(use, _base(use, roots)) for use in uses)
                        if b is not None), None)
    if blocked is not None:
        raise SandboxError(what, f"runs as uid {UNPRIVILEGED_UID}, which cannot reach "
                           f"{blocked} (keep the store and the interpreters where other users "
                           "can read them; a root host never runs plugin code as root unless "
                           "the profile is off)")
    if not covers:
        return Drop(user={"user": UNPRIVILEGED_UID, "group": UNPRIVILEGED_GID,
                          "extra_groups": []})
    unshare = shutil.which("unshare", path="/usr/bin:/bin") or "unshare"
    prefix = [unshare, "--mount", "--propagation", "private", "--", "/bin/sh", "-c",
              overlay_script(covers, str(cwd)), "ohp-mounts", *setpriv_switch()]
    return Drop(prefix=prefix, bound=sorted(str(root) for root in roots))


def setpriv_switch(uid: int = UNPRIVILEGED_UID, gid: int = UNPRIVILEGED_GID) -> list[str]:
    """``setpriv`` to *uid*/*gid* with no supplementary groups, the parent-death signal set
    again after the switch (which clears it): for a command that cannot use ``Popen(user=)``.
    Raises :class:`SandboxError` when util-linux's setpriv is missing."""
    setpriv = shutil.which("setpriv", path="/usr/bin:/bin")
    if setpriv is None:
        raise SandboxError("setpriv", "util-linux's setpriv is not installed in /usr/bin or "
                           "/bin: cannot switch to an unprivileged uid")
    return [setpriv, f"--reuid={uid}", f"--regid={gid}", "--clear-groups", "--pdeathsig",
            "KILL", "--"]
