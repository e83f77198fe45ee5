"""``GET|HEAD /img/{path}``: cache lookup, single-flight render, and HTTP caching headers."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, replace

from starlette.requests import Request
from starlette.responses import Response

from proxy.cache.results import CachedImage, ResultCache, cache_key, strong_etag
from proxy.cache.shared import SharedTier
from proxy.cache.singleflight import SingleFlight
from proxy.config import Config
from proxy.negotiate import AcceptClass, parse_accept
from proxy.params import TransformParams, parse_params
from proxy.policies import policy_for_path
from proxy.processing.pipeline import Rendered, RenderSettings, render
from proxy.qa.gate import QualityGate
from proxy.rules import apply_rules
from proxy.server.decisions import Decisions
from proxy.server.pool import ProcessingPool
from proxy.server.ratelimit import client_of
from proxy.server.telemetry import Telemetry
from proxy.signing import verify_request
from proxy.sources.base import Source, SourceRef


@dataclass(frozen=True)
class Outcome:
    item: CachedImage
    timings: tuple[tuple[str, float], ...]
    state: str | None = None  # hit/coalesced when another node's result was used


def describe(rendered: Rendered) -> dict[str, str]:
    """The ``X-Loupe-*`` headers that belong to the bytes (and so are cached with them)."""
    plan = rendered.plan
    headers = {"X-Loupe-Crop": plan.crop.header(), "X-Loupe-Policy": plan.policy}
    if plan.quality is not None:
        headers["X-Loupe-Quality"] = str(plan.quality)
    elif plan.lossless:
        headers["X-Loupe-Quality"] = "lossless"
    if plan.score is not None:
        headers["X-Loupe-Score"] = f"{plan.score:.2f}"
    if plan.encodes is not None:
        headers["X-Loupe-Encodes"] = str(plan.encodes)
    if plan.alpha_flattened:
        headers["X-Loupe-Alpha"] = "flattened"
    if plan.notes:
        headers["X-Loupe-Note"] = ", ".join(plan.notes)
    return headers


def raw_request_path(request: Request) -> bytes:
    """The path as the client sent it (percent-encoding intact), as signatures cover it."""
    return bytes(request.scope.get("raw_path") or request.url.path.encode())


def if_none_match(header: str | None, etag: str) -> bool:
    """Weak comparison, as RFC 9110 prescribes for If-None-Match."""
    if not header:
        return False
    if header.strip() == "*":
        return True
    bare = etag.removeprefix("W/")
    return any(tag.strip().removeprefix("W/") == bare for tag in header.split(","))


def server_timing(timings: tuple[tuple[str, float], ...]) -> str:
    return ", ".join(f"{name};dur={seconds * 1000:.1f}" for name, seconds in timings)


class ImageService:
    def __init__(
        self,
        config: Config,
        source: Source,
        cache: ResultCache,
        pool: ProcessingPool,
        telemetry: Telemetry,
        settings: RenderSettings,
        decisions: Decisions | None = None,
        qa: QualityGate | None = None,
        shared: SharedTier | None = None,
    ) -> None:
        self.shared = shared
        self.decisions = decisions
        self.qa = qa
        self.config = config
        self.source = source
        self.cache = cache
        self.pool = pool
        self.telemetry = telemetry
        self.settings = settings
        # QA's second try: the policy's fixed quality, no models.
        self.safe_settings = replace(settings, quality=None, analyzer=None)
        self.flights: SingleFlight[Outcome] = SingleFlight()

    async def _first(
        self, ref: SourceRef, params: TransformParams, accept: AcceptClass, key: str, client: str
    ) -> Outcome:
        """A local miss: another node's result, or compute it, once across every node.
        ``client``: who asked first, whose budget any review this render opens uses."""
        shared = self.shared
        if shared is None:
            return await self._compute(ref, params, accept, key, client)
        started = time.perf_counter()
        found = await shared.get(key)
        if found is not None:
            await self.cache.put(key, found, tag=ref.path)
            return Outcome(found, (("shared", time.perf_counter() - started),), "hit")
        async with shared.lock(key) as computing_here:
            if computing_here:
                outcome = await self._compute(ref, params, accept, key, client)
                await shared.put(key, outcome.item, ref.path)  # before the lock goes
                return outcome
        found = await shared.wait_for(key, self.config.server.request_deadline_s)
        if found is None:  # the other node failed or gave up: do it here
            return await self._compute(ref, params, accept, key, client)
        await self.cache.put(key, found, tag=ref.path)
        return Outcome(found, (("shared", time.perf_counter() - started),), "coalesced")

    async def _compute(
        self, ref: SourceRef, params: TransformParams, accept: AcceptClass, key: str, client: str
    ) -> Outcome:
        max_bytes = self.config.limits.max_source_bytes
        decisions = self.decisions
        override = await decisions.override_for(ref.path, params) if decisions else None
        qa = self.qa
        variant_name = params.canonical_query(self.config.images.default_crop) + (
            f"|{accept.key}" if params.fm == "auto" and accept.key else ""
        )
        with self.pool.admit() as ticket:
            started = time.perf_counter()
            reader = self.source.blocking_reader(ref, max_bytes)
            if reader is None:  # a source that needs the event loop: fetch, hand bytes over
                fetched_blob = await self.source.read(ref, max_bytes)
                reader = lambda: fetched_blob  # noqa: E731
            waited = time.perf_counter() - started

            def work(deadline: float) -> tuple[Rendered, float]:
                began = time.perf_counter()
                blob = reader()  # local files: read here, in the render thread
                fetched = waited + time.perf_counter() - began

                def attempt(asked: TransformParams, safe: bool) -> Rendered:
                    settings = self.safe_settings if safe else self.settings
                    return render(
                        blob, asked, accept, settings, deadline=deadline, override=override
                    )

                if qa is None:
                    return attempt(params, False), fetched
                rendered = qa.checked(ref.path, variant_name, params, attempt)
                return rendered, fetched

            deadline_s = self.config.server.request_deadline_s
            rendered, fetched = await self.pool.run_admitted(ticket, work, deadline_s)
        self.telemetry.renders.inc()
        for stage, seconds in rendered.timings:
            self.telemetry.stage.labels(stage).observe(seconds)
        item = CachedImage(
            body=rendered.body,
            content_type=rendered.plan.mime,
            etag=strong_etag(rendered.body),
            headers=describe(rendered),
        )
        stored = time.perf_counter()
        await self.cache.put(key, item, tag=ref.path)
        if decisions is not None:
            decisions.rendered(ref.path, params, rendered, ref.identity, client)
        timings = (("fetch", fetched), *rendered.timings, ("store", time.perf_counter() - stored))
        return Outcome(item, timings)

    async def handle(self, request: Request) -> Response:
        signed = verify_request(
            self.config.signing.keys, raw_request_path(request), request.scope["query_string"]
        )
        return await self._serve(request, signed=signed, reviewing=False)

    async def preview(self, request: Request) -> Response:
        """The image as a reviewer must see it: unsigned, and even while moderation holds
        it (deciding on it is the point). The caller has checked the admin credentials."""
        return await self._serve(request, signed=False, reviewing=True)

    async def _serve(self, request: Request, *, signed: bool, reviewing: bool) -> Response:
        started = time.perf_counter()
        path = request.path_params["path"]
        default_crop = self.config.images.default_crop
        params = parse_params(request.url.query, default_crop=default_crop)
        if params.policy is None:
            configured = policy_for_path(path, self.config.images.source_policies)
            if configured is not None:
                params = replace(params, policy=configured)  # type: ignore[arg-type]
        rules: frozenset[str] = frozenset()
        if self.decisions is not None:
            rules = await self.decisions.rules_for(path)
            params = apply_rules(params, rules)
        accept = parse_accept(request.headers.get("accept"))
        ref = await self.source.locate(path)
        if self.decisions is not None and self.decisions.moderator.enabled and not reviewing:
            await self._moderate(ref)
        variant = accept.key if params.fm == "auto" else ""
        key = cache_key(path, params.canonical_query(default_crop), variant, ref.identity)
        item, _tier = await self.cache.get(key)
        if item is not None:
            state = "hit"
            timings: tuple[tuple[str, float], ...] = (("cache", time.perf_counter() - started),)
        else:
            outcome, joined = await self.flights.run(
                key, lambda: self._first(ref, params, accept, key, client_of(request))
            )
            item, timings = outcome.item, outcome.timings
            state = "coalesced" if joined else (outcome.state or "miss")
        self.telemetry.cache.labels(state).inc()
        response = self._respond(request, item, state, params, timings, signed=signed)
        if reviewing:  # never let a shared cache keep what only reviewers may see
            response.headers["Cache-Control"] = "private, no-store"
        if rules:
            response.headers["X-Loupe-Rules"] = ", ".join(sorted(rules))
        return response

    async def _moderate(self, ref: SourceRef) -> None:
        """Fail closed: a source is scanned before its first byte is served, and a held
        one answers 451 until a human approves it."""
        assert self.decisions is not None
        moderator = self.decisions.moderator
        status = await asyncio.to_thread(moderator.known_status, ref.path)
        if status is None:
            blob = await self.source.read(ref, self.config.limits.max_source_bytes)
            status = await self.pool.run(
                lambda _deadline: moderator.scan(ref.path, blob),
                self.config.server.request_deadline_s,
            )
        moderator.check(ref.path, status)

    def _respond(
        self,
        request: Request,
        item: CachedImage,
        state: str,
        params: TransformParams,
        timings: tuple[tuple[str, float], ...],
        *,
        signed: bool,
    ) -> Response:
        cache = self.config.cache
        # A signed URL's bytes can only change with its source identity, which is not in
        # the URL, yet signed URLs are meant to be versioned by their issuer: immutable.
        freshness = (
            f"public, max-age={cache.max_age_s}, immutable"
            if signed
            else f"public, max-age={cache.max_age_s}, "
            f"stale-while-revalidate={cache.stale_while_revalidate_s}"
        )
        headers = {
            "ETag": item.etag,
            "Cache-Control": freshness,
            "Server-Timing": server_timing(timings),
            "X-Loupe-Cache": state,
            **item.headers,
        }
        if params.fm == "auto":
            headers["Vary"] = "Accept"
        if if_none_match(request.headers.get("if-none-match"), item.etag):
            return Response(status_code=304, headers=headers)
        headers["Content-Length"] = str(len(item.body))
        body = b"" if request.method == "HEAD" else item.body
        return Response(body, media_type=item.content_type, headers=headers)
