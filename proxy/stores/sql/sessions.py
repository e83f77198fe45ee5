"""Reviewers' sessions, shared by every node so a sign-in holds wherever a request lands."""

from __future__ import annotations

import time

from proxy.stores.sql.core import SqlBase


class SessionsSql(SqlBase):
    """Signed-in sessions, by a digest of their secret."""

    def open_session(self, key: str, reviewer: str, expires: float) -> None:
        """Record a signed-in session (``key``: a digest of its secret); expired ones go."""
        with self.transaction() as tx:
            tx.run("DELETE FROM admin_sessions WHERE expires < ?", (time.time(),))
            tx.run(
                "INSERT INTO admin_sessions (key, reviewer, expires) VALUES (?, ?, ?)",
                (key, reviewer, expires),
            )

    def session_open(self, key: str) -> bool:
        with self.transaction(write=False) as tx:
            rows = tx.run(
                "SELECT key FROM admin_sessions WHERE key = ? AND expires >= ?",
                (key, time.time()),
            )
        return bool(rows)

    def close_session(self, key: str) -> bool:
        with self.transaction() as tx:
            rows = tx.run("DELETE FROM admin_sessions WHERE key = ? RETURNING key", (key,))
        return bool(rows)
