"""A seccomp-bpf filter, installed by a worker (or the program launcher) on itself.

Stdlib only (ctypes). The filter answers with an error, never by killing: a plugin that tries
a forbidden call gets ``EPERM`` (or ``EACCES`` for a socket) and can report it. It is inherited
by every process the worker starts and cannot be lifted.

What it refuses:

- system calls a plugin never needs and that widen the kernel's attack surface or reach other
  processes: ``ptrace``, ``process_vm_readv/writev``, ``mount`` and the new mount API,
  ``umount2``, ``pivot_root``, ``unshare``, ``setns``, ``bpf``, ``perf_event_open``,
  ``userfaultfd``, ``keyctl``, ``add_key``, ``request_key``, ``io_uring_*`` (whose operations
  would bypass this very filter), module loading, ``kexec_load``, ``open_by_handle_at``;
- ``clone`` with a namespace flag (``clone3``, whose flags live in memory a filter cannot read,
  answers ``ENOSYS``: the C library then falls back to ``clone``);
- unless asked to allow them, ``chmod``/``chown`` of every kind (:data:`MODE_CHANGES`);
- with *sockets* ``"unix"``: ``socket()`` of every family but ``AF_UNIX``; with ``"none"``:
  every ``socket()`` (``socketpair`` stays: it cannot reach anything).

x86_64 and aarch64 only; :func:`supported` says whether this machine is one of them.
"""

from __future__ import annotations

import ctypes
import errno
import platform
import struct

_ARCHES = {
    # machine: (AUDIT_ARCH_*, seccomp syscall, {name: number})
    "x86_64": (0xC000003E, 317, {
        "socket": 41, "clone": 56, "ptrace": 101, "pivot_root": 155, "mount": 165,
        "umount2": 166, "init_module": 175, "delete_module": 176, "kexec_load": 246,
        "add_key": 248, "request_key": 249, "keyctl": 250, "unshare": 272,
        "perf_event_open": 298, "name_to_handle_at": 303, "open_by_handle_at": 304,
        "setns": 308, "process_vm_readv": 310, "process_vm_writev": 311, "finit_module": 313,
        "bpf": 321, "userfaultfd": 323, "kexec_file_load": 320,
        "chmod": 90, "fchmod": 91, "chown": 92, "fchown": 93, "lchown": 94, "fchownat": 260,
        "fchmodat": 268}),
    "aarch64": (0xC00000B7, 277, {
        "socket": 198, "clone": 220, "ptrace": 117, "pivot_root": 41, "mount": 40,
        "umount2": 39, "init_module": 105, "delete_module": 106, "kexec_load": 104,
        "add_key": 217, "request_key": 218, "keyctl": 219, "unshare": 97,
        "perf_event_open": 241, "name_to_handle_at": 264, "open_by_handle_at": 265,
        "setns": 268, "process_vm_readv": 270, "process_vm_writev": 271, "finit_module": 273,
        "bpf": 280, "userfaultfd": 282, "kexec_file_load": 294,
        "fchmod": 52, "fchmodat": 53, "fchownat": 54, "fchown": 55}),
}
# The same number on every architecture (the unified table from Linux 5.1 on).
_COMMON = {"io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
           "open_tree": 428, "move_mount": 429, "fsopen": 430, "fsconfig": 431,
           "fsmount": 432, "fspick": 433, "mount_setattr": 442, "fchmodat2": 452}
_CLONE3 = 435
_X32_BIT = 0x40000000
# CLONE_NEWNS, NEWUTS, NEWIPC, NEWUSER, NEWPID, NEWNET, NEWCGROUP, NEWTIME
_CLONE_NAMESPACES = (0x00020000 | 0x04000000 | 0x08000000 | 0x10000000 | 0x20000000
                     | 0x40000000 | 0x02000000 | 0x00000080)
_AF_UNIX = 1

_RET_ALLOW = 0x7FFF0000
_RET_ERRNO = 0x00050000
_LD_W_ABS = 0x20  # BPF_LD | BPF_W | BPF_ABS
_JEQ_K = 0x15  # BPF_JMP | BPF_JEQ | BPF_K
_JGE_K = 0x35  # BPF_JMP | BPF_JGE | BPF_K
_JSET_K = 0x45  # BPF_JMP | BPF_JSET | BPF_K
_RET_K = 0x06  # BPF_RET | BPF_K
_NR, _ARCH, _ARG0 = 0, 4, 16  # offsets in struct seccomp_data (arg0's low half, little endian)

