"""Operator policy: plugin permissions and grants, the pluggy hooks, the audit log.

A public internal API (the store and ``hostbridge`` build on it); plugin hosts use
:mod:`isolator` (``Policy``, ``hookimpl``, ``PolicyError``...).
"""

from isolator.policy._permissions import (
    KINDS,
    SANDBOX_PROFILES,
    Permissions,
    PermissionsError,
    PluginSettings,
)

__all__ = ["KINDS", "SANDBOX_PROFILES", "Permissions", "PermissionsError", "PluginSettings"]
