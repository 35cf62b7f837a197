"""Landlock (Linux 5.13+), applied by a worker to itself before any plugin code runs.

Stdlib only (ctypes). After :func:`restrict`, the process and everything it starts can read
only beneath the given read paths and write only beneath the given write paths, connect only
to the given TCP ports, and signal no process outside; the rules cannot be lifted. Paths that
do not exist are skipped.
"""

from __future__ import annotations

import ctypes
import os

_CREATE_RULESET, _ADD_RULE, _RESTRICT_SELF = 444, 445, 446  # the same on x86_64 and arm64
_VERSION = 1
_PATH_BENEATH, _NET_PORT = 1, 2
_NET_BIND_TCP, _NET_CONNECT_TCP = 1 << 0, 1 << 1
_SCOPE_ABSTRACT_UNIX, _SCOPE_SIGNAL = 1 << 0, 1 << 1
_PR_SET_NO_NEW_PRIVS = 38

EXECUTE, WRITE_FILE, READ_FILE, READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
_ABI1_ALL = (1 << 13) - 1
_REFER, _TRUNCATE, _IOCTL_DEV = 1 << 13, 1 << 14, 1 << 15
_FILE_RIGHTS = EXECUTE | WRITE_FILE | READ_FILE | _TRUNCATE | _IOCTL_DEV
READ = EXECUTE | READ_FILE | READ_DIR


class _PathBeneath(ctypes.Structure):
    _pack_ = 1
    _fields_ = (("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32))


def _libc() -> ctypes.CDLL:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    return libc


def abi_version() -> int:
    """The kernel's Landlock ABI version; 0 when Landlock is unavailable."""
    try:
        version = _libc().syscall(_CREATE_RULESET, None, ctypes.c_size_t(0),
                                  ctypes.c_uint32(_VERSION))
    except (OSError, AttributeError):
        return 0
    return max(int(version), 0)


def _handled(abi: int) -> int:
    rights = _ABI1_ALL
    if abi >= 2:
        rights |= _REFER
    if abi >= 3:
        rights |= _TRUNCATE
    if abi >= 5:
        rights |= _IOCTL_DEV
    return rights


def restrict(read: list[str] | None, write: list[str] | None, *,
             read_except: str | None = None, hidden: list[str] | None = None,
             connect_ports: list[int] | None = None, scope: bool = False) -> dict[str, bool]:
    """Confine this process and everything it starts, for good.

    With *read*/*write* (lists, possibly empty): read only beneath *read*, write only beneath
    *write*. With *read_except* besides: read also anywhere but beneath that directory (see
    :func:`everywhere_but`), where *read* may open parts of it again. *hidden* paths beneath
    a *read* path are cut out of it (``/proc/self/mountinfo``). With *connect_ports*
    (ABI 4+): TCP connections only to those ports, no TCP bind. With *scope* (ABI 6+): no
    signals to, and no abstract unix sockets of, processes outside. Returns which of
    ``filesystem``, ``network``, ``scope`` are in force."""
    libc = _libc()
    abi = abi_version()
    if abi < 1:
        raise OSError("Landlock is not available in this kernel")
    fs = _handled(abi) if read is not None or write is not None else 0
    if read_except is not None:
        fs = _handled(abi)
        read = [*(read or []), *everywhere_but(read_except)]
    if hidden and read:
        read = hide(read, hidden)
    net = _NET_BIND_TCP | _NET_CONNECT_TCP if connect_ports is not None and abi >= 4 else 0
    scoped = _SCOPE_ABSTRACT_UNIX | _SCOPE_SIGNAL if scope and abi >= 6 else 0
    applied = {"filesystem": bool(fs), "network": bool(net), "scope": bool(scoped)}
    if not (fs or net or scoped):
        return applied
    size = 24 if scoped else 16 if net else 8
    attr = (ctypes.c_uint64 * 3)(fs, net, scoped)
    ruleset = libc.syscall(_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size),
                           ctypes.c_uint32(0))
    if ruleset < 0:
        raise OSError(ctypes.get_errno(), "landlock_create_ruleset failed")
    try:
        for paths, access in ((read or [], READ), (write or [], fs)):
            for path in paths:
                _add(libc, int(ruleset), path, access & fs)
        for port in connect_ports or [] if net else []:
            rule = (ctypes.c_uint64 * 2)(_NET_CONNECT_TCP, int(port))
            if libc.syscall(_ADD_RULE, int(ruleset), _NET_PORT, ctypes.byref(rule),
                            ctypes.c_uint32(0)) != 0:
                raise OSError(ctypes.get_errno(), f"landlock_add_rule failed for port {port}")
        if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
        if libc.syscall(_RESTRICT_SELF, int(ruleset), ctypes.c_uint32(0)) != 0:
            raise OSError(ctypes.get_errno(), "landlock_restrict_self failed")
    finally:
        os.close(int(ruleset))
    return applied


def everywhere_but(protected: str | list[str], base: str = "/") -> list[str]:
    """Every path beneath *base* beside the *protected* paths and beside each of their
    ancestors: rights on all of them leave the protected paths (and the entries of their
    ancestors themselves) out. Symlinks are left out: their targets are covered where they
    really are, and one pointing into a protected path must not open it."""
    wanted = [protected] if isinstance(protected, str) else list(protected)
    base = os.path.normpath(base)
    kept_out: set[str] = set()
    for path in wanted:
        current = os.path.normpath(path)
        while current != base and current.startswith(base.rstrip("/") + "/"):
            kept_out.add(current)
            current = os.path.dirname(current)
    # The directories to list: *base* and every ancestor of a protected path beneath it.
    scanned = sorted({os.path.dirname(path) for path in kept_out} - (kept_out & set(
        os.path.normpath(p) for p in wanted)))
    paths = []
    for directory in scanned:
        try:
            with os.scandir(directory) as entries:
                paths += [e.path for e in entries
                          if e.path not in kept_out and not e.is_symlink()]
        except OSError:
            pass  # a directory this process cannot list: nothing beside it is granted
    return paths


def hide(paths: list[str], hidden: list[str]) -> list[str]:
    """*paths* with every *hidden* path beneath one of them cut out (the path replaced by
    :func:`everywhere_but` beneath it)."""
    result = []
    for path in paths:
        inner = [h for h in hidden if h.startswith(path.rstrip("/") + "/")]
        result += everywhere_but(inner, path) if inner else [path]
    return result


def _add(libc: ctypes.CDLL, ruleset: int, path: str, access: int) -> None:
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except OSError:
        return  # a path this machine does not have
    try:
        if not os.path.isdir(path):
            access &= _FILE_RIGHTS
        rule = _PathBeneath(access, fd)
        if libc.syscall(_ADD_RULE, ruleset, _PATH_BENEATH, ctypes.byref(rule),
                        ctypes.c_uint32(0)) != 0:
            raise OSError(ctypes.get_errno(), f"landlock_add_rule failed for {path}")
    finally:
        os.close(fd)
