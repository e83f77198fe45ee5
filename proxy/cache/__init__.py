"""Caches hold only what can be recomputed (thumbor's ``storages/`` role)."""
