"""The launcher of every sandboxed process (plugin workers, plugin programs, build code) and the
in-process layers (``confine``: Landlock, seccomp) that each applies to itself.

A public internal API: ``hostbridge`` plans plugin processes on it, the store runs build code
with it. Not for plugin hosts.
"""

from isolator._errors import SandboxError
from isolator.sandbox import confine
from isolator.sandbox._launcher import (
    HIDDEN,
    MOUNT_PROC,
    SYSTEM_READ,
    SYSTEM_WRITE,
    UNPRIVILEGED_GID,
    UNPRIVILEGED_UID,
    UNSHARE,
    Drop,
    blocked_ancestor,
    die_with_parent_prefix,
    drop_privileges,
    launcher_info,
    overlay_script,
    reachable_system_python,
    setpriv_switch,
    unreachable,
)

__all__ = ["HIDDEN", "MOUNT_PROC", "SYSTEM_READ", "SYSTEM_WRITE", "UNPRIVILEGED_GID",
           "UNPRIVILEGED_UID", "UNSHARE", "Drop", "SandboxError", "blocked_ancestor", "confine",
           "die_with_parent_prefix", "drop_privileges", "launcher_info", "overlay_script",
           "reachable_system_python", "setpriv_switch", "unreachable"]
