"""The shout plugin: a skill plus a tool (``tools.py``) that uses example-textkit."""
