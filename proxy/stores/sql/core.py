"""The shared transaction every aggregate's queries run in, and the hooks a backend fills in.

Each module of this package holds one aggregate's SQL as a mixin over ``SqlBase``; a backend
(``sqlite.py``, ``postgres.py``) provides connections, transactions and the few statements
the two databases spell differently, so every query is written once and both behave alike.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from proxy.errors import BadParameter
from proxy.sources.paths import SourcePath

Row = tuple[Any, ...]


class Tx(Protocol):
    """One transaction: ``?`` placeholders in, rows out."""

    def run(self, sql: str, params: Sequence[Any] = ()) -> list[Row]: ...


def checked_params(params: Sequence[Any]) -> tuple[Any, ...]:
    """The parameters of a statement, refusing text with a NUL byte on every backend alike:
    PostgreSQL cannot store one, and a request that carries one is bad input (400)."""
    for value in params:
        if isinstance(value, str) and "\x00" in value:
            raise BadParameter("text with a NUL byte cannot be stored")
    return tuple(params)


def as_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def from_json(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def signed64(value: int) -> int:
    """Chunks are stored as BIGINT; keep them in the signed range both databases accept."""
    return value - (1 << 64) if value >= 1 << 63 else value


class SqlBase(ABC):
    """What every aggregate's queries stand on: a transaction, and the backend's hooks."""

    pk: str  # the primary-key column spelling for migrations
    dialect: str  # "sqlite" or "postgresql": which of a migration's own statements run

    @abstractmethod
    def transaction(self, *, write: bool = True) -> AbstractContextManager[Tx]:
        """A transaction; ``write`` takes the write lock up front where the backend has one."""

    @abstractmethod
    def close(self) -> None: ...

    @property
    @abstractmethod
    def url(self) -> str: ...

    # -- the backend's hooks ----------------------------------------------------------------

    @abstractmethod
    def _claim_sql(self) -> str:
        """Selects the id of one ready job, locking it where the backend can."""

    @abstractmethod
    def _match_sql(self, columns: str, where: str, tokens: list[str]) -> tuple[str, list[Any]]:
        """A ranked full-text query: its SQL (with ``where`` and a final ``LIMIT ?``) and the
        parameters that come before ``where``'s."""

    def _lock_migrations(self, tx: Tx) -> None:  # noqa: B027 - optional hook
        """Serialise concurrent migrators (several nodes starting at once)."""

    def _skip_locked(self) -> str:
        """Row locks for claims where the backend has them (SQLite's writer lock suffices)."""
        return ""

    def _row_lock(self) -> str:
        return ""

    def _lock_document(self, tx: Tx, path: SourcePath) -> None:  # noqa: B027
        """Serialise rewrites of one document until commit, so each reads what the one
        before it wrote (SQLite's writer lock already does)."""

    def _index_text(self, tx: Tx, doc: int, alt: str, terms: str) -> None:  # noqa: B027
        """The backend's own full-text index, where it is not derived from ``search_docs``
        (PostgreSQL's tsvector is a generated column)."""
