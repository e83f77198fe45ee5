"""Open the store a URL names and bring its schema up to date."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from proxy.stores.base import StoreError
from proxy.stores.sql import SqlStore

Store = SqlStore


def open_store(url: str, *, migrate: bool = True) -> SqlStore:
    """``sqlite:///abs/path.db`` or ``postgresql://user@host/db``."""
    scheme = urlsplit(url).scheme
    store: SqlStore
    if scheme == "sqlite":
        path = url[len("sqlite://") :]
        if not path.startswith("/"):
            raise StoreError(f"SQLite store URL needs an absolute path: {url}")
        from proxy.stores.sqlite import SqliteStore

        store = SqliteStore(Path(path))
    elif scheme in ("postgresql", "postgres"):
        from proxy.stores.postgres import PostgresStore

        store = PostgresStore(url)
    else:
        raise StoreError(f"unknown store URL scheme {scheme!r}: use sqlite:/// or postgresql://")
    if migrate:
        store.migrate()
    return store
