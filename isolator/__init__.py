"""isolator: per-plugin virtualenv isolation for AI-agent plugins shipped as Python packages.

This package holds environments and content. It never imports plugin code: content is read as
data (:func:`load_plugin`), and plugin code runs only in the workers of :mod:`hostbridge`.
"""

from __future__ import annotations

from ._content import load_plugin
from ._errors import IsolatorError, PluginLoadError
from ._fsread import LoadLimits
from ._model import (
    Agent,
    Author,
    Command,
    Diagnostic,
    HookConfig,
    HookHandler,
    HookMatcher,
    Manifest,
    McpServer,
    Plugin,
    Skill,
    SkillInput,
    SkillResources,
    Trigger,
)
from ._variables import expand_variables

__all__ = [
    "Agent",
    "Author",
    "Command",
    "Diagnostic",
    "HookConfig",
    "HookHandler",
    "HookMatcher",
    "IsolatorError",
    "LoadLimits",
    "Manifest",
    "McpServer",
    "Plugin",
    "PluginLoadError",
    "Skill",
    "SkillInput",
    "SkillResources",
    "Trigger",
    "expand_variables",
    "load_plugin",
]
