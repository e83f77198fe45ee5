"""The collaboration metrics on ``/metrics``: read from the store at scrape time, so every
node reports the same shared truth and nothing is double-counted across restarts."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Protocol

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from proxy.config import CostsConfig
from proxy.feedback.costs import SAVINGS, CostMeter, cost_report
from proxy.feedback.metrics import collaboration
from proxy.stores.protocols import CostStore, FeedbackStore, ReviewStore, SourceStore

log = logging.getLogger(__name__)


class CollaborationStore(FeedbackStore, ReviewStore, Protocol):
    """The human decisions, the AI's outcomes and the review queue's counts."""


class CollaborationCollector(Collector):
    def __init__(self, store: CollaborationStore, off: frozenset[str] = frozenset()) -> None:
        self.store = store
        self.off = off  # components with nothing to decide: out of the auto-accept ratio

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        try:
            outcomes = self.store.outcomes()
            feedback = self.store.feedback_rows()
            counts = self.store.review_counts()
        except Exception:  # a scrape must not fail because the store blinked
            log.exception("collaboration metrics unavailable")
            return
        summary = collaboration(outcomes, feedback, counts.get("pending", {}), self.off)
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


class CostReportStore(CostStore, SourceStore, Protocol):
    """The daily cost tallies, and how many sources they were spent on."""


class CostCollector(Collector):
    """What each AI component cost, from the store's shared rows (this node's tallies are
    flushed first, so a scrape right after a request counts it)."""

    def __init__(self, store: CostReportStore, meter: CostMeter, prices: CostsConfig) -> None:
        self.store = store
        self.meter = meter
        self.prices = prices

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        try:
            self.meter.flush()
            report = cost_report(self.store.costs(), self.prices, self.store.sources_seen(), "")
        except Exception:  # a scrape must not fail because the store blinked
            log.exception("AI cost metrics unavailable")
            return
        inferences = CounterMetricFamily(
            "loupe_ai_inferences", "model inferences run, per AI component", labels=["component"]
        )
        seconds = CounterMetricFamily(
            "loupe_ai_seconds",
            "seconds spent in AI components: wall clock and CPU",
            labels=["component", "clock"],
        )
        saved = CounterMetricFamily(
            "loupe_ai_inferences_saved",
            "inferences a cache saved: by perceptual hash, across sizes, by re-upload",
            labels=["component", "cache"],
        )
        cost = GaugeMetricFamily(
            "loupe_ai_cost_estimate",
            "estimated cost from the configured prices (costs.*)",
            labels=["component"],
        )
        for name, numbers in report["components"].items():
            inferences.add_metric([name], numbers["inferences"])
            seconds.add_metric([name, "wall"], numbers["wall_s"])
            seconds.add_metric([name, "cpu"], numbers["cpu_s"])
            for how in SAVINGS:
                saved.add_metric([name, how], numbers["saved"][how])
            cost.add_metric([name], numbers["cost"])
        tokens = CounterMetricFamily(
            "loupe_vlm_tokens", "tokens sent to and answered by the VLM", labels=["direction"]
        )
        tokens.add_metric(["in"], report["totals"]["tokens_in"])
        tokens.add_metric(["out"], report["totals"]["tokens_out"])
        yield inferences
        yield seconds
        yield saved
        yield cost
        yield tokens
        if report["cost_per_image"] is not None:
            yield GaugeMetricFamily(
                "loupe_ai_cost_per_image",
                "estimated AI cost per source seen",
                value=report["cost_per_image"],
            )
