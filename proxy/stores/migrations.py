"""Versioned schema migrations, applied in order at start-up and recorded in
``schema_migrations``. Never edit a released migration: add the next one.

The SQL is shared by SQLite and PostgreSQL; ``{pk}`` is the one spelling that differs.
Booleans are INTEGER 0/1 and JSON is TEXT on both, so rows read back identically. What only
one backend has (full-text search: FTS5, tsvector) goes in ``dialects``, run after ``sql``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str
    dialects: tuple[tuple[str, str], ...] = ()  # (backend, its own SQL)

    def for_dialect(self, dialect: str) -> str:
        return self.sql + ";\n" + dict(self.dialects).get(dialect, "")


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "sources, overrides, alt text, review, feedback, QA, jobs",
        """
        CREATE TABLE sources (
            path TEXT PRIMARY KEY,
            phash TEXT,
            width INTEGER,
            height INTEGER,
            format TEXT,
            bytes BIGINT,
            content_class TEXT,
            content_confidence DOUBLE PRECISION,
            moderation_status TEXT NOT NULL DEFAULT 'unscanned',
            moderation_score DOUBLE PRECISION,
            first_seen DOUBLE PRECISION NOT NULL,
            last_seen DOUBLE PRECISION NOT NULL
        );
        CREATE INDEX sources_phash ON sources (phash);
        CREATE TABLE phash_chunks (
            chunk INTEGER NOT NULL,
            value BIGINT NOT NULL,
            path TEXT NOT NULL REFERENCES sources (path) ON DELETE CASCADE,
            PRIMARY KEY (chunk, value, path)
        );
        CREATE INDEX phash_chunks_path ON phash_chunks (path);
        CREATE TABLE overrides (
            path TEXT NOT NULL,
            aspect TEXT NOT NULL,
            ctx TEXT NOT NULL DEFAULT '',
            x INTEGER NOT NULL,
            y INTEGER NOT NULL,
            w INTEGER NOT NULL,
            h INTEGER NOT NULL,
            made_by TEXT NOT NULL,
            reviewer TEXT NOT NULL DEFAULT '',
            reason TEXT NOT NULL DEFAULT '',
            created DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (path, aspect, ctx)
        );
        CREATE TABLE alt_texts (
            path TEXT PRIMARY KEY,
            phash TEXT,
            text TEXT NOT NULL,
            status TEXT NOT NULL,
            confidence DOUBLE PRECISION,
            model TEXT,
            context TEXT NOT NULL DEFAULT '{{}}',
            reused_from TEXT,
            updated DOUBLE PRECISION NOT NULL
        );
        CREATE INDEX alt_texts_phash ON alt_texts (phash);
        CREATE TABLE review_items (
            id {pk},
            path TEXT NOT NULL,
            component TEXT NOT NULL,
            subject TEXT NOT NULL,
            status TEXT NOT NULL,
            payload TEXT NOT NULL,
            created DOUBLE PRECISION NOT NULL,
            decided DOUBLE PRECISION,
            decision TEXT
        );
        CREATE UNIQUE INDEX review_items_one_pending
            ON review_items (component, subject) WHERE status = 'pending';
        CREATE INDEX review_items_queue ON review_items (status, component, id);
        CREATE TABLE feedback (
            id {pk},
            review_id BIGINT,
            path TEXT NOT NULL,
            component TEXT NOT NULL,
            action TEXT NOT NULL,
            ai_output TEXT NOT NULL,
            correction TEXT,
            reason TEXT NOT NULL,
            reviewer TEXT NOT NULL,
            seconds DOUBLE PRECISION,
            context TEXT NOT NULL,
            created DOUBLE PRECISION NOT NULL
        );
        CREATE INDEX feedback_created ON feedback (created);
        CREATE TABLE qa_results (
            path TEXT NOT NULL,
            variant TEXT NOT NULL,
            passed INTEGER NOT NULL,
            report TEXT NOT NULL,
            created DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (path, variant)
        );
        CREATE TABLE jobs (
            id {pk},
            kind TEXT NOT NULL,
            subject TEXT NOT NULL,
            payload TEXT NOT NULL,
            status TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            run_after DOUBLE PRECISION NOT NULL,
            lease_until DOUBLE PRECISION,
            worker TEXT,
            last_error TEXT,
            created DOUBLE PRECISION NOT NULL,
            updated DOUBLE PRECISION NOT NULL,
            UNIQUE (kind, subject)
        );
        CREATE INDEX jobs_ready ON jobs (status, run_after);
        CREATE TABLE sample_strata (
            stratum TEXT PRIMARY KEY,
            seen BIGINT NOT NULL,
            sampled BIGINT NOT NULL
        );
        """,
    ),
    Migration(
        2,
        "tallies of what the AI decided alone and what it sent to a human",
        """
        CREATE TABLE ai_outcomes (
            component TEXT NOT NULL,
            outcome TEXT NOT NULL,
            n BIGINT NOT NULL,
            PRIMARY KEY (component, outcome)
        );
        """,
    ),
    Migration(
        3,
        "one model call per picture: describers claim a perceptual hash",
        """
        CREATE TABLE phash_claims (
            phash TEXT PRIMARY KEY,
            path TEXT NOT NULL,
            until DOUBLE PRECISION NOT NULL
        );
        """,
    ),
    Migration(
        4,
        "reviewers' exception rules for a source or folder",
        """
        CREATE TABLE rules (
            prefix TEXT NOT NULL,
            rule TEXT NOT NULL,
            reviewer TEXT NOT NULL DEFAULT '',
            reason TEXT NOT NULL DEFAULT '',
            created DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (prefix, rule)
        );
        """,
    ),
    Migration(
        5,
        "moderation verdicts belong to the bytes (SHA-256), and a source to its bytes",
        """
        CREATE TABLE verdicts (
            digest TEXT PRIMARY KEY,
            status TEXT NOT NULL,
            score DOUBLE PRECISION,
            by_human INTEGER NOT NULL DEFAULT 0,
            updated DOUBLE PRECISION NOT NULL
        );
        ALTER TABLE sources ADD COLUMN content_digest TEXT;
        ALTER TABLE sources ADD COLUMN content_identity TEXT;
        CREATE INDEX sources_content_digest ON sources (content_digest);
        """,
    ),
    Migration(
        6,
        "decision generations of sources and folders, for cache keys",
        """
        CREATE TABLE generations (
            prefix TEXT PRIMARY KEY,
            n BIGINT NOT NULL
        );
        """,
    ),
    Migration(
        7,
        "reviewers' sign-in sessions, so signing out ends one on every node",
        """
        CREATE TABLE admin_sessions (
            key TEXT PRIMARY KEY,
            reviewer TEXT NOT NULL,
            expires DOUBLE PRECISION NOT NULL
        );
        CREATE INDEX admin_sessions_expires ON admin_sessions (expires);
        """,
    ),
    Migration(
        8,
        "the CDN purge outbox: one row per prefix (tag), written with the decision",
        """
        CREATE TABLE purge_outbox (
            prefix TEXT PRIMARY KEY,
            reason TEXT NOT NULL,
            seq BIGINT NOT NULL,
            status TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            first_queued DOUBLE PRECISION NOT NULL,
            next_at DOUBLE PRECISION NOT NULL,
            last_error TEXT,
            repeated INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX purge_outbox_ready ON purge_outbox (status, next_at);
        """,
    ),
    Migration(
        9,
        "the search index over what the lane wrote (alt text, path, class, faces, "
        "moderation, duplicate group)",
        """
        ALTER TABLE sources ADD COLUMN faces INTEGER;
        ALTER TABLE sources ADD COLUMN dup_group TEXT;
        CREATE TABLE search_docs (
            id {pk},
            path TEXT NOT NULL UNIQUE,
            folder TEXT NOT NULL,
            alt TEXT NOT NULL,
            alt_status TEXT NOT NULL,
            terms TEXT NOT NULL,
            content_class TEXT,
            faces INTEGER,
            moderation TEXT NOT NULL,
            dup_group TEXT,
            updated DOUBLE PRECISION NOT NULL
        );
        CREATE INDEX search_docs_class ON search_docs (content_class);
        CREATE INDEX search_docs_folder ON search_docs (folder);
        """,
        dialects=(
            (  # accents kept, case folded: as PostgreSQL's "simple" configuration does
                "sqlite",
                "CREATE VIRTUAL TABLE search_fts USING fts5("
                "alt, terms, tokenize = 'unicode61 remove_diacritics 0')",
            ),
            (
                "postgresql",
                """
                ALTER TABLE search_docs ADD COLUMN doc tsvector GENERATED ALWAYS AS (
                    setweight(to_tsvector('simple'::regconfig, alt), 'A')
                    || setweight(to_tsvector('simple'::regconfig, terms), 'B')
                ) STORED;
                CREATE INDEX search_docs_doc ON search_docs USING GIN (doc)
                """,
            ),
        ),
    ),
    Migration(
        10,
        "verified q=auto decisions, shared by every node, and the measured training pairs",
        """
        CREATE TABLE quality_decisions (
            key TEXT PRIMARY KEY,
            phash TEXT NOT NULL,
            format TEXT NOT NULL,
            bucket INTEGER NOT NULL,
            policy TEXT NOT NULL,
            model TEXT NOT NULL,
            quality INTEGER,
            score DOUBLE PRECISION,
            created DOUBLE PRECISION NOT NULL
        );
        CREATE INDEX quality_decisions_phash ON quality_decisions (phash);
        CREATE TABLE quality_pairs (
            id {pk},
            phash TEXT NOT NULL,
            features TEXT NOT NULL,
            format TEXT NOT NULL,
            target DOUBLE PRECISION NOT NULL,
            bucket INTEGER NOT NULL,
            quality INTEGER NOT NULL,
            score DOUBLE PRECISION,
            created DOUBLE PRECISION NOT NULL,
            UNIQUE (phash, format, target, bucket)
        );
        """,
    ),
    Migration(
        11,
        "what each AI component cost per day: inferences, seconds, cache savings, tokens",
        """
        CREATE TABLE ai_costs (
            day TEXT NOT NULL,
            component TEXT NOT NULL,
            inferences BIGINT NOT NULL DEFAULT 0,
            wall_s DOUBLE PRECISION NOT NULL DEFAULT 0,
            cpu_s DOUBLE PRECISION NOT NULL DEFAULT 0,
            saved_phash BIGINT NOT NULL DEFAULT 0,
            saved_sizes BIGINT NOT NULL DEFAULT 0,
            saved_reupload BIGINT NOT NULL DEFAULT 0,
            tokens_in BIGINT NOT NULL DEFAULT 0,
            tokens_out BIGINT NOT NULL DEFAULT 0,
            PRIMARY KEY (day, component)
        );
        """,
    ),
    Migration(
        12,
        "confidence thresholds calibration applied over the configured ones",
        """
        CREATE TABLE thresholds (
            component TEXT PRIMARY KEY,
            value DOUBLE PRECISION NOT NULL,
            configured DOUBLE PRECISION,
            updated DOUBLE PRECISION NOT NULL
        );
        """,
    ),
)


def statements(sql: str, *, pk: str) -> list[str]:
    """Split a migration into statements (no semicolons inside literals in our SQL)."""
    text = sql.format(pk=pk)
    return [part.strip() for part in text.split(";") if part.strip()]
