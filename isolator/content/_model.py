"""The content model: what a plugin directory holds, as plain data.

Every class is a frozen dataclass with a ``to_dict()`` that gives JSON-ready data. Variables such
as ``${CLAUDE_PLUGIN_ROOT}`` stay raw here; :func:`isolator.expand_variables` expands them when a
host uses a value. Paths (``source``, ``root``) are absolute POSIX strings under the plugin root.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

from isolator import content as _registry
from isolator._errors import IsolatorError

if TYPE_CHECKING:
    import os
    from collections.abc import Callable
    from pathlib import Path

JSON = Any  # a value made of dict, list, str, int, float, bool and None

SourceLike = Any
"""A source string or an :class:`isolator.PluginSource` (typed loosely here: the content model
imports nothing of the sources or the store, which build on it)."""

PluginFormatName = Literal["claude-code", "agent-plugins"]
AgentLevel = Literal["project", "user", "builtin", "plugin", "programmatic"]
"""Where an agent definition was discovered, as the SDK's ``AgentDefinitionLevel`` names it."""


@dataclass(frozen=True)
class Diagnostic:
    """A file or field the loader skipped, refused or read differently, and why."""

    path: str
    """Path relative to the plugin root (POSIX), or ``"."`` for the plugin itself."""
    reason: str
    level: Literal["warning", "info"] = "warning"

    def to_dict(self) -> dict[str, JSON]:
        return {"path": self.path, "reason": self.reason, "level": self.level}


@dataclass(frozen=True)
class Author:
    """A manifest's author: an object, or parsed from a ``"Name <email>"`` string."""

    name: str = ""
    email: str | None = None
    url: str | None = None

    def to_dict(self) -> dict[str, JSON]:
        return {"name": self.name, "email": self.email, "url": self.url}


@dataclass(frozen=True)
class Manifest:
    """``plugin.json``, or what is inferred when there is none."""

    name: str
    version: str = "1.0.0"
    description: str = ""
    author: Author | None = None
    entry_command: str | None = None
    extra: dict[str, JSON] = field(default_factory=dict)
    """Every other key of the manifest, kept as written (``homepage``, ``keywords``, ...)."""
    path: str | None = None
    """The manifest file, relative to the plugin root; None when the manifest was inferred."""
    format: PluginFormatName = "claude-code"

    def to_dict(self) -> dict[str, JSON]:
        return {
            "name": self.name,
            "version": self.version,
            "description": self.description,
            "author": self.author.to_dict() if self.author else None,
            "entry_command": self.entry_command,
            "extra": self.extra,
            "path": self.path,
            "format": self.format,
        }


@dataclass(frozen=True)
class Trigger:
    """When a skill's content is injected: on keywords, for a task, or on touched paths."""

    type: Literal["keyword", "task", "path"]
    values: tuple[str, ...]

    def to_dict(self) -> dict[str, JSON]:
        key = {"keyword": "keywords", "task": "triggers", "path": "paths"}[self.type]
        return {"type": self.type, key: list(self.values)}


@dataclass(frozen=True)
class SkillResources:
    """Files under a skill's ``scripts/``, ``references/`` and ``assets/`` folders."""

    skill_root: str
    scripts: tuple[str, ...] = ()
    references: tuple[str, ...] = ()
    assets: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, JSON]:
        return {
            "skill_root": self.skill_root,
            "scripts": list(self.scripts),
            "references": list(self.references),
            "assets": list(self.assets),
        }


@dataclass(frozen=True)
class SkillInput:
    """An input a task skill asks the user for."""

    name: str
    description: str

    def to_dict(self) -> dict[str, JSON]:
        return {"name": self.name, "description": self.description}


@dataclass(frozen=True)
class Skill:
    """A skill: ``skills/<x>/SKILL.md`` (AgentSkills form), a flat ``skills/*.md``, or a root
    ``SKILL.md``."""

    name: str
    content: str
    source: str
    description: str | None = None
    trigger: Trigger | None = None
    allowed_tools: tuple[str, ...] | None = None
    license: str | None = None
    compatibility: str | None = None
    metadata: dict[str, str] | None = None
    disable_model_invocation: bool = False
    is_agentskills_format: bool = False
    inputs: tuple[SkillInput, ...] = ()
    resources: SkillResources | None = None
    mcp_tools: dict[str, JSON] | None = None
    version: str = "1.0.0"

    def to_dict(self) -> dict[str, JSON]:
        return {
            "name": self.name,
            "description": self.description,
            "content": self.content,
            "source": self.source,
            "trigger": self.trigger.to_dict() if self.trigger else None,
            "allowed_tools": list(self.allowed_tools) if self.allowed_tools is not None else None,
            "license": self.license,
            "compatibility": self.compatibility,
            "metadata": self.metadata,
            "disable_model_invocation": self.disable_model_invocation,
            "is_agentskills_format": self.is_agentskills_format,
            "inputs": [i.to_dict() for i in self.inputs],
            "resources": self.resources.to_dict() if self.resources else None,
            "mcp_tools": self.mcp_tools,
            "version": self.version,
        }


