"""``attach``: a bridge's plugins joined to an OpenHands SDK agent, as the SDK's own
``load_plugins`` joins plugin directories (skills by name, MCP servers by key, hooks
concatenated), plus each plugin's worker tools as SDK tools."""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any

from hostbridge._errors import WorkerStartError
from hostbridge.launch._command import ProgramCommand, program_command
from hostbridge.openhands import _sdk
from hostbridge.openhands._names import VALID, sdk_tool_name
from isolator import IsolatorError, PluginNotFoundError, PluginSource

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from hostbridge.supervision._bridge import HostBridge
    from isolator import InstalledPlugin

__all__ = ["AttachError", "attach"]

log = logging.getLogger("hostbridge.openhands")

SDK_HOOK_VARIABLES = ("OPENHANDS_PROJECT_DIR", "OPENHANDS_SESSION_ID", "OPENHANDS_EVENT_TYPE",
                      "OPENHANDS_TOOL_NAME")
"""What the SDK tells a hook command in its environment; handed on through the sandbox."""

DEFAULT_TIMEOUT = 300.0
"""Seconds a worker tool call may take (the SDK's own MCP tools allow 300)."""


class AttachError(IsolatorError):
    """A plugin could not be attached; ``plugin`` names it. Nothing was attached."""

    def __init__(self, plugin: str, reason: str) -> None:
        super().__init__(" ".join(f"plugin {plugin!r}: {reason}".split())[:2000])
        self.plugin = plugin
        self.reason = reason


def attach(
    bridge: HostBridge,
    plugins: Iterable[str | PluginSource],
    agent: Any,
    *,
    timeout: float | None = DEFAULT_TIMEOUT,
    max_skills: int = 100,
    get_secret: Callable[[str], str | None] | None = None,
) -> tuple[Any, Any]:
    """Join *plugins* of ``bridge.store`` to the SDK *agent*; return ``(agent, hook_config)``.

    *plugins* are installed plugin names, or sources to install first (a :class:`PluginSource`,
    or a string with ``:`` or a path in it: ``pypi:NAME``, ``github:OWNER/REPO``, ``./dir``,
    ``x.whl``); an installed name is used as installed. Each plugin's content directory is
    loaded by the SDK's own ``Plugin.load`` and merged with the SDK's own code, in the order
    given, exactly as ``load_plugins`` does: skills (with command skills) override by name,
    MCP servers by key, hooks are concatenated into the returned ``HookConfig`` (``None``
    without hooks); *max_skills* and *get_secret* are ``load_plugins``'. Each plugin's worker
    tools become SDK tools named ``PLUGIN__TOOL`` (:func:`sdk_tool_name`), run through
    *bridge* with a deadline of *timeout* seconds per call.

    Returns a new agent; *agent* is left as it was. Any failure (an unknown plugin, content
    the SDK cannot load, tools that cannot be listed, a tool name that is taken) raises
    :class:`AttachError` naming the plugin, before anything is registered with the SDK.
    Plugins a source installed stay installed.
    """
    installed = [_resolve(bridge, item) for item in plugins]
    names = [plugin.name for plugin in installed]
    for name in names:
        if names.count(name) > 1:
            raise AttachError(name, "listed twice (attach each plugin once)")

    # Every hook command and stdio MCP server made for these plugins (scratch directories,
    # environment files, generation leases): released when the bridge closes, or now when
    # attach fails.
    commands: list[ProgramCommand] = []
    try:
        return _attach(bridge, installed, agent, commands, timeout=timeout,
                       max_skills=max_skills, get_secret=get_secret)
    except BaseException:
        for command in commands:
            command.cleanup()
        raise


