"""The content loader: a plugin directory, read as data, into the model of ``_model``.

It reads the OpenHands-SDK/Claude-Code layout and the Agent Plugins layout as
``openhands-sdk==1.58.0``'s ``Plugin.load`` does (the reference, see docs/content.md) and is a
strict superset of it: whatever the SDK loads we load identically; where the SDK drops a whole
file for one bad field, or ignores a manifest's component paths, we load what we can and say so
in a diagnostic. Nothing in the plugin is imported or run, and nothing outside its root is read.
"""

from __future__ import annotations

import os
from typing import Any

from isolator._errors import PluginLoadError
from isolator.content._agent_plugins import EXTENSION_DIR, AgentPluginsReader
from isolator.content._commands import CommandsReader
from isolator.content._context import LoadContext
from isolator.content._fsread import LoadLimits
from isolator.content._hooks import HooksReader
from isolator.content._manifest import ManifestReader
from isolator.content._mcp import McpReader
from isolator.content._model import Plugin
from isolator.content._skills import SkillsReader

__all__ = ["load_plugin"]


def load_plugin(path: str | os.PathLike[str], *, name: str | None = None,
                limits: LoadLimits | None = None) -> Plugin:
    """Load the plugin directory at ``path`` without importing or running anything in it.

    *name* stands for the directory's own name wherever the loader would use it: a plugin
    without a manifest is named after its directory, as the SDK names it. The store passes the
    installed plugin's name (a package's entry point name), so the same content loads the
    same from a git checkout, a copy in the store and a venv's site-packages.

    Raises :class:`PluginLoadError` when the directory is missing or its manifest is unusable;
    every other problem skips the file or field concerned and is listed in
    ``Plugin.diagnostics``.
    """
    return _Loader(path, limits or LoadLimits(), name).load()


class _Loader:
    """Composes the component readers over one :class:`LoadContext`, in the SDK's order."""

    def __init__(self, path: str | os.PathLike[str], limits: LoadLimits,
                 name: str | None = None) -> None:
        given = os.fspath(path)
        try:
            real = os.path.realpath(given, strict=False)
        except (OSError, ValueError) as exc:
            raise PluginLoadError(given, f"cannot be resolved: {exc}") from None
        if not os.path.exists(real):
            raise PluginLoadError(given, "no such plugin directory")
        if not os.path.isdir(real):
            raise PluginLoadError(given, "is not a directory (expected a plugin directory)")
        self.ctx = LoadContext(real, limits, name if name else os.path.basename(real))

    def load(self) -> Plugin:
        ctx = self.ctx
        agent_plugins = AgentPluginsReader(ctx) if ManifestReader(ctx).is_agent_plugins() \
            else None
        component_paths: dict[str, Any] = {}
        if agent_plugins is not None:
            manifest = agent_plugins.manifest()
            ext = EXTENSION_DIR
        else:
            manifest, component_paths = ManifestReader(ctx).load()
            ext = ""
        skills = SkillsReader(ctx).load(component_paths.get("skills"))
        hooks = HooksReader(ctx).load(f"{ext}/hooks/hooks.json" if ext else "hooks/hooks.json",
                                      component_paths.get("hooks"))
        if agent_plugins is not None:
            mcp = agent_plugins.mcp()
        else:
            mcp = McpReader(ctx).load(component_paths.get("mcpServers"))
        commands_and_agents = CommandsReader(ctx)
        agents = commands_and_agents.agents(f"{ext}/agents" if ext else "agents",
                                            component_paths.get("agents"))
        commands = commands_and_agents.commands(f"{ext}/commands" if ext else "commands",
                                                component_paths.get("commands"))
        return Plugin(
            root=ctx.fs.root,
            manifest=manifest,
            skills=tuple(skills),
            commands=tuple(commands),
            agents=tuple(agents),
            hooks=hooks,
            mcp_servers=mcp,
            diagnostics=tuple(ctx.diagnostics),
        )
