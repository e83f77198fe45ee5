"""Moderation: verdicts belong to the bytes (a SHA-256 digest), not the path, so a picture
served under several paths, or uploaded again, is judged once."""

from __future__ import annotations

import time

from proxy.sources.paths import SourcePath
from proxy.stores.sql.core import Tx
from proxy.stores.sql.generations import GenerationsSql
from proxy.stores.sql.search import SearchSql


class ModerationSql(SearchSql, GenerationsSql):
    """Verdicts on content, and the sources that hold it."""

    def set_moderation(self, path: SourcePath, status: str, score: float | None) -> None:
        with self.transaction() as tx:
            tx.run(
                "UPDATE sources SET moderation_status = ?, moderation_score = ? WHERE path = ?",
                (status, score, path),
            )
            self._index(tx, path)

    def moderation_of(self, path: SourcePath, identity: str) -> str | None:
        """The verdict on ``path``'s content as of ``identity``; None when that content was
        never bound to a digest (new bytes, or never seen): it must be scanned first."""
        with self.transaction(write=False) as tx:
            rows = tx.run(
                "SELECT moderation_status FROM sources WHERE path = ? AND content_identity = ?",
                (path, identity),
            )
        status = rows[0][0] if rows else None
        return None if status in (None, "unscanned") else str(status)

    def bind_content(self, path: SourcePath, identity: str, digest: str) -> str | None:
        """Record that ``path`` at ``identity`` holds the bytes ``digest``, and take over the
        verdict those bytes already have (under any path); None when they have none yet."""
        now = time.time()
        with self.transaction() as tx:
            rows = tx.run("SELECT status, score FROM verdicts WHERE digest = ?", (digest,))
            status, score = (rows[0][0], rows[0][1]) if rows else ("unscanned", None)
            tx.run(
                "INSERT INTO sources (path, first_seen, last_seen, content_identity, "
                "content_digest, moderation_status, moderation_score) VALUES (?,?,?,?,?,?,?) "
                "ON CONFLICT (path) DO UPDATE SET content_identity = excluded.content_identity, "
                "content_digest = excluded.content_digest, "
                "moderation_status = excluded.moderation_status, "
                "moderation_score = excluded.moderation_score, last_seen = excluded.last_seen",
                (path, now, now, identity, digest, status, score),
            )
            self._index(tx, path)
        return None if status == "unscanned" else str(status)

    def moderation_of_digest(self, digest: str) -> str | None:
        with self.transaction(write=False) as tx:
            rows = tx.run("SELECT status FROM verdicts WHERE digest = ?", (digest,))
        return str(rows[0][0]) if rows else None

    def set_verdict(
        self, digest: str, status: str, score: float | None, *, human: bool = False
    ) -> list[SourcePath]:
        """Judge the bytes ``digest`` wherever they are served; returns those paths. A
        machine verdict never replaces a human's."""
        with self.transaction() as tx:
            return self.apply_verdict(tx, digest, status, score, human=human)

    def apply_verdict(
        self, tx: Tx, digest: str, status: str, score: float | None, *, human: bool
    ) -> list[SourcePath]:
        stored = tx.run(
            "INSERT INTO verdicts (digest, status, score, by_human, updated) VALUES (?,?,?,?,?) "
            "ON CONFLICT (digest) DO UPDATE SET status = excluded.status, "
            "score = COALESCE(excluded.score, verdicts.score), by_human = excluded.by_human, "
            "updated = excluded.updated WHERE excluded.by_human = 1 OR verdicts.by_human = 0 "
            "RETURNING status, score",
            (digest, status, score, int(human), time.time()),
        )
        if not stored:  # a human already judged these bytes
            return []
        judged = "SELECT path, moderation_status FROM sources WHERE content_digest = ?"
        before: dict[str, str] = {row[0]: row[1] for row in tx.run(judged, (digest,))}
        rows = tx.run(
            "UPDATE sources SET moderation_status = ?, moderation_score = ? "
            "WHERE content_digest = ? RETURNING path",
            (stored[0][0], stored[0][1], digest),
        )
        paths = [SourcePath(row[0]) for row in rows]
        for path in paths:
            # The CDN holds nothing of bytes never judged (unscanned is never served), nor
            # anything new when the verdict stays the same.
            was = before.get(path)
            changed = was not in (None, "unscanned") and was != stored[0][0]
            self._bump(tx, path, "moderation", purge=changed)
            self._index(tx, path)
        return paths

    def apply_moderation(self, tx: Tx, path: SourcePath, status: str) -> None:
        """A verdict on whatever ``path`` holds (an item that names no digest)."""
        tx.run("UPDATE sources SET moderation_status = ? WHERE path = ?", (status, path))
        self._bump(tx, path, "moderation")
        self._index(tx, path)

    def nsfw_scores(self) -> list[float]:
        """The NSFW score of every picture (bytes) the model judged."""
        with self.transaction(write=False) as tx:
            rows = tx.run("SELECT score FROM verdicts WHERE score IS NOT NULL")
        return [float(row[0]) for row in rows]
