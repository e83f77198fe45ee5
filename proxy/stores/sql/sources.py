"""Sources: the facts the lane learned about each picture (size, class, faces, perceptual
hash), and the near-duplicate groups those hashes form."""

from __future__ import annotations

import hashlib
import time
from typing import Any

from proxy.duplicates.index import chunks, hamming, parse_phash
from proxy.sources.paths import SourcePath
from proxy.stores.base import SourceRecord
from proxy.stores.sql.core import Row, Tx, signed64
from proxy.stores.sql.search import SearchSql

DUPLICATE_CHUNKS = 8  # 8 x 8 bits: exact-chunk lookups find every hash within distance 7
DUPLICATE_GROUP_DISTANCE = 6  # bits: near-duplicates share a group (qa.duplicate_distance)


def _group_name(path: str) -> str:
    return "dup" + hashlib.sha256(path.encode()).hexdigest()[:10]


class SourcesSql(SearchSql):
    """What is known of each source; every change rewrites its search document."""

    _SOURCE_COLUMNS = (
        "path, phash, width, height, format, bytes, content_class, content_confidence, "
        "moderation_status, moderation_score, first_seen, last_seen, faces, dup_group"
    )

    def record_source(self, record: SourceRecord) -> tuple[SourceRecord, bool]:
        """Insert or refresh a source's facts; returns the stored row and whether it is new.
        Moderation is never reset here: only a new scan or a human changes it."""
        now = time.time()
        with self.transaction() as tx:
            before = tx.run("SELECT phash FROM sources WHERE path = ?", (record.path,))
            tx.run(
                "INSERT INTO sources (path, phash, width, height, format, bytes, content_class, "
                "content_confidence, faces, first_seen, last_seen) "
                "VALUES (?,?,?,?,?,?,?,?,?,?,?) "
                "ON CONFLICT (path) DO UPDATE SET "
                "phash = COALESCE(excluded.phash, sources.phash), "
                "width = COALESCE(excluded.width, sources.width), "
                "height = COALESCE(excluded.height, sources.height), "
                "format = COALESCE(excluded.format, sources.format), "
                "bytes = COALESCE(excluded.bytes, sources.bytes), "
                "content_class = COALESCE(excluded.content_class, sources.content_class), "
                "content_confidence = COALESCE(excluded.content_confidence, "
                "sources.content_confidence), faces = COALESCE(excluded.faces, sources.faces), "
                "last_seen = excluded.last_seen",
                (
                    record.path,
                    record.phash,
                    record.width,
                    record.height,
                    record.format,
                    record.bytes,
                    record.content_class,
                    record.content_confidence,
                    record.faces,
                    now,
                    now,
                ),
            )
            if record.phash and (not before or before[0][0] != record.phash):
                self._index_phash(tx, record.path, record.phash)
                self._group_duplicates(tx, record.path, record.phash)
            self._index(tx, record.path)
            row = tx.run(
                f"SELECT {self._SOURCE_COLUMNS} FROM sources WHERE path = ?", (record.path,)
            )
        return self._source(row[0]), not before

    def _index_phash(self, tx: Tx, path: SourcePath, phash: str) -> None:
        tx.run("DELETE FROM phash_chunks WHERE path = ?", (path,))
        for number, value in enumerate(chunks(parse_phash(phash), DUPLICATE_CHUNKS)):
            tx.run(
                "INSERT INTO phash_chunks (chunk, value, path) VALUES (?, ?, ?)",
                (number, signed64(value), path),
            )

    def source(self, path: SourcePath) -> SourceRecord | None:
        with self.transaction(write=False) as tx:
            rows = tx.run(f"SELECT {self._SOURCE_COLUMNS} FROM sources WHERE path = ?", (path,))
        return self._source(rows[0]) if rows else None

    @staticmethod
    def _source(row: Row) -> SourceRecord:
        return SourceRecord(
            path=SourcePath(row[0]),
            phash=row[1],
            width=row[2],
            height=row[3],
            format=row[4],
            bytes=row[5],
            content_class=row[6],
            content_confidence=row[7],
            moderation_status=row[8],
            moderation_score=row[9],
            first_seen=row[10],
            last_seen=row[11],
            faces=row[12],
            dup_group=row[13],
        )

    def near_duplicates(
        self, phash: str, max_distance: int, *, exclude: SourcePath | None = None
    ) -> list[tuple[SourcePath, int]]:
        """Sources within ``max_distance`` bits: exact matches on any of the 8 chunks find
        every candidate (pigeonhole, up to distance 7), then the full distance filters."""
        if max_distance >= DUPLICATE_CHUNKS:
            raise ValueError(f"max_distance must be below {DUPLICATE_CHUNKS}")
        wanted = parse_phash(phash)
        parts = chunks(wanted, DUPLICATE_CHUNKS)
        where = " OR ".join("(c.chunk = ? AND c.value = ?)" for _ in parts)
        params: list[Any] = []
        for number, value in enumerate(parts):
            params += [number, signed64(value)]
        with self.transaction(write=False) as tx:
            rows = tx.run(
                "SELECT DISTINCT s.path, s.phash FROM phash_chunks c "
                f"JOIN sources s ON s.path = c.path WHERE {where}",
                params,
            )
        found = [
            (SourcePath(path), hamming(wanted, parse_phash(other)))
            for path, other in rows
            if path != exclude and other
        ]
        return sorted((hit for hit in found if hit[1] <= max_distance), key=lambda h: (h[1], h[0]))

    def _group_duplicates(self, tx: Tx, path: SourcePath, phash: str) -> None:
        """Join the group of the oldest near-duplicate (within ``DUPLICATE_GROUP_DISTANCE``
        bits), or start one: a group is named after its first member."""
        wanted = parse_phash(phash)
        parts = chunks(wanted, DUPLICATE_CHUNKS)
        where = " OR ".join("(c.chunk = ? AND c.value = ?)" for _ in parts)
        params: list[Any] = []
        for number, value in enumerate(parts):
            params += [number, signed64(value)]
        rows = tx.run(
            "SELECT DISTINCT s.path, s.phash, s.first_seen, s.dup_group FROM phash_chunks c "
            f"JOIN sources s ON s.path = c.path WHERE ({where}) AND s.path <> ?",
            [*params, path],
        )
        near = sorted(
            (row[2], row[0], row[3])
            for row in rows
            if row[1] and hamming(wanted, parse_phash(row[1])) <= DUPLICATE_GROUP_DISTANCE
        )
        group = (near[0][2] or _group_name(near[0][1])) if near else _group_name(path)
        tx.run("UPDATE sources SET dup_group = ? WHERE path = ?", (group, path))

    def sources_seen(self, since: float = 0.0) -> int:
        """Sources first seen at or after ``since`` (epoch seconds)."""
        with self.transaction(write=False) as tx:
            rows = tx.run("SELECT COUNT(*) FROM sources WHERE first_seen >= ?", (since,))
        return int(rows[0][0] or 0)