@dataclass(frozen=True)
class Command:
    """A slash command: ``commands/<name>.md``; the body is the instruction."""

    name: str
    content: str
    source: str
    description: str = ""
    argument_hint: str | None = None
    allowed_tools: tuple[str, ...] = ()
    metadata: dict[str, JSON] = field(default_factory=dict)

    def to_dict(self) -> dict[str, JSON]:
        return {
            "name": self.name,
            "description": self.description,
            "content": self.content,
            "source": self.source,
            "argument_hint": self.argument_hint,
            "allowed_tools": list(self.allowed_tools),
            "metadata": self.metadata,
        }


@dataclass(frozen=True)
class HookHandler:
    """One handler of a hook: a command to run, a prompt, an agent, or (Claude Code) more."""

    type: str = "command"
    command: str = ""
    timeout: int = 60
    name: str | None = None
    prompt: str | None = None
    system_prompt: str | None = None
    tools: tuple[str, ...] = ()
    max_iterations: int = 3
    is_async: bool = False
    extra: dict[str, JSON] = field(default_factory=dict)
    """Keys the SDK does not model (``url`` of an ``http`` handler, ...), kept as written."""

    def to_dict(self) -> dict[str, JSON]:
        return {
            "type": self.type,
            "command": self.command,
            "timeout": self.timeout,
            "name": self.name,
            "prompt": self.prompt,
            "system_prompt": self.system_prompt,
            "tools": list(self.tools),
            "max_iterations": self.max_iterations,
            "async": self.is_async,
            "extra": self.extra,
        }


@dataclass(frozen=True)
class HookMatcher:
    """Handlers that run for an event when the tool name matches ``matcher``."""

    matcher: str = "*"
    hooks: tuple[HookHandler, ...] = ()

    def to_dict(self) -> dict[str, JSON]:
        return {"matcher": self.matcher, "hooks": [h.to_dict() for h in self.hooks]}


HookConfig = dict[str, tuple[HookMatcher, ...]]
"""Hooks by snake_case event name (``pre_tool_use``, ``pre_compact``, ...)."""


@dataclass(frozen=True)
class McpServer:
    """One MCP server from ``.mcp.json`` (or ``mcp.json`` in the Agent Plugins format)."""

    name: str
    transport: str | None = None
    command: str | None = None
    args: tuple[str, ...] | None = None
    env: dict[str, str] | None = None
    url: str | None = None
    headers: dict[str, str] | None = None
    cwd: str | None = None
    config: dict[str, JSON] = field(default_factory=dict)
    """The server's entry as written, every key included."""

    def to_dict(self) -> dict[str, JSON]:
        return {
            "transport": self.transport,
            "command": self.command,
            "args": list(self.args) if self.args is not None else None,
            "env": self.env,
            "url": self.url,
            "headers": self.headers,
            "cwd": self.cwd,
            "config": self.config,
        }


@dataclass(frozen=True)
class Agent:
    """A sub-agent definition: ``agents/<name>.md``; the body is the system prompt."""

    name: str
    system_prompt: str
    source: str
    description: str = ""
    model: str = "inherit"
    color: str | None = None
    tools: tuple[str, ...] = ()
    skills: tuple[str, ...] = ()
    when_to_use_examples: tuple[str, ...] = ()
    permission_mode: str | None = None
    max_iteration_per_run: int | None = None
    max_budget_per_run: float | None = None
    hooks: HookConfig | None = None
    mcp_config: dict[str, JSON] | None = None
    profile_store_dir: str | None = None
    condenser: JSON = None
    metadata: dict[str, JSON] = field(default_factory=dict)
    level: AgentLevel | None = None
    """Where the agent was discovered, as the SDK sets it during discovery: ``None`` for an
    agent read from a plugin directory (the SDK's ``Plugin.load`` sets none); never taken from
    frontmatter (a ``level`` key there stays in ``metadata``, as in the SDK)."""

    def to_dict(self) -> dict[str, JSON]:
        return {
            "name": self.name,
            "description": self.description,
            "system_prompt": self.system_prompt,
            "source": self.source,
            "level": self.level,
            "model": self.model,
            "color": self.color,
            "tools": list(self.tools),
            "skills": list(self.skills),
            "when_to_use_examples": list(self.when_to_use_examples),
            "permission_mode": self.permission_mode,
            "max_iteration_per_run": self.max_iteration_per_run,
            "max_budget_per_run": self.max_budget_per_run,
            "hooks": hooks_to_dict(self.hooks),
            "mcp_config": self.mcp_config,
            "profile_store_dir": self.profile_store_dir,
            "condenser": self.condenser,
            "metadata": self.metadata,
        }


def hooks_to_dict(hooks: HookConfig | None) -> dict[str, JSON] | None:
    """Hooks as JSON data: ``{event: [{matcher, hooks: [...]}]}``, or None when absent."""
    if hooks is None:
        return None
    return {event: [m.to_dict() for m in matchers] for event, matchers in hooks.items()}


