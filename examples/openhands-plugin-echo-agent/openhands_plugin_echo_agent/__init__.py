"""Example plugin: a custom agent whose model calls the host serves."""
