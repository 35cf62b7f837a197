"""One tool per attack on the host. Each tries its attack and reports what it observed.

A failed attempt is reported, not raised: ``{"ok": False, "error": "PermissionError: ...",
"errno": 13}``; a successful one says what it got (``{"ok": True, ...}``). The resource
attacks (fork, memory, descriptors) refuse to run where no limit bounds them, so a broken
sandbox fails the test instead of eating the machine.
"""

from __future__ import annotations

import ctypes
import errno as errno_module
import os
import platform
import resource
import socket
import time
from typing import Any

_RLIMITS = ("RLIMIT_AS", "RLIMIT_NOFILE", "RLIMIT_CPU", "RLIMIT_NPROC", "RLIMIT_FSIZE")
_STATUS_KEYS = ("Uid", "Gid", "Groups", "NSpid", "Seccomp", "NoNewPrivs", "CapEff")


def _failure(exc: BaseException, **extra: Any) -> dict[str, Any]:
    code = getattr(exc, "errno", None)
    return {"ok": False, "error": f"{type(exc).__name__}: {exc}", "errno": code,
            "errno_name": errno_module.errorcode.get(code) if code else None, **extra}


def ok(text: str) -> str:
    """Return *text*: the harmless call that shows a worker still serves."""
    return text


def whoami() -> dict[str, Any]:
    """Who this worker is: ids, namespaces, seccomp and Landlock state, soft rlimits."""
    status: dict[str, list[str]] = {}
    with open("/proc/self/status") as handle:
        for line in handle:
            key, _, value = line.partition(":")
            if key in _STATUS_KEYS:
                status[key] = value.split()
    return {
        "pid": os.getpid(),
        "uid": os.getuid(),
        "gid": os.getgid(),
        "status": status,
        "limits": {name: resource.getrlimit(getattr(resource, name))[0] for name in _RLIMITS},
        "cwd": os.getcwd(),
        "tmpdir": os.environ.get("TMPDIR"),
        "module": __file__,
    }


def environ() -> dict[str, str]:
    """This worker's whole environment."""
    return dict(os.environ)


def read_file(path: str, limit: int = 65536) -> dict[str, Any]:
    """Read up to *limit* bytes of *path* (latin-1 text, so any bytes survive)."""
    try:
        with open(path, "rb") as handle:
            return {"ok": True, "data": handle.read(limit).decode("latin-1")}
    except OSError as exc:
        return _failure(exc)


def list_dir(path: str) -> dict[str, Any]:
    """List a directory."""
    try:
        return {"ok": True, "names": sorted(os.listdir(path))}
    except OSError as exc:
        return _failure(exc)


def host_proc(pid: int) -> dict[str, Any]:
    """Go after a host process through /proc: its environment, memory, descriptors, root."""
    base = f"/proc/{pid}"
    found: dict[str, Any] = {
        "environ": read_file(f"{base}/environ"),
        "cmdline": read_file(f"{base}/cmdline"),
        "maps": read_file(f"{base}/maps"),
        "fd": list_dir(f"{base}/fd"),
        "root": list_dir(f"{base}/root"),
        "cwd": list_dir(f"{base}/cwd"),
    }
    try:
        fd = os.open(f"{base}/mem", os.O_RDONLY)
    except OSError as exc:
        found["mem"] = _failure(exc)
    else:
        try:
            address = 0
            maps = found["maps"]
            if maps["ok"] and maps["data"]:
                address = int(maps["data"].split("-", 1)[0], 16)
            data = os.pread(fd, 64, address)
            found["mem"] = {"ok": True, "data": data.hex()}
        except OSError as exc:
            found["mem"] = _failure(exc, opened=True)
        finally:
            os.close(fd)
    return found


def open_fds() -> dict[str, str]:
    """This process's open descriptors and what each refers to (inherited ones included)."""
    found = {}
    for name in os.listdir("/proc/self/fd"):
        try:
            found[name] = os.readlink(f"/proc/self/fd/{name}")
        except OSError as exc:
            found[name] = f"? {exc.strerror}"
    return found


def signal_pid(pid: int, signum: int = 0) -> dict[str, Any]:
    """Send *signum* to *pid* (0: only ask whether it could be sent)."""
    try:
        os.kill(pid, signum)
    except OSError as exc:
        return _failure(exc)
    return {"ok": True}


