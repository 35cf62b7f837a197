"""``ohp``: the command line (the store's commands, and the bridge's: tools, call, agent,
exec, reset, doctor, demo)."""
