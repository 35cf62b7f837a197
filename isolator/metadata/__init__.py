"""Installed distributions read from their dist-info directories, without importing anything:
names, versions, entry points, RECORD, with every file read under a size cap."""