def _attach(bridge: HostBridge, installed: list[InstalledPlugin], agent: Any,
            commands: list[ProgramCommand], *, timeout: float | None, max_skills: int,
            get_secret: Callable[[str], str | None] | None) -> tuple[Any, Any]:
    # Content: the SDK loads each plugin directory; its own methods merge them. Each plugin's
    # hook commands and stdio MCP servers are rewritten to start through the sandbox launcher
    # (program_command) before they are merged.
    context = agent.agent_context
    mcp_config = agent.mcp_config
    if mcp_config and get_secret:
        mcp_config = _sdk.expand_mcp_servers(mcp_config, get_secret)
    hook_configs: list[Any] = []
    for plugin in installed:
        sdk_plugin = _load(plugin)
        servers = sdk_plugin.mcp_config
        if servers and get_secret:
            servers = _sdk.expand_mcp_servers(servers, get_secret)
        sandboxed = sdk_plugin.model_copy(update={
            "mcp_config": _sandbox_servers(bridge, plugin, servers, commands),
            "hooks": _sandbox_hooks(bridge, plugin, _hooks_of(bridge, plugin, sdk_plugin),
                                    commands)})
        try:
            context = sandboxed.add_skills_to(context, max_skills=max_skills)
            mcp_config = sandboxed.add_mcp_config_to(mcp_config)
        except Exception as exc:
            raise AttachError(plugin.name, f"could not be merged: {exc}") from exc
        if sandboxed.hooks and not sandboxed.hooks.is_empty():
            hook_configs.append(sandboxed.hooks)
    hooks = _sdk.HookConfig.merge(hook_configs)

    # Tools: listed by each plugin's worker, checked against the names already taken.
    taken = {spec.name for spec in agent.tools}
    listed: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {}
    specs: list[tuple[str, str, str]] = []
    for plugin in installed:
        for remote in _tools(bridge, plugin):
            name = sdk_tool_name(plugin.name, remote.name)
            problem = _name_problem(name, taken)
            if problem:
                raise AttachError(plugin.name, f"its tool {remote.name!r} cannot be added to "
                                  f"the agent as {name!r}: {problem}")
            taken.add(name)
            listed[(plugin.name, remote.name)] = (remote.description,
                                                  dict(remote.input_schema))
            specs.append((name, plugin.name, remote.name))

    # Commit: from here on nothing fails for a reason of the plugins'.
    token = _sdk.bind(bridge, listed, [command.cleanup for command in commands])
    tool_specs = []
    for name, plugin_name, tool in specs:
        if name not in _sdk.list_registered_tools():
            _sdk.register_tool(name, _sdk.HostBridgeTool)
        tool_specs.append(_sdk.ToolSpec(name=name, params={
            "bridge": token, "plugin": plugin_name, "tool": tool, "timeout": timeout}))
    updated = agent.model_copy(update={
        "agent_context": context,
        "mcp_config": mcp_config,
        "tools": [*agent.tools, *tool_specs],
    })
    return updated, hooks


def _looks_like_source(text: str) -> bool:
    return ":" in text or os.sep in text or text.startswith(".") or \
        text.endswith((".whl", ".tar.gz", ".zip"))


def _resolve(bridge: HostBridge, item: str | PluginSource) -> InstalledPlugin:
    """The installed plugin *item* names, installing a source first."""
    store = bridge.store
    if isinstance(item, str) and not _looks_like_source(item):
        try:
            return store.get(item)
        except PluginNotFoundError as exc:
            raise AttachError(item, f"not installed in the store at {store.root}; give a "
                              f"source (pypi:{item}, a path, a git URL) to install it") from exc
        except IsolatorError as exc:
            raise AttachError(item, str(exc)) from exc
    label = item if isinstance(item, str) else item.source
    try:
        return store.install(item)
    except IsolatorError as exc:
        raise AttachError(label, f"could not be installed: {exc}") from exc


def _load(plugin: InstalledPlugin) -> Any:
    """The SDK's ``Plugin`` of *plugin*'s content directory, named as the store names it."""
    try:
        loaded = _sdk.SdkPlugin.load(plugin.content_dir)
    except Exception as exc:
        raise AttachError(plugin.name, f"the SDK could not load {plugin.content_dir}: "
                          f"{type(exc).__name__}: {exc}") from exc
    if loaded.name != plugin.name:
        # A package's content directory is its module (openhands_plugin_x), which the SDK
        # takes for the name when there is no manifest; the plugin's name is the store's.
        manifest = loaded.manifest.model_copy(update={"name": plugin.name})
        loaded = loaded.model_copy(update={"manifest": manifest})
    return loaded


def _hooks_of(bridge: HostBridge, plugin: InstalledPlugin, sdk_plugin: Any) -> Any:
    """The plugin's hooks: the SDK's, or where the SDK drops a hooks file that isolator reads
    (a list-style ``hooks.json``, an unknown event or one bad handler beside good ones: see
    docs/content.md, the differences with the SDK), isolator's, as an SDK ``HookConfig`` of the
    SDK's events. A handler the SDK's model refuses is left out, with a warning."""
    if sdk_plugin.hooks is not None and not sdk_plugin.hooks.is_empty():
        return sdk_plugin.hooks
    try:
        ours = bridge.store.load(plugin.name).hooks or {}
    except IsolatorError as exc:
        raise AttachError(plugin.name, f"its hooks could not be read: {exc}") from exc
    update: dict[str, list[Any]] = {}
    for event in sorted(_sdk.HOOK_EVENT_FIELDS):
        matchers = []
        for matcher in ours.get(event, ()):
            handlers = []
            for handler in matcher.hooks:
                data = {key: value for key, value in handler.to_dict().items()
                        if key != "extra" and value is not None}
                try:
                    handlers.append(_sdk.HookDefinition.model_validate(data))
                except Exception as exc:  # the SDK's model refuses it: it would not run
                    log.warning("plugin %s: %s hook %r left out: %s", plugin.name, event,
                                handler.command or handler.type, exc)
            if handlers:
                matchers.append(_sdk.HookMatcherModel(matcher=matcher.matcher,
                                                      hooks=handlers))
        if matchers:
            update[event] = matchers
    return _sdk.HookConfig(**update) if update else None


