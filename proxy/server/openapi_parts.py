"""The pieces of the admin API's OpenAPI document that are not models: its error responses,
shared parameters and the ``Operation`` a route table entry renders to."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from proxy.params import MAX_DIMENSION

JSON = "application/json"
PROBLEM = "application/problem+json"

Schema = dict[str, Any]


def ref(name: str, kind: str = "schemas") -> Schema:
    return {"$ref": f"#/components/{kind}/{name}"}


def _problem(description: str, headers: dict[str, Schema] | None = None) -> Schema:
    response: Schema = {
        "description": description,
        "content": {PROBLEM: {"schema": ref("Problem")}},
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
    return {str(code): ref(ERRORS[code][0], "responses") for code in sorted({*always, *statuses})}


SOURCE_ERRORS = (404, 413, 415, 422, 502, 504)  # locating, reading and analysing a source
PATH_ERRORS = (308, 400, 404, 414)  # the {path} of a route: canonical_path's answers
ALWAYS = (401, 403, 429, 503)  # wrong tokens, and the store


def query(name: str, schema: Schema, description: str, *, required: bool = False) -> Schema:
    return {
        "name": name,
        "in": "query",
        "required": required,
        "description": description,
        "schema": schema,
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
SOURCE = ref("SourcePath", "parameters")
REVIEWER = ref("Reviewer", "parameters")
ITEM_ID: Schema = {
    "name": "item_id",
    "in": "path",
    "required": True,
    "description": "a review item id from GET /admin/api/review",
    "schema": {"type": "integer", "minimum": 0},
}
SIDE: Schema = {"type": "integer", "minimum": 1, "maximum": MAX_DIMENSION}


@dataclass(frozen=True)
class Operation:
    """One route and method: what it answers (a model, or None for 204 / any object)."""

    method: str
    path: str
    operation_id: str
    summary: str
    answer: str  # the 200 (or 204) response's description
    model: type[BaseModel] | None
    errors: tuple[int, ...] = ()
    parameters: tuple[Schema, ...] = ()
    body: type[BaseModel] | None = None
    description: str | None = None
    public: bool = False

    def render(self) -> Schema:
        operation: Schema = {
            "operationId": self.operation_id,
            "summary": self.summary,
            "tags": ["admin"],
        }
        if self.description:
            operation["description"] = self.description
        if self.parameters:
            operation["parameters"] = list(self.parameters)
        if self.body is not None:
            schema = ref(self.body.__name__)
            operation["requestBody"] = {"required": True, "content": {JSON: {"schema": schema}}}
        responses: Schema
        if self.model is not None:
            content = {JSON: {"schema": ref(self.model.__name__)}}
            responses = {"200": {"description": self.answer, "content": content}}
        elif self.public:
            content = {JSON: {"schema": {"type": "object"}}}
            responses = {"200": {"description": self.answer, "content": content}}
        else:
            responses = {"204": {"description": self.answer}}
        if not self.public:
            codes = sorted({*ALWAYS, *self.errors})
            responses |= {str(code): ref(ERRORS[code][0], "responses") for code in codes}
        operation["responses"] = responses
        if self.public:
            operation["security"] = []
        return operation
