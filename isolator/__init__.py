"""isolator: per-plugin virtualenv isolation for AI-agent plugins shipped as Python packages.

This package holds environments and content. It never imports plugin code: content is read as
data (:func:`load_plugin`), and plugin code runs only in the workers of :mod:`hostbridge`.
"""

from __future__ import annotations

import importlib

from isolator import content as _content
from isolator._errors import (
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

# typing is not imported: `ohp --help` and `ohp list` start in a few ms (#19).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from isolator.authoring._authoring import (
        BuildSettings,
        Check,
        PackageResult,
        ValidationReport,
        package_plugin,
        validate_directory,
        validate_package,
    )
    from isolator.content._fsread import LoadLimits
    from isolator.content._loader import load_plugin
    from isolator.content._model import (
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
        PluginFacade,
        Skill,
        SkillInput,
        SkillResources,
        Trigger,
    )
    from isolator.content._variables import expand_variables
    from isolator.policy._permissions import Permissions, PluginSettings
    from isolator.policy._policy import Policy, hookimpl
    from isolator.sources._sources import PluginSource
    from isolator.store._lockfile import Lock
    from isolator.store._marketplace import (
        Marketplace,
        MarketplaceEntry,
        MarketplaceError,
        MarketplaceLookupError,
        MarketplaceOrigin,
        MarketplacePlugin,
    )
    from isolator.store._store import (
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
# directories does not pay for importing it; the loader (YAML) loads when content is read,
# and the content model (its dataclasses) when it is used, so `ohp --help` and `ohp list` do
# without them (tests/test_cli_imports.py).
_LAZY = {
    **dict.fromkeys(("Agent", "Author", "Command", "Diagnostic", "HookConfig", "HookHandler",
                     "HookMatcher", "Installation", "Manifest", "McpServer", "Plugin", "Skill",
                     "SkillInput", "SkillResources", "Trigger"), "isolator.content._model"),
    "Permissions": "isolator.policy._permissions",
    "PluginSettings": "isolator.policy._permissions",
    "LoadLimits": "isolator.content._fsread",
    "load_plugin": "isolator.content._loader",
    "expand_variables": "isolator.content._variables",
    "BuildSettings": "isolator.authoring._authoring",
    "Check": "isolator.authoring._authoring",
    "PackageResult": "isolator.authoring._authoring",
    "ValidationReport": "isolator.authoring._authoring",
    "package_plugin": "isolator.authoring._authoring",
    "validate_directory": "isolator.authoring._authoring",
    "validate_package": "isolator.authoring._authoring",
    "PluginSource": "isolator.sources._sources",
    "Policy": "isolator.policy._policy",
    "hookimpl": "isolator.policy._policy",
    "CleanReport": "isolator.store._store",
    "FileChange": "isolator.store._store",
    "InstalledPlugin": "isolator.store._store",
    "Lock": "isolator.store._lockfile",
    "Marketplace": "isolator.store._marketplace",
    "MarketplaceEntry": "isolator.store._marketplace",
    "MarketplaceError": "isolator.store._marketplace",
    "MarketplaceLookupError": "isolator.store._marketplace",
    "MarketplaceOrigin": "isolator.store._marketplace",
    "MarketplacePlugin": "isolator.store._marketplace",
    "SyncReport": "isolator.store._store",
    "VerifyReport": "isolator.store._store",
    "PluginStore": "isolator.store._store",
    "ResolvedDistribution": "isolator.store._store",
    "default_store": "isolator.store._store",
    "default_store_root": "isolator.store._store",
}


def _store_facade() -> PluginFacade:
    """``Plugin.install``/``fetch``/...: the content model is below the store and does not import
    it; its classmethods go through what is registered here, which imports the store on use."""
    from isolator.store._facade import StoreFacade  # noqa: PLC0415 - loads on first use

    return StoreFacade()


# Plugin.install/fetch/... go through this: registered in isolator.content, which does not
# import the model (isolator.content._model.set_facade does the same).
_content.facade = _store_facade


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'isolator' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
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
    "Marketplace",
    "MarketplaceEntry",
    "MarketplaceError",
    "MarketplaceLookupError",
    "MarketplaceOrigin",
    "MarketplacePlugin",
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
