"""The embedded store: one SQLite file in WAL mode.

WAL lets readers run beside the writer; ``synchronous=FULL`` makes every acknowledged commit
survive a kill -9 and a power cut. Each thread gets its own connection, and writers take the
lock up front (``BEGIN IMMEDIATE``) so two writers queue instead of deadlocking on upgrade.
Several processes (``loupe serve`` and ``loupe worker``) may share the file.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from proxy.filelock import exclusive
from proxy.stores.base import StoreError
from proxy.stores.sql import Row, SqlStore, Tx, checked_params

BUSY_TIMEOUT_MS = 10_000


class _Tx:
    def __init__(self, connection: sqlite3.Connection) -> None:
        self.connection = connection

    def run(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        return self.connection.execute(sql, checked_params(params)).fetchall()


class SqliteStore(SqlStore):
    pk = "INTEGER PRIMARY KEY AUTOINCREMENT"
    dialect = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._closed = False

    @property
    def url(self) -> str:
        return f"sqlite:///{self.path}"

    def _connection(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            if self._closed:
                raise StoreError("the store is closed")
            connection = sqlite3.connect(
                self.path, isolation_level=None, check_same_thread=False, timeout=30
            )
            connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            with exclusive(self.path.with_name(self.path.name + ".open.lock")):
                connection.execute("PRAGMA journal_mode = WAL")  # see proxy.filelock
            connection.execute("PRAGMA synchronous = FULL")
            connection.execute("PRAGMA foreign_keys = ON")
            self._local.connection = connection
            with self._lock:
                self._all.append(connection)
        return connection

    @contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[_Tx]:
        try:
            connection = self._connection()
            connection.execute("BEGIN IMMEDIATE" if write else "BEGIN")
        except sqlite3.Error as exc:
            raise StoreError(f"SQLite store {self.path}: {exc}") from exc
        try:
            yield _Tx(connection)
        except sqlite3.Error as exc:
            connection.execute("ROLLBACK")
            raise StoreError(f"SQLite store {self.path}: {exc}") from exc
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        else:
            try:
                connection.execute("COMMIT")
            except sqlite3.Error as exc:
                connection.execute("ROLLBACK")
                raise StoreError(f"SQLite store {self.path}: {exc}") from exc

    def _claim_sql(self) -> str:
        # BEGIN IMMEDIATE already serialises claimers on this file.
        return (
            "SELECT id FROM jobs WHERE (status = 'queued' AND run_after <= ?) "
            "OR (status = 'running' AND lease_until < ?) ORDER BY run_after, id LIMIT 1"
        )

    def _index_text(self, tx: Tx, doc: int, alt: str, terms: str) -> None:
        tx.run("DELETE FROM search_fts WHERE rowid = ?", (doc,))
        tx.run("INSERT INTO search_fts (rowid, alt, terms) VALUES (?, ?, ?)", (doc, alt, terms))

    def _match_sql(self, columns: str, where: str, tokens: list[str]) -> tuple[str, list[Any]]:
        match = " ".join(f'"{token}"*' for token in tokens)  # words only: nothing to escape
        sql = (
            f"SELECT {columns}, -bm25(search_fts, 4.0, 1.0) AS score FROM search_fts "
            f"JOIN search_docs d ON d.id = search_fts.rowid WHERE search_fts MATCH ? "
            f"AND {where} ORDER BY score DESC, d.path LIMIT ?"
        )
        return sql, [match]

    def close(self) -> None:
        with self._lock:
            self._closed = True
            for connection in self._all:
                connection.close()
            self._all.clear()
