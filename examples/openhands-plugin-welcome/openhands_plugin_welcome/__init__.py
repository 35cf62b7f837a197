"""Content-only plugin: this package only marks the plugin directory; it has no code to run."""
