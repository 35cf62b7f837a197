"""isolator: per-plugin virtualenv isolation for AI-agent plugins shipped as Python packages.

This package holds environments and content. It never imports plugin code: content is read as
data (:func:`load_plugin`), and plugin code runs only in the workers of :mod:`hostbridge`.
"""

from __future__ import annotations

from ._content import load_plugin
from ._errors import (
    HashMismatchError,
    IsolatorError,
    PluginCollisionError,
    PluginLoadError,
    PluginNotFoundError,
    ResolutionError,
    SourceError,
    StoreError,
)
from ._fsread import LoadLimits
from ._model import (
    Agent,
    Author,
    Command,
    Diagnostic,
    HookConfig,
    HookHandler,
    HookMatcher,
    Installation,
    Manifest,
    McpServer,
    Plugin,
    Skill,
    SkillInput,
    SkillResources,
    Trigger,
)
from ._sources import PluginSource
from ._store import (
    CleanReport,
    InstalledPlugin,
    PluginStore,
    ResolvedDistribution,
    default_store,
    default_store_root,
)
from ._variables import expand_variables

__all__ = [
    "Agent",
    "Author",
    "CleanReport",
    "Command",
    "Diagnostic",
    "HashMismatchError",
    "HookConfig",
    "HookHandler",
    "HookMatcher",
    "Installation",
    "InstalledPlugin",
    "IsolatorError",
    "LoadLimits",
    "Manifest",
    "McpServer",
    "Plugin",
    "PluginCollisionError",
    "PluginLoadError",
    "PluginNotFoundError",
    "PluginSource",
    "PluginStore",
    "ResolutionError",
    "ResolvedDistribution",
    "Skill",
    "SkillInput",
    "SkillResources",
    "SourceError",
    "StoreError",
    "Trigger",
    "default_store",
    "default_store_root",
    "expand_variables",
    "load_plugin",
]
