"""The store: acquisition, resolution, the wheelhouse, the bytecode pool, the backends (uv,
virtualenv + pip), interpreters, builds in the sandbox, generations, lock files.

A public internal API (``hostbridge`` and the authoring tools build on it); plugin hosts use
:mod:`isolator` (``PluginStore``, ``InstalledPlugin``, the reports...). The install pipeline's
stages are in ``_pipeline/``; ``PluginStore`` (``_store.py``) is the facade that wires them.
"""

from __future__ import annotations

import importlib

TYPE_CHECKING = False  # typing is not imported: `ohp list` starts in a few ms (#19)
if TYPE_CHECKING:
    from typing import Any

    from isolator._errors import CommandError, StoreError
    from isolator.store._backends import (
        Backend,
        UvBackend,
        VirtualenvPipBackend,
        find_uv,
        get_backend,
    )
    from isolator.store._commands import CommandResult, run_command, scrubbed_env
    from isolator.store._disk import check_name, write_json_atomic
    from isolator.store._interpreters import Interpreter, base_interpreter, find_python
    from isolator.store._marketplace import (
        Marketplace,
        MarketplaceEntry,
        MarketplaceError,
        MarketplaceLookupError,
        MarketplaceOrigin,
        MarketplacePlugin,
    )
    from isolator.store._records import (
        CleanReport,
        FileChange,
        InstalledPlugin,
        ResolvedDistribution,
        SyncReport,
        VerifyReport,
    )
    from isolator.store._store import (
        PluginStore,
        default_store,
        default_store_root,
        migrate_default_store,
    )

# Each name loads its module on first use: reading a store's records (`ohp list`) does not
# import the install pipeline, uv's backends or the loader.
_LAZY = {
    "CommandError": "isolator._errors",
    "StoreError": "isolator._errors",
    "Backend": "isolator.store._backends",
    "UvBackend": "isolator.store._backends",
    "VirtualenvPipBackend": "isolator.store._backends",
    "find_uv": "isolator.store._backends",
    "get_backend": "isolator.store._backends",
    "CommandResult": "isolator.store._commands",
    "run_command": "isolator.store._commands",
    "scrubbed_env": "isolator.store._commands",
    "check_name": "isolator.store._disk",
    "write_json_atomic": "isolator.store._disk",
    "Interpreter": "isolator.store._interpreters",
    "base_interpreter": "isolator.store._interpreters",
    "find_python": "isolator.store._interpreters",
    "Marketplace": "isolator.store._marketplace",
    "MarketplaceEntry": "isolator.store._marketplace",
    "MarketplaceError": "isolator.store._marketplace",
    "MarketplaceLookupError": "isolator.store._marketplace",
    "MarketplaceOrigin": "isolator.store._marketplace",
    "MarketplacePlugin": "isolator.store._marketplace",
    "CleanReport": "isolator.store._records",
    "FileChange": "isolator.store._records",
    "InstalledPlugin": "isolator.store._records",
    "ResolvedDistribution": "isolator.store._records",
    "SyncReport": "isolator.store._records",
    "VerifyReport": "isolator.store._records",
    "PluginStore": "isolator.store._store",
    "default_store": "isolator.store._store",
    "default_store_root": "isolator.store._store",
    "migrate_default_store": "isolator.store._store",
}


__all__ = ["Backend", "CleanReport", "CommandError", "CommandResult", "FileChange",
           "InstalledPlugin", "Interpreter", "Marketplace", "MarketplaceEntry",
           "MarketplaceError", "MarketplaceLookupError", "MarketplaceOrigin",
           "MarketplacePlugin", "PluginStore", "ResolvedDistribution", "StoreError",
           "SyncReport", "UvBackend", "VerifyReport", "VirtualenvPipBackend", "base_interpreter",
           "check_name", "default_store", "default_store_root", "find_python", "find_uv",
           "get_backend", "migrate_default_store", "run_command", "scrubbed_env",
           "write_json_atomic"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'isolator.store' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
