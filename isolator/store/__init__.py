"""The store: acquisition, resolution, the wheelhouse, the bytecode pool, the backends (uv,
virtualenv + pip), interpreters, builds in the sandbox, generations, lock files.

A public internal API (``hostbridge`` and the authoring tools build on it); plugin hosts use
:mod:`isolator` (``PluginStore``, ``InstalledPlugin``, the reports...). The install pipeline's
stages are in ``_pipeline/``; ``PluginStore`` (``_store.py``) is the facade that wires them.
"""

from isolator._errors import CommandError, StoreError
from isolator.store._backends import Backend, UvBackend, VirtualenvPipBackend, find_uv, get_backend
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

__all__ = ["Backend", "CleanReport", "CommandError", "CommandResult", "FileChange",
           "InstalledPlugin", "Interpreter", "Marketplace", "MarketplaceEntry",
           "MarketplaceError", "MarketplaceLookupError", "MarketplaceOrigin",
           "MarketplacePlugin", "PluginStore", "ResolvedDistribution", "StoreError",
           "SyncReport", "UvBackend", "VerifyReport", "VirtualenvPipBackend", "base_interpreter",
           "check_name", "default_store", "default_store_root", "find_python", "find_uv",
           "get_backend", "migrate_default_store", "run_command", "scrubbed_env",
           "write_json_atomic"]
