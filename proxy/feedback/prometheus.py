"""The collaboration metrics on ``/metrics``: read from the store at scrape time, so every
node reports the same shared truth and nothing is double-counted across restarts."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from proxy.feedback.metrics import collaboration
from proxy.stores import Store

log = logging.getLogger(__name__)


class CollaborationCollector(Collector):
    def __init__(self, store: Store) -> None:
        self.store = store

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        try:
            outcomes = self.store.outcomes()
            feedback = self.store.feedback_rows()
            counts = self.store.review_counts()
        except Exception:  # a scrape must not fail because the store blinked
            log.exception("collaboration metrics unavailable")
            return
        summary = collaboration(outcomes, feedback, counts.get("pending", {}))
        decided = CounterMetricFamily(
            "loupe_ai_decisions",
            "AI decisions: published alone (auto) or sent to a human (review)",
            labels=["component", "outcome"],
        )
        for component, tally in sorted(outcomes.items()):
            for outcome, n in sorted(tally.items()):
                decided.add_metric([component, outcome], n)
        yield decided
        pending = GaugeMetricFamily(
            "loupe_review_pending", "review items waiting", labels=["component"]
        )
        reviewed = CounterMetricFamily(
            "loupe_review_decisions", "human review decisions", labels=["component", "action"]
        )
        actions: dict[tuple[str, str], int] = {}
        for component, action, _seconds, _at, from_review, _published in feedback:
            if from_review:
                actions[(component, action)] = actions.get((component, action), 0) + 1
        for (component, action), n in sorted(actions.items()):
            reviewed.add_metric([component, action], n)
        override = GaugeMetricFamily(
            "loupe_override_ratio",
            "share of reviewed AI outputs a human changed",
            labels=["component"],
        )
        for component, numbers in summary["components"].items():
            pending.add_metric([component], numbers["pending"])
            if numbers["override_rate"] is not None:
                override.add_metric([component], numbers["override_rate"])
        yield pending
        yield reviewed
        yield override
        scalars = (
            ("loupe_auto_accept_ratio", "share of AI decisions published without a human",
             summary["auto_accept_rate"]),
            ("loupe_review_seconds_median", "median seconds a human spent per review",
             summary["review_seconds"]["median"]),
            ("loupe_post_publication_correction_ratio",
             "corrections to already published AI outputs, per published output",
             summary["post_publication_correction_rate"]),
        )  # fmt: skip
        for name, help_text, value in scalars:
            if value is not None:
                yield GaugeMetricFamily(name, help_text, value=value)
        yield CounterMetricFamily(
            "loupe_user_corrections",
            "corrections users made directly (admin API), outside review",
            value=summary["user_initiated_corrections"],
        )
