"""Variable expansion for content values, done when a host uses a value, never at load time.

The model keeps ``${CLAUDE_PLUGIN_ROOT}``, ``${PLUGIN_ROOT}``, ``${VAR:-default}`` as written, so a
loaded plugin can be cached, compared and moved; :func:`expand_variables` resolves them for use,
with the same rules as the OpenHands SDK: only the braced form, one pass (a replacement is never
rescanned), and a default applied only when asked.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from isolator.content._model import Plugin

_BRACED = re.compile(r"\$\{([a-zA-Z_][a-zA-Z0-9_]*)(?::-([^}]*))?\}")


def expand_variables(
    value: Any,
    variables: Mapping[str, str] | None = None,
    *,
    secrets: Callable[[str], str | None] | None = None,
    env: Mapping[str, str] | None = None,
    apply_defaults: bool = True,
) -> Any:
    """Expand ``${NAME}`` and ``${NAME:-default}`` in a string, or in every string of a list or
    dict (keys included), and return the result.

    A name is looked up in ``variables``, then ``secrets``, then ``env`` (only when given: the
    host's environment is never read implicitly), then its default when ``apply_defaults``;
    a name found nowhere stays as written.
    """
    lookup = variables or {}

    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in lookup:
            return lookup[name]
        if secrets is not None:
            secret = secrets(name)
            if secret is not None:
                return secret
        if env is not None and name in env:
            return env[name]
        if apply_defaults and default is not None:
            return default
        return match.group(0)

    def walk(item: Any) -> Any:
        if isinstance(item, str):
            return _BRACED.sub(replace, item) if "${" in item else item
        if isinstance(item, dict):
            return {walk(k) if isinstance(k, str) else k: walk(v) for k, v in item.items()}
        if isinstance(item, (list, tuple)):
            return [walk(v) for v in item]
        return item

    return walk(value)


def plugin_variables(plugin: Plugin, data_dir: str | None = None) -> dict[str, str]:
    """The variables a plugin's hooks and MCP servers may use: its root under every name the
    formats give it, and its data directory when the host has one."""
    result = {"CLAUDE_PLUGIN_ROOT": plugin.root, "PLUGIN_ROOT": plugin.root}
    if data_dir is not None:
        result["CLAUDE_PLUGIN_DATA"] = data_dir
        result["PLUGIN_DATA"] = data_dir
    return result
