"""Workers as the host sees them: one process per plugin (``Worker``) and the bridge that
starts, supervises and calls them (``HostBridge``)."""
