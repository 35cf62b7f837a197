"""How plugin processes start: the sandbox profiles (``plan``), the worker runtime kept in the
store, and plugin programs (hook commands, MCP servers)."""
