"""Build the ASGI app from one ``Config``: what every process shares comes from
:class:`proxy.runtime.Runtime`, the HTTP edge's own parts (result cache, render pool,
metrics, admin) are created here, and all are passed in explicitly, so tests can run
several independent apps in one process."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from proxy.cache.nodelock import NodeLocks
from proxy.cache.nodepurge import PurgeJournal
from proxy.cache.results import ResultCache
from proxy.cache.shared import SharedTier
from proxy.cdn.metrics import PurgeCollector
from proxy.config import Config
from proxy.curation.decisions import Decisions, ReviewBudget
from proxy.curation.facts import StoredFacts
from proxy.detectors.base import available_providers
from proxy.errors import LoupeError
from proxy.feedback.prometheus import CollaborationCollector, CostCollector
from proxy.lane.worker import worker_name
from proxy.processing.validate import ValidationRules
from proxy.providers import provider_name
from proxy.qa.checks import QALimits
from proxy.qa.gate import QualityGate
from proxy.runtime import Runtime, configure_process
from proxy.scanners.clamd import ClamdScanner
from proxy.server import problems
from proxy.server.admin import AdminApi
from proxy.server.auth import AdminAuth
from proxy.server.images import ImageService
from proxy.server.logs import ACCESS, access_line
from proxy.server.meta import MetaService
from proxy.server.ops import Operations
from proxy.server.pool import ProcessingPool
from proxy.server.redirects import RelativeRedirects
from proxy.server.reviewer import reviewer_routes
from proxy.server.workers import WorkerInfo
from proxy.sources.http import HttpSource
from proxy.sources.paths import SourcePath, canonical_path
from proxy.sources.watch import Change, SourceWatcher
from proxy.telemetry import Telemetry

log = logging.getLogger(__name__)


class RequestMetrics:
    """Counts requests by route and status and times them, for every response, and writes
    the access line (method, path, status, bytes, ms, cache state) when ``access`` is on."""

    routes = frozenset({"/img", "/meta", "/admin", "/healthz", "/readyz", "/metrics"})

    def __init__(self, app: ASGIApp, telemetry: Telemetry, access: bool = True) -> None:
        self.app = app
        self.telemetry = telemetry
        self.access = logging.getLogger(ACCESS) if access else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        first = "/" + str(scope["path"]).lstrip("/").split("/", 1)[0]
        route = first if first in self.routes else "other"  # bounded label cardinality
        started = time.perf_counter()
        status = 500
        sent = 0
        cache = "-"

        async def record(message: Message) -> None:
            nonlocal status, sent, cache
            if message["type"] == "http.response.start":
                status = message["status"]
                for name, value in message.get("headers", ()):
                    if name.lower() == b"x-loupe-cache":
                        cache = value.decode("latin-1")
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, record)
        finally:
            elapsed = time.perf_counter() - started
            self.telemetry.requests.labels(route, str(status)).inc()
            self.telemetry.latency.labels(route).observe(elapsed)
            if self.access is not None:
                query = scope.get("query_string", b"").decode("latin-1")
                path = str(scope["path"]) + (f"?{query}" if query else "")
                text, fields = access_line(scope["method"], path, status, sent, elapsed, cache)
                self.access.info(text, extra={"fields": fields})


def log_models(models: list[dict[str, str | None]], wanted: Sequence[str]) -> None:
    """One start-up line per model: which bytes, on which execution provider; and one line
    when a provider asked for in ``analysis.providers`` is not in this onnxruntime build."""
    available = available_providers()
    missing = [name for name in wanted if provider_name(name) not in available]
    if missing:
        log.info(
            "analysis.providers: %s not in this onnxruntime build (it has %s); the models "
            "run on the next one (CUDA needs the gpu extra, onnxruntime-gpu)",
            ", ".join(missing),
            ", ".join(available),
        )
    for model in models:
        if model["provider"]:
            log.info(
                "model %s (sha256 %s) runs on %s",
                model["model"],
                (model["sha256"] or "?")[:12],
                model["provider"],
            )
        else:
            log.warning("model %s unavailable: %s", model["model"], model["state"])


def create_app(config: Config, worker: WorkerInfo | None = None) -> Starlette:
    """The app; ``worker`` when it is one of several serving processes on this node
    (``proxy.server.workers``): they share metrics, the single-flight and purges."""
    configure_process(
        allow_svg=config.images.allow_svg, vips_concurrency=config.server.vips_concurrency
    )
    data_dir = config.storage.data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    telemetry = Telemetry(worker.metrics_dir if worker is not None else None)
    pool = ProcessingPool(
        config.server.render_threads,
        config.server.queue_limit,
        config.server.retry_after_s,
        on_change=telemetry.in_flight.set,
    )
    io = ThreadPoolExecutor(max_workers=4, thread_name_prefix="loupe-io")
    cache = ResultCache(
        data_dir / "results",
        memory_bytes=config.cache.memory_bytes,
        memory_max_item_bytes=config.cache.memory_max_item_bytes,
        disk_bytes=config.cache.disk_bytes,
        io=io,
    )
    security = config.security
    scanner = ClamdScanner(security.clamd, security.clamd_timeout_s) if security.clamd else None
    images_config = config.images
    node = worker_name()
    shared = SharedTier(config.redis, node) if config.redis.url else None
    images_ref: list[ImageService] = []

    async def publish(path: SourcePath, query: str, accept: str) -> bool:
        return await images_ref[0].refresh(path, query, accept) if images_ref else False

    runtime = Runtime(
        config, scan=scanner.scan if scanner else None, meter_quality=True, publish=publish,
        announce=worker is None or worker.index == 0,
    )  # fmt: skip
    store, meter, analyzer, source = runtime.store, runtime.meter, runtime.analyzer, runtime.source
    lane, moderator, vlm = runtime.lane, runtime.moderator, runtime.vlm
    settings, avif = runtime.rendering.settings, runtime.rendering.avif
    policies = settings.policies
    # Components with nothing to decide: left out of the queue and the auto-accept rate.
    off = frozenset(
        name
        for name, on in (("alt", vlm.enabled), ("moderation", config.moderation.enabled))
        if not on
    )
    budget = ReviewBudget(
        per_client=config.admin.reviews_per_client_per_minute,
        overall=config.admin.reviews_per_minute,
    )
    decisions = Decisions(store, lane, moderator, io, budget)
    qa = QualityGate(
        QALimits(config.qa.max_bytes_per_pixel, config.qa.min_bytes),
        policies,
        telemetry,
        store,
        io,
    )
    several = worker is not None and worker.count > 1
    node_locks = (
        NodeLocks(data_dir / "locks")
        if several and shared is None and config.cache.disk_bytes > 0
        else None
    )
    journal = (
        PurgeJournal(worker.run_dir / "purges")
        if several and shared is None and worker is not None and worker.run_dir is not None
        else None
    )

    def catch_up() -> None:
        """Purges answered by another worker of this node, applied to this one's memory."""
        assert journal is not None
        for tag in journal.news():
            cache.forget_memory(tag)
            with contextlib.suppress(LoupeError):
                decisions.forget(canonical_path(tag))

    images = ImageService(
        config, source, cache, pool, telemetry, settings, decisions, qa, shared, node_locks,
        catch_up if journal is not None else None,
    )  # fmt: skip
    images_ref.append(images)
    rules = ValidationRules(config.limits, images_config.allow_svg, settings.scan)
    facts = StoredFacts(store, config.qa.duplicate_distance)
    meta = MetaService(config, source, analyzer, pool, rules, facts, moderator)
    models = runtime.models()
    if worker is None or worker.index == 0:  # once per node
        log_models(models, config.analysis.providers)
    place = (worker.index, worker.count) if worker is not None else (0, 1)
    ops = Operations(telemetry, pool, config.sources.root, data_dir, models, place)

    async def purge_here(path: SourcePath) -> int:
        """Drop a source's cached variants and memoised decisions on this node."""
        decisions.forget(path)
        return await asyncio.to_thread(cache.purge, path)

    async def purge_message(tag: str) -> int:
        """Another node's purge, from the shared channel."""
        try:
            path = canonical_path(tag)
        except LoupeError:
            log.warning("ignored a purge of the non-canonical path %r", tag)
            return 0
        return await purge_here(path)

    async def purge(path: SourcePath) -> int:
        """Everywhere: this node, the shared tier, and (through it) every other node."""
        dropped = await purge_here(path)
        if journal is not None:
            journal.record(path)  # this node's other workers
        if shared is not None:
            dropped += await shared.purge(path)
        return dropped

    async def sources_changed(changes: list[Change]) -> None:
        """A source's bytes were replaced or deleted (noticed by the watcher, or by an
        origin's revalidation): a new generation and a CDN purge (one transaction), every
        cache tier on every node dropped, and the lane's work done again for new bytes."""
        for path, identity in changes:
            reason = "source-deleted" if identity is None else "source-changed"
            try:
                await asyncio.to_thread(store.bump_generation, path, reason)
                await purge(path)
                known = await asyncio.to_thread(store.job, "fingerprint", path)
                if identity is not None and known is not None:
                    await asyncio.to_thread(
                        lane.enqueue_source, path, {"reason": reason}, version=identity
                    )
            except Exception:  # one source's failure (the store down) must not stop the rest
                log.exception("acting on the changed source %s failed", path)

    origin_changes: set[asyncio.Task[None]] = set()

    def origin_changed(path: SourcePath, identity: str | None) -> None:
        task = asyncio.create_task(sources_changed([(path, identity)]))
        origin_changes.add(task)
        task.add_done_callback(origin_changes.discard)

    for origin in source.origins.values():
        if isinstance(origin, HttpSource):
            origin.on_change = origin_changed
    watcher = SourceWatcher(
        config.sources.root,
        sources_changed,
        notify=config.sources.watch,
        rescan_s=config.sources.rescan_s,
    )
    watching = asyncio.Event()

    telemetry.add_collector(CollaborationCollector(store, off))
    telemetry.add_collector(CostCollector(store, meter, config.costs))
    telemetry.add_collector(PurgeCollector(store))

    async def preview(request: Request) -> Response:
        await admin.auth.require(request)
        return await images.preview(request)

    auth = AdminAuth(
        config.admin.token,
        store,
        secure_cookies=config.admin.secure_cookies,
        attempts_per_minute=config.admin.login_attempts_per_minute,
    )
    admin = AdminApi(
        auth, store, meta, purge, decisions.forget_rules, off=off, meter=meter, config=config
    )

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        # Calibrate AVIF off the request path, so no visitor pays for it.
        threading.Thread(target=avif.get, name="loupe-avif-calibration", daemon=True).start()
        # lane.workers is the node's: with several serving processes, worker 0 runs them
        lane.start(0 if worker is not None and worker.index > 0 else None)
        if shared is not None:
            shared.listen(purge_message)
        watch = None
        # one watcher per node: every worker would bump and purge the same change again
        first_worker = worker is None or worker.index == 0
        if first_worker and (config.sources.watch or config.sources.rescan_s > 0):
            watch = asyncio.create_task(watcher.run(watching), name="loupe-source-watch")
        try:
            yield
        finally:
            watching.set()
            if watch is not None:  # a first scan of a huge root must not hold the shutdown
                with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                    await asyncio.wait_for(watch, timeout=2.0)
            await lane.stop()
            if shared is not None:
                await shared.aclose()
            await vlm.aclose()
            pool.shutdown()
            await source.aclose()
            io.shutdown(wait=True)
            qa.flush()  # the last QA results, before the store closes
            cache.close()
            runtime.close()  # the analyzer, the meter's last tallies, then the store

    async def on_loupe_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, LoupeError)
        return problems.from_loupe_error(request, exc, config.cache.error_max_age_s)

    async def on_http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        return problems.from_http_exception(request, exc)

    async def on_bug(request: Request, exc: Exception) -> Response:
        return problems.from_bug(request, exc)

    app = Starlette(
        routes=[
            Route("/img/{path:path}", images.handle, methods=["GET", "HEAD"]),
            Route("/meta/{path:path}", meta.handle, methods=["GET"]),
            Route("/healthz", ops.healthz, methods=["GET", "HEAD"]),
            Route("/readyz", ops.readyz, methods=["GET", "HEAD"]),
            Route("/metrics", ops.metrics, methods=["GET"]),
            *admin.routes(),
            Route("/admin/api/preview/{path:path}", preview, methods=["GET"]),
            *reviewer_routes(admin.auth, off),
        ],
        exception_handlers={
            LoupeError: on_loupe_error,
            HTTPException: on_http_error,
            Exception: on_bug,
        },
        lifespan=lifespan,
    )
    app.add_middleware(RelativeRedirects)
    app.add_middleware(RequestMetrics, telemetry=telemetry, access=config.log.access)
    app.state.images = images
    app.state.store = store
    app.state.telemetry = telemetry
    return app
