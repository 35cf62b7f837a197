"""The launcher of every sandboxed process (plugin workers, plugin programs, build code) and the
in-process layers (``confine``: Landlock, seccomp) that each applies to itself."""
