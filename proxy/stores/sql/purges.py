"""The CDN purge outbox: purges are written in the decision's own transaction and sent
later by the outbox sender, so a decision never commits without its purge."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from proxy.sources.paths import SourcePrefix
from proxy.stores.base import PurgeItem
from proxy.stores.sql.core import Row, SqlBase, Tx


class PurgesSql(SqlBase):
    """Queue, lease, send, retry and dead-letter CDN purges."""

    def _queue_purge(self, tx: Tx, prefix: SourcePrefix, reason: str) -> None:
        """Coalesced per prefix (one tag): a purge still waiting (due, not being sent) adds
        the new reason to its own (the CDN hears of both events); every one takes a new
        ``seq`` (so one being sent now goes again); one waiting only for its repeat is due
        at once, and a dead one comes back to life."""
        now = time.time()
        tx.run(
            "INSERT INTO purge_outbox (prefix, reason, seq, status, attempts, first_queued, "
            "next_at) VALUES (?, ?, 1, 'pending', 0, ?, ?) ON CONFLICT (prefix) DO UPDATE SET "
            "reason = CASE WHEN purge_outbox.status = 'pending' AND purge_outbox.repeated = 0 "
            "AND purge_outbox.next_at <= excluded.next_at "  # due, not leased to a sender
            "AND purge_outbox.reason <> excluded.reason "
            "AND LENGTH(purge_outbox.reason) + LENGTH(excluded.reason) < 200 "
            "THEN purge_outbox.reason || ',' || excluded.reason ELSE excluded.reason END, "
            "seq = purge_outbox.seq + 1, status = 'pending', "
            "repeated = 0, "
            "attempts = CASE WHEN purge_outbox.status = 'dead' THEN 0 "
            "ELSE purge_outbox.attempts END, "
            "first_queued = CASE WHEN purge_outbox.status = 'dead' THEN excluded.first_queued "
            "ELSE purge_outbox.first_queued END, "
            "next_at = CASE WHEN purge_outbox.status = 'dead' OR purge_outbox.repeated = 1 "
            "THEN excluded.next_at ELSE purge_outbox.next_at END",
            (prefix, reason[:200], now, now),
        )

    def queue_purge(self, prefix: SourcePrefix, reason: str) -> None:
        """A CDN purge alone (the caches' keys already changed some other way)."""
        with self.transaction() as tx:
            self._queue_purge(tx, prefix, reason)

    _PURGE_COLUMNS = "prefix, reason, seq, attempts, first_queued, last_error, repeated"

    def claim_purges(self, limit: int, lease_s: float) -> list[PurgeItem]:
        """Take up to ``limit`` due purges for ``lease_s``: a sender that dies gives them
        back when the lease ends; two senders never take the same one."""
        now = time.time()
        with self.transaction() as tx:
            rows = tx.run(
                f"SELECT {self._PURGE_COLUMNS} FROM purge_outbox "
                "WHERE status = 'pending' AND next_at <= ? ORDER BY next_at, prefix LIMIT ?"
                + self._skip_locked(),
                (now, limit),
            )
            for row in rows:
                tx.run(
                    "UPDATE purge_outbox SET next_at = ? WHERE prefix = ?", (now + lease_s, row[0])
                )
        return [self._purge(row) for row in rows]

    def purges_sent(self, items: Sequence[PurgeItem], repeat_after_s: float = 0.0) -> None:
        """Done with these, after one repeat ``repeat_after_s`` later when that is set: an
        edge request already in flight at the first purge (or answered by a node within its
        2 s memo) can store the old answer after it. One queued again while it was sent
        stays, due at once."""
        now = time.time()
        with self.transaction() as tx:
            for item in items:
                if repeat_after_s > 0 and not item.repeated:
                    kept = tx.run(
                        "UPDATE purge_outbox SET repeated = 1, next_at = ?, attempts = 0 "
                        "WHERE prefix = ? AND seq = ? RETURNING prefix",
                        (now + repeat_after_s, item.prefix, item.seq),
                    )
                else:
                    kept = tx.run(
                        "DELETE FROM purge_outbox WHERE prefix = ? AND seq = ? RETURNING prefix",
                        (item.prefix, item.seq),
                    )
                if not kept:
                    tx.run(
                        "UPDATE purge_outbox SET next_at = ?, attempts = 0 "
                        "WHERE prefix = ? AND status = 'pending'",
                        (now, item.prefix),
                    )

    def release_purges(self, items: Sequence[PurgeItem]) -> None:
        """Give claimed purges back unsent (a sender stopping), due at once."""
        with self.transaction() as tx:
            for item in items:
                tx.run(
                    "UPDATE purge_outbox SET next_at = ? WHERE prefix = ? AND status = 'pending'",
                    (time.time(), item.prefix),
                )

    def purges_failed(
        self,
        items: Sequence[PurgeItem],
        error: str,
        retry_in: Callable[[int], float],
        dead_after_s: float,
    ) -> int:
        """Back to the outbox after ``retry_in(attempts)``; dead-lettered once the purge has
        waited ``dead_after_s``. Returns how many were dead-lettered."""
        now = time.time()
        dead = 0
        with self.transaction() as tx:
            for item in items:
                attempts = item.attempts + 1
                expired = now - item.first_queued >= dead_after_s
                dead += expired
                tx.run(
                    "UPDATE purge_outbox SET attempts = ?, last_error = ?, next_at = ?, "
                    "status = ? WHERE prefix = ? AND status = 'pending'",
                    (
                        attempts,
                        error[:2000],
                        now + retry_in(attempts),
                        "dead" if expired else "pending",
                        item.prefix,
                    ),
                )
        return dead

    def purge_counts(self) -> dict[str, float]:
        """``pending`` and ``dead`` purges, and how long the oldest pending one has waited."""
        with self.transaction(write=False) as tx:
            rows = tx.run(
                "SELECT status, COUNT(*), MIN(first_queued) FROM purge_outbox GROUP BY status"
            )
        found: dict[str, float] = {"pending": 0, "dead": 0, "oldest_pending_s": 0.0}
        for status, n, oldest in rows:
            found[str(status)] = int(n)
            if status == "pending" and oldest is not None:
                found["oldest_pending_s"] = round(max(0.0, time.time() - float(oldest)), 3)
        return found

    def purges(self, status: str = "dead", limit: int = 50) -> list[PurgeItem]:
        with self.transaction(write=False) as tx:
            rows = tx.run(
                f"SELECT {self._PURGE_COLUMNS} FROM purge_outbox WHERE status = ? "
                "ORDER BY first_queued LIMIT ?",
                (status, limit),
            )
        return [self._purge(row) for row in rows]

    @staticmethod
    def _purge(row: Row) -> PurgeItem:
        return PurgeItem(
            prefix=row[0],
            reason=row[1],
            seq=int(row[2]),
            attempts=int(row[3]),
            first_queued=float(row[4]),
            last_error=row[5],
            repeated=bool(row[6]),
        )
