"""Output checks' results, and the tallies of stratified sampling that choose which outputs
a human looks at."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from proxy.sources.paths import SourcePath
from proxy.stores.base import QAResult
from proxy.stores.sql.core import SqlBase, as_json, from_json


class QaSql(SqlBase):
    """QA results and sampling strata."""

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
                        as_json(result.report),
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
                report=from_json(r[3]),
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
