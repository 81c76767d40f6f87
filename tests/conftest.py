"""Puts ``tests/`` on ``sys.path`` (pytest's rootdir-relative import of this conftest), so helpers
shared by several test folders (``loopback_webhook``) import the same way from each."""
