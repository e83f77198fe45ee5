"""The admin API's OpenAPI 3.1 document, served at ``GET /admin/api/openapi.json``.

It is published without the admin token, so tools (schemathesis, client generators) can read
it: it holds no secrets, and it declares the bearer scheme that every other operation needs.
``tests/integration/test_admin_openapi.py`` fuzzes the live server against it and fails when
a route in ``AdminApi.routes()`` is missing here, so keep the two in step.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any, get_args

from starlette.requests import Request
from starlette.responses import Response

from proxy.detectors.content import LABELS as CONTENT_CLASSES
from proxy.feedback.calibration import CALIBRATED, SETTINGS
from proxy.feedback.costs import AI_COMPONENTS
from proxy.params import MAX_DIMENSION, Context
from proxy.rules import RULES
from proxy.stores.base import COMPONENTS, AltStatus, ReviewStatus

JSON = "application/json"
PROBLEM = "application/problem+json"
CONTEXTS: list[str] = list(get_args(Context))
REVIEW_STATUSES: list[str] = list(get_args(ReviewStatus))
SHOWN_ALT_STATUSES = [s for s in get_args(AltStatus) if s != "draft"]  # a draft shows "empty"

Schema = dict[str, Any]


def _ref(name: str, kind: str = "schemas") -> Schema:
    return {"$ref": f"#/components/{kind}/{name}"}


def _nullable(schema: Schema) -> Schema:
    return {"anyOf": [schema, {"type": "null"}]}


def _closed(properties: dict[str, Schema], *optional: str) -> Schema:
    """A response object: every property required but ``optional``, and nothing else, so an
    undocumented field fails the conformance test instead of drifting silently."""
    return {
        "type": "object",
        "properties": properties,
        "required": [name for name in properties if name not in optional],
        "additionalProperties": False,
    }


def _ok(description: str, schema: Schema) -> Schema:
    return {"description": description, "content": {JSON: {"schema": schema}}}


def _problem(description: str, headers: dict[str, Schema] | None = None) -> Schema:
    response: Schema = {
        "description": description,
        "content": {PROBLEM: {"schema": _ref("Problem")}},
    }
    if headers:
        response["headers"] = headers
    return response


ERRORS: dict[int, tuple[str, Schema]] = {
    308: (
        "NotCanonical",
        _problem(
            "another spelling of a source path (a trailing or doubled slash, a ./ segment, "
            "not NFC): Location names the canonical path, the query kept",
            {
                "Location": {
                    "description": "the same route with the canonical source path",
                    "required": True,
                    "schema": {"type": "string"},
                }
            },
        ),
    ),
    400: (
        "BadParameter",
        _problem(
            "a bad parameter or request body, or a source path that cannot be one (.., a "
            "backslash, a control character such as NUL, double percent-encoding)"
        ),
    ),
    401: (
        "Unauthorized",
        _problem(
            "no credentials: send Authorization: Bearer <admin token>",
            {
                "WWW-Authenticate": {
                    "description": 'always Bearer realm="loupe-admin"',
                    "required": True,
                    "schema": {"type": "string"},
                }
            },
        ),
    ),
    403: (
        "Forbidden",
        _problem(
            "a wrong token, a cookie write without X-Loupe-CSRF, the admin API closed (no "
            "--admin-token configured), or a source path that is not allowed"
        ),
    ),
    404: (
        "NotFound",
        _problem(
            "no such source, override or review item; also a {path} with a line feed, which "
            "no route matches"
        ),
    ),
    409: ("Conflict", _problem("the review item was already decided")),
    413: (
        "SourceTooLarge",
        _problem("the source exceeds the byte or pixel limits, or the JSON body 64 KiB"),
    ),
    414: ("PathTooLong", _problem("the source path is longer than 1024 bytes")),
    415: ("UnsupportedImage", _problem("the source is not a supported image")),
    429: (
        "TooManyRequests",
        _problem(
            "too many wrong admin tokens from this client lately (every attempt is refused "
            "until Retry-After has passed)",
            {
                "Retry-After": {
                    "description": "seconds to wait",
                    "required": True,
                    "schema": {"type": "string"},
                }
            },
        ),
    ),
    422: ("DamagedImage", _problem("the source image is damaged")),
    502: ("OriginFailed", _problem("the HTTP origin behind the source failed")),
    503: (
        "Unavailable",
        _problem(
            "overloaded (with Retry-After) or the store is unreachable",
            {
                "Retry-After": {
                    "description": "seconds to wait, when overloaded",
                    "schema": {"type": "string"},
                }
            },
        ),
    ),
    504: ("OriginTimeout", _problem("the HTTP origin behind the source timed out")),
}
SOURCE_ERRORS = (404, 413, 415, 422, 502, 504)  # locating, reading and analysing a source
PATH_ERRORS = (308, 400, 404, 414)  # the {path} of a route: canonical_path's answers


def _errors(*statuses: int) -> dict[str, Schema]:
    """The problem+json responses of an operation: 401, 403, 429 (wrong tokens) and 503 (the
    store) always."""
    always = {401, 403, 429, 503}
    return {str(code): _ref(ERRORS[code][0], "responses") for code in sorted({*always, *statuses})}


RECT: Schema = {
    "type": "array",
    "description": "[x, y, w, h] in pixels of the (orientation-corrected) source",
    "items": {"type": "integer"},
    "minItems": 4,
    "maxItems": 4,
}
OVERRIDE_PROPERTIES: dict[str, Schema] = {
    "aspect": {"type": "string", "description": "canonical W:H (16:9), or any"},
    "ctx": {
        "enum": [*CONTEXTS, None],
        "description": "the only context it applies in; null: every context",
    },
    "rect": RECT,
    "by": {"enum": ["user", "human"], "description": "user: set here; human: picked in review"},
    "reviewer": {"type": "string"},
    "reason": {"type": "string"},
    "created": {"type": "number", "description": "Unix time"},
}
ALT_PROPERTIES: dict[str, Schema] = {
    "path": {"type": "string"},
    "text": {"type": "string", "description": "the published text (empty for drafts)"},
    "status": {"enum": SHOWN_ALT_STATUSES},
    "draft": {
        "type": ["string", "null"],
        "description": "a machine draft awaiting review; never published",
    },
    "confidence": {"type": ["number", "null"]},
    "machine_generated": {"type": "boolean"},
    "model": {"type": ["string", "null"]},
    "reused_from": {
        "type": ["string", "null"],
        "description": "the near-duplicate source whose text this reuses",
    },
}
COMPONENT_METRICS: Schema = _closed(
    {
        "auto": {"type": "integer", "minimum": 0},
        "sent_to_review": {"type": "integer", "minimum": 0},
        "auto_accept_rate": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
        "reviewed": {"type": "integer", "minimum": 0},
        "override_rate": {"type": ["number", "null"], "minimum": 0, "maximum": 1},
        "pending": {"type": "integer", "minimum": 0},
        "off": {
            "type": "boolean",
            "description": "nothing to decide (alt text without a VLM, moderation when "
            "disabled): left out of the queue and of the auto-accept rate",
        },
    }
)
RATE: Schema = {"type": ["number", "null"], "minimum": 0}
COUNT: Schema = {"type": "integer", "minimum": 0}
MONEY: Schema = {"type": "number", "minimum": 0}
SAVED: Schema = _closed(
    {
        "phash": {**COUNT, "description": "other bytes with the same perceptual hash"},
        "sizes": {**COUNT, "description": "the same source (path and bytes), another size"},
        "reupload": {**COUNT, "description": "the same bytes under another path"},
        "total": COUNT,
    }
)
UNIT: Schema = {"type": "number", "minimum": 0, "maximum": 1}
UNIT_OR_NULL: Schema = {"type": ["number", "null"], "minimum": 0, "maximum": 1}
COMPONENT_CALIBRATION: Schema = _closed(
    {
        "decisions": {**COUNT, "description": "human decisions with a confidence"},
        "sampled": {**COUNT, "description": "of them, on auto-accepted outputs sampled"},
        "accepted_as_is": UNIT_OR_NULL,
        "bins": {
            "type": "array",
            "items": _closed(
                {
                    "low": UNIT,
                    "high": UNIT,
                    "count": COUNT,
                    "accepted": COUNT,
                    "share_accepted": UNIT_OR_NULL,
                }
            ),
        },
        "threshold": {
            **UNIT_OR_NULL,
            "description": "the lowest confidence whose decisions at or above it reach the "
            "target precision (null: none does yet)",
        },
        "precision": UNIT_OR_NULL,
        "decisions_above": COUNT,
        "auto_accept_rate": {**UNIT_OR_NULL, "description": "at the proposed threshold"},
        "rate_of": {"enum": ["outputs", "decided outputs"]},
        "current_threshold": UNIT_OR_NULL,
        "current_auto_accept_rate": UNIT_OR_NULL,
        "setting": {
            "type": ["string", "null"],
            "description": "the setting the threshold replaces when applied (null: shown only)",
        },
    }
)
COMPONENT_COSTS: Schema = _closed(
    {
        "inferences": {**COUNT, "description": "model runs (quality: q=auto searches)"},
        "wall_s": {"type": "number", "minimum": 0},
        "cpu_s": {"type": "number", "minimum": 0, "description": "0 for the VLM (remote)"},
        "saved": SAVED,
        "tokens_in": COUNT,
        "tokens_out": COUNT,
        "cost": {**MONEY, "description": "inferences x costs.<component>_per_1k / 1000 (+ tokens)"},
        "saved_cost": {**MONEY, "description": "what the saved inferences would have cost"},
    }
)

SCHEMAS: dict[str, Schema] = {
    "Problem": _closed(
        {
            "type": {"type": "string", "format": "uri"},
            "title": {"type": "string"},
            "status": {"type": "integer", "minimum": 400, "maximum": 599},
            "detail": {"type": "string"},
            "instance": {"type": "string", "description": "the request path"},
        }
    ),
    "Override": _closed(OVERRIDE_PROPERTIES),
    "StoredOverride": _closed({"path": {"type": "string"}, **OVERRIDE_PROPERTIES}),
    "OverrideList": _closed(
        {"path": {"type": "string"}, "overrides": {"type": "array", "items": _ref("Override")}}
    ),
    "CropCandidate": _closed(
        {
            "x": {"type": "integer", "minimum": 0},
            "y": {"type": "integer", "minimum": 0},
            "width": {"type": "integer", "minimum": 1},
            "height": {"type": "integer", "minimum": 1},
            "score": {"type": "number"},
            "strategy": {"type": "string"},
            "reasons": {"type": "array", "items": {"type": "string"}},
        }
    ),
    "Crops": _closed(
        {
            "path": {"type": "string"},
            "width": {"type": "integer", "minimum": 1, "maximum": MAX_DIMENSION},
            "height": {"type": "integer", "minimum": 1, "maximum": MAX_DIMENSION},
            "candidates": {
                "type": "array",
                "items": _ref("CropCandidate"),
                "maxItems": 3,
                "description": "best first; empty when the box cannot be cut from the source",
            },
            "overrides": {"type": "array", "items": _ref("Override")},
        }
    ),
    "Alt": _closed(ALT_PROPERTIES, "draft", "reused_from"),
    "ReviewItem": _closed(
        {
            "id": {"type": "integer", "minimum": 1},
            "path": {"type": "string"},
            "component": {"enum": list(COMPONENTS)},
            "subject": {"type": "string", "description": "what is judged, e.g. the crop box"},
            "status": {"enum": REVIEW_STATUSES},
            "payload": {"type": "object", "description": "the AI output under review"},
            "created": {"type": "number", "description": "Unix time"},
            "decided": {"type": ["number", "null"], "description": "Unix time"},
            "decision": {
                "type": ["object", "null"],
                "description": "action, value and reason as decided",
            },
        }
    ),
    "ReviewList": _closed({"items": {"type": "array", "items": _ref("ReviewItem")}}),
    "SearchHit": _closed(
        {
            "path": {"type": "string"},
            "score": {"type": "number", "description": "relevance; higher first (0: no query)"},
            "alt": _closed(
                {
                    "text": {"type": "string", "description": "drafts included (admins)"},
                    "status": {"enum": ["empty", "draft", "machine", "reviewed", "user"]},
                }
            ),
            "class": {"enum": [*CONTENT_CLASSES, None]},
            "faces": {"type": ["integer", "null"], "minimum": 0},
            "moderation": {"type": "string"},
            "duplicate_group": {
                "type": ["string", "null"],
                "description": "near-duplicates share it; searchable as a word",
            },
            "thumbnail": {"type": "string", "description": "an admin preview URL"},
            "decisions": {"type": "string", "description": "GET it for the source's decisions"},
        }
    ),
    "SearchResults": _closed(
        {"q": {"type": "string"}, "results": {"type": "array", "items": _ref("SearchHit")}}
    ),
    "SourceDecisions": _closed(
        {
            "path": {"type": "string"},
            "generation": {"type": "integer", "minimum": 0, "description": "in its cache keys"},
            "moderation": {"type": "string"},
            "class": {"enum": [*CONTENT_CLASSES, None]},
            "faces": {"type": ["integer", "null"], "minimum": 0},
            "duplicate_group": {"type": ["string", "null"]},
            "alt": _ref("Alt"),
            "overrides": {"type": "array", "items": _ref("Override")},
            "rules": {"type": "array", "items": _ref("Rule"), "description": "covering it"},
            "reviews": {"type": "array", "items": _ref("ReviewItem")},
            "thumbnail": {"type": "string"},
        }
    ),
    "Purged": _closed(
        {
            "path": {"type": "string"},
            "purged": {
                "type": "integer",
                "minimum": 0,
                "description": "cached variants dropped on this node",
            },
        }
    ),
    "Metrics": _closed(
        {
            "auto_accept_rate": {**RATE, "maximum": 1},
            "components": _closed({component: COMPONENT_METRICS for component in COMPONENTS}),
            "review_seconds": _closed(
                {
                    "median": {"type": ["number", "null"], "minimum": 0},
                    "count": {"type": "integer", "minimum": 0},
                    "trend": {
                        "type": "array",
                        "items": {"type": "number"},
                        "description": "median seconds per trend_bucket reviews, oldest first",
                    },
                    "trend_bucket": {"type": "integer", "minimum": 1},
                }
            ),
            "post_publication_correction_rate": RATE,
            "post_publication_corrections": {"type": "integer", "minimum": 0},
            "user_initiated_corrections": {"type": "integer", "minimum": 0},
            "decisions": {"type": "integer", "minimum": 0},
            "jobs": {
                "type": "object",
                "description": "background jobs by status (queued, running, done, dead)",
                "additionalProperties": {"type": "integer", "minimum": 0},
            },
            "purges": _closed(
                {
                    "pending": {"type": "integer", "minimum": 0},
                    "dead": {
                        "type": "integer",
                        "minimum": 0,
                        "description": "dead-lettered after cdn.dead_after_s of failures",
                    },
                    "oldest_pending_s": {"type": "number", "minimum": 0},
                    "failed": {
                        "type": "array",
                        "description": "the oldest dead-lettered purges",
                        "items": _closed(
                            {
                                "path": {"type": "string", "description": "source or folder"},
                                "reason": {"type": "string"},
                                "attempts": {"type": "integer", "minimum": 0},
                                "error": {"type": ["string", "null"]},
                                "queued": {"type": "number", "description": "Unix time"},
                            }
                        ),
                    },
                }
            ),
        }
    ),
    "Costs": _closed(
        {
            "since": {"type": ["string", "null"], "description": "first UTC day counted"},
            "images": {**COUNT, "description": "sources first seen since then"},
            "cost_per_image": RATE,
            "inferences_per_image": RATE,
            "components": _closed({name: COMPONENT_COSTS for name in AI_COMPONENTS}),
            "totals": _closed(
                {
                    "inferences": COUNT,
                    "wall_s": {"type": "number", "minimum": 0},
                    "cpu_s": {"type": "number", "minimum": 0},
                    "saved": SAVED,
                    "tokens_in": COUNT,
                    "tokens_out": COUNT,
                    "cost": MONEY,
                    "saved_cost": MONEY,
                }
            ),
            "days": {
                "type": "array",
                "description": "per UTC day, oldest first",
                "items": _closed(
                    {
                        "day": {"type": "string"},
                        "inferences": COUNT,
                        "saved": COUNT,
                        "cost": MONEY,
                    }
                ),
            },
            "prices": {
                "type": "object",
                "description": "the configured costs.* prices",
                "additionalProperties": {"type": "number"},
            },
        }
    ),
    "Calibration": _closed(
        {
            "target_precision": {"type": "number", "minimum": 0, "maximum": 1},
            "min_decisions": COUNT,
            "apply": {"type": "boolean", "description": "calibration.apply"},
            "applied": {
                "type": "array",
                "description": "the thresholds this call applied (each logged as a decision)",
                "items": _closed(
                    {
                        "component": {"enum": list(SETTINGS)},
                        "setting": {"type": "string"},
                        "from": {"type": "number"},
                        "to": {"type": "number"},
                    }
                ),
            },
            "components": _closed({name: COMPONENT_CALIBRATION for name in CALIBRATED}),
        }
    ),
    "Rule": _closed(
        {
            "prefix": {"type": "string", "description": "a source path or folder; empty: all"},
            "rule": {"enum": list(RULES)},
            "reviewer": {"type": "string"},
            "reason": {"type": "string"},
            "created": {"type": "number", "description": "Unix time"},
        }
    ),
    "RuleList": _closed(
        {
            "rules": {"type": "array", "items": _ref("Rule")},
            "known": _closed(
                {name: {"type": "string", "const": text} for name, text in RULES.items()}
            ),
        }
    ),
    "StoredRule": _closed(
        {
            "prefix": {"type": "string", "description": "normalised: no outer slashes"},
            "rule": {"enum": list(RULES)},
            "reason": {"type": "string"},
        }
    ),
    # Request bodies: the server ignores unknown fields, so these stay open.
    "OverrideRequest": {
        "type": "object",
        "required": ["rect"],
        "properties": {
            "aspect": {
                "type": "string",
                "default": "any",
                "description": "W:H (16:9), a decimal ratio (1.5) or any; stored canonical "
                "(32:18 becomes 16:9). It wins at every size of that aspect.",
                "examples": ["16:9", "1:1", "any"],
            },
            "rect": {**RECT, "description": f"{RECT['description']}; must lie inside it"},
            "ctx": {
                "enum": [*CONTEXTS, "", None],
                "description": "apply in this context only; empty or null: every context",
            },
            "reason": {
                "type": "string",
                "description": "kept with the feedback; cut to 2000 characters",
            },
        },
        "examples": [{"aspect": "16:9", "rect": [0, 0, 160, 90], "reason": "keep the faces"}],
    },
    "AltRequest": {
        "type": "object",
        "required": ["text"],
        "properties": {
            "text": {
                "type": "string",
                "maxLength": 1000,
                "description": "published at once (status user), whitespace stripped",
            },
            "reason": {
                "type": "string",
                "description": "kept with the feedback; cut to 2000 characters",
            },
        },
    },
    "RuleRequest": {
        "type": "object",
        "required": ["rule", "reason"],
        "properties": {
            "rule": {"enum": list(RULES)},
            "prefix": {
                "type": "string",
                "maxLength": 1024,
                "default": "",
                "description": "a source path or folder (shop covers shop/...); empty: every "
                "source; outer slashes and whitespace are dropped",
            },
            "reason": {
                "type": "string",
                "pattern": "\\S",
                "description": "required, not blank; stored cut to 2000 characters",
            },
        },
        "examples": [{"prefix": "shop", "rule": "never-crop", "reason": "packshots"}],
    },
    "Decision": {
        "type": "object",
        "required": ["action"],
        "properties": {
            "action": {"enum": ["accept", "reject", "edit"]},
            "value": {
                "description": "for edit: an alt item takes the new text (a string or "
                '{"text": ...}); a crop item takes {"candidate": n} (1-based) or '
                '{"rect": [x, y, w, h]}; moderation items cannot be edited',
                "anyOf": [
                    {"type": "null"},
                    {"type": "string", "maxLength": 1000},
                    {
                        "type": "object",
                        "required": ["text"],
                        "properties": {"text": {"type": "string", "maxLength": 1000}},
                    },
                    {
                        "type": "object",
                        "required": ["candidate"],
                        "properties": {"candidate": {"type": "integer", "minimum": 1}},
                    },
                    {
                        "type": "object",
                        "required": ["rect"],
                        "properties": {
                            "rect": {**RECT, "description": f"{RECT['description']}; inside it"}
                        },
                    },
                ],
            },
            "reason": {
                "type": ["string", "null"],
                "maxLength": 2000,
                "description": "required (non-empty) whenever the decision overrides the AI: "
                "reject, or edit (except picking crop candidate 1)",
            },
            "seconds": {
                "type": ["number", "null"],
                "minimum": 0,
                "exclusiveMaximum": 86400,
                "description": "time the reviewer spent, for the review-time metrics",
            },
        },
        "examples": [{"action": "edit", "value": {"candidate": 2}, "reason": "hats matter"}],
    },
}

PARAMETERS: dict[str, Schema] = {
    "SourcePath": {
        "name": "path",
        "in": "path",
        "required": True,
        "description": "the source path as in /img/{path}; it may contain slashes "
        "(photos/2024/a.jpg), which the route takes literally or percent-encoded; one with "
        "a line feed matches no route (404)",
        "schema": {"type": "string", "minLength": 1},
    },
    "Reviewer": {
        "name": "X-Loupe-Reviewer",
        "in": "header",
        "required": False,
        "description": "who decided, recorded with bearer-token writes (cut to 64 "
        "characters; default api); a session cookie names its reviewer itself",
        "schema": {"type": "string"},
    },
}


def _operation(
    operation_id: str,
    summary: str,
    responses: dict[str, Schema],
    *,
    parameters: list[Schema] | None = None,
    body: str | None = None,
    description: str | None = None,
) -> Schema:
    operation: Schema = {"operationId": operation_id, "summary": summary, "tags": ["admin"]}
    if description:
        operation["description"] = description
    if parameters:
        operation["parameters"] = parameters
    if body:
        operation["requestBody"] = {"required": True, "content": {JSON: {"schema": _ref(body)}}}
    operation["responses"] = responses
    return operation


SOURCE = _ref("SourcePath", "parameters")
REVIEWER = _ref("Reviewer", "parameters")
ITEM_ID: Schema = {
    "name": "item_id",
    "in": "path",
    "required": True,
    "description": "a review item id from GET /admin/api/review",
    "schema": {"type": "integer", "minimum": 0},
}


def _query(name: str, schema: Schema, description: str, *, required: bool = False) -> Schema:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "description": description,
        "schema": schema,
    }


PATHS: dict[str, Schema] = {
    "/admin/api/crops/{path}": {
        "get": _operation(
            "getCropCandidates",
            "three ranked crop candidates for a w x h box",
            {"200": _ok("the candidates and the source's overrides", _ref("Crops"))}
            | _errors(*PATH_ERRORS, 400, *SOURCE_ERRORS),
            description="The other /img parameters (fit, crop, dpr, ...) are accepted and "
            "ignored; an unknown or repeated parameter is a 400.",
            parameters=[
                SOURCE,
                _query(
                    "w",
                    {"type": "integer", "minimum": 1, "maximum": MAX_DIMENSION},
                    "box width (px)",
                    required=True,
                ),
                _query(
                    "h",
                    {"type": "integer", "minimum": 1, "maximum": MAX_DIMENSION},
                    "box height (px)",
                    required=True,
                ),
            ],
        ),
    },
    "/admin/api/overrides/{path}": {
        "get": _operation(
            "listOverrides",
            "the source's human crops",
            {"200": _ok("every override, empty for an unknown source", _ref("OverrideList"))}
            | _errors(*PATH_ERRORS, 404),
            parameters=[SOURCE],
        ),
        "put": _operation(
            "putOverride",
            "set a user crop that beats every AI choice for its aspect, at every size",
            {"200": _ok("the stored override", _ref("StoredOverride"))}
            | _errors(*PATH_ERRORS, 400, *SOURCE_ERRORS),
            parameters=[SOURCE, REVIEWER],
            body="OverrideRequest",
            description="Replaces the override for the same aspect and ctx, records the "
            "correction as feedback and purges the source's cached variants.",
        ),
        "delete": _operation(
            "deleteOverrides",
            "drop the source's overrides (of one aspect, or all)",
            {"204": {"description": "dropped; cached variants purged"}}
            | _errors(*PATH_ERRORS, 400, 404),
            parameters=[
                SOURCE,
                _query(
                    "aspect",
                    {"type": "string", "examples": ["16:9", "any"]},
                    "only this aspect (W:H, a ratio or any); omitted or empty: every aspect",
                ),
            ],
        ),
    },
    "/admin/api/alt/{path}": {
        "get": _operation(
            "getAlt",
            "the source's alt text, with any draft awaiting review",
            {"200": _ok("the alt text; status empty for an unknown source", _ref("Alt"))}
            | _errors(*PATH_ERRORS, 404),
            parameters=[SOURCE],
        ),
        "put": _operation(
            "putAlt",
            "set the alt text (published at once, status user)",
            {"200": _ok("the stored alt text", _ref("Alt"))}
            | _errors(*PATH_ERRORS, 400, *SOURCE_ERRORS),
            parameters=[SOURCE, REVIEWER],
            body="AltRequest",
        ),
    },
    "/admin/api/review": {
        "get": _operation(
            "listReviewItems",
            "the review queue, oldest first",
            {"200": _ok("one page of items", _ref("ReviewList"))} | _errors(400),
            parameters=[
                _query(
                    "status",
                    {"enum": [*REVIEW_STATUSES, "all"], "default": "pending"},
                    "which items",
                ),
                _query("component", {"enum": list(COMPONENTS)}, "only this component"),
                _query(
                    "limit",
                    {"type": "integer", "default": 50},
                    "page size; clamped to 1-200",
                ),
                _query(
                    "after",
                    {"type": "integer", "default": 0},
                    "only ids above this one (the last id of the previous page); "
                    "negative counts as 0",
                ),
            ],
        ),
    },
    "/admin/api/review/{item_id}": {
        "get": _operation(
            "getReviewItem",
            "one review item",
            {"200": _ok("the item", _ref("ReviewItem"))} | _errors(404),
            parameters=[ITEM_ID],
        ),
        "post": _operation(
            "decideReviewItem",
            "accept, reject or edit a pending item",
            {"200": _ok("the decided item", _ref("ReviewItem"))} | _errors(400, 404, 409, 413),
            parameters=[ITEM_ID, REVIEWER],
            body="Decision",
            description="Closes the item, keeps the feedback beside the AI output it judged "
            "and changes what is served (an override, an alt text, a moderation verdict) in "
            "one transaction; crop and moderation decisions purge the source's cached "
            "variants.",
        ),
    },
    "/admin/api/purge/{path}": {
        "post": _operation(
            "purgeSource",
            "drop every cached variant of a source, on every node and at the CDN",
            {"200": _ok("how many variants were dropped", _ref("Purged"))}
            | _errors(*PATH_ERRORS, 404),
            parameters=[SOURCE],
        ),
    },
    "/admin/api/search": {
        "get": _operation(
            "searchSources",
            "sources by alt text, path, folder, class, faces, moderation and duplicate group",
            {"200": _ok("ranked, best first", _ref("SearchResults"))} | _errors(400, 414),
            parameters=[
                _query(
                    "q",
                    {"type": "string", "maxLength": 200},
                    "words, each matched as a prefix; all must match; empty: the newest",
                ),
                _query("class", {"enum": list(CONTENT_CLASSES)}, "only this content class"),
                _query("folder", {"type": "string"}, "only sources below this folder"),
                _query(
                    "limit", {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}, ""
                ),
            ],
        ),
    },
    "/admin/api/decisions/{path}": {
        "get": _operation(
            "getSourceDecisions",
            "everything decided about one source (what the search box opens)",
            {
                "200": _ok(
                    "its generation, alt text, overrides, rules and reviews",
                    _ref("SourceDecisions"),
                )
            }
            | _errors(*PATH_ERRORS, 404),
            parameters=[SOURCE],
        ),
    },
    "/admin/api/metrics": {
        "get": _operation(
            "getMetrics",
            "the collaboration metrics",
            {
                "200": _ok(
                    "auto-accept and override rates, review time, corrections", _ref("Metrics")
                )
            }
            | _errors(),
        ),
    },
    "/admin/api/costs": {
        "get": _operation(
            "getCosts",
            "what each AI component cost",
            {
                "200": _ok(
                    "inferences, seconds, cache savings, VLM tokens and the estimated cost per "
                    "component, per image and per day",
                    _ref("Costs"),
                )
            }
            | _errors(400),
            parameters=[
                _query(
                    "since",
                    {"type": "string"},
                    "a UTC day (2026-12-01) or epoch seconds (counted from its day); "
                    "default: everything",
                )
            ],
        ),
    },
    "/admin/api/calibration": {
        "get": _operation(
            "getCalibration",
            "what each component's confidence means",
            {
                "200": _ok(
                    "per component (alt text confidence, moderation: 1 - NSFW score, crop: "
                    "the top candidate's score): the human decisions per confidence bin and "
                    "the share accepted as is, and the threshold reaching "
                    "calibration.target_precision with the auto-accept rate it gives",
                    _ref("Calibration"),
                )
            }
            | _errors(),
            description="With calibration.apply = true, a proposed threshold that differs "
            "from the current one replaces it (vlm.confidence_threshold, "
            "moderation.review_threshold as 1 - t) and is logged as a decision.",
        ),
    },
    "/admin/api/rules": {
        "get": _operation(
            "listRules",
            "the reviewers' exception rules, and the rules there are",
            {"200": _ok("every rule, by prefix", _ref("RuleList"))} | _errors(),
        ),
        "put": _operation(
            "putRule",
            "set an exception rule on a source or folder",
            {"200": _ok("the stored rule", _ref("StoredRule"))} | _errors(400, 404, 413, 414),
            parameters=[REVIEWER],
            body="RuleRequest",
            description="Takes effect on the next request: rules rewrite the request before "
            "the cache key; the folder's tag is purged at the CDN.",
        ),
        "delete": _operation(
            "deleteRule",
            "drop one exception rule",
            {"204": {"description": "dropped"}} | _errors(400, 404, 414),
            parameters=[
                _query("prefix", {"type": "string", "default": ""}, "as set (normalised)"),
                _query("rule", {"enum": list(RULES)}, "the rule to drop", required=True),
            ],
        ),
    },
    "/admin/api/openapi.json": {
        "get": {
            **_operation(
                "getOpenApi",
                "this document",
                {"200": _ok("the OpenAPI 3.1 document", {"type": "object"})},
                description="Public: readable without the admin token.",
            ),
            "security": [],
        },
    },
}


@cache
def document() -> dict[str, Any]:
    """The whole document, built once."""
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
        "paths": PATHS,
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
            "schemas": SCHEMAS,
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