@dataclass(frozen=True)
class Installation:
    """Where an installed plugin was loaded from (set by the store; ``None`` for a directory)."""

    name: str
    version: str
    kind: Literal["package", "content-only"]
    package: str | None
    generation: str
    source: str
    python: str | None
    brought_by: str | None = None
    """The installed plugin that depends on this one and whose venv holds it."""

    def to_dict(self) -> dict[str, JSON]:
        return {"name": self.name, "version": self.version, "kind": self.kind,
                "package": self.package, "generation": self.generation, "source": self.source,
                "python": self.python, "brought_by": self.brought_by}


@dataclass(frozen=True)
class Plugin:
    """A loaded plugin directory. Loading never imports or runs anything from it.

    The classmethods are the proposal's API over the default store (``~/.openhands/isolator/store``,
    moved by ``OH_PERSISTENCE_DIR``); :class:`isolator.PluginStore` is the full one.
    """

    root: str
    manifest: Manifest
    skills: tuple[Skill, ...] = ()
    commands: tuple[Command, ...] = ()
    agents: tuple[Agent, ...] = ()
    hooks: HookConfig | None = None
    """None when the plugin has no hooks file; an empty dict when it has one with no hooks."""
    mcp_servers: dict[str, McpServer] = field(default_factory=dict)
    diagnostics: tuple[Diagnostic, ...] = ()
    installation: Installation | None = None
    """For a plugin loaded from the store: which install (and, if any, which plugin brought it)."""

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def version(self) -> str:
        return self.manifest.version

    @property
    def description(self) -> str:
        return self.manifest.description

    def to_dict(self) -> dict[str, JSON]:
        """The plugin as one JSON object (what ``ohp show --json`` prints)."""
        return {
            "name": self.name,
            "version": self.version,
            "description": self.description,
            "root": self.root,
            "manifest": self.manifest.to_dict(),
            "skills": [s.to_dict() for s in self.skills],
            "commands": [c.to_dict() for c in self.commands],
            "agents": [a.to_dict() for a in self.agents],
            "hooks": hooks_to_dict(self.hooks) or {},
            "mcp_servers": {name: s.to_dict() for name, s in self.mcp_servers.items()},
            "diagnostics": [d.to_dict() for d in self.diagnostics],
            "installation": None if self.installation is None else self.installation.to_dict(),
        }

    # ---- the proposal's API: a thin wrapper over the default store -----------------------
    # The store builds on this model, so the model does not import it: the store's facade
    # (isolator.store._facade) is registered with set_facade(), and the loader with set_loader().

    @classmethod
    def install(cls, package: str, version: str | None = None, upgrade: bool = False) -> Path:
        """Install ``pypi:``-style *package* (a name, or any source) into its own venv; return
        the plugin's directory in that venv's site-packages."""
        return _store_facade().install(package, version=version, upgrade=upgrade)

    @classmethod
    def list_installed(cls) -> list[tuple[str, str]]:
        """``[(name, version)]`` of the plugins in the default store (and those they bring)."""
        return _store_facade().list_installed()

    @classmethod
    def load_installed(cls, name: str) -> Plugin:
        """Load installed plugin *name*; :class:`PluginNotFoundError` when there is none."""
        return _store_facade().load_installed(name)

    @classmethod
    def fetch(cls, source: str | SourceLike, version: str | None = None, *,
              ref: str | None = None, repo_path: str | None = None,
              update: bool = False) -> Path:
        """The directory of the plugin *source* names, installing it first when needed.

        As the SDK's ``Plugin.fetch(source, ref=, repo_path=, update=)`` (its ``cache_dir`` is
        the store here): *ref* and *repo_path* for a git source, *version* (a PEP 440
        constraint) for ``pypi:``; *update* resolves an installed plugin's source again."""
        return _store_facade().fetch(source, version=version, ref=ref, repo_path=repo_path,
                                     update=update)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Plugin:
        """Load the plugin directory at *path* (as :func:`isolator.load_plugin`)."""
        return _registry.loader(path)  # type: ignore[no-any-return]


class PluginFacade(Protocol):
    """What :class:`Plugin`'s store classmethods delegate to (``isolator.store._facade``)."""

    def install(self, package: str, *, version: str | None, upgrade: bool) -> Path: ...

    def list_installed(self) -> list[tuple[str, str]]: ...

    def load_installed(self, name: str) -> Plugin: ...

    def fetch(self, source: str | SourceLike, *, version: str | None, ref: str | None,
              repo_path: str | None, update: bool) -> Path: ...


def set_facade(facade: Callable[[], PluginFacade]) -> None:
    """Register what gives the store's facade behind :class:`Plugin`'s store classmethods,
    called at each use (``isolator/__init__.py`` registers one that imports the store then,
    so a host that only reads plugin directories never imports it). Kept in
    :mod:`isolator.content`, so that registering does not import this module."""
    _registry.facade = facade


def set_loader(load: Callable[[str | os.PathLike[str]], Plugin]) -> None:
    """Register the directory loader behind :meth:`Plugin.load` (``isolator.content`` has
    one that imports :mod:`isolator.content._loader` on first use)."""
    _registry.loader = load


def _store_facade() -> PluginFacade:
    facade = _registry.facade
    if facade is None:
        raise IsolatorError("no store is registered for Plugin.install/fetch/... "
                            "(import isolator)")
    return facade()
