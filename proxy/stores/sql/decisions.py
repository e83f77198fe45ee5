"""What decides a path's images, read in one transaction so the generation, the crops and
the rules agree with each other."""

from __future__ import annotations

from proxy.cropping.overrides import CropOverride
from proxy.sources.paths import SourcePath, SourcePrefix, ancestors
from proxy.stores.sql.overrides import OverridesSql
from proxy.stores.sql.rules import RulesSql


class DecisionsSql(OverridesSql, RulesSql):
    """The consistent read the renderer keys its answers on."""

    def decisions_for(
        self, path: SourcePath
    ) -> tuple[int, list[CropOverride], list[tuple[SourcePrefix, str]]]:
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
