"""The in-process layers of the sandbox: what a process applies to itself before running
anything of a plugin (Landlock, then the seccomp filter). Stdlib only.

The worker calls :func:`apply` first thing; a plugin program (hook command, MCP server) is
started through :func:`exec_main`, which applies the same layers and then ``execve``s the
program: both are inherited and cannot be lifted.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Any


def apply(config: dict[str, Any]) -> dict[str, Any]:
    """Apply the ``landlock`` and ``seccomp`` entries of *config*; returns what is in force."""
    applied: dict[str, Any] = {}
    rules = config.get("landlock")
    if rules:
        from .landlock import restrict  # noqa: PLC0415 - ctypes, only when asked

        applied["landlock"] = restrict(rules.get("read"), rules.get("write"),
                                       read_except=rules.get("read_except"),
                                       hidden=rules.get("hidden"),
                                       connect_ports=rules.get("connect_ports"),
                                       scope=bool(rules.get("scope")))
    sockets = config.get("seccomp")
    if sockets:
        from .seccomp import install  # noqa: PLC0415

        mode_changes = not config.get("no_mode_changes")
        install(sockets, mode_changes=mode_changes)
        applied["seccomp"] = sockets
        applied["mode_changes"] = mode_changes
    return applied


def exec_main(config_text: str, argv: list[str]) -> None:
    """Apply the layers, then replace this process with *argv* (searched on ``PATH``).

    The program's own variables (a plugin's config chose them) are read from the descriptor
    ``env_fd``, or the file ``env_file`` (a JSON object; in a directory only the plugin's uid
    may enter), only now, after the sandbox is complete, and given to the program alone."""
    config = json.loads(config_text)
    try:
        apply(config)
    except OSError as exc:
        sys.stderr.write(f"ohp sandbox: cannot confine the program: {exc}\n")
        os._exit(126)
    env = dict(os.environ)
    env_fd = config.get("env_fd")
    if env_fd is not None:
        chunks = []
        while chunk := os.read(int(env_fd), 1 << 16):
            chunks.append(chunk)
        os.close(int(env_fd))
        env.update(json.loads(b"".join(chunks).decode("utf-8")))
    env_file = config.get("env_file")
    if env_file is not None:
        try:
            with open(env_file, encoding="utf-8") as stream:
                env.update(json.load(stream))
        except (OSError, ValueError) as exc:
            sys.stderr.write(f"ohp sandbox: cannot read the program's environment: {exc}\n")
            os._exit(126)
    try:
        os.execvpe(argv[0], argv, env)
    except OSError as exc:
        found = "/" in argv[0] or any(
            os.access(os.path.join(d, argv[0]), os.X_OK)
            for d in env.get("PATH", "").split(os.pathsep) if d)
        reason = exc.strerror if found else "command not found on PATH"
        sys.stderr.write(f"ohp sandbox: cannot run {argv[0]}: {reason}\n")
        os._exit(126 if found and not isinstance(exc, FileNotFoundError) else 127)
