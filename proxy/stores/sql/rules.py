"""Exception rules: a reviewer turns a component off (or on) for a source or a folder."""

from __future__ import annotations

import time

from proxy.sources.paths import SourcePrefix
from proxy.stores.sql.generations import GenerationsSql


class RulesSql(GenerationsSql):
    """Few rows, read whole; each change bumps the prefix's generation."""

    def put_rule(self, prefix: SourcePrefix, rule: str, reviewer: str, reason: str) -> None:
        with self.transaction() as tx:
            tx.run(
                "INSERT INTO rules (prefix, rule, reviewer, reason, created) VALUES (?,?,?,?,?) "
                "ON CONFLICT (prefix, rule) DO UPDATE SET reviewer = excluded.reviewer, "
                "reason = excluded.reason, created = excluded.created",
                (prefix, rule, reviewer, reason, time.time()),
            )
            self._bump(tx, prefix, "rule")

    def rules(self) -> list[tuple[SourcePrefix, str, str, str, float]]:
        """Every rule: (prefix, rule, reviewer, reason, created). Few; read whole."""
        with self.transaction(write=False) as tx:
            rows = tx.run(
                "SELECT prefix, rule, reviewer, reason, created FROM rules ORDER BY prefix, rule"
            )
        return [(r[0], r[1], r[2], r[3], r[4]) for r in rows]

    def delete_rule(self, prefix: SourcePrefix, rule: str) -> bool:
        with self.transaction() as tx:
            rows = tx.run(
                "DELETE FROM rules WHERE prefix = ? AND rule = ? RETURNING rule", (prefix, rule)
            )
            if rows:
                self._bump(tx, prefix, "rule")
        return bool(rows)
