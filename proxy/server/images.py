"""``GET|HEAD /img/{path}``: cache lookup, single-flight render, and HTTP caching headers."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial

from starlette.requests import Request
from starlette.responses import Response

from proxy.cache.nodelock import NodeLocks
from proxy.cache.results import CachedImage, ResultCache, cache_key, strong_etag
from proxy.cache.shared import SharedTier
from proxy.cache.singleflight import SingleFlight
from proxy.cdn.tags import tag_headers, tags_for
from proxy.config import CacheConfig, Config
from proxy.curation.decisions import Decisions, Snapshot
from proxy.negotiate import AcceptClass, parse_accept
from proxy.params import TransformParams, drop_ignored, parse_params
from proxy.policies import policy_for_path
from proxy.processing.pipeline import RenderSettings, models_identity, pending_keys, render
from proxy.processing.rendered import Rendered
from proxy.qa.gate import QualityGate
from proxy.rules import apply_rules
from proxy.server.pool import ProcessingPool
from proxy.server.ratelimit import client_of
from proxy.signing import expiry, verify_request
from proxy.sources.base import Source, SourceRef
from proxy.sources.paths import BadPath, NotCanonical, SourcePath, canonical_path
from proxy.telemetry import Telemetry
from proxy.urls import encode_component


@dataclass(frozen=True)
class Outcome:
    item: CachedImage
    timings: tuple[tuple[str, float], ...]
    state: str | None = None  # hit/coalesced when another node's result was used
    stale: bool = False  # a decision landed during the render: not stored, not the answer


@dataclass(frozen=True)
class Wanted:
    """One render to produce: the located source, the request and what decided it."""

    ref: SourceRef
    params: TransformParams
    accept: AcceptClass
    key: str
    snapshot: Snapshot | None
    blob: bytes | None = None  # bytes already read (by moderation): rendered as they are
    client: str = ""  # who asked first: any review this render opens uses their budget
    background: bool = False  # the lane's final answer, not a client's request (not counted)


RETRIES_AFTER_A_DECISION = 2


def describe(rendered: Rendered) -> dict[str, str]:
    """The ``X-Loupe-*`` headers that belong to the bytes (and so are cached with them)."""
    plan = rendered.plan
    headers = {"X-Loupe-Crop": plan.crop.header(), "X-Loupe-Policy": plan.policy.name}
    if rendered.quality is not None:
        headers["X-Loupe-Quality"] = str(rendered.quality)
    elif rendered.lossless:
        headers["X-Loupe-Quality"] = "lossless"
    if rendered.score is not None:
        headers["X-Loupe-Score"] = f"{rendered.score:.2f}"
    if rendered.encodes is not None:
        headers["X-Loupe-Encodes"] = str(rendered.encodes)
    headers["X-Loupe-Stage"] = rendered.stage
    if plan.alpha_flattened:
        headers["X-Loupe-Alpha"] = "flattened"
    if rendered.notes:
        headers["X-Loupe-Note"] = ", ".join(rendered.notes)
    return headers


def raw_request_path(request: Request) -> bytes:
    """The path as the client sent it (percent-encoding intact), as signatures cover it."""
    return bytes(request.scope.get("raw_path") or request.url.path.encode())


def request_source_path(request: Request) -> SourcePath:
    """The route's ``{path}`` as a ``SourcePath``; any other spelling of a source answers a
    308 to the canonical one (the query kept), so it can never be a second source."""
    raw = str(request.path_params["path"])
    full = str(request.scope["path"])
    if not full.endswith(raw):  # a route's "$" also matches before a final line feed
        raise BadPath("the path holds a line feed")
    path = canonical_path(raw)
    if path != raw:
        prefix = full[: len(full) - len(raw)]
        location = prefix.rstrip("/") + "/" + "/".join(map(encode_component, path.split("/")))
        query = bytes(request.scope["query_string"]).decode("latin-1")
        raise NotCanonical(path, f"{location}?{query}" if query else location)
    return path


def cache_control(
    cache: CacheConfig,
    *,
    signed: bool,
    expires: int | None,
    cap_s: int | None = None,
    now: float | None = None,
) -> str:
    """How long a shared cache may keep an image. A signed URL's bytes can only change with
    its source identity, which is not in the URL, yet signed URLs are meant to be versioned
    by their issuer: immutable, unless it expires: then no longer than it is valid.
    ``cap_s``: an answer that may soon change (an image still under moderation review)."""
    limit = cache.max_age_s if cap_s is None else min(cache.max_age_s, cap_s)
    if signed and expires is not None:
        left = max(0, expires - int(time.time() if now is None else now))
        return f"public, max-age={min(limit, left)}"
    if cap_s is not None:
        return f"public, max-age={limit}"
    if signed:
        return f"public, max-age={cache.max_age_s}, immutable"
    return (
        f"public, max-age={cache.max_age_s}, "
        f"stale-while-revalidate={cache.stale_while_revalidate_s}"
    )


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
        node: NodeLocks | None = None,
        catch_up: Callable[[], object] | None = None,
    ) -> None:
        self.catch_up = catch_up  # applies the node's other workers' purges first
        self.shared = shared
        self.node = node  # the other workers of this node, when there is no shared tier
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

    async def _first(self, wanted: Wanted) -> Outcome:
        """A local miss: another node's result, or compute it, once across every node."""
        shared = self.shared
        if shared is None:
            if self.node is not None:
                return await self._first_on_node(self.node, wanted)
            return await self._compute(wanted)
        key, tag = wanted.key, wanted.ref.path
        started = time.perf_counter()
        found = await shared.get(key)
        if found is not None and found.pending and await self._verified(found.pending):
            found = None  # another node's provisional answer, verified since: render final
        if found is not None:
            await self.cache.put(key, found, tag=tag)
            return Outcome(found, (("shared", time.perf_counter() - started),), "hit")
        async with shared.lock(key) as computing_here:
            if computing_here:
                outcome = await self._compute(wanted)
                if not outcome.stale:
                    await shared.put(key, outcome.item, tag)  # before the lock goes
                return outcome
        found = await shared.wait_for(key, self.config.server.request_deadline_s)
        if found is None:  # the other node failed or gave up: do it here
            return await self._compute(wanted)
        await self.cache.put(key, found, tag=tag)
        return Outcome(found, (("shared", time.perf_counter() - started),), "coalesced")

    async def _first_on_node(self, node: NodeLocks, wanted: Wanted) -> Outcome:
        """A local miss with several workers on this node: the worker holding the key's
        lock renders and writes the shared disk cache before letting go; the others poll
        for the lock and find the result there (``proxy.cache.nodelock``)."""
        key, started = wanted.key, time.perf_counter()

        async def find() -> Outcome | None:
            found, _ = await self._current(key)
            timings = (("node", time.perf_counter() - started),)
            return Outcome(found, timings, "coalesced") if found is not None else None

        compute, written = partial(self._compute, wanted), partial(self.cache.written, key)
        deadline_s = self.config.server.request_deadline_s
        return await node.once(key, find, compute, written, deadline_s)

    async def _compute(self, wanted: Wanted) -> Outcome:
        ref, params, accept = wanted.ref, wanted.params, wanted.accept
        max_bytes = self.config.limits.max_source_bytes
        decisions = self.decisions
        override = wanted.snapshot.override_for(params) if wanted.snapshot else None
        qa = self.qa
        variant_name = params.canonical_query(self.config.images.default_crop) + (
            f"|{accept.key}" if params.fm == "auto" and accept.key else ""
        )
        with self.pool.admit() as ticket:
            started = time.perf_counter()
            prefetched = wanted.blob
            reader = None if prefetched is not None else self.source.blocking_reader(ref, max_bytes)
            if reader is None:  # a source that needs the event loop: fetch, hand bytes over
                fetched_blob = prefetched or await self.source.read(ref, max_bytes)
                reader = lambda: fetched_blob  # noqa: E731
            waited = time.perf_counter() - started

            def work(deadline: float) -> tuple[Rendered, float]:
                began = time.perf_counter()
                blob = reader()  # local files: read here, in the render thread
                fetched = waited + time.perf_counter() - began

                def attempt(asked: TransformParams, safe: bool) -> Rendered:
                    settings = self.safe_settings if safe else self.settings
                    return render(
                        blob,
                        asked,
                        accept,
                        settings,
                        deadline=deadline,
                        override=override,
                        path=ref.path,
                    )

                if qa is None:
                    return attempt(params, False), fetched
                rendered = qa.checked(ref.path, variant_name, params, attempt)
                return rendered, fetched

            deadline_s = self.config.server.request_deadline_s
            rendered, fetched = await self.pool.run_admitted(ticket, work, deadline_s)
        if not wanted.background:
            self.telemetry.renders.inc()
            for stage, seconds in rendered.timings:
                self.telemetry.stage.labels(stage).observe(seconds)
        plan = rendered.plan
        provisional = rendered.stage == "provisional" and self.settings.quality is not None
        pending = (
            pending_keys(plan, accept, params.fm == "auto", self.settings.quality)
            if provisional and self.settings.quality is not None
            else ()
        )
        item = CachedImage(
            body=rendered.body,
            content_type=rendered.plan.mime,
            etag=strong_etag(rendered.body),
            headers=describe(rendered),
            pending=pending,
        )
        stored = time.perf_counter()
        snapshot = wanted.snapshot
        if (
            snapshot is not None
            and decisions is not None
            and not await decisions.still_current(ref.path, snapshot)
        ):  # a decision landed meanwhile: this render is not its answer
            decisions.forget(ref.path)
            return Outcome(item, (("fetch", fetched), *rendered.timings), stale=True)
        await self.cache.put(wanted.key, item, tag=ref.path)
        if decisions is not None:
            decisions.rendered(ref.path, params, rendered, ref.identity, wanted.client)
            if pending and plan.phash:
                payload = {
                    "query": params.canonical_query(self.config.images.default_crop),
                    "accept": accept.key,
                    "format": plan.format,
                    "quality": rendered.quality,
                    "phash": plan.phash,
                }
                decisions.provisional(ref.path, "|".join(pending), payload, ref.identity)
        timings = (("fetch", fetched), *rendered.timings, ("store", time.perf_counter() - stored))
        return Outcome(item, timings)

    def _query(self, request: Request) -> str:
        """The raw query without tracking parameters (``params.drop_ignored``)."""
        raw = bytes(request.scope["query_string"]).decode("latin-1")
        return drop_ignored(raw, self.config.images.ignored_params)[0]

    async def handle(self, request: Request) -> Response:
        query = self._query(request)
        signed = verify_request(
            self.config.signing.keys, raw_request_path(request), query.encode("latin-1")
        )
        expires = expiry(query) if signed else None
        return await self._serve(request, query, signed=signed, reviewing=False, expires=expires)

    async def preview(self, request: Request) -> Response:
        """The image as a reviewer must see it: unsigned, and even while moderation holds
        it (deciding on it is the point). The caller has checked the admin credentials."""
        return await self._serve(request, self._query(request), signed=False, reviewing=True)

    async def _serve(
        self,
        request: Request,
        query: str,
        *,
        signed: bool,
        reviewing: bool,
        expires: int | None = None,
    ) -> Response:
        started = time.perf_counter()
        if self.catch_up is not None:
            self.catch_up()
        path = request_source_path(request)
        default_crop = self.config.images.default_crop
        asked = parse_params(query, default_crop=default_crop)
        if asked.policy is None:
            configured = policy_for_path(path, self.config.images.source_policies)
            if configured is not None:
                asked = replace(asked, policy=configured)  # type: ignore[arg-type]
        accept = parse_accept(request.headers.get("accept"))
        ref = await self.source.locate(path)
        status, blob = None, None
        if self.decisions is not None and self.decisions.moderator.enabled and not reviewing:
            status, blob = await self._moderate(ref)
        variant = accept.key if asked.fm == "auto" else ""
        tries = RETRIES_AFTER_A_DECISION
        while True:
            snapshot = await self.decisions.snapshot(path) if self.decisions else None
            rules = snapshot.rules if snapshot else frozenset()
            params = apply_rules(asked, rules)
            key = cache_key(
                path,
                params.canonical_query(default_crop),
                variant,
                ref.identity,
                snapshot.generation if snapshot else 0,
                models_identity(params, self.settings),
            )
            wanted = Wanted(ref, params, accept, key, snapshot, blob, client_of(request))
            item, state, timings, stale = await self._lookup(wanted, started)
            if not stale or not tries:
                break
            tries -= 1  # a decision landed during the render: answer what it decided
        self.telemetry.cache.labels(state).inc()
        # A human may still reject an image under review: CDNs must ask again soon.
        cap = self.config.moderation.review_max_age_s if status == "review" else None
        if item.headers.get("X-Loupe-Stage") == "provisional":  # verified soon, then final
            provisional = self.config.images.provisional_max_age_s
            cap = provisional if cap is None else min(cap, provisional)
        freshness = cache_control(self.config.cache, signed=signed, expires=expires, cap_s=cap)
        if reviewing or stale:  # never let a shared cache keep what only reviewers may see,
            freshness = "private, no-store"  # nor a render a decision overtook
        response = self._respond(request, item, state, params, timings, freshness)
        response.headers.update(self._cdn_headers(path, freshness, expires))
        if rules:
            response.headers["X-Loupe-Rules"] = ", ".join(sorted(rules))
        return response

    def _cdn_headers(self, path: SourcePath, freshness: str, expires: int | None) -> dict[str, str]:
        """Tags for purges by source, folder or deployment; once purges reach the CDN, it may
        keep a public answer long (``Surrogate-Control``, which browsers never see): every
        decision that changes the bytes purges it there."""
        cdn = self.config.cdn
        headers = tag_headers(tags_for(cdn.deployment, path))
        # Only answers meant to last: one kept short (under review, provisional, expiring)
        # must stay short at the edge too.
        full = f"max-age={self.config.cache.max_age_s}"
        lasting = freshness.startswith("public") and full in freshness.split(", ")
        if cdn.purges and lasting and expires is None:
            headers["Surrogate-Control"] = f"max-age={cdn.surrogate_max_age_s}"
        return headers

    async def _lookup(
        self, wanted: Wanted, started: float
    ) -> tuple[CachedImage, str, tuple[tuple[str, float], ...], bool]:
        """The cached result for ``wanted``, or one render shared by every concurrent
        request for it: (item, cache state, timings, whether a decision overtook it)."""
        item, superseded = await self._current(wanted.key)
        if superseded:  # another worker of this node may have stored the final answer
            item, _ = await self._current(wanted.key)
        if item is not None:
            return item, "hit", (("cache", time.perf_counter() - started),), False
        # A miss, or a provisional answer whose decision is verified now: answer final.
        outcome, joined = await self.flights.run(wanted.key, partial(self._first, wanted))
        state = "coalesced" if joined else (outcome.state or "miss")
        return outcome.item, state, outcome.timings, outcome.stale

    async def _current(self, key: str) -> tuple[CachedImage | None, bool]:
        """The cached result, unless it is a provisional answer whose decision is verified
        now: then (None, True), and this process's memory copy of it is dropped."""
        item, _tier = await self.cache.get(key)
        if item is not None and item.pending and await self._verified(item.pending):
            self.cache.forget_memory_key(key)
            return None, True
        return item, False

    async def _verified(self, keys: tuple[str, ...]) -> bool:
        tools = self.settings.quality
        if tools is None:
            return False
        decisions = tools.decisions
        return await asyncio.to_thread(
            lambda: all(decisions.decision(key) is not None for key in keys)
        )

    async def refresh(self, path: SourcePath, query: str, accept_key: str) -> bool:
        """Render ``query`` for the Accept class ``accept_key`` again and store it, when the
        cache holds a provisional answer (or none) for it: the lane's ``verify`` job puts
        the final answer in place before anyone asks. False when nothing was done."""
        if self.decisions is not None and self.decisions.moderator.enabled:
            return False  # moderation screens on the request path; leave it to a request
        default_crop = self.config.images.default_crop
        params = parse_params(query, default_crop=default_crop)
        accept = AcceptClass.from_key(accept_key)
        ref = await self.source.locate(path)
        if self.decisions is not None:
            self.decisions.forget(path)  # a verification may have bumped the generation
        snapshot = await self.decisions.snapshot(path) if self.decisions else None
        params = apply_rules(params, snapshot.rules if snapshot else frozenset())
        key = cache_key(
            path,
            params.canonical_query(default_crop),
            accept.key if params.fm == "auto" else "",
            ref.identity,
            snapshot.generation if snapshot else 0,
            models_identity(params, self.settings),
        )
        item, _tier = await self.cache.get(key)
        if item is not None and not item.pending:
            return False
        wanted = Wanted(ref, params, accept, key, snapshot, background=True)
        outcome, _joined = await self.flights.run(key, partial(self._first, wanted))
        return not outcome.stale and not outcome.item.pending

    async def _moderate(self, ref: SourceRef) -> tuple[str, bytes | None]:
        assert self.decisions is not None
        deadline_s = self.config.server.request_deadline_s
        return await self.decisions.moderator.screen(
            self.source,
            ref,
            self.config.limits.max_source_bytes,
            lambda work: self.pool.run(work, deadline_s),
        )

    def _respond(
        self,
        request: Request,
        item: CachedImage,
        state: str,
        params: TransformParams,
        timings: tuple[tuple[str, float], ...],
        freshness: str,
    ) -> Response:
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
