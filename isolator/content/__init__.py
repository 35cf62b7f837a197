"""The content of a plugin directory, read as data: the loader (by component), safe reading,
frontmatter, variables, and the content model. Below the store: imports nothing of it.

Importing this package imports none of its modules: the content model (its dataclasses) loads
when a plugin is read, so ``ohp --help`` and ``ohp list`` do without it. What the model's
:class:`~isolator.content._model.Plugin` delegates to (the loader, the store's facade) is
registered here, where registering does not import the model."""

from __future__ import annotations

TYPE_CHECKING = False  # typing is not imported: see isolator/__init__.py
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from isolator.content._model import PluginFacade

facade: Callable[[], PluginFacade] | None = None
"""What gives the store's facade behind ``Plugin.install``/``fetch``/...: set by
``isolator/__init__.py`` (:func:`isolator.content._model.set_facade`)."""


def load_plugin(*args: Any, **kwargs: Any) -> Any:
    """The loader, imported on first use (it brings YAML): reading the model alone, as
    ``ohp show`` of a store's record does, does not pay for it."""
    from isolator.content._loader import load_plugin as load  # noqa: PLC0415

    return load(*args, **kwargs)


# Plugin.load is the loader's, but the model is below the loader: it is registered, not imported.
loader: Callable[..., Any] = load_plugin
