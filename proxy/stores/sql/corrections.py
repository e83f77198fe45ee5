"""A human crop with the feedback row that records it as a correction of the AI: the two
aggregates written in one transaction (``proxy.curation.overrides.put_override``)."""

from __future__ import annotations

from proxy.cropping.overrides import CropOverride
from proxy.stores.base import Feedback
from proxy.stores.sql.feedback import FeedbackSql
from proxy.stores.sql.overrides import OverridesSql


class CorrectionsSql(OverridesSql, FeedbackSql):
    def put_override_with_feedback(self, override: CropOverride, feedback: Feedback) -> None:
        """Store a human crop and its feedback row in one transaction: both or neither."""
        with self.transaction() as tx:
            self.apply_override(tx, override)
            self._add_feedback(tx, feedback)
