"""The in-process layers of the sandbox, stdlib only: what a plugin process (a worker, a hook
command, an MCP server, a build backend) applies to itself before any plugin code runs:
Landlock (:mod:`.landlock`), the seccomp filter (:mod:`.seccomp`), and :mod:`.sandbox`, which
applies both (``apply``) or applies them and ``execve``s a program (``exec_main``).

These modules run in other interpreters (any Python 3.10+, ``python -I -S``): they import
nothing but the standard library, and are imported as siblings (the worker runtime copies them
next to its own modules; a build copies them into its build directory).
"""