def tcp_connect(host: str, port: int, payload: str = "stolen") -> dict[str, Any]:
    """Connect to host:port over TCP and send *payload*."""
    try:
        with socket.create_connection((host, port), timeout=3) as conn:
            conn.sendall(payload.encode())
    except OSError as exc:
        return _failure(exc)
    return {"ok": True}


def udp_send(host: str, port: int, payload: str = "stolen") -> dict[str, Any]:
    """Send *payload* to host:port over UDP."""
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.sendto(payload.encode(), (host, port))
    except OSError as exc:
        return _failure(exc)
    return {"ok": True}


def unix_connect(path: str, abstract: bool = False, payload: str = "stolen") -> dict[str, Any]:
    """Connect to a Unix socket of the host (a path, or an abstract name) and send *payload*."""
    address = "\0" + path if abstract else path
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(3)
            sock.connect(address)
            sock.sendall(payload.encode())
    except OSError as exc:
        return _failure(exc)
    return {"ok": True}


def new_socket(family: str, kind: str = "SOCK_STREAM") -> dict[str, Any]:
    """Create (only create) a socket of *family* (``AF_INET``, ``AF_NETLINK``, ...)."""
    try:
        sock = socket.socket(getattr(socket, family), getattr(socket, kind))
    except OSError as exc:
        return _failure(exc)
    sock.close()
    return {"ok": True}


# System call numbers of the calls that have no wrapper in the C library.
_SYSCALLS = {
    "x86_64": {"io_uring_setup": 425, "bpf": 321, "keyctl": 250},
    "aarch64": {"io_uring_setup": 425, "bpf": 280, "keyctl": 219},
}
_PTRACE_PEEKDATA = 2
_KEYCTL_GET_KEYRING_ID = 0
_KEY_SPEC_SESSION_KEYRING = -3
_CLONE_NEWUSER = 0x10000000


def _errno_of(call: Any) -> dict[str, Any]:
    """Run a ctypes call that returns -1 and sets errno on failure."""
    ctypes.set_errno(0)
    result = call()
    code = ctypes.get_errno()
    if result == -1 and code:
        return {"ok": False, "errno": code, "errno_name": errno_module.errorcode.get(code)}
    return {"ok": True, "result": result}


def _in_child(call: Any) -> dict[str, Any]:
    """Run *call* in a forked child (for calls that would change this process for good)."""
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            outcome = call()
            code = 0 if outcome["ok"] else outcome["errno"]
        except BaseException:
            code = 255
        os.write(write_end, bytes([min(code, 255)]))
        os._exit(0)
    os.close(write_end)
    data = os.read(read_end, 1)
    os.close(read_end)
    os.waitpid(pid, 0)
    code = data[0] if data else 255
    if code == 0:
        return {"ok": True}
    return {"ok": False, "errno": code, "errno_name": errno_module.errorcode.get(code)}


