"""``/admin/api/*``: crops, overrides, alt text, the review queue, purge and the
collaboration metrics. Every route needs the admin token (or a reviewer's session).

Thin HTTP handlers: bodies are parsed and answers serialised through the pydantic models of
``admin_models`` and ``admin_reports`` (which the OpenAPI document is generated from); what a
decision does is ``proxy.curation``'s."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, get_args

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from proxy.analysis.crops import ranked_crops as crops
from proxy.config import Config
from proxy.curation.alt import alt_feedback, user_alt
from proxy.curation.overrides import aspect_of, put_override, user_override
from proxy.curation.review import decide
from proxy.curation.thresholds import calibrate_thresholds
from proxy.detectors.content import LABELS as CONTENT_CLASSES
from proxy.detectors.content import known_class
from proxy.errors import BadParameter, SourceNotFound
from proxy.feedback.costs import CostMeter, cost_report, parse_since
from proxy.feedback.metrics import collaboration
from proxy.params import dimension, split_query
from proxy.rules import RULES, covers, normalise_prefix
from proxy.server import admin_models as m
from proxy.server.admin_models import parse, respond
from proxy.server.admin_reports import Calibration, Costs, Metrics
from proxy.server.auth import AdminAuth
from proxy.server.bodies import JsonDepth, NestingTooDeep, read_capped
from proxy.server.images import request_source_path
from proxy.server.meta import MetaService
from proxy.server.openapi import openapi_json
from proxy.sources.paths import SourcePath
from proxy.stores import Store
from proxy.stores.base import COMPONENTS, ReviewNotFound, ReviewStatus, SearchHit
from proxy.urls import encode_component

MAX_BODY = 64 * 1024
MAX_JSON_DEPTH = 16  # the deepest body the API takes is 3 levels
MAX_ID = 2**63 - 1  # both stores keep ids as signed 64-bit integers
MAX_QUERY = 200
THUMBNAIL = "w=160&h=160&fit=crop&fm=webp"
Purge = Callable[[SourcePath], Awaitable[int]]


async def json_body(request: Request) -> dict[str, Any]:
    raw = await read_capped(request, MAX_BODY, JsonDepth(MAX_JSON_DEPTH))
    try:
        body = json.loads(raw or b"{}")
    except (ValueError, UnicodeDecodeError):
        raise BadParameter("the body must be JSON") from None
    except RecursionError:  # JsonDepth counts brackets; this is the parser's own guard
        raise NestingTooDeep("the JSON body nests too deeply") from None
    if not isinstance(body, dict):
        raise BadParameter("the body must be a JSON object")
    try:  # "\ud800" parses to a lone surrogate, which no store can encode
        json.dumps(body, ensure_ascii=False).encode()
    except UnicodeEncodeError:
        raise BadParameter("the body has an unpaired surrogate (\\ud800-\\udfff)") from None
    return body


def source_url(prefix: str, path: str) -> str:
    return prefix + "/".join(encode_component(part) for part in path.split("/"))


def hit_json(hit: SearchHit) -> dict[str, Any]:
    return {
        "path": hit.path,
        "score": hit.score,
        "alt": {"text": hit.alt, "status": hit.alt_status},
        "class": known_class(hit.content_class),
        "faces": hit.faces,
        "moderation": hit.moderation,
        "duplicate_group": hit.dup_group,
        # the admin preview: unsigned and shown even while moderation holds the image
        "thumbnail": source_url("/admin/api/preview/", hit.path) + "?" + THUMBNAIL,
        "decisions": source_url("/admin/api/decisions/", hit.path),
    }


class AdminApi:
    def __init__(
        self,
        auth: AdminAuth,
        store: Store,
        meta: MetaService,
        purge: Purge,
        rules_changed: Callable[[], None] = lambda: None,
        off: frozenset[str] = frozenset(),
        meter: CostMeter | None = None,
        config: Config | None = None,
    ) -> None:
        self.config = config if config is not None else Config()
        self.meter = meter if meter is not None else CostMeter(None)
        self.off = off  # components with nothing to decide (no VLM: no alt text)
        self.rules_changed = rules_changed
        self.auth = auth
        self.store = store
        self.meta = meta
        self.purge = purge

    def routes(self) -> list[Route]:
        return [
            Route("/admin/api/crops/{path:path}", self.crops, methods=["GET"]),
            Route(
                "/admin/api/overrides/{path:path}",
                self.overrides,
                methods=["GET", "PUT", "DELETE"],
            ),
            Route("/admin/api/alt/{path:path}", self.alt, methods=["GET", "PUT"]),
            Route("/admin/api/review", self.review_list, methods=["GET"]),
            Route("/admin/api/review/{item_id:int}", self.review_item, methods=["GET", "POST"]),
            Route("/admin/api/purge/{path:path}", self.purge_source, methods=["POST"]),
            Route("/admin/api/metrics", self.metrics, methods=["GET"]),
            Route("/admin/api/costs", self.costs, methods=["GET"]),
            Route("/admin/api/calibration", self.calibration, methods=["GET"]),
            Route("/admin/api/openapi.json", openapi_json, methods=["GET"]),  # public
            Route("/admin/api/rules", self.rules, methods=["GET", "PUT", "DELETE"]),
            Route("/admin/api/search", self.search, methods=["GET"]),
            Route("/admin/api/decisions/{path:path}", self.source_decisions, methods=["GET"]),
        ]

    async def _store(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await asyncio.to_thread(fn, *args, **kwargs)

    async def crops(self, request: Request) -> Response:
        await self.auth.require(request)
        path = request_source_path(request)
        raw = split_query(request.url.query)
        if "w" not in raw or "h" not in raw:
            raise BadParameter("crops need w and h")
        width, height = dimension("w", raw["w"]), dimension("h", raw["h"])
        _ref, info, analysis = await self.meta.inspect(path)
        overrides = await self._store(self.store.overrides, path)
        candidates = crops(info, analysis, width, height)
        return respond(
            m.Crops(
                path=path,
                width=width,
                height=height,
                candidates=[m.CropCandidate.model_validate(c) for c in candidates],
                overrides=[m.Override.of(o) for o in overrides],
            )
        )

    async def overrides(self, request: Request) -> Response:
        reviewer = await self.auth.require(request)
        path = request_source_path(request)
        if request.method == "GET":
            found = await self._store(self.store.overrides, path)
            return respond(m.OverrideList(path=path, overrides=[m.Override.of(o) for o in found]))
        if request.method == "DELETE":
            aspect = request.query_params.get("aspect")
            dropped = await self._store(
                self.store.delete_overrides, path, aspect_of(aspect) if aspect else None
            )
            if not dropped:
                raise SourceNotFound(f"no override for {path}")
            await self.purge(path)
            return Response(status_code=204)
        crop = parse(m.OverrideRequest, await json_body(request)).crop()
        info = await self.meta.probe(path)  # the source must exist: its header, no analysis
        override, feedback = user_override(path, crop, info.width, info.height, reviewer)
        stored, _ = await self._store(put_override, self.store, override, feedback)
        await self.purge(path)
        return respond(m.StoredOverride.stored(path, stored))

    async def alt(self, request: Request) -> Response:
        reviewer = await self.auth.require(request)
        path = request_source_path(request)
        if request.method == "GET":
            return respond(m.Alt.at(path, await self._store(self.store.alt, path)))
        asked = parse(m.AltRequest, await json_body(request))
        await self.meta.probe(path)  # the source must exist
        before = await self._store(self.store.alt, path)
        stored = await self._store(self.store.put_alt, user_alt(path, asked.text, before))
        feedback = alt_feedback(stored, before, asked.reason, reviewer)
        await self._store(self.store.add_feedback, feedback)
        return respond(m.Alt.at(path, stored))

    async def review_list(self, request: Request) -> Response:
        await self.auth.require(request)
        params = request.query_params
        status = params.get("status", "pending")
        component = params.get("component")
        if status not in (*get_args(ReviewStatus), "all"):
            raise BadParameter(f"status must be {', '.join(get_args(ReviewStatus))} or all")
        if component is not None and component not in COMPONENTS:
            raise BadParameter(f"component must be one of {', '.join(COMPONENTS)}")
        try:
            limit = min(200, max(1, int(params.get("limit", "50"))))
            after = min(MAX_ID, max(0, int(params.get("after", "0"))))
        except ValueError:
            raise BadParameter("limit and after must be integers") from None
        items = await self._store(
            self.store.reviews,
            status=None if status == "all" else status,
            component=component,
            limit=limit,
            after_id=after,
        )
        return respond(m.ReviewList(items=[m.ReviewItem.of(item) for item in items]))

    async def review_item(self, request: Request) -> Response:
        reviewer = await self.auth.require(request)
        item_id = request.path_params["item_id"]
        if item_id > MAX_ID:  # the store could not even look it up
            raise ReviewNotFound(f"no review item {item_id}")
        # A write's body is judged first: a bad one is a 400 whatever the item.
        body = await json_body(request) if request.method == "POST" else {}
        item = await self._store(self.store.review, item_id)
        if request.method == "GET":
            return respond(m.ReviewItem.of(item))
        decision = parse(m.Decision, body).decision(reviewer)
        decided = await self._store(decide, self.store, item, decision)
        if item.component in ("crop", "moderation"):
            await self.purge(item.path)  # what is served changes now
        return respond(m.ReviewItem.of(decided))

    async def purge_source(self, request: Request) -> Response:
        await self.auth.require(request)
        path = request_source_path(request)
        # A node that misses the purge message still stops using its copies: the new
        # generation is in every cache key (within the 2 s memo).
        await self._store(self.store.bump_generation, path)
        return respond(m.Purged(path=path, purged=await self.purge(path)))

    async def rules(self, request: Request) -> Response:
        """Exception rules for a source or folder: ``{"prefix": "shop", "rule": ...}``."""
        reviewer = await self.auth.require(request)
        if request.method == "GET":
            rows = await self._store(self.store.rules)
            return respond(m.RuleList(rules=[m.Rule.row(row) for row in rows], known=RULES))
        if request.method == "DELETE":
            prefix = normalise_prefix(request.query_params.get("prefix", ""))
            rule = request.query_params.get("rule", "")
            if not await self._store(self.store.delete_rule, prefix, rule):
                raise SourceNotFound(f"no rule {rule!r} on {prefix!r}")
            self.rules_changed()
            return Response(status_code=204)
        asked = parse(m.RuleRequest, await json_body(request))
        prefix = normalise_prefix(asked.prefix)
        await self._store(self.store.put_rule, prefix, asked.rule, reviewer, asked.reason[:2000])
        self.rules_changed()  # rules rewrite requests before the cache key: no purge needed
        return respond(m.StoredRule(prefix=prefix, rule=asked.rule, reason=asked.reason))

    async def search(self, request: Request) -> Response:
        """Sources by alt text, path, class, faces, moderation and duplicate group."""
        await self.auth.require(request)
        params = request.query_params
        query = params.get("q", "")
        if len(query) > MAX_QUERY:
            raise BadParameter(f"q must be at most {MAX_QUERY} characters")
        content_class = params.get("class") or None
        if content_class is not None and content_class not in CONTENT_CLASSES:
            raise BadParameter(f"class must be one of {', '.join(CONTENT_CLASSES)}")
        folder = normalise_prefix(params.get("folder", "")) or None
        try:
            limit = int(params.get("limit", "20"))
        except ValueError:
            raise BadParameter("limit must be an integer") from None
        if not 1 <= limit <= 100:
            raise BadParameter("limit must be 1-100")
        hits = await self._store(
            self.store.search, query, content_class=content_class, folder=folder, limit=limit
        )
        results = [m.SearchHit.model_validate(hit_json(hit)) for hit in hits]
        return respond(m.SearchResults(q=query, results=results))

    async def source_decisions(self, request: Request) -> Response:
        """Everything decided about one source: what the search box opens."""
        await self.auth.require(request)
        path = request_source_path(request)
        overrides = await self._store(self.store.overrides, path)
        alt = await self._store(self.store.alt, path)
        rules = await self._store(self.store.rules)
        reviews = await self._store(self.store.reviews, status=None, path=path, limit=200)
        source = await self._store(self.store.source, path)
        if source is None and alt is None and not overrides and not reviews:
            raise SourceNotFound(f"the store knows nothing of {path}")
        return respond(
            m.SourceDecisions.model_validate(
                {
                    "path": path,
                    "generation": await self._store(self.store.generation, path),
                    "moderation": source.moderation_status if source else "unscanned",
                    "class": known_class(source.content_class) if source else None,
                    "faces": source.faces if source else None,
                    "duplicate_group": source.dup_group if source else None,
                    "alt": m.AltFacts.of(alt),
                    "overrides": [m.Override.of(o) for o in overrides],
                    "rules": [m.Rule.row(row) for row in rules if covers(row[0], path)],
                    "reviews": [m.ReviewItem.of(item) for item in reviews],
                    "thumbnail": source_url("/admin/api/preview/", path) + "?" + THUMBNAIL,
                }
            )
        )

    async def metrics(self, request: Request) -> Response:
        await self.auth.require(request)
        outcomes = await self._store(self.store.outcomes)
        feedback = await self._store(self.store.feedback_rows)
        counts = await self._store(self.store.review_counts)
        body = collaboration(outcomes, feedback, counts.get("pending", {}), self.off)
        body["jobs"] = await self._store(self.store.job_counts)
        purges: dict[str, Any] = await self._store(self.store.purge_counts)
        purges["failed"] = [
            {
                "path": item.prefix,
                "reason": item.reason,
                "attempts": item.attempts,
                "error": item.last_error,
                "queued": item.first_queued,
            }
            for item in await self._store(self.store.purges, "dead", 20)
        ]
        body["purges"] = purges
        return respond(Metrics.model_validate(body))

    async def costs(self, request: Request) -> Response:
        """What each AI component cost since a day (``?since=2026-12-01`` or epoch seconds)."""
        await self.auth.require(request)
        since = parse_since(request.query_params.get("since"))
        await self._store(self.meter.flush)  # this node's latest tallies count too
        rows = await self._store(self.store.costs, since)
        start = (
            datetime.strptime(since, "%Y-%m-%d").replace(tzinfo=UTC).timestamp() if since else 0.0
        )
        images = await self._store(self.store.sources_seen, start)
        return respond(Costs.model_validate(cost_report(rows, self.config.costs, images, since)))

    async def calibration(self, request: Request) -> Response:
        """What each confidence means, and the threshold that reaches the target precision;
        with ``calibration.apply`` the proposed thresholds are applied (and logged)."""
        await self.auth.require(request)
        report = await self._store(calibrate_thresholds, self.store, self.config)
        return respond(Calibration.model_validate(report))
