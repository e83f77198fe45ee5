"""The shared store for several nodes: PostgreSQL through a psycopg connection pool.

Job claims use ``FOR UPDATE SKIP LOCKED``, so workers on any node take different jobs without
waiting on each other; migrations take an advisory lock so nodes starting together agree.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool

from proxy.sources.paths import SourcePath
from proxy.stores.base import StoreError
from proxy.stores.sql import Row, SqlStore, Tx, checked_params

MIGRATION_LOCK = 0x4C6F757065  # "Loupe"
SEARCH_LOCK = 0x4C53  # the namespace of the search documents' locks (with a path's hash)


class _Tx:
    def __init__(self, connection: psycopg.Connection[Any]) -> None:
        self.connection = connection

    def run(self, sql: str, params: Sequence[Any] = ()) -> list[Row]:
        cursor = self.connection.execute(sql.replace("?", "%s"), checked_params(params))
        return list(cursor.fetchall()) if cursor.description is not None else []


class PostgresStore(SqlStore):
    pk = "BIGSERIAL PRIMARY KEY"
    dialect = "postgresql"

    def __init__(self, url: str, *, max_connections: int = 8) -> None:
        self._url = url
        try:
            self.pool = ConnectionPool(
                url, min_size=1, max_size=max_connections, open=True, timeout=10
            )
            self.pool.wait(timeout=10)
        except (psycopg.Error, Exception) as exc:  # the pool raises its own PoolTimeout
            raise StoreError(f"PostgreSQL store unreachable: {exc}") from exc

    @property
    def url(self) -> str:
        return self._url

    @contextmanager
    def transaction(self, *, write: bool = True) -> Iterator[_Tx]:
        try:
            with self.pool.connection() as connection, connection.transaction():
                yield _Tx(connection)
        except psycopg.Error as exc:
            raise StoreError(f"PostgreSQL store: {exc}") from exc

    def _lock_migrations(self, tx: Tx) -> None:
        tx.run("SELECT pg_advisory_xact_lock(?)", (MIGRATION_LOCK,))

    def _claim_sql(self) -> str:
        return (
            "SELECT id FROM jobs WHERE (status = 'queued' AND run_after <= ?) "
            "OR (status = 'running' AND lease_until < ?) ORDER BY run_after, id LIMIT 1 "
            "FOR UPDATE SKIP LOCKED"
        )

    def _row_lock(self) -> str:
        return " FOR UPDATE"

    def _skip_locked(self) -> str:
        return " FOR UPDATE SKIP LOCKED"

    def _lock_document(self, tx: Tx, path: SourcePath) -> None:
        # Under READ COMMITTED a concurrent writer's document could be built from rows read
        # before this one committed, and overwrite it: take turns per path, then read.
        tx.run("SELECT pg_advisory_xact_lock(?, hashtext(?))", (SEARCH_LOCK, path))

    def _match_sql(self, columns: str, where: str, tokens: list[str]) -> tuple[str, list[Any]]:
        query = " & ".join(f"{token}:*" for token in tokens)  # words only: nothing to escape
        sql = (
            f"SELECT {columns}, ts_rank(d.doc, to_tsquery('simple', ?)) AS score "
            f"FROM search_docs d WHERE d.doc @@ to_tsquery('simple', ?) AND {where} "
            "ORDER BY score DESC, d.path LIMIT ?"
        )
        return sql, [query, query]

    def close(self) -> None:
        self.pool.close()
