"""How a plugin's worker tool is named for the model: ``PLUGIN__TOOL``, made safe.

Model providers take function names matching ``^[a-zA-Z0-9_-]{1,64}$``, and the SDK's agent
recovers a garbled tool name by its leading identifier (``[a-zA-Z_][a-zA-Z0-9_]*``). So every
character but ASCII letters, digits and ``_`` becomes ``_`` (``echo-agent`` -> ``echo_agent``),
a name that would start with a digit gets a leading ``_``, and a name longer than 64 characters
is cut to 55 and ends with ``_`` and 8 hex digits of a hash of the plugin and tool names. The
name depends on nothing else (not on the bridge, the store or the process), so a conversation
saved with it resolves it again in another process.
"""

from __future__ import annotations

import hashlib
import re

MAX_LENGTH = 64
_UNSAFE = re.compile(r"[^A-Za-z0-9_]")
VALID = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


def sdk_tool_name(plugin: str, tool: str) -> str:
    """The SDK tool name of *tool* of *plugin* (``shout``, ``shout`` -> ``shout__shout``)."""
    name = f"{_UNSAFE.sub('_', plugin)}__{_UNSAFE.sub('_', tool)}"
    if not name[0].isalpha() and name[0] != "_":
        name = f"_{name}"
    if len(name) > MAX_LENGTH:
        digest = hashlib.sha256(f"{plugin}\0{tool}".encode()).hexdigest()[:8]
        name = f"{name[:MAX_LENGTH - 9]}_{digest}"
    return name
