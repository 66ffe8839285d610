"""Test support shared across test folders, imported as ``support.<module>`` (pytest puts ``tests`` on the path)."""
