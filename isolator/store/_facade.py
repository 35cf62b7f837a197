"""The proposal's ``Plugin.install``/``list_installed``/``load_installed``/``fetch``, over the
default store (``~/.openhands/isolator/store``, moved by ``OH_PERSISTENCE_DIR``).

The content model's :class:`~isolator.Plugin` carries those classmethods but, being below the
store, cannot import it: ``isolator/__init__.py`` registers :class:`StoreFacade` with
:func:`isolator.content._model.set_facade`, importing this module on first use.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from isolator.sources._sources import PluginSource
from isolator.store._store import default_store

if TYPE_CHECKING:
    from pathlib import Path

    from isolator.content._model import Plugin

__all__ = ["StoreFacade"]


class StoreFacade:
    """:class:`isolator.content._model.PluginFacade` over :func:`default_store`."""

    def install(self, package: str, *, version: str | None, upgrade: bool) -> Path:
        return default_store().install(_as_source(package), version=version,
                                       upgrade=upgrade).content_dir

    def list_installed(self) -> list[tuple[str, str]]:
        return [(p.name, p.version) for p in default_store().list_installed()]

    def load_installed(self, name: str) -> Plugin:
        return default_store().load(name)

    def fetch(self, source: str | PluginSource, *, version: str | None, ref: str | None,
              repo_path: str | None, update: bool) -> Path:
        if not isinstance(source, PluginSource):
            source = PluginSource.parse(_as_source(source), version=version, ref=ref,
                                        repo_path=repo_path)
        elif version is not None or ref is not None or repo_path is not None:
            data = source.to_dict()
            data.update({k: v for k, v in (("version", version), ("ref", ref),
                                            ("repo_path", repo_path)) if v is not None})
            source = PluginSource.from_dict(data)
        return default_store().install(source, upgrade=update).content_dir


def _as_source(text: str) -> str:
    """A bare package name means ``pypi:NAME``, as in the proposal's ``Plugin.install``."""
    if ":" in text or os.sep in text or text.startswith(".") or text.endswith((".whl", ".gz")):
        return text
    return f"pypi:{text}"
