"""The admin API's bodies as pydantic models: requests are parsed through them and responses
serialised through them, and ``server/openapi.py`` generates the published document from
their JSON Schemas. The collaboration reports (metrics, costs, calibration) are in
``admin_reports.py``.

Requests stay open (unknown fields are ignored, as always) and keep their checks and
messages: each model's ``before`` validator runs the domain's checks, which raise
``BadParameter`` (a 400 problem) rather than a pydantic error. Responses are closed
(``additionalProperties: false``), so an undocumented field fails the conformance test
instead of drifting silently.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, WithJsonSchema, model_validator
from starlette.responses import JSONResponse

from proxy import geometry
from proxy.cropping.overrides import CropOverride, rect_json
from proxy.curation import review
from proxy.curation.facts import alt_json
from proxy.curation.overrides import UserCrop, user_crop
from proxy.detectors.content import ContentClass
from proxy.errors import BadParameter
from proxy.params import MAX_DIMENSION, Context
from proxy.rules import RULES, RuleName
from proxy.stores import base as records
from proxy.stores.base import Component, ReviewStatus

Schema = dict[str, Any]
ShownAltStatus = Literal["empty", "machine", "reviewed", "user"]  # a draft shows "empty"
RECT = "[x, y, w, h] in pixels of the (orientation-corrected) source"
Rect = Annotated[list[int], Field(min_length=4, max_length=4, description=RECT)]
Count = Annotated[int, Field(ge=0)]
# A number keeps its JSON spelling (an int stays an int) and is documented as a number.
Number = Annotated[int | float, WithJsonSchema({"type": "number"})]
Seconds = Annotated[int | float, WithJsonSchema({"type": "number", "minimum": 0})]
UnixTime = Annotated[int | float, WithJsonSchema({"type": "number", "description": "Unix time"})]
Unit = Annotated[int | float, WithJsonSchema({"type": "number", "minimum": 0, "maximum": 1})]
UnitOrNull = Annotated[
    int | float | None, WithJsonSchema({"type": ["number", "null"], "minimum": 0, "maximum": 1})
]
Rate = Annotated[int | float | None, WithJsonSchema({"type": ["number", "null"], "minimum": 0})]
NumberOrNull = Annotated[int | float | None, WithJsonSchema({"type": ["number", "null"]})]


class Closed(BaseModel):
    """A response body: every field documented, nothing else."""

    model_config = ConfigDict(extra="forbid")


class Open(BaseModel):
    """A request body: unknown fields are ignored."""

    model_config = ConfigDict(extra="ignore")


M = TypeVar("M", bound=BaseModel)


def parse(model: type[M], body: dict[str, Any]) -> M:
    return model.model_validate(body)


def respond(body: BaseModel) -> JSONResponse:
    """``body`` as JSON; optional fields never set are left out."""
    return JSONResponse(body.model_dump(mode="json", by_alias=True, exclude_unset=True))


def fixed_keys(keys: Any, item: Schema | None = None) -> Callable[[Schema], None]:
    """Document a ``dict`` field as an object with exactly ``keys``, each an ``item`` (by
    default the dict's value schema)."""

    def close(schema: Schema) -> None:
        value = item if item is not None else schema.pop("additionalProperties", {})
        schema.pop("additionalProperties", None)
        schema["properties"] = {key: value for key in keys}
        schema["required"] = list(keys)
        schema["additionalProperties"] = False

    return close


# -- requests ---------------------------------------------------------------------------


def _body(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BadParameter("the body must be a JSON object")
    return value


class OverrideRequest(Open):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"aspect": "16:9", "rect": [0, 0, 160, 90], "reason": "keep the faces"}]
        }
    )

    aspect: str = Field(
        "any",
        description="W:H (16:9), a decimal ratio (1.5) or any; stored canonical (32:18 "
        "becomes 16:9). It wins at every size of that aspect.",
        examples=["16:9", "1:1", "any"],
    )
    rect: Rect = Field(description=f"{RECT}; must lie inside it")
    ctx: Context | Literal[""] | None = Field(
        None, description="apply in this context only; empty or null: every context"
    )
    reason: str = Field("", description="kept with the feedback; cut to 2000 characters")

    @model_validator(mode="before")
    @classmethod
    def _check(cls, value: Any) -> Any:
        body = _body(value)
        crop = user_crop(
            body.get("aspect", "any"), body.get("rect"), body.get("ctx"), body.get("reason")
        )
        return {
            "aspect": crop.aspect,
            "rect": rect_json(crop.rect),
            "ctx": crop.ctx,
            "reason": crop.reason,
        }

    def crop(self) -> UserCrop:
        x, y, w, h = self.rect
        return UserCrop(self.aspect, geometry.Rect(x, y, w, h), self.ctx or "", self.reason)


