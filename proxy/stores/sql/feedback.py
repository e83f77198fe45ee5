"""Feedback: every human decision kept beside the AI output it judged, the tallies of what
the AI published alone, and the thresholds calibration applied."""

from __future__ import annotations

import time
from collections.abc import Iterator

from proxy.sources.paths import SourcePath
from proxy.stores.base import Feedback
from proxy.stores.sql.core import SqlBase, Tx, as_json, from_json


class FeedbackSql(SqlBase):
    """The flywheel's records: feedback, outcomes, thresholds."""

    def add_feedback(self, feedback: Feedback) -> None:
        with self.transaction() as tx:
            self._add_feedback(tx, feedback)

    def _add_feedback(self, tx: Tx, feedback: Feedback) -> None:
        tx.run(
            "INSERT INTO feedback (review_id, path, component, action, ai_output, correction, "
            "reason, reviewer, seconds, context, created) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            (
                feedback.review_id,
                feedback.path,
                feedback.component,
                feedback.action,
                as_json(feedback.ai_output),
                None if feedback.correction is None else as_json(feedback.correction),
                feedback.reason,
                feedback.reviewer,
                feedback.seconds,
                as_json(feedback.context),
                feedback.created or time.time(),
            ),
        )

    def feedback(self, *, since: float = 0.0, limit: int = 10_000) -> Iterator[Feedback]:
        """Feedback in order, paged so an export never holds the whole table."""
        last_id = 0
        while True:
            with self.transaction(write=False) as tx:
                rows = tx.run(
                    "SELECT id, review_id, path, component, action, ai_output, correction, "
                    "reason, reviewer, seconds, context, created FROM feedback "
                    "WHERE id > ? AND created >= ? ORDER BY id LIMIT ?",
                    (last_id, since, limit),
                )
            for r in rows:
                yield Feedback(
                    id=int(r[0]),
                    review_id=r[1],
                    path=SourcePath(r[2]),
                    component=r[3],
                    action=r[4],
                    ai_output=from_json(r[5]) or {},
                    correction=from_json(r[6]),
                    reason=r[7],
                    reviewer=r[8],
                    seconds=r[9],
                    context=from_json(r[10]) or {},
                    created=r[11],
                )
            if len(rows) < limit:
                return
            last_id = int(rows[-1][0])

    def feedback_rows(self) -> list[tuple[str, str, float | None, float, bool, bool]]:
        """(component, action, seconds, created, from_review, after_publication) of every
        human decision, oldest first."""
        with self.transaction(write=False) as tx:
            rows = tx.run(
                "SELECT component, action, seconds, created, review_id, context FROM feedback "
                "ORDER BY id"
            )
        return [
            (
                r[0],
                r[1],
                r[2],
                r[3],
                r[4] is not None,
                bool((from_json(r[5]) or {}).get("published")),
            )
            for r in rows
        ]

    def count_outcome(self, component: str, outcome: str, n: int = 1) -> None:
        """Tally an AI decision: ``auto`` (published alone) or ``review`` (sent to a human)."""
        with self.transaction() as tx:
            tx.run(
                "INSERT INTO ai_outcomes (component, outcome, n) VALUES (?, ?, ?) "
                "ON CONFLICT (component, outcome) DO UPDATE SET n = ai_outcomes.n + excluded.n",
                (component, outcome, n),
            )

    def outcomes(self) -> dict[str, dict[str, int]]:
        with self.transaction(write=False) as tx:
            rows = tx.run("SELECT component, outcome, n FROM ai_outcomes")
        found: dict[str, dict[str, int]] = {}
        for component, outcome, n in rows:
            found.setdefault(component, {})[outcome] = int(n)
        return found

    def threshold(self, component: str) -> float | None:
        """The threshold calibration applied for ``component``, if any."""
        with self.transaction(write=False) as tx:
            rows = tx.run("SELECT value FROM thresholds WHERE component = ?", (component,))
        return float(rows[0][0]) if rows else None

    def set_threshold(
        self, component: str, value: float, configured: float | None, feedback: Feedback
    ) -> None:
        """Apply a calibrated threshold and log it as a decision, in one transaction."""
        with self.transaction() as tx:
            tx.run(
                "INSERT INTO thresholds (component, value, configured, updated) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (component) DO UPDATE SET "
                "value = excluded.value, configured = excluded.configured, "
                "updated = excluded.updated",
                (component, value, configured, time.time()),
            )
            self._add_feedback(tx, feedback)
