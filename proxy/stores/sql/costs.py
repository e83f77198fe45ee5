"""AI costs per day and component: each process adds its own tallies to shared rows."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from proxy.stores.sql.core import SqlBase


class CostsSql(SqlBase):
    """Daily cost tallies."""

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
