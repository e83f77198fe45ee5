"""Prometheus metrics, on a registry owned by one app (no process-global state). Below the
server, so the parts that count (the QA gate) need not import it.

With several workers (``server.workers``) each worker's samples go to prometheus_client's
multiprocess folder, and any worker's ``/metrics`` adds up every worker's files: the totals
of the node, restarted workers' counts included."""

from __future__ import annotations

from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from prometheus_client.values import ValueClass

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class Telemetry:
    def __init__(self, multiprocess_dir: Path | None = None) -> None:
        if multiprocess_dir is not None and "Mmap" not in getattr(ValueClass, "__name__", ""):
            raise RuntimeError(
                "prometheus_client was imported before PROMETHEUS_MULTIPROC_DIR was set"
            )
        self.multiprocess_dir = multiprocess_dir
        self.collectors: list[Collector] = []  # read at scrape time (the store's figures)
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "loupe_requests",
            "HTTP requests by route and status",
            ["route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "loupe_request_seconds",
            "request latency",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.cache = Counter(
            "loupe_cache",
            "result cache lookups by outcome (hit/miss/coalesced)",
            ["result"],
            registry=self.registry,
        )
        self.stage = Histogram(
            "loupe_stage_seconds",
            "time per pipeline stage",
            ["stage"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.renders = Counter(
            "loupe_renders",
            "images actually computed (cache misses that ran the pipeline)",
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "loupe_renders_in_flight",
            "renders admitted to the pool",
            registry=self.registry,
            multiprocess_mode="livesum",  # the workers alive now, added up
        )

        self.qa = Counter(
            "loupe_qa_outputs",
            "outputs checked by QA: passed, quarantined (first failure), failed (twice)",
            ["result"],
            registry=self.registry,
        )
        self.qa_checks = Counter(
            "loupe_qa_check_failures",
            "QA check failures by check",
            ["check"],
            registry=self.registry,
        )

    def add_collector(self, collector: Collector) -> None:
        self.collectors.append(collector)
        self.registry.register(collector)

    def exposition(self) -> bytes:
        if self.multiprocess_dir is None:
            return generate_latest(self.registry)
        registry = CollectorRegistry()  # every worker's files, then the shared collectors
        MultiProcessCollector(registry, path=str(self.multiprocess_dir))  # type: ignore[no-untyped-call]
        for collector in self.collectors:
            registry.register(collector)
        return generate_latest(registry)
