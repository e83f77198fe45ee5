"""The store's logic, written once in the SQL that SQLite and PostgreSQL share. Backends
provide connections and transactions (``sqlite.py``, ``postgres.py``); this class owns
every query, so both behave the same and one test suite covers both."""

from __future__ import annotations

import hashlib
import json
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from proxy.duplicates.index import chunks, hamming, parse_phash
from proxy.errors import BadParameter
from proxy.sources.paths import SourcePath, ancestors
from proxy.stores.base import (
    AltText,
    Feedback,
    Job,
    Override,
    PurgeItem,
    QAResult,
    ReviewConflict,
    ReviewItem,
    ReviewNotFound,
    SearchHit,
    SourceRecord,
)
from proxy.stores.migrations import MIGRATIONS, statements

Row = tuple[Any, ...]
DUPLICATE_CHUNKS = 8  # 8 x 8 bits: exact-chunk lookups find every hash within distance 7
SEARCH_MIGRATION = 9
DUPLICATE_GROUP_DISTANCE = 6  # bits: near-duplicates share a group (qa.duplicate_distance)
_WORD = re.compile(r"[^\W_]+")


def words(text: str) -> list[str]:
    """Lower-case letters-and-digits runs: how paths, classes and queries are split for
    both backends' indexes alike (no operator of either query language survives)."""
    return _WORD.findall(text.lower())


def _group_name(path: str) -> str:
    return "dup" + hashlib.sha256(path.encode()).hexdigest()[:10]


ALT_RANK = {"user": 4, "reviewed": 3, "machine": 2, "draft": 1, "empty": 0}


class Tx(Protocol):
    """One transaction: ``?`` placeholders in, rows out."""

    def run(self, sql: str, params: Sequence[Any] = ()) -> list[Row]: ...


def checked_params(params: Sequence[Any]) -> tuple[Any, ...]:
    """The parameters of a statement, refusing text with a NUL byte on every backend alike:
    PostgreSQL cannot store one, and a request that carries one is bad input (400)."""
    for value in params:
        if isinstance(value, str) and "\x00" in value:
            raise BadParameter("text with a NUL byte cannot be stored")
    return tuple(params)


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _loads(text: str | None) -> Any:
    return None if text is None else json.loads(text)


def _signed64(value: int) -> int:
    """Chunks are stored as BIGINT; keep them in the signed range both databases accept."""
    return value - (1 << 64) if value >= 1 << 63 else value


