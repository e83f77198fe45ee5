"""The store's logic, written once in the SQL that SQLite and PostgreSQL share. Backends
provide connections and transactions (``sqlite.py``, ``postgres.py``); the modules here own
every query, one per aggregate over the shared transaction (``core.py``), so both backends
behave the same and one test suite covers both. ``SqlStore`` composes them: callers keep one
object, and each consumer names only the protocol it uses (``proxy.stores.protocols``)."""

from __future__ import annotations

from proxy.stores.sql.alts import AltsSql
from proxy.stores.sql.core import Row, SqlBase, Tx, checked_params
from proxy.stores.sql.corrections import CorrectionsSql
from proxy.stores.sql.costs import CostsSql
from proxy.stores.sql.decisions import DecisionsSql
from proxy.stores.sql.jobs import JobsSql
from proxy.stores.sql.moderation import ModerationSql
from proxy.stores.sql.qa import QaSql
from proxy.stores.sql.quality import QualitySql
from proxy.stores.sql.reviews import ReviewsSql
from proxy.stores.sql.schema import SchemaSql
from proxy.stores.sql.search import words
from proxy.stores.sql.sessions import SessionsSql
from proxy.stores.sql.sources import SourcesSql

__all__ = ["Row", "SqlBase", "SqlStore", "Tx", "checked_params", "words"]


class SqlStore(
    SchemaSql,
    SourcesSql,
    ModerationSql,
    DecisionsSql,
    AltsSql,
    ReviewsSql,
    SessionsSql,
    QaSql,
    JobsSql,
    QualitySql,
    CostsSql,
    CorrectionsSql,
):
    """Every aggregate over one backend's transactions: the object the server, the lane and
    the commands open (``open_store``)."""
