"""Alt texts: a human's text always stands over a model's, and one picture under several
paths is described once."""

from __future__ import annotations

import time

from proxy.sources.paths import SourcePath
from proxy.stores.base import AltText
from proxy.stores.sql.core import Row, Tx, as_json, from_json
from proxy.stores.sql.search import SearchSql

ALT_RANK = {"user": 4, "reviewed": 3, "machine": 2, "draft": 1, "empty": 0}


class AltsSql(SearchSql):
    """Alt texts and the claims that keep two copies of a picture from being described twice."""

    _ALT_COLUMNS = "path, phash, text, status, confidence, model, context, reused_from, updated"

    def put_alt(self, alt: AltText) -> AltText:
        stamped = AltText(**{**alt.__dict__, "updated": time.time()})
        with self.transaction() as tx:
            self._put_alt(tx, stamped)
        return stamped

    def _put_alt(self, tx: Tx, alt: AltText) -> None:
        tx.run(
            f"INSERT INTO alt_texts ({self._ALT_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?) "
            "ON CONFLICT (path) DO UPDATE SET phash = excluded.phash, text = excluded.text, "
            "status = excluded.status, confidence = excluded.confidence, "
            "model = excluded.model, context = excluded.context, "
            "reused_from = excluded.reused_from, updated = excluded.updated",
            (
                alt.path,
                alt.phash,
                alt.text,
                alt.status,
                alt.confidence,
                alt.model,
                as_json(alt.context),
                alt.reused_from,
                alt.updated,
            ),
        )
        self._index(tx, alt.path)

    def put_machine_alt(self, alt: AltText) -> bool:
        """Store a model's text unless a human already wrote or reviewed one (their word
        stands); returns whether it was stored."""
        stamped = AltText(**{**alt.__dict__, "updated": time.time()})
        with self.transaction() as tx:
            rows = tx.run("SELECT status FROM alt_texts WHERE path = ?", (alt.path,))
            if rows and rows[0][0] in ("reviewed", "user"):
                return False
            self._put_alt(tx, stamped)
        return True

    def alt(self, path: SourcePath) -> AltText | None:
        with self.transaction(write=False) as tx:
            rows = tx.run(f"SELECT {self._ALT_COLUMNS} FROM alt_texts WHERE path = ?", (path,))
        return self._alt(rows[0]) if rows else None

    def alt_by_phash(self, phash: str, *, exclude: SourcePath | None = None) -> AltText | None:
        """The best text already written for the same picture under another path."""
        with self.transaction(write=False) as tx:
            rows = tx.run(
                f"SELECT {self._ALT_COLUMNS} FROM alt_texts WHERE phash = ? AND path <> ?",
                (phash, exclude or ""),
            )
        usable = [self._alt(row) for row in rows if row[3] in ("machine", "reviewed", "user")]
        usable.sort(key=lambda alt: (ALT_RANK[alt.status], alt.updated), reverse=True)
        return usable[0] if usable else None

    def claim_phash(self, phash: str, path: SourcePath, ttl_s: float) -> bool:
        """Claim the right to describe a picture for ``ttl_s``, so two copies of it are not
        sent to the model at once; the holder may renew, others wait for its text."""
        now = time.time()
        with self.transaction() as tx:
            rows = tx.run(
                "INSERT INTO phash_claims (phash, path, until) VALUES (?, ?, ?) "
                "ON CONFLICT (phash) DO UPDATE SET path = excluded.path, until = excluded.until "
                "WHERE phash_claims.until < ? OR phash_claims.path = excluded.path RETURNING path",
                (phash, path, now + ttl_s, now),
            )
        return bool(rows)

    @staticmethod
    def _alt(row: Row) -> AltText:
        return AltText(
            path=SourcePath(row[0]),
            phash=row[1],
            text=row[2],
            status=row[3],
            confidence=row[4],
            model=row[5],
            context=from_json(row[6]) or {},
            reused_from=row[7],
            updated=row[8],
        )

    def apply_alt(self, tx: Tx, alt: AltText) -> None:
        self._put_alt(tx, AltText(**{**alt.__dict__, "updated": time.time()}))

    def alt_confidences(self) -> list[float]:
        """The VLM's confidence of every alt text that has one (drafts, published, kept)."""
        with self.transaction(write=False) as tx:
            rows = tx.run("SELECT confidence FROM alt_texts WHERE confidence IS NOT NULL")
        return [float(row[0]) for row in rows]
