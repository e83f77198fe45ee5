"""The lane as the server and the CLI see it: which jobs a new source gets, the handlers for
them, and the in-process workers that run them."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

from cachetools import LRUCache

from proxy.alt.client import VlmClient
from proxy.analysis.analyzer import Analyzer
from proxy.cdn.outbox import PurgeSender
from proxy.config import Config
from proxy.detectors.nsfw import NsfwDetector
from proxy.lane.reading import SourceBytes
from proxy.lane.tasks import describe, fingerprint, moderate, retrain, sample, verify
from proxy.lane.tasks.verify import Publish
from proxy.lane.worker import Handler, Worker
from proxy.moderation import Moderator
from proxy.rendering import Rendering
from proxy.sources.base import Source
from proxy.sources.paths import SourcePath
from proxy.stores import Store
from proxy.stores.protocols import JobStore

log = logging.getLogger(__name__)


def build_handlers(
    config: Config,
    store: Store,
    sources: SourceBytes,
    analyzer: Analyzer,
    vlm: VlmClient,
    moderator: Moderator,
    fingerprint_of: Callable[[bytes], str],
) -> dict[str, Handler]:
    return {
        fingerprint.KIND: fingerprint.FingerprintTask(store, sources, analyzer),
        describe.KIND: describe.DescribeTask(
            store,
            vlm,
            sources,
            fingerprint_of,
            config.vlm.confidence_threshold,
            config.lane.max_attempts,
            claim_s=config.vlm.timeout_s + 5.0,
            meter=analyzer.meter,
            sample_rate=config.calibration.sample_rate,
        ),
        sample.KIND: sample.SampleTask(store, config.qa.sample_rate),
        moderate.KIND: moderate.ModerateTask(moderator, sources),
    }


def quality_handlers(
    config: Config,
    store: Store,
    sources: SourceBytes,
    rendering: Rendering,
    publish: Publish | None,
) -> dict[str, Handler]:
    """``verify`` (provisional q=auto answers) and ``retrain-quality`` (on a schedule)."""

    def queue_retrain(round_: int) -> None:
        store.enqueue(retrain.KIND, f"pairs-{round_}", {})

    return {
        verify.KIND: verify.VerifyTask(
            store,
            sources,
            rendering.verifying,
            default_crop=config.images.default_crop,
            deadline_s=config.quality.verify_deadline_s,
            publish=publish,
            retrain_every=config.quality.retrain_every,
            queue_retrain=queue_retrain,
        ),
        retrain.KIND: retrain.RetrainTask(config, store),
    }


def assemble(
    config: Config,
    store: Store,
    source: Source,
    analyzer: Analyzer,
    fingerprint_of: Callable[[bytes], str],
    *,
    rendering: Rendering | None = None,
    publish: Publish | None = None,
    announce: bool = True,
) -> tuple[Lane, Moderator, VlmClient]:
    """The lane with every collaborator, as ``loupe serve``, ``worker`` and ``ingest`` use it.
    ``announce``: log what is off (once per node: the serving workers after the first don't)."""
    moderator = Moderator(
        store,
        NsfwDetector(config.storage.models_dir, providers=config.analysis.providers)
        if config.moderation.enabled
        else None,
        config.moderation,
        meter=analyzer.meter,
        sample_rate=config.calibration.sample_rate,
    )
    vlm = VlmClient(config.vlm)
    if not vlm.enabled and announce:
        log.info(
            "alt text disabled: no VLM is configured (--vlm-url, vlm.url); new images get "
            "an empty alt text, and alt text is off on the reviewers' page"
        )
    sources = SourceBytes(source, config.limits.max_source_bytes, config.sources.root)
    handlers = build_handlers(config, store, sources, analyzer, vlm, moderator, fingerprint_of)
    if rendering is not None:
        handlers.update(quality_handlers(config, store, sources, rendering, publish))
    return Lane(config, store, handlers, PurgeSender(store, config.cdn)), moderator, vlm


class Lane:
    """Queues a new source's jobs once, and runs in-process workers (and the CDN purge
    sender beside them) when configured."""

    def __init__(
        self,
        config: Config,
        store: JobStore,
        handlers: Mapping[str, Handler],
        purges: PurgeSender | None = None,
    ) -> None:
        self.config = config
        self.store = store
        self.handlers = handlers
        self.purges = purges
        self._queued: LRUCache[str, bool] = LRUCache(maxsize=65_536)
        self._lock = threading.Lock()
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def kinds_for_new_source(self) -> list[str]:
        kinds = [fingerprint.KIND, describe.KIND, sample.KIND]
        if self.config.moderation.enabled:
            kinds.append(moderate.KIND)
        return kinds

    def enqueue_source(
        self,
        path: SourcePath,
        payload: Mapping[str, Any] | None = None,
        *,
        again: bool = False,
        version: str | None = None,
    ) -> int:
        """Queue every job a source gets (idempotent in the store; a new ``version`` of the
        source, its identity, runs them again). Blocking."""
        queued = 0
        for kind in self.kinds_for_new_source():
            queued += self.store.enqueue(
                kind, path, dict(payload or {}), again=again, version=version
            )
        return queued

    def seen(self, path: SourcePath, version: str = "") -> bool:
        """Note a served source; True the first time this process sees this version of it,
        when its jobs should be queued (the store dedupes across processes and restarts)."""
        key = f"{path}\n{version}"
        with self._lock:
            if key in self._queued:
                return False
            self._queued[key] = True
        return True

    def start(self, workers: int | None = None) -> None:
        for n in range(self.config.lane.workers if workers is None else workers):
            worker = Worker(self.store, self.handlers, self.config.lane)
            self._tasks.append(asyncio.create_task(worker.run(self._stop), name=f"lane-{n}"))
        if self._tasks and self.purges is not None:
            task = asyncio.create_task(self.purges.run(self._stop), name="lane-purges")
            self._tasks.append(task)

    async def stop(self) -> None:
        """Let each worker finish the job it is running, for up to ``lane.stop_grace_s``,
        before the caller closes the store: a cancelled job's thread work (a render, a
        store read) cannot be cancelled and would run on against a closed store. Jobs still
        running then are cancelled; their leases hand them to the next worker."""
        self._stop.set()
        if self._tasks:
            _, running = await asyncio.wait(self._tasks, timeout=self.config.lane.stop_grace_s)
            if running:
                log.warning(
                    "lane: %d job(s) still running after %g s; cancelled, their leases "
                    "return them to the queue",
                    len(running),
                    self.config.lane.stop_grace_s,
                )
            for task in running:
                task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task  # an error a worker did not expect still surfaces here
        self._tasks.clear()
        if self.purges is not None:
            await self.purges.aclose()
