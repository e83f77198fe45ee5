"""The review queue: an item is decided once, with its feedback and its effect in the same
transaction. The effects usable in ``decide_review(apply=...)`` live with their aggregates
(``apply_override``, ``apply_alt``, ``apply_moderation``, ``apply_verdict``), so a decision
and its effect commit together or not at all."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from proxy.sources.paths import SourcePath
from proxy.stores.base import Feedback, ReviewConflict, ReviewItem, ReviewNotFound
from proxy.stores.sql.core import Row, Tx, as_json, from_json
from proxy.stores.sql.feedback import FeedbackSql


class ReviewsSql(FeedbackSql):
    """Open, list and decide review items."""

    _REVIEW_COLUMNS = "id, path, component, subject, status, payload, created, decided, decision"

    def open_review(
        self, path: SourcePath, component: str, subject: str, payload: dict[str, Any]
    ) -> ReviewItem | None:
        """Queue an item unless one is already pending for the same subject."""
        with self.transaction() as tx:
            pending = tx.run(
                "SELECT id FROM review_items WHERE component = ? AND subject = ? "
                "AND status = 'pending'",
                (component, subject),
            )
            if pending:
                return None
            rows = tx.run(
                "INSERT INTO review_items (path, component, subject, status, payload, created) "
                f"VALUES (?, ?, ?, 'pending', ?, ?) RETURNING {self._REVIEW_COLUMNS}",
                (path, component, subject, as_json(payload), time.time()),
            )
        return self._review(rows[0])

    def review(self, item_id: int) -> ReviewItem:
        with self.transaction(write=False) as tx:
            rows = tx.run(
                f"SELECT {self._REVIEW_COLUMNS} FROM review_items WHERE id = ?", (item_id,)
            )
        if not rows:
            raise ReviewNotFound(f"no review item {item_id}")
        return self._review(rows[0])

    def reviews(
        self,
        *,
        status: str | None = "pending",
        component: str | None = None,
        path: SourcePath | None = None,
        limit: int = 50,
        after_id: int = 0,
    ) -> list[ReviewItem]:
        where: list[str] = ["id > ?"]
        params: list[Any] = [after_id]
        for column, value in (("status", status), ("component", component), ("path", path)):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        with self.transaction(write=False) as tx:
            rows = tx.run(
                f"SELECT {self._REVIEW_COLUMNS} FROM review_items WHERE {' AND '.join(where)} "
                "ORDER BY id LIMIT ?",
                [*params, limit],
            )
        return [self._review(row) for row in rows]

    def review_counts(self) -> dict[str, dict[str, int]]:
        """{status: {component: n}}."""
        with self.transaction(write=False) as tx:
            rows = tx.run(
                "SELECT status, component, COUNT(*) FROM review_items GROUP BY status, component"
            )
        counts: dict[str, dict[str, int]] = {}
        for status, component, n in rows:
            counts.setdefault(status, {})[component] = int(n)
        return counts

    def decide_review(
        self,
        item_id: int,
        status: str,
        decision: dict[str, Any],
        feedback: Feedback,
        *,
        apply: Callable[[Tx], None] | None = None,
    ) -> ReviewItem:
        """Close a pending item, keep the feedback beside it, and apply its effect (an
        override, an alt text, a moderation verdict) in the same transaction."""
        with self.transaction() as tx:
            rows = tx.run("SELECT status FROM review_items WHERE id = ?", (item_id,))
            if not rows:
                raise ReviewNotFound(f"no review item {item_id}")
            if rows[0][0] != "pending":
                raise ReviewConflict(f"review item {item_id} is already {rows[0][0]}")
            updated = tx.run(
                "UPDATE review_items SET status = ?, decided = ?, decision = ? WHERE id = ? "
                f"RETURNING {self._REVIEW_COLUMNS}",
                (status, time.time(), as_json(decision), item_id),
            )
            self._add_feedback(tx, feedback)
            if apply is not None:
                apply(tx)
        return self._review(updated[0])

    @staticmethod
    def _review(row: Row) -> ReviewItem:
        return ReviewItem(
            id=int(row[0]),
            path=SourcePath(row[1]),
            component=row[2],
            subject=row[3],
            status=row[4],
            payload=from_json(row[5]) or {},
            created=row[6],
            decided=row[7],
            decision=from_json(row[8]),
        )
