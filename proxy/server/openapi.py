"""The admin API's OpenAPI 3.1 document, served at ``GET /admin/api/openapi.json``, generated
from the pydantic models of its bodies (``admin_models``, ``admin_reports``) and the route
table below.

It is published without the admin token, so tools (schemathesis, client generators) can read
it: it holds no secrets, and it declares the bearer scheme that every other operation needs.
``tests/integration/test_admin_openapi.py`` fuzzes the live server against it and fails when
a route in ``AdminApi.routes()`` is missing from ``OPERATIONS``, so keep the two in step.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any, get_args

from pydantic import BaseModel
from pydantic.json_schema import GenerateJsonSchema, models_json_schema
from starlette.requests import Request
from starlette.responses import Response

from proxy.detectors.content import LABELS as CONTENT_CLASSES
from proxy.rules import RULES
from proxy.server import admin_models as m
from proxy.server import admin_reports as r
from proxy.server.openapi_parts import (
    ERRORS,
    ITEM_ID,
    JSON,
    PARAMETERS,
    PATH_ERRORS,
    REVIEWER,
    SIDE,
    SOURCE,
    SOURCE_ERRORS,
    Operation,
    Schema,
    query,
)
from proxy.stores.base import COMPONENTS, ReviewStatus

REVIEW_STATUSES: list[str] = list(get_args(ReviewStatus))
REF = "#/components/schemas/{model}"


OVERRIDES = "/admin/api/overrides/{path}"
OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "get",
        "/admin/api/crops/{path}",
        "getCropCandidates",
        "three ranked crop candidates for a w x h box",
        "the candidates and the source's overrides",
        m.Crops,
        (*PATH_ERRORS, 400, *SOURCE_ERRORS),
        (
            SOURCE,
            query("w", SIDE, "box width (px)", required=True),
            query("h", SIDE, "box height (px)", required=True),
        ),
        description="The other /img parameters (fit, crop, dpr, ...) are accepted and "
        "ignored; an unknown or repeated parameter is a 400.",
    ),
    Operation(
        "get",
        OVERRIDES,
        "listOverrides",
        "the source's human crops",
        "every override, empty for an unknown source",
        m.OverrideList,
        (*PATH_ERRORS, 404),
        (SOURCE,),
    ),
    Operation(
        "put",
        OVERRIDES,
        "putOverride",
        "set a user crop that beats every AI choice for its aspect, at every size",
        "the stored override",
        m.StoredOverride,
        (*PATH_ERRORS, 400, *SOURCE_ERRORS),
        (SOURCE, REVIEWER),
        m.OverrideRequest,
        "Replaces the override for the same aspect and ctx, records the correction as "
        "feedback (in the same transaction) and purges the source's cached variants. The "
        "source is checked from its header: the models do not run.",
    ),
    Operation(
        "delete",
        OVERRIDES,
        "deleteOverrides",
        "drop the source's overrides (of one aspect, or all)",
        "dropped; cached variants purged",
        None,
        (*PATH_ERRORS, 400, 404),
        (
            SOURCE,
            query(
                "aspect",
                {"type": "string", "examples": ["16:9", "any"]},
                "only this aspect (W:H, a ratio or any); omitted or empty: every aspect",
            ),
        ),
    ),
    Operation(
        "get",
        "/admin/api/alt/{path}",
        "getAlt",
        "the source's alt text, with any draft awaiting review",
        "the alt text; status empty for an unknown source",
        m.Alt,
        (*PATH_ERRORS, 404),
        (SOURCE,),
    ),
    Operation(
        "put",
        "/admin/api/alt/{path}",
        "putAlt",
        "set the alt text (published at once, status user)",
        "the stored alt text",
        m.Alt,
        (*PATH_ERRORS, 400, *SOURCE_ERRORS),
        (SOURCE, REVIEWER),
        m.AltRequest,
    ),
    Operation(
        "get",
        "/admin/api/review",
        "listReviewItems",
        "the review queue, oldest first",
        "one page of items",
        m.ReviewList,
        (400,),
        (
            query(
                "status", {"enum": [*REVIEW_STATUSES, "all"], "default": "pending"}, "which items"
            ),
            query("component", {"enum": list(COMPONENTS)}, "only this component"),
            query("limit", {"type": "integer", "default": 50}, "page size; clamped to 1-200"),
            query(
                "after",
                {"type": "integer", "default": 0},
                "only ids above this one (the last id of the previous page); negative counts as 0",
            ),
        ),
    ),
    Operation(
        "get",
        "/admin/api/review/{item_id}",
        "getReviewItem",
        "one review item",
        "the item",
        m.ReviewItem,
        (404,),
        (ITEM_ID,),
    ),
    Operation(
        "post",
        "/admin/api/review/{item_id}",
        "decideReviewItem",
        "accept, reject or edit a pending item",
        "the decided item",
        m.ReviewItem,
        (400, 404, 409, 413),
        (ITEM_ID, REVIEWER),
        m.Decision,
        "Closes the item, keeps the feedback beside the AI output it judged and changes "
        "what is served (an override, an alt text, a moderation verdict) in one "
        "transaction; crop and moderation decisions purge the source's cached variants.",
    ),
    Operation(
        "post",
        "/admin/api/purge/{path}",
        "purgeSource",
        "drop every cached variant of a source, on every node and at the CDN",
        "how many variants were dropped",
        m.Purged,
        (*PATH_ERRORS, 404),
        (SOURCE,),
    ),
    Operation(
        "get",
        "/admin/api/search",
        "searchSources",
        "sources by alt text, path, folder, class, faces, moderation and duplicate group",
        "ranked, best first",
        m.SearchResults,
        (400, 414),
        (
            query(
                "q",
                {"type": "string", "maxLength": 200},
                "words, each matched as a prefix; all must match; empty: the newest",
            ),
            query("class", {"enum": list(CONTENT_CLASSES)}, "only this content class"),
            query("folder", {"type": "string"}, "only sources below this folder"),
            query("limit", {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}, ""),
        ),
    ),
    Operation(
        "get",
        "/admin/api/decisions/{path}",
        "getSourceDecisions",
        "everything decided about one source (what the search box opens)",
        "its generation, alt text, overrides, rules and reviews",
        m.SourceDecisions,
        (*PATH_ERRORS, 404),
        (SOURCE,),
    ),
    Operation(
        "get",
        "/admin/api/metrics",
        "getMetrics",
        "the collaboration metrics",
        "auto-accept and override rates, review time, corrections",
        r.Metrics,
    ),
    Operation(
        "get",
        "/admin/api/costs",
        "getCosts",
        "what each AI component cost",
        "inferences, seconds, cache savings, VLM tokens and the estimated cost per "
        "component, per image and per day",
        r.Costs,
        (400,),
        (
            query(
                "since",
                {"type": "string"},
                "a UTC day (2026-12-01) or epoch seconds (counted from its day); default: "
                "everything",
            ),
        ),
    ),
    Operation(
        "get",
        "/admin/api/calibration",
        "getCalibration",
        "what each component's confidence means",
        "per component (alt text confidence, moderation: 1 - NSFW score, crop: the top "
        "candidate's score): the human decisions per confidence bin and the share accepted "
        "as is, and the threshold reaching calibration.target_precision with the "
        "auto-accept rate it gives",
        r.Calibration,
        description="With calibration.apply = true, a proposed threshold that differs from "
        "the current one replaces it (vlm.confidence_threshold, moderation.review_threshold "
        "as 1 - t) and is logged as a decision.",
    ),
    Operation(
        "get",
        "/admin/api/rules",
        "listRules",
        "the reviewers' exception rules, and the rules there are",
        "every rule, by prefix",
        m.RuleList,
    ),
    Operation(
        "put",
        "/admin/api/rules",
        "putRule",
        "set an exception rule on a source or folder",
        "the stored rule",
        m.StoredRule,
        (400, 404, 413, 414),
        (REVIEWER,),
        m.RuleRequest,
        "Takes effect on the next request: rules rewrite the request before the cache key; "
        "the folder's tag is purged at the CDN.",
    ),
    Operation(
        "delete",
        "/admin/api/rules",
        "deleteRule",
        "drop one exception rule",
        "dropped",
        None,
        (400, 404, 414),
        (
            query("prefix", {"type": "string", "default": ""}, "as set (normalised)"),
            query("rule", {"enum": list(RULES)}, "the rule to drop", required=True),
        ),
    ),
    Operation(
        "get",
        "/admin/api/openapi.json",
        "getOpenApi",
        "this document",
        "the OpenAPI 3.1 document",
        None,
        description="Public: readable without the admin token.",
        public=True,
    ),
)


class _Untitled(GenerateJsonSchema):
    """Property titles ("Auto Accept Rate") only repeat the names: leave them out."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False