class AltRequest(Open):
    text: str = Field(
        max_length=1000, description="published at once (status user), whitespace stripped"
    )
    reason: str = Field("", description="kept with the feedback; cut to 2000 characters")

    @model_validator(mode="before")
    @classmethod
    def _check(cls, value: Any) -> Any:
        body = _body(value)
        text = body.get("text")
        if not isinstance(text, str) or len(text) > 1000:
            raise BadParameter("text must be a string of at most 1000 characters")
        return {"text": text, "reason": str(body.get("reason") or "")[:2000]}


class RuleRequest(Open):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"prefix": "shop", "rule": "never-crop", "reason": "packshots"}]
        }
    )

    rule: RuleName
    prefix: str = Field(
        "",
        max_length=1024,
        description="a source path or folder (shop covers shop/...); empty: every source; "
        "outer slashes and whitespace are dropped",
    )
    reason: str = Field(
        pattern=r"\S", description="required, not blank; stored cut to 2000 characters"
    )

    @model_validator(mode="before")
    @classmethod
    def _check(cls, value: Any) -> Any:
        body = _body(value)
        wanted, prefix = body.get("rule"), body.get("prefix", "")
        if not isinstance(wanted, str) or wanted not in RULES:
            raise BadParameter(f"rule must be one of {', '.join(RULES)}")
        if not isinstance(prefix, str) or len(prefix) > 1024:
            raise BadParameter("prefix must be a path or folder (empty: every source)")
        reason = body.get("reason") or ""
        if not isinstance(reason, str) or not reason.strip():
            raise BadParameter("a reason is required for an exception rule")
        return {"rule": wanted, "prefix": prefix, "reason": reason.strip()}


_TEXT: Schema = {"type": "string", "maxLength": 1000}
_RECT: Schema = {"type": "array", "items": {"type": "integer"}, "minItems": 4, "maxItems": 4}
DECISION_VALUE: Schema = {
    "description": "for edit: an alt item takes the new text (a string or "
    '{"text": ...}); a crop item takes {"candidate": n} (1-based) or '
    '{"rect": [x, y, w, h]}; moderation items cannot be edited',
    "anyOf": [
        {"type": "null"},
        _TEXT,
        {"type": "object", "required": ["text"], "properties": {"text": _TEXT}},
        {
            "type": "object",
            "required": ["candidate"],
            "properties": {"candidate": {"type": "integer", "minimum": 1}},
        },
        {
            "type": "object",
            "required": ["rect"],
            "properties": {"rect": {**_RECT, "description": f"{RECT}; inside it"}},
        },
    ],
}


class Decision(Open):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"action": "edit", "value": {"candidate": 2}, "reason": "hats matter"}]
        }
    )

    action: Literal["accept", "reject", "edit"]
    value: Annotated[Any, WithJsonSchema(DECISION_VALUE)] = None
    reason: str | None = Field(
        None,
        max_length=2000,
        description="required (non-empty) whenever the decision overrides the AI: reject, or "
        "edit (except picking crop candidate 1)",
    )
    seconds: Annotated[
        int | float | None,
        WithJsonSchema({"type": ["number", "null"], "minimum": 0, "exclusiveMaximum": 86400}),
    ] = Field(None, description="time the reviewer spent, for the review-time metrics")

    @model_validator(mode="before")
    @classmethod
    def _check(cls, value: Any) -> Any:
        checked = review.parse_decision(value, "")  # the value itself is judged with its item
        return {
            "action": checked.action,
            "value": checked.value,
            "reason": checked.reason,
            "seconds": checked.seconds,
        }

    def decision(self, reviewer: str) -> review.Decision:
        return review.Decision(self.action, self.value, self.reason or "", self.seconds, reviewer)


# -- responses --------------------------------------------------------------------------


class Problem(Closed):
    type: str = Field(json_schema_extra={"format": "uri"})
    title: str
    status: int = Field(ge=400, le=599)
    detail: str
    instance: str = Field(description="the request path")


class Override(Closed):
    aspect: str = Field(description="canonical W:H (16:9), or any")
    ctx: Context | None = Field(description="the only context it applies in; null: every context")
    rect: Rect
    by: Literal["user", "human"] = Field(description="user: set here; human: picked in review")
    reviewer: str
    reason: str
    created: UnixTime

    @classmethod
    def of(cls, override: CropOverride) -> Override:
        return cls.model_validate(_override_fields(override))


