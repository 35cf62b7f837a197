"""The store's commands of ``ohp`` (install, list, show, ...), and text made safe for a terminal."""
