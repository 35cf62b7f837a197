"""isolator: per-plugin virtualenv isolation for AI-agent plugins shipped as Python packages.

This package holds environments and content. It never imports plugin code: content is read as
data (:func:`load_plugin`), and plugin code runs only in the workers of :mod:`hostbridge`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._content import load_plugin
from ._errors import (
    HashMismatchError,
    IsolatorError,
    LockfileError,
    PackagingError,
    PluginCollisionError,
    PluginLoadError,
    PluginNotFoundError,
    PolicyDeniedError,
    PolicyError,
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
from ._permissions import Permissions, PluginSettings
from ._variables import expand_variables

if TYPE_CHECKING:
    from ._authoring import (
        BuildSettings,
        Check,
        PackageResult,
        ValidationReport,
        package_plugin,
        validate_directory,
        validate_package,
    )
    from ._lockfile import Lock
    from ._policy import Policy, hookimpl
    from ._sources import PluginSource
    from ._store import (
        CleanReport,
        FileChange,
        InstalledPlugin,
        PluginStore,
        ResolvedDistribution,
        SyncReport,
        VerifyReport,
        default_store,
        default_store_root,
    )

# The store (uv, resolution, downloads) loads on first use: a host that only reads plugin
# directories does not pay for importing it.
_LAZY = {
    "BuildSettings": "._authoring",
    "Check": "._authoring",
    "PackageResult": "._authoring",
    "ValidationReport": "._authoring",
    "package_plugin": "._authoring",
    "validate_directory": "._authoring",
    "validate_package": "._authoring",
    "PluginSource": "._sources",
    "Policy": "._policy",
    "hookimpl": "._policy",
    "CleanReport": "._store",
    "FileChange": "._store",
    "InstalledPlugin": "._store",
    "Lock": "._lockfile",
    "SyncReport": "._store",
    "VerifyReport": "._store",
    "PluginStore": "._store",
    "ResolvedDistribution": "._store",
    "default_store": "._store",
    "default_store_root": "._store",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'isolator' has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value

__all__ = [
    "Agent",
    "Author",
    "BuildSettings",
    "Check",
    "CleanReport",
    "Command",
    "Diagnostic",
    "FileChange",
    "HashMismatchError",
    "HookConfig",
    "HookHandler",
    "HookMatcher",
    "Installation",
    "InstalledPlugin",
    "IsolatorError",
    "LoadLimits",
    "Lock",
    "LockfileError",
    "Manifest",
    "McpServer",
    "PackageResult",
    "PackagingError",
    "Permissions",
    "Plugin",
    "PluginCollisionError",
    "PluginLoadError",
    "PluginNotFoundError",
    "PluginSettings",
    "PluginSource",
    "PluginStore",
    "Policy",
    "PolicyDeniedError",
    "PolicyError",
    "ResolutionError",
    "ResolvedDistribution",
    "Skill",
    "SkillInput",
    "SkillResources",
    "SourceError",
    "StoreError",
    "SyncReport",
    "Trigger",
    "ValidationReport",
    "VerifyReport",
    "default_store",
    "default_store_root",
    "expand_variables",
    "hookimpl",
    "load_plugin",
    "package_plugin",
    "validate_directory",
    "validate_package",
]
