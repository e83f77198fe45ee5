"""q=auto: verified quality decisions, shared by every node, and the measured pairs the
quality predictor is retrained on."""

from __future__ import annotations

import time
from collections.abc import Sequence

from proxy.stores.sql.core import SqlBase, as_json, from_json


class QualitySql(SqlBase):
    """Verified decisions and training pairs."""

    def put_quality_decision(
        self,
        key: str,
        *,
        phash: str,
        fmt: str,
        bucket: int,
        policy: str,
        model: str,
        quality: int | None,
        score: float | None,
    ) -> None:
        """A verified decision (``quality`` None: a format decision, ``fmt`` won)."""
        with self.transaction() as tx:
            tx.run(
                "INSERT INTO quality_decisions (key, phash, format, bucket, policy, model, "
                "quality, score, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (key) DO UPDATE SET format = excluded.format, "
                "quality = excluded.quality, score = excluded.score, created = excluded.created",
                (key, phash, fmt, bucket, policy, model, quality, score, time.time()),
            )

    def quality_decision(self, key: str) -> tuple[str, int | None, float | None] | None:
        """(format, quality, score) of a verified decision."""
        with self.transaction(write=False) as tx:
            rows = tx.run(
                "SELECT format, quality, score FROM quality_decisions WHERE key = ?", (key,)
            )
        if not rows:
            return None
        fmt, quality, score = rows[0]
        return str(fmt), None if quality is None else int(quality), score

    def add_quality_pair(
        self,
        phash: str,
        features: Sequence[float],
        fmt: str,
        target: float,
        quality: int,
        score: float | None,
        bucket: int = 0,
    ) -> None:
        """A measured (features, format, target -> quality), one per picture, format, target
        and output size bucket (a later measurement replaces an earlier one)."""
        with self.transaction() as tx:
            tx.run(
                "INSERT INTO quality_pairs (phash, features, format, target, bucket, quality, "
                "score, created) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (phash, format, target, bucket) "
                "DO UPDATE SET features = excluded.features, quality = excluded.quality, "
                "score = excluded.score, created = excluded.created",
                (
                    phash,
                    as_json([float(x) for x in features]),
                    fmt,
                    target,
                    bucket,
                    quality,
                    score,
                    time.time(),
                ),
            )

    def quality_pairs(self) -> list[tuple[str, list[float], str, float, int]]:
        """Every measured pair: (phash, features, format, target, quality)."""
        with self.transaction(write=False) as tx:
            rows = tx.run(
                "SELECT phash, features, format, target, quality FROM quality_pairs ORDER BY id"
            )
        return [(r[0], list(from_json(r[1]) or []), r[2], float(r[3]), int(r[4])) for r in rows]

    def count_quality_pairs(self) -> int:
        with self.transaction(write=False) as tx:
            rows = tx.run("SELECT COUNT(*) FROM quality_pairs")
        return int(rows[0][0] or 0)
