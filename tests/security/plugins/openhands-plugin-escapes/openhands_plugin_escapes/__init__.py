"""A hostile plugin: every string it gives the host to print carries escape sequences."""