_PR_SET_NO_NEW_PRIVS = 38
_SET_MODE_FILTER = 1
_FLAG_TSYNC = 1

MODE_CHANGES = ("chmod", "fchmod", "fchmodat", "fchmodat2", "chown", "fchown", "lchown",
                "fchownat")
"""Refused only when asked (the strict profile): a process owning files it shares with
others (a venv's files are hardlinks of uv's cache) must not change their modes, which no
Landlock right governs."""
DENIED = tuple(sorted({*_ARCHES["x86_64"][2]} - {"socket", "clone", *MODE_CHANGES}
                      | set(_COMMON) - set(MODE_CHANGES)))
"""The system calls refused outright (clone and socket are refused by their arguments)."""


def supported() -> bool:
    """Whether this machine's architecture is one the filter knows."""
    return platform.machine() in _ARCHES


def _insn(code: int, jt: int, jf: int, k: int) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)


def program(sockets: str = "unix", machine: str | None = None, *,
            mode_changes: bool = True) -> bytes:
    """The BPF program, as the bytes of its ``struct sock_filter`` array."""
    arch, _, numbers = _ARCHES[machine or platform.machine()]
    deny_eperm = _RET_ERRNO | errno.EPERM
    numbers = {**numbers, **_COMMON}
    names = DENIED if mode_changes else (*DENIED, *MODE_CHANGES)
    denied = sorted(numbers[name] for name in names if name in numbers)
    code: list[tuple[int, int, int, int]] = []
    # A foreign architecture (a 32-bit syscall entry) is refused as a whole.
    code += [(_LD_W_ABS, 0, 0, _ARCH), (_JEQ_K, 1, 0, arch), (_RET_K, 0, 0, deny_eperm),
             (_LD_W_ABS, 0, 0, _NR)]
    if machine == "x86_64" or (machine is None and platform.machine() == "x86_64"):
        code += [(_JGE_K, 0, 1, _X32_BIT), (_RET_K, 0, 0, deny_eperm)]
    for number in denied:
        code += [(_JEQ_K, 0, 1, number), (_RET_K, 0, 0, deny_eperm)]
    code += [(_JEQ_K, 0, 1, _CLONE3), (_RET_K, 0, 0, _RET_ERRNO | errno.ENOSYS)]
    # clone(flags, ...): refused with any namespace flag.
    code += [(_JEQ_K, 0, 4, numbers["clone"]), (_LD_W_ABS, 0, 0, _ARG0),
             (_JSET_K, 0, 1, _CLONE_NAMESPACES), (_RET_K, 0, 0, deny_eperm),
             (_RET_K, 0, 0, _RET_ALLOW)]
    if sockets != "any":
        code += [(_JEQ_K, 0, 4 if sockets == "unix" else 1, numbers["socket"])]
        if sockets == "unix":
            code += [(_LD_W_ABS, 0, 0, _ARG0), (_JEQ_K, 0, 1, _AF_UNIX),
                     (_RET_K, 0, 0, _RET_ALLOW)]
        code += [(_RET_K, 0, 0, _RET_ERRNO | errno.EACCES)]
    code += [(_RET_K, 0, 0, _RET_ALLOW)]
    return b"".join(_insn(*insn) for insn in code)


def install(sockets: str = "unix", *, mode_changes: bool = True) -> None:
    """Install the filter on every thread of this process, for good. *sockets*: ``"any"``,
    ``"unix"`` (only ``AF_UNIX`` sockets) or ``"none"``; without *mode_changes*, chmod and
    chown of every kind fail with ``EPERM``."""
    if sockets not in ("any", "unix", "none"):
        raise ValueError(f"sockets must be 'any', 'unix' or 'none', not {sockets!r}")
    if not supported():
        raise OSError(errno.ENOSYS, f"no seccomp filter for {platform.machine()}")
    filters = program(sockets, mode_changes=mode_changes)
    buffer = ctypes.create_string_buffer(filters, len(filters))

    class _Prog(ctypes.Structure):
        _fields_ = (("len", ctypes.c_ushort), ("filter", ctypes.c_void_p))

    prog = _Prog(len(filters) // 8, ctypes.cast(buffer, ctypes.c_void_p))
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
    seccomp_nr = _ARCHES[platform.machine()][1]
    if libc.syscall(seccomp_nr, _SET_MODE_FILTER, _FLAG_TSYNC, ctypes.byref(prog)) != 0:
        raise OSError(ctypes.get_errno(), "seccomp(SECCOMP_SET_MODE_FILTER) failed")
