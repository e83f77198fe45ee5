"""The purge outbox on ``/metrics``, read from the store at scrape time (every node reports
the one shared outbox). Alert on ``loupe_cdn_purges_dead > 0``: the edge may be serving
answers that a decision replaced."""

from __future__ import annotations

import logging
from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from proxy.stores.protocols import PurgeStore

log = logging.getLogger(__name__)


class PurgeCollector(Collector):
    def __init__(self, store: PurgeStore) -> None:
        self.store = store

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            counts = self.store.purge_counts()
        except Exception:  # a scrape must not fail because the store blinked
            log.exception("purge metrics unavailable")
            return
        yield GaugeMetricFamily(
            "loupe_cdn_purges_pending", "CDN purges waiting to be sent", value=counts["pending"]
        )
        yield GaugeMetricFamily(
            "loupe_cdn_purges_dead",
            "CDN purges dead-lettered after cdn.dead_after_s of failures (alert above 0)",
            value=counts["dead"],
        )
        yield GaugeMetricFamily(
            "loupe_cdn_purge_oldest_pending_seconds",
            "how long the oldest pending CDN purge has waited",
            value=counts["oldest_pending_s"],
        )
