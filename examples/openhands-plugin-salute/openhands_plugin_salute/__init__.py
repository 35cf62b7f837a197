"""The salute plugin: a skill plus tools (``tools.py``) that use example-textkit 1.x."""
