"""QA on every produced output, before it is cached or served.

A failing output is quarantined (never cached, never served) and rendered once more with
safe settings: the policy's fixed quality instead of the perceptual search, and a centre
crop instead of the models. A second failure is an alert and a problem+json 500: the
pipeline produced something broken twice, which is a bug to look at, not bad input.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from dataclasses import replace
from typing import Protocol

from proxy.errors import LoupeError
from proxy.formats import LOSSY_FORMATS
from proxy.params import TransformParams
from proxy.policies import Policy
from proxy.processing.rendered import Rendered
from proxy.qa.checks import (
    Expectation,
    QALimits,
    QAReport,
    black_like_reference,
    check_output,
)
from proxy.sources.paths import SourcePath
from proxy.stores.base import QAResult
from proxy.stores.protocols import QAStore, ReviewStore
from proxy.telemetry import Telemetry

log = logging.getLogger(__name__)


class OutputFailedQA(LoupeError):
    """A rendered output failed its quality checks."""


def expectation(result: Rendered, floor_margin: float) -> Expectation:
    plan = result.plan
    policy = plan.policy
    floor = None
    if result.score is not None and policy.target is not None:
        floor = policy.target - floor_margin  # the search aims at target; QA catches misses
    return Expectation(
        width=plan.layout.canvas.width,
        height=plan.layout.canvas.height,
        mime=plan.mime,
        lossy=plan.format in LOSSY_FORMATS and not result.lossless,
        floor=floor,
        score=result.score,
        frames=plan.source.pages if plan.animated else 1,
    )


Attempt = Callable[[TransformParams, bool], Rendered]


class GateStore(QAStore, ReviewStore, Protocol):
    """Where QA results go, and the review queue a failed output is sent to."""


class QualityGate:
    def __init__(
        self,
        limits: QALimits,
        policies: Mapping[str, Policy],
        telemetry: Telemetry,
        store: GateStore | None,
        io: Executor,
        *,
        floor_margin: float = 15.0,
        check: Callable[[bytes, Expectation, QALimits], QAReport] | None = None,
    ) -> None:
        self.limits = limits
        self.policies = policies
        self.telemetry = telemetry
        self.store = store
        self.io = io
        self.floor_margin = floor_margin
        self._check = check or (lambda body, expected, limits: check_output(body, expected, limits))
        self._batch = Batcher(self._write_passes, io)

    def _write_passes(self, results: list[QAResult]) -> None:
        if self.store is not None:
            self.store.put_qa_many(results)

    def checked(
        self, path: SourcePath, variant: str, params: TransformParams, attempt: Attempt
    ) -> Rendered:
        """Render, check, and on failure render once more safely (runs in a render thread).
        If the checker itself breaks, the output is served unchecked and says so: QA is a
        guard, and a broken guard must not take the images down with it."""

        def lossless() -> bytes:  # the reference a black output is compared with
            return attempt(replace(params, fm="png", quality=None), False).body

        first = attempt(params, False)
        try:
            report, first = self._inspect(first, lossless)
        except Exception:
            log.exception("QA could not check %s (%s); serving it unchecked", path, variant)
            self.telemetry.qa.labels("unchecked").inc()
            return replace(first, notes=(*first.notes, "qa-unavailable"))
        if report.passed:
            self._record(path, variant, report, "passed")
            return first
        log.warning("QA quarantined %s (%s): %s", path, variant, _summary(report))
        self._record(path, variant, report, "quarantined")
        safe_params = (
            replace(params, crop="center") if params.crop in ("smart", "faces") else params
        )
        second = attempt(safe_params, True)
        retry, second = self._inspect(second, lossless)
        if retry.passed:
            self._record(path, variant, retry, "passed", note="reprocessed with safe settings")
            return replace(second, notes=(*second.notes, "qa-reprocessed"))
        log.error("ALERT: QA failed twice for %s (%s): %s", path, variant, _summary(retry))
        self._record(path, variant, retry, "failed")
        raise OutputFailedQA(f"the output failed QA twice: {_summary(retry)}")

    def _inspect(
        self, result: Rendered, lossless: Callable[[], bytes]
    ) -> tuple[QAReport, Rendered]:
        """Check ``result``; an all-black lossy output is compared with the same request
        rendered losslessly (rare, so it is rendered only then): black sources exist."""
        started = time.perf_counter()
        expected = expectation(result, self.floor_margin)
        report = self._check(result.body, expected, self.limits)
        if [check.name for check in report.failures] == ["not-blank"]:
            report = black_like_reference(report, lossless())
        for failure in report.failures:
            self.telemetry.qa_checks.labels(failure.name).inc()
        timed = replace(result, timings=(*result.timings, ("qa", time.perf_counter() - started)))
        return report, timed

    def _record(
        self,
        path: SourcePath,
        variant: str,
        report: QAReport,
        outcome: str,
        note: str | None = None,
    ) -> None:
        self.telemetry.qa.labels(outcome).inc()
        if self.store is None:
            return
        body = {**report.to_json(), "result": outcome}
        if note:
            body["note"] = note
        stored = QAResult(path, variant, report.passed, body)
        if stored.passed:
            self._batch.add(stored)  # many per second under load: written in batches
        else:
            self.io.submit(self._store_failure, stored)

    def _store_failure(self, result: QAResult) -> None:
        try:
            assert self.store is not None
            self.store.put_qa(result)
            self.store.open_review(
                result.path, "qa", f"{result.path}|{result.variant}", result.report
            )
        except Exception:
            log.exception("storing the QA result of %s failed", result.path)

    def flush(self) -> None:
        self._batch.flush()


class Batcher:
    """Collects items and writes them together, at most ``delay_s`` after the first one."""

    def __init__(self, write: Callable[[list[QAResult]], None], io: Executor, delay_s: float = 0.5):
        self.write = write
        self.io = io
        self.delay_s = delay_s
        self._items: list[QAResult] = []
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None

    def add(self, item: QAResult) -> None:
        with self._lock:
            self._items.append(item)
            if self._timer is None:
                self._timer = threading.Timer(self.delay_s, self._due)
                self._timer.daemon = True
                self._timer.start()

    def _due(self) -> None:
        try:
            self.io.submit(self.flush)
        except RuntimeError:  # the executor is shutting down: write here
            self.flush()

    def flush(self) -> None:
        with self._lock:
            items, self._items = self._items, []
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        if not items:
            return
        try:
            self.write(items)
        except Exception:
            log.exception("storing %d QA results failed", len(items))


def _summary(report: QAReport) -> str:
    return "; ".join(f"{c.name}: {c.detail}" for c in report.failures)
