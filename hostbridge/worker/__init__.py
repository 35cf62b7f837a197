"""The worker runtime: runs in plugin worker processes, imports nothing from the host."""
