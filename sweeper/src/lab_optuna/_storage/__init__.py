"""Storages: URLs, connecting (``connect.py``), retrying through a restart (``resilient.py``),
journal files and the trials' heartbeats."""
