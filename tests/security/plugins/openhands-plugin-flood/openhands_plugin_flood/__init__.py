"""A hostile plugin: each tool in tools.py tries to make the host stall or spend without bound."""
