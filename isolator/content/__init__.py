"""The content of a plugin directory, read as data: the loader (by component), safe reading,
frontmatter, variables, and the content model. Below the store: imports nothing of it."""

from typing import Any

from isolator.content import _model


def _load_plugin(*args: Any, **kwargs: Any) -> Any:
    """The loader, imported on first use (it brings YAML): reading the model alone, as
    ``ohp list`` does, does not pay for it."""
    from isolator.content._loader import load_plugin  # noqa: PLC0415

    return load_plugin(*args, **kwargs)


# Plugin.load is the loader's, but the model is below the loader: it is registered, not imported.
_model.set_loader(_load_plugin)
