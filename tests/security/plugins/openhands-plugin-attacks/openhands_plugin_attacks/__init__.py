"""A hostile plugin: every tool in tools.py attacks the host one way and reports what it got."""
