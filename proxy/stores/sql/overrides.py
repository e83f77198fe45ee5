"""Human crops: an override decides a source's crop for an aspect (and context) ahead of
every model."""

from __future__ import annotations

import time

from proxy.cropping.overrides import CropOverride
from proxy.geometry import Rect
from proxy.sources.paths import SourcePath
from proxy.stores.sql.core import Tx
from proxy.stores.sql.generations import GenerationsSql


class OverridesSql(GenerationsSql):
    """Write, read and delete human crops; each change bumps the source's generation."""

    def put_override(self, override: CropOverride) -> CropOverride:
        stamped = CropOverride(**{**override.__dict__, "created": time.time()})
        with self.transaction() as tx:
            self.apply_override(tx, stamped)
        return stamped

    def overrides(self, path: SourcePath) -> list[CropOverride]:
        with self.transaction(write=False) as tx:
            return self._overrides(tx, path)

    def _overrides(self, tx: Tx, path: SourcePath) -> list[CropOverride]:
        rows = tx.run(
            "SELECT path, aspect, ctx, x, y, w, h, made_by, reviewer, reason, created "
            "FROM overrides WHERE path = ? ORDER BY aspect, ctx",
            (path,),
        )
        return [
            CropOverride(
                path=SourcePath(r[0]),
                aspect=r[1],
                ctx=r[2],
                rect=Rect(r[3], r[4], r[5], r[6]),
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

    def apply_override(self, tx: Tx, override: CropOverride) -> None:
        rect = override.rect
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
                rect.x,
                rect.y,
                rect.w,
                rect.h,
                override.by,
                override.reviewer,
                override.reason,
                override.created or time.time(),
            ),
        )
        self._bump(tx, override.path, "review" if override.by == "human" else "override")
