"""The zygote: an interpreter that has imported the worker runtime and msgpack, and forks
workers for any plugin on that interpreter (docs/security.md, "Worker start").

Started by the host through the same launcher chain as a worker, without any plugin's paths
(``python -I -S -B -c ZYGOTE_BOOT RUNTIME_DIR MSGPACK_DIR CONTROL_FD``). It stays
single-threaded, holds nothing but its control socket (no plugin's configuration ever reaches
it) and is not dumpable (no ptrace, no ``/proc/PID/mem`` by the same uid). For each request on
the control socket (one byte and four descriptors by ``SCM_RIGHTS``: the worker's socket, its
stdout and stderr pipes, a status pipe) it forks:

* the **child** (like ``unshare --fork``) closes the control socket and every descriptor but
  its four, calls ``setsid``, reads the plugin's configuration from the worker's own socket,
  unshares the user, PID, mount and network namespaces the profile asks for (writing its uid
  and gid maps), and forks again: PID namespaces apply to children. It reports the worker's
  pid and later its exit status on the status pipe, and kills the worker when the host is gone
  (the status pipe's read end, the host's only, closed): a worker outlives a zygote that
  crashed, never the host;
* the **worker** (PID 1 of its namespace) sets the parent-death signal, mounts its own
  ``/proc``, drops the capabilities it holds in its user namespace (the exec path loses them
  at ``execve``), sets its rlimits, its environment and working directory, then does what an
  exec'd worker does (:func:`.main.serve`): Landlock and seccomp, the plugin's site-packages,
  and serves.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_CLONE_NEWNS = 0x00020000
_CLONE_NEWUSER = 0x10000000
_CLONE_NEWPID = 0x20000000
_CLONE_NEWNET = 0x40000000
_MS_NOSUID, _MS_NODEV, _MS_NOEXEC = 2, 4, 8
_MS_REC, _MS_PRIVATE = 0x4000, 1 << 18
_PR_SET_PDEATHSIG, _PR_SET_DUMPABLE = 1, 4
_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL = 47, 4
_CAP_VERSION_3 = 0x20080522
_MAX_CONFIG = 16 << 20
_RLIMITS = {"memory_bytes": "RLIMIT_AS", "open_files": "RLIMIT_NOFILE",
            "cpu_seconds": "RLIMIT_CPU", "processes": "RLIMIT_NPROC",
            "file_size_bytes": "RLIMIT_FSIZE"}

_libc: Any = None


def zygote_main(msgpack_path: str, control_fd: int) -> None:
    """Import what every worker needs, then fork a worker for each request until the host
    closes the control socket."""
    global _libc  # noqa: PLW0603 - one per process
    import ctypes  # noqa: PLC0415
    import faulthandler  # noqa: PLC0415
    import gc  # noqa: PLC0415
    import json  # noqa: F401, PLC0415 - for the workers: imported once, here
    import resource  # noqa: F401, PLC0415
    import select  # noqa: F401, PLC0415
    import site  # noqa: F401, PLC0415 - under -S, importing it runs nothing
    import socket  # noqa: PLC0415

    faulthandler.enable()
    sys.path.append(msgpack_path)
    # landlock, sandbox and seccomp are isolator/sandbox/confine's, copied by the runtime.
    from . import (  # type: ignore[attr-defined]  # noqa: F401, PLC0415
        landlock,
        main,
        protocol,
        sandbox,
        seccomp,
    )

    _libc = ctypes.CDLL(None, use_errno=True)
    main._raise_mmap_threshold()
    # Not dumpable: a process of the same uid can neither ptrace it nor read its memory.
    _libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # its children are reaped by the kernel
    control = socket.socket(fileno=control_fd)
    gc.collect()
    gc.freeze()  # what is imported stays shared with the workers (no collector writes)
    zygote = os.getpid()
    control.sendall(b"R")
    while True:
        try:
            message, fds, _flags, _addr = socket.recv_fds(control, 16, 4)
        except InterruptedError:
            continue
        if not message:
            return  # the host closed the control socket
        if len(fds) != 4:
            for fd in fds:
                os.close(fd)
            control.sendall(b"E bad request\n")
            continue
        sys.stdout.flush()
        sys.stderr.flush()
        try:
            pid = os.fork()
        except OSError as exc:
            for fd in fds:
                os.close(fd)
            control.sendall(f"E {exc.strerror}\n".encode())
            continue
        if pid == 0:
            code = 1
            try:
                control.close()
                code = _child(zygote, *fds)
            except BaseException as exc:  # whatever it is, the child ends here
                _say(f"ohp zygote: cannot start the worker: {type(exc).__name__}: {exc}")
            finally:
                os._exit(code)
        for fd in fds:
            os.close(fd)
        control.sendall(f"{pid}\n".encode())


def _say(text: str) -> None:
    with contextlib.suppress(OSError):
        os.write(2, (text + "\n").encode("utf-8", "replace"))


def _check(result: int, what: str) -> None:
    if result != 0:
        import ctypes  # noqa: PLC0415

        errno = ctypes.get_errno()
        raise OSError(errno, f"{what}: {os.strerror(errno)}")


def _die_with_parent(parent: int) -> None:
    """Set the parent-death signal; exit at once if the parent already died (*parent*: the
    pid the parent has here, 0 when it is outside this PID namespace)."""
    _check(_libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl(PDEATHSIG)")
    if os.getppid() != parent:
        os._exit(1)


def _keep_only(keep: set[int]) -> None:
    """Close every descriptor but *keep*."""
    low = 0
    for fd in sorted(keep):
        if fd > low:
            os.closerange(low, fd)
        low = fd + 1
    os.closerange(low, 1 << 20)


def _read_exactly(fd: int, count: int) -> bytes:
    chunks = []
    while count:
        chunk = os.read(fd, count)
        if not chunk:
            raise EOFError("the host closed the worker's socket before its configuration")
        chunks.append(chunk)
        count -= len(chunk)
    return b"".join(chunks)


def _read_config(fd: int) -> dict[str, Any]:
    import json  # noqa: PLC0415

    size = int.from_bytes(_read_exactly(fd, 4), "big")
    if size > _MAX_CONFIG:
        raise ValueError(f"a configuration of {size} bytes")
    config = json.loads(_read_exactly(fd, size).decode("utf-8"))
    if not isinstance(config, dict):
        raise ValueError("the configuration is not an object")
    return config


def _write(fd: int, text: str) -> None:
    data = text.encode()
    while data:
        data = data[os.write(fd, data):]


def _child(zygote: int, sock: int, out: int, err: int, status: int) -> int:
    """The forked child of the zygote: the outer layers of one worker, then its fork."""
    os.setsid()
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    if os.getppid() != zygote:
        os._exit(1)
    null = os.open("/dev/null", os.O_RDONLY)
    for fd, target in ((null, 0), (out, 1), (err, 2)):
        os.dup2(fd, target)
    _keep_only({0, 1, 2, sock, status})
    _libc.prctl(_PR_SET_DUMPABLE, 1, 0, 0, 0)  # as an exec'd process is
    config = _read_config(sock)
    config["fd"] = sock
    namespaces = config.get("namespaces") or {}
    if namespaces.get("pid"):
        uid, gid = os.geteuid(), os.getegid()
        flags = _CLONE_NEWUSER | _CLONE_NEWPID
        if namespaces.get("proc"):
            flags |= _CLONE_NEWNS
        if namespaces.get("net"):
            flags |= _CLONE_NEWNET
        _check(_libc.unshare(flags), "unshare")
        inner = int(namespaces["map_to"])
        for name, text in (("setgroups", "deny"), ("uid_map", f"{inner} {uid} 1"),
                           ("gid_map", f"{inner} {gid} 1")):
            with open(f"/proc/self/{name}", "w", encoding="ascii") as handle:
                handle.write(text)
        if namespaces.get("proc"):
            _check(_libc.mount(b"none", b"/", None, _MS_REC | _MS_PRIVATE, None),
                   "mount --make-rprivate /")
    me = os.getpid()
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:
        os.close(status)
        return _worker(config, 0 if namespaces.get("pid") else me)
    os.close(sock)
    _write(status, f"pid {pid}\n")
    _wait_or_host_gone(pid, status)
    try:
        _, wait_status = os.waitpid(pid, 0)
    except ChildProcessError:
        wait_status = 0
    code = -os.WTERMSIG(wait_status) if os.WIFSIGNALED(wait_status) else \
        os.waitstatus_to_exitcode(wait_status)
    _write(status, f"exit {code}\n")
    return 0


def _wait_or_host_gone(pid: int, status: int) -> None:
    """Wait until the worker *pid* ends, or the host does (the read end of the *status* pipe
    is the host's only: its end is an error on the write end); then the worker is killed.

    Not the parent-death signal: the parent is the zygote, and a worker must outlive a
    zygote that crashed (the host starts another for later workers), yet never the host."""
    import select  # noqa: PLC0415

    try:
        pidfd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        _die_with_parent(os.getppid())  # no pidfd: die with the zygote, as the worker would
        return
    poller = select.poll()
    poller.register(pidfd, select.POLLIN)
    poller.register(status, select.POLLERR)
    while True:
        events = dict(poller.poll())
        if pidfd in events:
            break
        if events.get(status, 0) & (select.POLLERR | select.POLLHUP):
            with contextlib.suppress(OSError):
                signal.pidfd_send_signal(pidfd, signal.SIGKILL)
            break
    os.close(pidfd)


def _worker(config: dict[str, Any], parent: int) -> int:
    """The worker, forked by the child: the rest of its layers, then the worker's own code."""
    import resource  # noqa: PLC0415

    _die_with_parent(parent)
    namespaces = config.get("namespaces") or {}
    if namespaces.get("proc"):
        _check(_libc.mount(b"none", b"/proc", None, _MS_REC | _MS_PRIVATE, None),
               "mount --make-rprivate /proc")
        _check(_libc.mount(b"proc", b"/proc", b"proc", _MS_NOSUID | _MS_NOEXEC | _MS_NODEV,
                           None), "mount proc")
    if namespaces.get("pid"):
        _drop_capabilities()
    for key, value in (config.get("rlimits") or {}).items():
        if value is not None:
            limit = getattr(resource, _RLIMITS[key])
            resource.setrlimit(limit, (int(value), int(value)))
    os.environ.clear()
    os.environ.update(config.get("env") or {})
    os.chdir(str(config["cwd"]))
    # As an exec'd worker has them: the venv's interpreter (with -S, the base's prefix).
    sys.executable = str(config["executable"])
    msgpack_path = str(config["msgpack_path"])
    if msgpack_path in sys.path:
        sys.path.remove(msgpack_path)  # after the plugin's site-packages, as in an exec'd one
    if os.path.isdir(os.path.join(str(config["site_packages"]), "msgpack")):
        # The plugin pins its own msgpack: it gets it (the protocol keeps the runtime's).
        for name in [n for n in sys.modules if n == "msgpack" or n.startswith("msgpack.")]:
            del sys.modules[name]
    from . import main  # noqa: PLC0415

    code = 0
    try:
        main.serve(config)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    except BaseException:  # as the interpreter would: its traceback, status 1
        import traceback  # noqa: PLC0415

        traceback.print_exc()
        code = 1
    _finish()
    return code


def _finish() -> None:
    """What an interpreter does at its end: join non-daemon threads, run atexit, flush."""
    threading = sys.modules.get("threading")
    if threading is not None:
        with contextlib.suppress(BaseException):
            threading._shutdown()
    import atexit  # noqa: PLC0415

    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(BaseException):
            stream.flush()


def _drop_capabilities() -> None:
    """Drop every capability the process holds in its user namespace (effective, permitted,
    inheritable, ambient): an exec'd worker loses them at ``execve``, a forked one keeps
    them."""
    import ctypes  # noqa: PLC0415

    class _Header(ctypes.Structure):
        _fields_ = (("version", ctypes.c_uint32), ("pid", ctypes.c_int))

    class _Data(ctypes.Structure):
        _fields_ = (("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32),
                    ("inheritable", ctypes.c_uint32))

    header = _Header(_CAP_VERSION_3, 0)
    data = (_Data * 2)()
    _check(_libc.capset(ctypes.byref(header), ctypes.byref(data)), "capset")
    _libc.prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
