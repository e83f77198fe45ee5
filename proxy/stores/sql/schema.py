"""The schema: migrations applied in order, once, and what the search migration must index
of the rows written before it."""

from __future__ import annotations

import time

from proxy.sources.paths import SourcePath
from proxy.stores.migrations import MIGRATIONS, statements
from proxy.stores.sql.search import SearchSql

SEARCH_MIGRATION = 9


class SchemaSql(SearchSql):
    """Brings a database up to the schema this code writes."""

    def migrate(self) -> list[int]:
        """Apply every migration not yet recorded; returns the versions applied."""
        applied: list[int] = []
        with self.transaction() as tx:
            tx.run(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                "version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                "applied_at DOUBLE PRECISION NOT NULL)"
            )
            self._lock_migrations(tx)
            done = {row[0] for row in tx.run("SELECT version FROM schema_migrations")}
            for migration in MIGRATIONS:
                if migration.version in done:
                    continue
                for statement in statements(migration.for_dialect(self.dialect), pk=self.pk):
                    tx.run(statement)
                tx.run(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                    (migration.version, migration.name, time.time()),
                )
                applied.append(migration.version)
            if SEARCH_MIGRATION in applied:  # index what was written before the index
                known = tx.run("SELECT path FROM sources UNION SELECT path FROM alt_texts")
                for (path,) in known:
                    self._index(tx, SourcePath(path))
        return applied

    def schema_version(self) -> int:
        with self.transaction(write=False) as tx:
            rows = tx.run("SELECT MAX(version) FROM schema_migrations")
        return int(rows[0][0] or 0)