def syscalls() -> dict[str, Any]:
    """Try system calls a plugin has no business making; each result carries its errno."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    libc.ptrace.restype = ctypes.c_long
    numbers = _SYSCALLS.get(platform.machine(), {})
    bogus_pid = 0x3FFFFFFF  # no such process: where the call is allowed it fails with ESRCH
    buffer = ctypes.create_string_buffer(16)

    class IOVec(ctypes.Structure):
        _fields_ = (("base", ctypes.c_void_p), ("len", ctypes.c_size_t))

    local = IOVec(ctypes.cast(buffer, ctypes.c_void_p), 16)
    remote = IOVec(ctypes.c_void_p(0x10000), 16)
    params = ctypes.create_string_buffer(120)  # struct io_uring_params, zeroed
    found: dict[str, Any] = {
        "ptrace": _errno_of(lambda: libc.ptrace(_PTRACE_PEEKDATA, bogus_pid, None, None)),
        "process_vm_readv": _errno_of(lambda: libc.process_vm_readv(
            bogus_pid, ctypes.byref(local), 1, ctypes.byref(remote), 1, 0)),
        "mount": _in_child(lambda: _errno_of(lambda: libc.mount(
            b"none", b"/", b"tmpfs", 0, None))),
        "unshare": _in_child(lambda: _errno_of(lambda: libc.unshare(_CLONE_NEWUSER))),
    }
    if "io_uring_setup" in numbers:
        outcome = _errno_of(lambda: libc.syscall(numbers["io_uring_setup"], 1,
                                                 ctypes.byref(params)))
        if outcome["ok"]:
            os.close(int(outcome["result"]))
        found["io_uring_setup"] = outcome
        found["bpf"] = _errno_of(lambda: libc.syscall(numbers["bpf"], 0, None, 0))
        found["keyctl"] = _errno_of(lambda: libc.syscall(
            numbers["keyctl"], _KEYCTL_GET_KEYRING_ID, _KEY_SPEC_SESSION_KEYRING, 0))
    return found


def become_root() -> dict[str, Any]:
    """Try to take uid 0, gid 0 and the root group."""
    found: dict[str, Any] = {}
    for name, call in (("setuid", lambda: os.setuid(0)), ("setgid", lambda: os.setgid(0)),
                       ("setgroups", lambda: os.setgroups([0]))):
        try:
            call()
        except OSError as exc:
            found[name] = _failure(exc)
        else:
            found[name] = {"ok": True}
    return found


def write_file(path: str, text: str = "planted\n", mode: str = "w") -> dict[str, Any]:
    """Write *text* to *path* (mode ``w`` creates or truncates, ``a`` appends, ``r+``
    overwrites in place)."""
    try:
        with open(path, mode) as handle:
            handle.write(text)
    except OSError as exc:
        return _failure(exc)
    return {"ok": True}


def chmod(path: str, mode: int) -> dict[str, Any]:
    """Change *path*'s mode."""
    try:
        os.chmod(path, mode)
    except OSError as exc:
        return _failure(exc)
    return {"ok": True}


def _in_package(rel: str) -> str:
    return os.path.join(os.path.dirname(os.path.abspath(__file__)), rel)


def plant_symlink(target: str, link: str) -> dict[str, Any]:
    """Plant a symlink *link* (relative to this plugin's installed package) to *target*."""
    path = _in_package(link)
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        os.symlink(target, path)
    except OSError as exc:
        return _failure(exc)
    return {"ok": True, "link": path}


def plant_fifo(rel: str) -> dict[str, Any]:
    """Plant a FIFO at *rel* in this plugin's installed package (a reader would block)."""
    path = _in_package(rel)
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        os.mkfifo(path)
    except OSError as exc:
        return _failure(exc)
    return {"ok": True, "path": path}


def plant_sparse(rel: str, size: int) -> dict[str, Any]:
    """Plant a sparse file of *size* bytes at *rel* in this plugin's installed package."""
    path = _in_package(rel)
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as handle:
            handle.truncate(size)
    except OSError as exc:
        return _failure(exc)
    return {"ok": True, "path": path}


def scratch() -> dict[str, Any]:
    """Write and read back a file in TMPDIR: what a plugin may do under every profile."""
    path = os.path.join(os.environ.get("TMPDIR", "/tmp"), "note.txt")
    with open(path, "w") as handle:
        handle.write("kept")
    with open(path) as handle:
        return {"ok": handle.read() == "kept", "path": path}


def fill_scratch(megabytes: int) -> dict[str, Any]:
    """Write one file of *megabytes* MiB into TMPDIR (past any file size limit)."""
    path = os.path.join(os.environ.get("TMPDIR", "/tmp"), "fill.bin")
    block = bytes(1 << 20)
    written = 0
    try:
        with open(path, "wb") as handle:
            for _ in range(megabytes):
                handle.write(block)
                handle.flush()
                written += 1
    except OSError as exc:
        return _failure(exc, written_mb=written, size=_size(path))
    finally:
        size = _size(path)
        if os.path.exists(path):
            os.unlink(path)
    return {"ok": True, "written_mb": written, "size": size}


