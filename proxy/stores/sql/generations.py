"""Decision generations: part of every cache key, so a decision changes what is served at
once, and each bump queues the CDN purge in the same transaction."""

from __future__ import annotations

from proxy.sources.paths import SourcePath, SourcePrefix, ancestors
from proxy.stores.sql.core import Tx
from proxy.stores.sql.purges import PurgesSql


class GenerationsSql(PurgesSql):
    """Per-prefix counters whose sum over a path's folders is its generation."""

    def _bump(
        self, tx: Tx, prefix: SourcePrefix, reason: str = "decision", *, purge: bool = True
    ) -> None:
        """A decision changed what is served for ``prefix`` (a source, or a folder and all
        below it; ``""`` is every source): a new generation for the cache keys, and a CDN
        purge in the outbox, in the decision's own transaction, so neither can be lost."""
        tx.run(
            "INSERT INTO generations (prefix, n) VALUES (?, 1) "
            "ON CONFLICT (prefix) DO UPDATE SET n = generations.n + 1",
            (prefix,),
        )
        if purge:
            self._queue_purge(tx, prefix, reason)

    def bump_generation(self, prefix: SourcePrefix, reason: str = "purge") -> None:
        with self.transaction() as tx:
            self._bump(tx, prefix, reason)

    def generation(self, path: SourcePath) -> int:
        """The sum of the counters of ``path`` and every folder above it: it grows with
        every decision on any of them."""
        with self.transaction(write=False) as tx:
            return self._generation(tx, path)

    def _generation(self, tx: Tx, path: SourcePath) -> int:
        covering = ancestors(path)
        rows = tx.run(
            "SELECT COALESCE(SUM(n), 0) FROM generations "
            f"WHERE prefix IN ({', '.join('?' for _ in covering)})",
            covering,
        )
        return int(rows[0][0] or 0)