def _tools(bridge: HostBridge, plugin: InstalledPlugin) -> list[Any]:
    try:
        if not bridge.store.entry_points(plugin.name)["openhands.tools"]:
            return []  # no tools: no worker started
        return bridge.tools(plugin.name)
    except IsolatorError as exc:
        raise AttachError(plugin.name, f"its tools could not be listed: {exc}") from exc


def _name_problem(name: str, taken: set[str]) -> str | None:
    if not VALID.match(name):
        return "not a valid tool name (^[A-Za-z_][A-Za-z0-9_]{0,63}$)"
    if name in taken:
        return "the agent already has a tool of that name"
    if _sdk.builtin_tool_class(name) is not None:
        return "a built-in tool of the SDK has that name"
    if name in _sdk.list_registered_tools():
        owner = _sdk.registered_tool_class(name)
        if owner is not _sdk.HostBridgeTool:
            owner_name = "a client tool" if owner is None else owner.__name__
            return f"the SDK's tool registry has it for {owner_name}"
    return None


_ROOT_PLACEHOLDERS = ("${CLAUDE_PLUGIN_ROOT}", "${OH_PLUGIN_ROOT}")


def _command(bridge: HostBridge, plugin: InstalledPlugin, argv: list[str],
             commands: list[ProgramCommand], *, env: dict[str, str] | None = None,
             what: str) -> ProgramCommand:
    try:
        command = program_command(bridge.store, plugin.name, argv, env=env)
    except (IsolatorError, OSError) as exc:
        reason = exc.reason if isinstance(exc, WorkerStartError) else str(exc)
        raise AttachError(plugin.name, f"its {what} cannot run sandboxed: {reason}") from exc
    commands.append(command)
    return command


def _sandbox_hooks(bridge: HostBridge, plugin: InstalledPlugin, hooks: Any,
                   commands: list[ProgramCommand]) -> Any:
    """*hooks* with every command hook run as ``sh -c COMMAND`` through the launcher (the SDK
    runs the command with a shell, its own environment and the event's JSON on stdin)."""
    if hooks is None or hooks.is_empty():
        return hooks
    update: dict[str, Any] = {}
    for event in _sdk.HOOK_EVENT_FIELDS:
        matchers = []
        for matcher in getattr(hooks, event):
            definitions = []
            for hook in matcher.hooks:
                if hook.command and str(getattr(hook.type, "value", hook.type)) == "command":
                    command = _command(bridge, plugin, ["sh", "-c", hook.command], commands,
                                       what=f"hook {hook.command!r}")
                    definitions.append(hook.model_copy(update={
                        "command": command.shell_passing(SDK_HOOK_VARIABLES)}))
                else:
                    definitions.append(hook)
            matchers.append(matcher.model_copy(update={"hooks": definitions}))
        update[event] = matchers
    return hooks.model_copy(update=update)


def _sandbox_servers(bridge: HostBridge, plugin: InstalledPlugin, servers: dict[str, Any],
                     commands: list[ProgramCommand]) -> dict[str, Any]:
    """*servers* with every stdio server started through the launcher; its ``env`` goes to the
    program alone (``program_command``), its ``cwd`` is the plugin's as for every program
    (``${CLAUDE_PLUGIN_ROOT}`` in the command and arguments is the content directory). URL
    servers stay as they are."""
    content = str(plugin.content_dir)

    def rooted(text: str) -> str:
        for placeholder in _ROOT_PLACEHOLDERS:
            text = text.replace(placeholder, content)
        return text

    result = {}
    for key, server in servers.items():
        if not server.command:
            result[key] = server
            continue
        env = {name: value.get_secret_value() if hasattr(value, "get_secret_value")
               else str(value) for name, value in (server.env or {}).items()}
        argv = [rooted(server.command), *(rooted(str(arg)) for arg in server.args or [])]
        command = _command(bridge, plugin, argv, commands, env=env, what=f"MCP server {key!r}")
        result[key] = server.model_copy(update={
            "command": command.argv[0], "args": command.argv[1:], "env": {}, "cwd": None})
    return result