def schemas() -> dict[str, Schema]:
    """Every model's JSON Schema, under its class name."""
    requests = {op.body for op in OPERATIONS if op.body is not None}
    responses = {op.model for op in OPERATIONS if op.model is not None} | {m.Problem}
    models: list[tuple[type[BaseModel], Any]] = [(model, "validation") for model in requests]
    models += [(model, "serialization") for model in responses]
    models.sort(key=lambda pair: pair[0].__name__)
    _, found = models_json_schema(models, ref_template=REF, schema_generator=_Untitled)
    return dict(sorted(found.get("$defs", {}).items()))


@cache
def document() -> dict[str, Any]:
    """The whole document, built once."""
    paths: dict[str, Schema] = {}
    for operation in OPERATIONS:
        paths.setdefault(operation.path, {})[operation.method] = operation.render()
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Loupe admin API",
            "version": "1",
            "description": "Crops, overrides, alt text, the review queue, purge and the "
            "collaboration metrics. Every error is application/problem+json (RFC 9457); a 500 "
            "is always a bug. HEAD is also answered wherever GET is; a method a path does not "
            "list is a 405 problem with an Allow header.",
        },
        "security": [{"bearerAuth": []}, {"reviewerSession": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "the token given to loupe serve --admin-token; without "
                    "one configured every operation answers 403",
                },
                "reviewerSession": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": "loupe_session",
                    "description": "the reviewers' page session (POST /admin/login); writes "
                    "also need the X-Loupe-CSRF header the page is given",
                },
            },
            "schemas": schemas(),
            "parameters": PARAMETERS,
            "responses": {name: response for name, response in ERRORS.values()},
        },
    }


@cache
def _rendered() -> bytes:
    return json.dumps(document(), indent=1).encode()


async def openapi_json(_request: Request) -> Response:
    """``GET /admin/api/openapi.json``: no token needed (see the module docstring)."""
    return Response(_rendered(), media_type=JSON)
