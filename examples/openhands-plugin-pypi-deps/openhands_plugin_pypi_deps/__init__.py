"""The pypi-deps plugin: a skill, a command and a tool that uses idna from PyPI."""
