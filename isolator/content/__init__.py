"""The content of a plugin directory, read as data: the loader (by component), safe reading,
frontmatter, variables, and the content model. Below the store: imports nothing of it."""

from isolator.content import _loader, _model

# Plugin.load is the loader's, but the model is below the loader: it is registered, not imported.
_model.set_loader(_loader.load_plugin)