def _size(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return -1


def fork_bomb(cap: int = 4096) -> dict[str, Any]:
    """Fork children that sleep until fork fails; they are left running.

    Refused where no process limit (RLIMIT_NPROC) of at most *cap* holds, and never more than
    the limit plus 64 children: the host survives a broken sandbox.
    """
    limit = resource.getrlimit(resource.RLIMIT_NPROC)[0]
    if limit == resource.RLIM_INFINITY or limit > cap:
        return {"ok": False, "refused": f"RLIMIT_NPROC is {limit}: not forking without a limit",
                "errno": None}
    children: list[int] = []
    outcome: dict[str, Any]
    try:
        while len(children) < limit + 64:
            pid = os.fork()
            if pid == 0:  # the child: sleep, never return into the worker's code
                try:
                    time.sleep(600)
                finally:
                    os._exit(0)
            children.append(pid)
    except OSError as exc:
        outcome = _failure(exc)
    else:
        outcome = {"ok": True}
    return {**outcome, "forked": len(children), "limit": limit}


def memory_bomb(step_mb: int = 64, cap_mb: int = 16384, touch: bool = False) -> dict[str, Any]:
    """Allocate *step_mb* MiB at a time until MemoryError or *cap_mb*; *touch* writes every
    page (else the blocks are fresh zero pages: the address space is what runs out).

    Refused where no address-space limit (RLIMIT_AS) holds: not eating the machine's memory.
    """
    limit = resource.getrlimit(resource.RLIMIT_AS)[0]
    if limit == resource.RLIM_INFINITY:
        return {"ok": False, "refused": "no RLIMIT_AS: not allocating without a limit",
                "errno": None}
    hoard: list[object] = []
    try:
        while len(hoard) * step_mb < cap_mb:
            # bytes(n) is calloc'd (untouched); bytearray(n) is zeroed by hand (touched).
            hoard.append(bytearray(step_mb << 20) if touch else bytes(step_mb << 20))
    except MemoryError:
        got = len(hoard) * step_mb
        hoard.clear()
        return {"ok": False, "error": "MemoryError", "allocated_mb": got, "limit": limit}
    got = len(hoard) * step_mb
    hoard.clear()
    return {"ok": True, "allocated_mb": got, "limit": limit}


def spin(seconds: float = 3600.0) -> int:
    """Burn CPU for *seconds*."""
    end = time.monotonic() + seconds
    n = 0
    while time.monotonic() < end:
        n += 1
    return n


def exhaust_fds(cap: int = 1 << 17) -> dict[str, Any]:
    """Open /dev/null until open fails (at most *cap* times); close them all again."""
    opened: list[int] = []
    outcome: dict[str, Any]
    try:
        while len(opened) < cap:
            opened.append(os.open("/dev/null", os.O_RDONLY))
    except OSError as exc:
        outcome = _failure(exc)
    else:
        outcome = {"ok": True}
    count = len(opened)
    for fd in opened:
        os.close(fd)
    return {**outcome, "opened": count,
            "limit": resource.getrlimit(resource.RLIMIT_NOFILE)[0]}


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def flood(megabytes: int, newlines: bool = True) -> int:
    """Write *megabytes* MiB to stdout and as much to stderr (1 KiB lines, or one line)."""
    block = (b"x" * 1023 + b"\n" if newlines else b"x" * 1024) * 1024
    for _ in range(megabytes):
        _write_all(1, block)
        _write_all(2, block)
    _write_all(1, b"\nflood-end\n")
    _write_all(2, b"\nflood-end\n")
    return megabytes


def huge_result(megabytes: int, kind: str = "str") -> object:
    """Return a result of *megabytes* MiB: one string, one bytes object, or a list of small
    strings (``str``, ``bytes``, ``list``)."""
    if kind == "bytes":
        return bytes(megabytes << 20)
    if kind == "list":
        return ["x" * 1024] * (megabytes << 10)
    return "x" * (megabytes << 20)


def send_raw(data_hex: str, padding_mb: int = 0, then_sleep: float = 30.0) -> None:
    """Write raw bytes (hex), then *padding_mb* MiB of zeros, onto the connection to the host;
    then sleep (a well-behaved answer would only blur what the host makes of the bytes)."""
    from ohp_worker import main  # the worker's runtime; its session holds the socket

    session = main._session
    assert session is not None
    _write_all(session.fd, bytes.fromhex(data_hex))
    block = bytes(1 << 20)
    for _ in range(padding_mb):
        _write_all(session.fd, block)
    time.sleep(then_sleep)