def _override_fields(override: CropOverride) -> dict[str, Any]:
    return {
        "aspect": override.aspect,
        "ctx": override.ctx or None,
        "rect": rect_json(override.rect),
        "by": override.by,
        "reviewer": override.reviewer,
        "reason": override.reason,
        "created": override.created,
    }


class StoredOverride(Override):
    path: str

    @classmethod
    def stored(cls, path: str, override: CropOverride) -> StoredOverride:
        return cls.model_validate({"path": path, **_override_fields(override)})


class OverrideList(Closed):
    path: str
    overrides: list[Override]


class CropCandidate(Closed):
    x: int = Field(ge=0)
    y: int = Field(ge=0)
    width: int = Field(ge=1)
    height: int = Field(ge=1)
    score: Number
    strategy: str
    reasons: list[str]


class Crops(Closed):
    path: str
    width: int = Field(ge=1, le=MAX_DIMENSION)
    height: int = Field(ge=1, le=MAX_DIMENSION)
    candidates: list[CropCandidate] = Field(
        max_length=3, description="best first; empty when the box cannot be cut from the source"
    )
    overrides: list[Override]


class AltFacts(Closed):
    """API.md's ``alt`` object; drafts are shown to admins but never published."""

    text: str = Field(description="the published text (empty for drafts)")
    status: ShownAltStatus
    draft: str | None = Field(None, description="a machine draft awaiting review; never published")
    confidence: NumberOrNull
    machine_generated: bool
    model: str | None
    reused_from: str | None = Field(
        None, description="the near-duplicate source whose text this reuses"
    )

    @classmethod
    def of(cls, alt: records.AltText | None) -> AltFacts:
        return cls.model_validate(alt_json(alt))


class Alt(AltFacts):
    path: str

    @classmethod
    def at(cls, path: str, alt: records.AltText | None) -> Alt:
        return cls.model_validate({"path": path, **alt_json(alt)})


class ReviewItem(Closed):
    id: int = Field(ge=1)
    path: str
    component: Component
    subject: str = Field(description="what is judged, e.g. the crop box")
    status: ReviewStatus
    payload: dict[str, Any] = Field(description="the AI output under review")
    created: UnixTime
    decided: Annotated[
        int | float | None,
        WithJsonSchema({"type": ["number", "null"], "description": "Unix time"}),
    ]
    decision: dict[str, Any] | None = Field(description="action, value and reason as decided")

    @classmethod
    def of(cls, item: records.ReviewItem) -> ReviewItem:
        return cls.model_validate(asdict(item))


class ReviewList(Closed):
    items: list[ReviewItem]


class HitAlt(Closed):
    text: str = Field(description="drafts included (admins)")
    status: Literal["empty", "draft", "machine", "reviewed", "user"]


class SearchHit(Closed):
    path: str
    score: Number = Field(description="relevance; higher first (0: no query)")
    alt: HitAlt
    class_: ContentClass | None = Field(alias="class")
    faces: int | None = Field(ge=0)
    moderation: str
    duplicate_group: str | None = Field(
        description="near-duplicates share it; searchable as a word"
    )
    thumbnail: str = Field(description="an admin preview URL")
    decisions: str = Field(description="GET it for the source's decisions")


class SearchResults(Closed):
    q: str
    results: list[SearchHit]


class Rule(Closed):
    prefix: str = Field(description="a source path or folder; empty: all")
    rule: RuleName
    reviewer: str
    reason: str
    created: UnixTime

    @classmethod
    def row(cls, row: tuple[str, str, str, str, float]) -> Rule:
        prefix, rule, reviewer, reason, created = row
        fields = {"prefix": prefix, "rule": rule, "reviewer": reviewer, "reason": reason}
        return cls.model_validate({**fields, "created": created})


def _known_rules(schema: Schema) -> None:
    """Each rule there is, with its meaning."""
    schema.clear()
    schema.update(
        type="object",
        properties={name: {"type": "string", "const": text} for name, text in RULES.items()},
        required=list(RULES),
        additionalProperties=False,
    )


class RuleList(Closed):
    rules: list[Rule]
    known: dict[str, str] = Field(json_schema_extra=_known_rules)


class StoredRule(Closed):
    prefix: str = Field(description="normalised: no outer slashes")
    rule: RuleName
    reason: str


class SourceDecisions(Closed):
    path: str
    generation: int = Field(ge=0, description="in its cache keys")
    moderation: str
    class_: ContentClass | None = Field(alias="class")
    faces: int | None = Field(ge=0)
    duplicate_group: str | None
    alt: AltFacts
    overrides: list[Override]
    rules: list[Rule] = Field(description="covering it")
    reviews: list[ReviewItem]
    thumbnail: str


class Purged(Closed):
    path: str
    purged: int = Field(ge=0, description="cached variants dropped on this node")
