"""Verify a provisional ``q=auto`` answer, and decide what every later request gets.

Queued by a provisional answer (one job per picture and decision). It measures the served
answer (the search's first probe is that very quality), searches the lowest quality that
meets the policy's target, and for ``fm=auto`` tries each format the client class accepts,
AVIF included, under the lane's own deadline: the smallest that meets the target wins.
Decisions go to the store (every node answers final from then on), the measured pairs to
the training set, and a first answer found under the target (by more than
``FIRST_ANSWER_TOLERANCE``) is counted and its source's generation bumped, so its cache
keys change. When the server runs the job, the final answer is rendered into the result
cache at once (``publish``).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from typing import Any, Protocol

import pyvips

from proxy.config import CropName
from proxy.lane.reading import SourceBytes
from proxy.lane.worker import JobFailed
from proxy.negotiate import AcceptClass
from proxy.params import TransformParams, parse_params
from proxy.processing.pipeline import RenderSettings, render
from proxy.processing.rendered import Rendered
from proxy.quality.decisions import size_bucket
from proxy.sources.paths import SourcePath, canonical_path
from proxy.stores.base import Job
from proxy.stores.protocols import FeedbackStore, GenerationStore, QualityStore

log = logging.getLogger(__name__)
KIND = "verify"
FIRST_ANSWER_TOLERANCE = 2.0  # score points a first answer may miss the target by
Publish = Callable[[SourcePath, str, str], Awaitable[bool]]


def accept_of(key: str) -> AcceptClass:
    return AcceptClass.from_key(key)


def candidates(params: TransformParams, accept: AcceptClass, has_alpha: bool) -> list[str]:
    """The lossy formats a request may be answered in: its own, or for ``fm=auto`` each
    one its Accept class takes (JPEG only where no alpha needs keeping)."""
    if params.fm != "auto":
        return [params.fm]
    found = [fmt for fmt, ok in (("avif", accept.avif), ("webp", accept.webp)) if ok]
    return found if has_alpha else [*found, "jpeg"]


class VerifyStore(QualityStore, FeedbackStore, GenerationStore, Protocol):
    """The measured pairs, the outcome tallies, and the generation a failed provisional
    answer bumps."""


class VerifyTask:
    def __init__(
        self,
        store: VerifyStore,
        sources: SourceBytes,
        settings: RenderSettings,
        *,
        default_crop: CropName,
        deadline_s: float,
        publish: Publish | None = None,
        retrain_every: int = 0,
        queue_retrain: Callable[[int], None] | None = None,
    ) -> None:
        assert settings.quality is not None and settings.quality.verify
        self.store = store
        self.sources = sources
        self.settings = settings
        self.default_crop = default_crop
        self.deadline_s = deadline_s
        self.publish = publish
        self.retrain_every = retrain_every
        self.queue_retrain = queue_retrain

    async def __call__(self, job: Job) -> None:
        payload = job.payload
        path = canonical_path(str(payload["path"]))
        blob = await self.sources.read(path)
        try:
            report = await asyncio.to_thread(self.verify, path, blob, payload)
        except pyvips.Error as exc:
            raise JobFailed(f"cannot verify: {exc}", permanent=True) from exc
        if self.publish is not None:
            try:
                await self.publish(path, str(payload["query"]), str(payload.get("accept", "")))
            except Exception:  # the decision is stored: a request renders it just as well
                log.exception("publishing the final answer of %s failed", path)
        log.info("verified %s: %s", path, report)

    def verify(self, path: SourcePath, blob: bytes, payload: Mapping[str, Any]) -> dict[str, Any]:
        tools = self.settings.quality
        assert tools is not None
        params = parse_params(str(payload["query"]), default_crop=self.default_crop)
        accept = accept_of(str(payload.get("accept", "")))
        has_alpha = pyvips.Image.new_from_buffer(blob, "").hasalpha()
        measured: dict[str, Rendered] = {}
        for fmt in candidates(params, accept, has_alpha):
            deadline = time.monotonic() + self.deadline_s  # each format its own budget
            asked = replace(params, fm=fmt)  # type: ignore[arg-type]
            measured[fmt] = render(blob, asked, accept, self.settings, deadline=deadline, path=path)
        report: dict[str, Any] = {}
        for fmt, result in measured.items():
            plan = result.plan
            policy = plan.policy
            quality, score = result.quality, result.score
            report[fmt] = {"quality": quality, "score": score, "bytes": len(result.body)}
            target = policy.target
            if (
                plan.phash
                and result.features
                and target is not None
                and quality is not None
                and score is not None
                and score >= target
            ):
                pixels = plan.layout.canvas.width * plan.layout.canvas.height
                self.store.add_quality_pair(
                    plan.phash,
                    result.features,
                    plan.format,
                    target,
                    quality,
                    score,
                    bucket=size_bucket(pixels),
                )
        served = measured.get(str(payload.get("format")))
        if served is not None:
            self._judge_first(path, served, payload, report)
        if params.fm == "auto":
            self._decide_format(measured, accept, report)
        self._maybe_retrain()
        return report

    def _judge_first(
        self, path: SourcePath, served: Rendered, payload: Mapping[str, Any], report: dict[str, Any]
    ) -> None:
        """Was the provisional answer good enough? Its quality is the search's first probe."""
        target = served.plan.policy.target
        if target is None or served.first_score is None:
            return
        if served.first_quality != payload.get("quality"):
            return  # served at another quality (a large output's fixed one): not measured
        report["first"] = {"quality": served.first_quality, "score": round(served.first_score, 2)}
        if served.first_score >= target - FIRST_ANSWER_TOLERANCE:
            self.store.count_outcome("quality", "provisional-ok")
            return
        self.store.count_outcome("quality", "provisional-below-floor")
        # its cached answers get new keys and its CDN tags are purged: they go
        self.store.bump_generation(path, "provisional-below-floor")
        report["first"]["below_floor"] = True

    def _decide_format(
        self, measured: Mapping[str, Rendered], accept: AcceptClass, report: dict[str, Any]
    ) -> None:
        """The smallest format that met the target (the best-scoring one if none did)."""
        tools = self.settings.quality
        assert tools is not None
        plans = [(fmt, r) for fmt, r in measured.items() if r.plan.phash]
        if not plans:
            return
        passing = [
            (fmt, r)
            for fmt, r in plans
            if r.score is not None and r.score >= (r.plan.policy.target or 0)
        ]
        if passing:
            fmt, best = min(passing, key=lambda item: len(item[1].body))
        else:
            fmt, best = max(plans, key=lambda item: item[1].score or 0.0)
        plan = best.plan
        assert plan.phash is not None
        pixels = plan.layout.canvas.width * plan.layout.canvas.height
        model = tools.predictor.identity
        key = tools.decisions.format_key(plan.phash, pixels, plan.policy.name, accept.key, model)
        tools.decisions.record(
            key,
            phash=plan.phash,
            fmt=fmt,
            pixels=pixels,
            policy=plan.policy.name,
            model=model,
            quality=None,
            score=best.score,
        )
        report["winner"] = fmt

    def _maybe_retrain(self) -> None:
        if not self.retrain_every or self.queue_retrain is None:
            return
        count = self.store.count_quality_pairs()
        if count >= self.retrain_every:
            self.queue_retrain(count // self.retrain_every)
