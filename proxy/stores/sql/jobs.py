"""The lane's job queue: one job per (kind, subject), leased to one worker at a time; a
worker that dies gives its job back when the lease ends."""

from __future__ import annotations

import time
from typing import Any

from proxy.stores.base import Job
from proxy.stores.sql.core import Row, SqlBase, as_json, from_json


class JobsSql(SqlBase):
    """Enqueue, claim, finish and fail jobs."""

    _JOB_COLUMNS = "id, kind, subject, payload, status, attempts, run_after, last_error, worker"

    def enqueue(
        self,
        kind: str,
        subject: str,
        payload: dict[str, Any] | None = None,
        *,
        delay_s: float = 0.0,
        again: bool = False,
        version: str | None = None,
    ) -> bool:
        """Queue a job once per (kind, subject): idempotent. A finished or dead job runs
        again when ``again`` is set (a purge) or its ``version`` (the source's identity)
        changed (a new picture at the same path); a queued or running one is left alone."""
        now = time.time()
        body = {**(payload or {}), **({"version": version} if version is not None else {})}
        with self.transaction() as tx:
            inserted = tx.run(
                "INSERT INTO jobs (kind, subject, payload, status, attempts, run_after, created, "
                "updated) VALUES (?, ?, ?, 'queued', 0, ?, ?, ?) "
                "ON CONFLICT (kind, subject) DO NOTHING RETURNING id",
                (kind, subject, as_json(body), now + delay_s, now, now),
            )
            if inserted:
                return True
            if not again:
                if version is None:
                    return False
                rows = tx.run(
                    "SELECT payload FROM jobs WHERE kind = ? AND subject = ?", (kind, subject)
                )
                if not rows or (from_json(rows[0][0]) or {}).get("version") == version:
                    return False
            payload = body
            requeued = tx.run(
                "UPDATE jobs SET status = 'queued', attempts = 0, run_after = ?, payload = ?, "
                "last_error = NULL, lease_until = NULL, worker = NULL, updated = ? "
                "WHERE kind = ? AND subject = ? AND status IN ('done', 'dead') RETURNING id",
                (now + delay_s, as_json(payload or {}), now, kind, subject),
            )
        return bool(requeued)

    def claim(self, worker: str, lease_s: float) -> Job | None:
        """Lease the next ready job: queued and due, or running past an expired lease (its
        worker died). Attempts count claims, so a job that kills its worker dead-letters."""
        now = time.time()
        with self.transaction() as tx:
            ids = tx.run(self._claim_sql(), (now, now))
            if not ids:
                return None
            rows = tx.run(
                "UPDATE jobs SET status = 'running', attempts = attempts + 1, lease_until = ?, "
                f"worker = ?, updated = ? WHERE id = ? RETURNING {self._JOB_COLUMNS}",
                (now + lease_s, worker, now, ids[0][0]),
            )
        return self._job(rows[0])

    def finish(self, job: Job, worker: str) -> bool:
        """Mark done, only if this worker still holds the lease."""
        with self.transaction() as tx:
            rows = tx.run(
                "UPDATE jobs SET status = 'done', lease_until = NULL, last_error = NULL, "
                "updated = ? WHERE id = ? AND worker = ? AND status = 'running' RETURNING id",
                (time.time(), job.id, worker),
            )
        return bool(rows)

    def fail(self, job: Job, worker: str, error: str, *, retry_in_s: float | None) -> str:
        """Back to the queue after ``retry_in_s``, or dead-lettered when it is None."""
        status = "dead" if retry_in_s is None else "queued"
        now = time.time()
        with self.transaction() as tx:
            tx.run(
                "UPDATE jobs SET status = ?, run_after = ?, lease_until = NULL, last_error = ?, "
                "updated = ? WHERE id = ? AND worker = ? AND status = 'running'",
                (status, now + (retry_in_s or 0.0), error[:2000], now, job.id, worker),
            )
        return status

    def job(self, kind: str, subject: str) -> Job | None:
        with self.transaction(write=False) as tx:
            rows = tx.run(
                f"SELECT {self._JOB_COLUMNS} FROM jobs WHERE kind = ? AND subject = ?",
                (kind, subject),
            )
        return self._job(rows[0]) if rows else None

    def job_counts(self) -> dict[str, int]:
        with self.transaction(write=False) as tx:
            rows = tx.run("SELECT status, COUNT(*) FROM jobs GROUP BY status")
        return {status: int(n) for status, n in rows}

    @staticmethod
    def _job(row: Row) -> Job:
        return Job(
            id=int(row[0]),
            kind=row[1],
            subject=row[2],
            payload=from_json(row[3]) or {},
            status=row[4],
            attempts=int(row[5]),
            run_after=row[6],
            last_error=row[7],
            worker=row[8],
        )
