"""The content of a plugin directory, read as data: the loader (by component), safe reading,
frontmatter, variables, and the content model. Below the store: imports nothing of it."""
