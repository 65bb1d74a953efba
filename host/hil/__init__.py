"""The pytest side of the harness: the plugin loaded by the top-level conftest.py."""
