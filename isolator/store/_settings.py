"""The operator's settings of a plugin: its default sandbox profile and its grants.

Kept in ``ROOT/settings/<name>.json`` across upgrades; removed with the plugin.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from isolator._errors import StoreError
from isolator.policy._permissions import (
    SANDBOX_PROFILES,
    Permissions,
    PermissionsError,
    PluginSettings,
)
from isolator.store._disk import check_name, write_json_atomic

if TYPE_CHECKING:
    from pathlib import Path

    from isolator.store._context import StoreContext


class Unset:
    """The default of an argument whose None means something."""


UNSET = Unset()


def settings_path(root: Path, name: str) -> Path:
    """Where the operator's settings of plugin *name* are kept."""
    return root / "settings" / f"{name}.json"


def read_settings(root: Path, name: str) -> PluginSettings:
    """:meth:`PluginStore.settings`."""
    check_name(name)
    path = settings_path(root, name)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return PluginSettings()
    except (OSError, ValueError) as exc:
        raise StoreError(str(path), f"cannot be read as JSON: {exc}") from None
    return PluginSettings.from_dict(data, str(path))


def configure(ctx: StoreContext, name: str, *, sandbox: str | Unset | None,
              grants: Permissions | Unset) -> PluginSettings:
    """:meth:`PluginStore.configure`."""
    ctx.catalog.top_level(name)  # raises when it is not installed
    if isinstance(sandbox, str) and sandbox not in SANDBOX_PROFILES:
        raise PermissionsError(f"sandbox profile {sandbox!r}",
                               f"expected one of {', '.join(SANDBOX_PROFILES)}")
    with ctx.generations.plugin_lock(name):
        current = read_settings(ctx.root, name)
        settings = PluginSettings(
            current.sandbox if isinstance(sandbox, Unset) else sandbox,
            current.grants if isinstance(grants, Unset) else grants)
        path = settings_path(ctx.root, name)
        path.parent.mkdir(exist_ok=True)
        write_json_atomic(path, settings.to_dict())
        return settings
