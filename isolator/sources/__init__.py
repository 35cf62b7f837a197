"""Plugin sources: ``pypi:``, git, local directories, wheels and sdists, parsed and checked."""