class SqlStore(ABC):
    pk: str  # the primary-key column spelling for migrations
    dialect: str  # "sqlite" or "postgresql": which of a migration's own statements run

    @abstractmethod
    def transaction(self, *, write: bool = True) -> AbstractContextManager[Tx]:
        """A transaction; ``write`` takes the write lock up front where the backend has one."""

    @abstractmethod
    def _claim_sql(self) -> str:
        """Selects the id of one ready job, locking it where the backend can."""

    @abstractmethod
    def close(self) -> None: ...

    @property
    @abstractmethod
    def url(self) -> str: ...

    # -- schema ---------------------------------------------------------------------------

    def migrate(self) -> list[int]:
        """Apply every migration not yet recorded; returns the versions applied."""
        applied: list[int] = []
        with self.transaction() as tx:
            tx.run(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                "version INTEGER PRIMARY KEY, name TEXT NOT NULL, "
                "applied_at DOUBLE PRECISION NOT NULL)"
            )
            self._lock_migrations(tx)
            done = {row[0] for row in tx.run("SELECT version FROM schema_migrations")}
            for migration in MIGRATIONS:
                if migration.version in done:
                    continue
                for statement in statements(migration.for_dialect(self.dialect), pk=self.pk):
                    tx.run(statement)
                tx.run(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                    (migration.version, migration.name, time.time()),
                )
                applied.append(migration.version)
            if SEARCH_MIGRATION in applied:  # index what was written before the index
                known = tx.run("SELECT path FROM sources UNION SELECT path FROM alt_texts")
                for (path,) in known:
                    self._index(tx, SourcePath(path))
        return applied

    def _lock_migrations(self, tx: Tx) -> None:  # noqa: B027 - optional hook
        """Serialise concurrent migrators (several nodes starting at once)."""

    def schema_version(self) -> int:
        with self.transaction(write=False) as tx:
            rows = tx.run("SELECT MAX(version) FROM schema_migrations")
        return int(rows[0][0] or 0)

    # -- sources --------------------------------------------------------------------------

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
                (number, _signed64(value), path),
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

    def set_moderation(self, path: SourcePath, status: str, score: float | None) -> None:
        with self.transaction() as tx:
            tx.run(
                "UPDATE sources SET moderation_status = ?, moderation_score = ? WHERE path = ?",
                (status, score, path),
            )
            self._index(tx, path)

    # -- moderation verdicts: they belong to the bytes (a SHA-256 digest), not the path ----

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

    # -- decision generations: part of every cache key ---------------------------------

    def _bump(self, tx: Tx, prefix: str, reason: str = "decision", *, purge: bool = True) -> None:
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

    def bump_generation(self, prefix: str, reason: str = "purge") -> None:
        with self.transaction() as tx:
            self._bump(tx, prefix, reason)

    # -- the CDN purge outbox ---------------------------------------------------------------

    def _queue_purge(self, tx: Tx, prefix: str, reason: str) -> None:
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

    def queue_purge(self, prefix: str, reason: str) -> None:
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

    def _skip_locked(self) -> str:
        """Row locks for claims where the backend has them (SQLite's writer lock suffices)."""
        return ""

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

    def decisions_for(self, path: SourcePath) -> tuple[int, list[Override], list[tuple[str, str]]]:
        """One consistent read of what decides ``path``'s images: its generation, its
        human crops and the rules covering it (one transaction, so they agree)."""
        covering = ancestors(path)
        marks = ", ".join("?" for _ in covering)
        with self.transaction(write=False) as tx:
            generation = self._generation(tx, path)
            overrides = self._overrides(tx, path)
            rules = tx.run(
                f"SELECT prefix, rule FROM rules WHERE prefix IN ({marks}) ORDER BY prefix, rule",
                covering,
            )
        return generation, overrides, [(row[0], row[1]) for row in rules]

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
            params += [number, _signed64(value)]
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

    # -- duplicate groups and the search index -------------------------------------------

    def _group_duplicates(self, tx: Tx, path: SourcePath, phash: str) -> None:
        """Join the group of the oldest near-duplicate (within ``DUPLICATE_GROUP_DISTANCE``
        bits), or start one: a group is named after its first member."""
        wanted = parse_phash(phash)
        parts = chunks(wanted, DUPLICATE_CHUNKS)
        where = " OR ".join("(c.chunk = ? AND c.value = ?)" for _ in parts)
        params: list[Any] = []
        for number, value in enumerate(parts):
            params += [number, _signed64(value)]
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

    def _index(self, tx: Tx, path: SourcePath) -> None:
        """Rewrite ``path``'s search document from what the store knows now, inside the
        transaction that changed it: the index never lags the data."""
        self._lock_document(tx, path)
        source = tx.run(
            "SELECT content_class, faces, moderation_status, dup_group FROM sources WHERE path = ?",
            (path,),
        )
        alt = tx.run("SELECT text, status FROM alt_texts WHERE path = ?", (path,))
        content_class, faces, moderation, group = source[0] if source else (None, None, "", None)
        text, alt_status = alt[0] if alt else ("", "empty")
        folder = path.rpartition("/")[0]
        terms = " ".join(
            [
                *words(path),
                *(words(content_class) if content_class else []),
                *(["faces"] if faces else []),
                *(["moderation", moderation] if moderation else []),
                *([group] if group else []),
            ]
        )
        rows = tx.run(
            "INSERT INTO search_docs (path, folder, alt, alt_status, terms, content_class, "
            "faces, moderation, dup_group, updated) VALUES (?,?,?,?,?,?,?,?,?,?) "
            "ON CONFLICT (path) DO UPDATE SET folder = excluded.folder, alt = excluded.alt, "
            "alt_status = excluded.alt_status, terms = excluded.terms, "
            "content_class = excluded.content_class, faces = excluded.faces, "
            "moderation = excluded.moderation, dup_group = excluded.dup_group, "
            "updated = excluded.updated RETURNING id",
            (
                path,
                folder,
                text,
                alt_status,
                terms,
                content_class,
                faces,
                moderation or "unscanned",
                group,
                time.time(),
            ),
        )
        self._index_text(tx, int(rows[0][0]), text, terms)

    def _lock_document(self, tx: Tx, path: str) -> None:  # noqa: B027
        """Serialise rewrites of one document until commit, so each reads what the one
        before it wrote (SQLite's writer lock already does)."""

    def _index_text(self, tx: Tx, doc: int, alt: str, terms: str) -> None:  # noqa: B027
        """The backend's own full-text index, where it is not derived from ``search_docs``
        (PostgreSQL's tsvector is a generated column)."""

    def search(
        self,
        query: str,
        *,
        content_class: str | None = None,
        folder: str | None = None,
        limit: int = 20,
    ) -> list[SearchHit]:
        """Sources ranked by relevance to ``query`` (every word must match, as a prefix:
        alt text weighs more than path, class, faces, moderation and duplicate group);
        an empty query lists the newest, filtered."""
        tokens = words(query)[:16]
        where, params = ["1 = 1"], []
        if content_class:
            where.append("d.content_class = ?")
            params.append(content_class)
        if folder:
            where.append("(d.folder = ? OR d.folder LIKE ? ESCAPE '!')")
            escaped = folder.replace("!", "!!").replace("%", "!%").replace("_", "!_")
            params += [folder, escaped + "/%"]
        columns = "d.path, d.alt, d.alt_status, d.content_class, d.faces, d.moderation, d.dup_group"
        with self.transaction(write=False) as tx:
            if tokens:
                sql, first = self._match_sql(columns, " AND ".join(where), tokens)
                rows = tx.run(sql, [*first, *params, limit])
            else:
                rows = tx.run(
                    f"SELECT {columns}, 0.0 FROM search_docs d WHERE {' AND '.join(where)} "
                    "ORDER BY d.updated DESC, d.path LIMIT ?",
                    [*params, limit],
                )
        return [
            SearchHit(
                path=SourcePath(r[0]),
                alt=r[1],
                alt_status=r[2],
                content_class=r[3],
                faces=r[4],
                moderation=r[5],
                dup_group=r[6],
                score=round(float(r[7]), 6),
            )
            for r in rows
        ]

    @abstractmethod
    def _match_sql(self, columns: str, where: str, tokens: list[str]) -> tuple[str, list[Any]]:
        """A ranked full-text query: its SQL (with ``where`` and a final ``LIMIT ?``) and the
        parameters that come before ``where``'s."""

    # -- overrides ------------------------------------------------------------------------

    def put_override(self, override: Override) -> Override:
        stamped = Override(**{**override.__dict__, "created": time.time()})
        with self.transaction() as tx:
            self.apply_override(tx, stamped)
        return stamped

    def overrides(self, path: SourcePath) -> list[Override]:
        with self.transaction(write=False) as tx:
            return self._overrides(tx, path)

    def _overrides(self, tx: Tx, path: SourcePath) -> list[Override]:
        rows = tx.run(
            "SELECT path, aspect, ctx, x, y, w, h, made_by, reviewer, reason, created "
            "FROM overrides WHERE path = ? ORDER BY aspect, ctx",
            (path,),
        )
        return [
            Override(
                path=SourcePath(r[0]),
                aspect=r[1],
                ctx=r[2],
                rect=(r[3], r[4], r[5], r[6]),
                by=r[7],
                reviewer=r[8],
                reason=r[9],
                created=r[10],
            )
            for r in rows
        ]

    def delete_overrides(self, path: SourcePath, aspect: str | None = None) -> int:
        with self.transaction() as tx:
            if aspect is None:
                rows = tx.run("DELETE FROM overrides WHERE path = ? RETURNING aspect", (path,))
            else:
                rows = tx.run(
                    "DELETE FROM overrides WHERE path = ? AND aspect = ? RETURNING aspect",
                    (path, aspect),
                )
            if rows:
                self._bump(tx, path, "override")
        return len(rows)

    # -- exception rules ------------------------------------------------------------------

    def put_rule(self, prefix: str, rule: str, reviewer: str, reason: str) -> None:
        with self.transaction() as tx:
            tx.run(
                "INSERT INTO rules (prefix, rule, reviewer, reason, created) VALUES (?,?,?,?,?) "
                "ON CONFLICT (prefix, rule) DO UPDATE SET reviewer = excluded.reviewer, "
                "reason = excluded.reason, created = excluded.created",
                (prefix, rule, reviewer, reason, time.time()),
            )
            self._bump(tx, prefix, "rule")

    def rules(self) -> list[tuple[str, str, str, str, float]]:
        """Every rule: (prefix, rule, reviewer, reason, created). Few; read whole."""
        with self.transaction(write=False) as tx:
            rows = tx.run(
                "SELECT prefix, rule, reviewer, reason, created FROM rules ORDER BY prefix, rule"
            )
        return [(r[0], r[1], r[2], r[3], r[4]) for r in rows]

    def delete_rule(self, prefix: str, rule: str) -> bool:
        with self.transaction() as tx:
            rows = tx.run(
                "DELETE FROM rules WHERE prefix = ? AND rule = ? RETURNING rule", (prefix, rule)
            )
            if rows:
                self._bump(tx, prefix, "rule")
        return bool(rows)

    # -- reviewers' sessions --------------------------------------------------------------

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

    # -- alt text -------------------------------------------------------------------------

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
                _json(alt.context),
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
            context=_loads(row[6]) or {},
            reused_from=row[7],
            updated=row[8],
        )

    # -- review queue ---------------------------------------------------------------------

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
                (path, component, subject, _json(payload), time.time()),
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
                (status, time.time(), _json(decision), item_id),
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
            payload=_loads(row[5]) or {},
            created=row[6],
            decided=row[7],
            decision=_loads(row[8]),
        )

    # Effects usable inside decide_review(apply=...), so a decision and its effect commit
    # together or not at all.

    def apply_override(self, tx: Tx, override: Override) -> None:
        x, y, w, h = override.rect
        tx.run(
            "INSERT INTO overrides (path, aspect, ctx, x, y, w, h, made_by, reviewer, reason, "
            "created) VALUES (?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT (path, aspect, ctx) DO UPDATE "
            "SET x = excluded.x, y = excluded.y, w = excluded.w, h = excluded.h, "
            "made_by = excluded.made_by, reviewer = excluded.reviewer, reason = excluded.reason, "
            "created = excluded.created",
            (
                override.path,
                override.aspect,
                override.ctx,
                x,
                y,
                w,
                h,
                override.by,
                override.reviewer,
                override.reason,
                override.created or time.time(),
            ),
        )
        self._bump(tx, override.path, "review" if override.by == "human" else "override")

    def apply_alt(self, tx: Tx, alt: AltText) -> None:
        self._put_alt(tx, AltText(**{**alt.__dict__, "updated": time.time()}))

    def apply_moderation(self, tx: Tx, path: SourcePath, status: str) -> None:
        """A verdict on whatever ``path`` holds (an item that names no digest)."""
        tx.run("UPDATE sources SET moderation_status = ? WHERE path = ?", (status, path))
        self._bump(tx, path, "moderation")
        self._index(tx, path)

    # -- feedback -------------------------------------------------------------------------

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
                _json(feedback.ai_output),
                None if feedback.correction is None else _json(feedback.correction),
                feedback.reason,
                feedback.reviewer,
                feedback.seconds,
                _json(feedback.context),
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
                    ai_output=_loads(r[5]) or {},
                    correction=_loads(r[6]),
                    reason=r[7],
                    reviewer=r[8],
                    seconds=r[9],
                    context=_loads(r[10]) or {},
                    created=r[11],
                )
            if len(rows) < limit:
                return
            last_id = int(rows[-1][0])

    # -- QA -------------------------------------------------------------------------------

    def put_qa(self, result: QAResult) -> None:
        self.put_qa_many([result])

    def put_qa_many(self, results: Sequence[QAResult]) -> None:
        """Many results in one transaction: QA runs on every render, one commit each would
        make the store's fsync the render path's neighbour."""
        with self.transaction() as tx:
            for result in results:
                tx.run(
                    "INSERT INTO qa_results (path, variant, passed, report, created) "
                    "VALUES (?,?,?,?,?) ON CONFLICT (path, variant) DO UPDATE SET "
                    "passed = excluded.passed, report = excluded.report, "
                    "created = excluded.created",
                    (
                        result.path,
                        result.variant,
                        int(result.passed),
                        _json(result.report),
                        result.created or time.time(),
                    ),
                )

    def qa_results(self, path: SourcePath, limit: int = 20) -> list[QAResult]:
        with self.transaction(write=False) as tx:
            rows = tx.run(
                "SELECT path, variant, passed, report, created FROM qa_results WHERE path = ? "
                "ORDER BY created DESC LIMIT ?",
                (path, limit),
            )
        return [
            QAResult(
                path=SourcePath(r[0]),
                variant=r[1],
                passed=bool(r[2]),
                report=_loads(r[3]),
                created=r[4],
            )
            for r in rows
        ]

    # -- sampling -------------------------------------------------------------------------

    def count_in_stratum(self, stratum: str, decide: Callable[[int, int], bool]) -> bool:
        """Count one more item in ``stratum`` and record whether ``decide(seen, sampled)``
        sampled it, atomically, so concurrent nodes keep one tally."""
        with self.transaction() as tx:
            tx.run(
                "INSERT INTO sample_strata (stratum, seen, sampled) VALUES (?, 0, 0) "
                "ON CONFLICT (stratum) DO NOTHING",
                (stratum,),
            )
            seen, sampled = tx.run(
                f"SELECT seen, sampled FROM sample_strata WHERE stratum = ?{self._row_lock()}",
                (stratum,),
            )[0]
            chosen = decide(int(seen), int(sampled))
            tx.run(
                "UPDATE sample_strata SET seen = seen + 1, sampled = sampled + ? WHERE stratum = ?",
                (int(chosen), stratum),
            )
        return chosen

    def _row_lock(self) -> str:
        return ""

    # -- jobs -----------------------------------------------------------------------------

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
                (kind, subject, _json(body), now + delay_s, now, now),
            )
            if inserted:
                return True
            if not again:
                if version is None:
                    return False
                rows = tx.run(
                    "SELECT payload FROM jobs WHERE kind = ? AND subject = ?", (kind, subject)
                )
                if not rows or (_loads(rows[0][0]) or {}).get("version") == version:
                    return False
            payload = body
            requeued = tx.run(
                "UPDATE jobs SET status = 'queued', attempts = 0, run_after = ?, payload = ?, "
                "last_error = NULL, lease_until = NULL, worker = NULL, updated = ? "
                "WHERE kind = ? AND subject = ? AND status IN ('done', 'dead') RETURNING id",
                (now + delay_s, _json(payload or {}), now, kind, subject),
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
            payload=_loads(row[3]) or {},
            status=row[4],
            attempts=int(row[5]),
            run_after=row[6],
            last_error=row[7],
            worker=row[8],
        )

    # -- q=auto: verified decisions and the pairs they measured -----------------------------

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
                    _json([float(x) for x in features]),
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
        return [(r[0], list(_loads(r[1]) or []), r[2], float(r[3]), int(r[4])) for r in rows]

    def count_quality_pairs(self) -> int:
        with self.transaction(write=False) as tx:
            rows = tx.run("SELECT COUNT(*) FROM quality_pairs")
        return int(rows[0][0] or 0)

    # -- collaboration metrics --------------------------------------------------------------

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

    # -- AI costs -----------------------------------------------------------------------

    _COST_FIELDS = (
        "inferences",
        "wall_s",
        "cpu_s",
        "saved_phash",
        "saved_sizes",
        "saved_reupload",
        "tokens_in",
        "tokens_out",
    )

    def add_costs(self, day: str, tallies: Mapping[str, Mapping[str, float]]) -> None:
        """Add one process's tallies of ``day`` (per component) to the shared rows."""
        fields = self._COST_FIELDS
        columns = ", ".join(fields)
        marks = ", ".join("?" for _ in fields)
        adds = ", ".join(f"{f} = ai_costs.{f} + excluded.{f}" for f in fields)
        integers = {"inferences", "saved_phash", "saved_sizes", "saved_reupload"}
        integers |= {"tokens_in", "tokens_out"}
        with self.transaction() as tx:
            for component, tally in sorted(tallies.items()):
                values = [
                    int(tally.get(f, 0)) if f in integers else float(tally.get(f, 0.0))
                    for f in fields
                ]
                tx.run(
                    f"INSERT INTO ai_costs (day, component, {columns}) VALUES (?, ?, {marks}) "
                    f"ON CONFLICT (day, component) DO UPDATE SET {adds}",
                    (day, component, *values),
                )

    def costs(self, since_day: str = "") -> list[tuple[Any, ...]]:
        """(day, component, inferences, wall_s, cpu_s, saved_phash, saved_sizes,
        saved_reupload, tokens_in, tokens_out) from ``since_day`` on, oldest first."""
        with self.transaction(write=False) as tx:
            rows = tx.run(
                f"SELECT day, component, {', '.join(self._COST_FIELDS)} FROM ai_costs "
                "WHERE day >= ? ORDER BY day, component",
                (since_day,),
            )
        return [tuple(row) for row in rows]

    def sources_seen(self, since: float = 0.0) -> int:
        """Sources first seen at or after ``since`` (epoch seconds)."""
        with self.transaction(write=False) as tx:
            rows = tx.run("SELECT COUNT(*) FROM sources WHERE first_seen >= ?", (since,))
        return int(rows[0][0] or 0)

    # -- calibration --------------------------------------------------------------------

    def alt_confidences(self) -> list[float]:
        """The VLM's confidence of every alt text that has one (drafts, published, kept)."""
        with self.transaction(write=False) as tx:
            rows = tx.run("SELECT confidence FROM alt_texts WHERE confidence IS NOT NULL")
        return [float(row[0]) for row in rows]

    def nsfw_scores(self) -> list[float]:
        """The NSFW score of every picture (bytes) the model judged."""
        with self.transaction(write=False) as tx:
            rows = tx.run("SELECT score FROM verdicts WHERE score IS NOT NULL")
        return [float(row[0]) for row in rows]

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
                bool((_loads(r[5]) or {}).get("published")),
            )
            for r in rows
        ]

    # -- an override with its feedback (#19: proxy.curation.overrides.put_override) ------

    def put_override_with_feedback(self, override: Override, feedback: Feedback) -> None:
        """Store a human crop and the feedback row that keeps it as a correction of the AI
        in one transaction: both or neither."""
        with self.transaction() as tx:
            self.apply_override(tx, override)
            self._add_feedback(tx, feedback)
