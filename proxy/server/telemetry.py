"""Prometheus metrics, on a registry owned by one app (no process-global state)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class Telemetry:
    def __init__(self) -> None:
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
            "loupe_renders_in_flight", "renders admitted to the pool", registry=self.registry
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

    def exposition(self) -> bytes:
        return generate_latest(self.registry)
