"""Human crops: checking one against its source, and storing it beside the feedback that
records it as a correction of the AI, in one transaction."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any, Protocol, get_args

from proxy.cropping.overrides import (
    CropOverride,
    fits_source,
    parse_aspect,
    rect_from_json,
    rect_json,
)
from proxy.errors import BadParameter
from proxy.geometry import Rect
from proxy.params import Context
from proxy.sources.paths import SourcePath
from proxy.stores.base import Feedback, ReviewItem
from proxy.stores.protocols import OverrideStore, ReviewStore

CONTEXTS = ("", *get_args(Context))
MAX_REASON = 2000


@dataclass(frozen=True)
class Closing:
    """The review item a reviewer's pick closes, with the decision recorded on it."""

    item_id: int
    status: str
    decision: dict[str, Any]


class CorrectionStore(OverrideStore, ReviewStore, Protocol):
    """A crop override, and the review item a reviewer's pick closes with it."""


def put_override(
    store: CorrectionStore,
    override: CropOverride,
    feedback: Feedback,
    closing: Closing | None = None,
) -> tuple[CropOverride, ReviewItem | None]:
    """Store ``override`` and its ``feedback`` row in one transaction: both or neither. With
    ``closing`` (a reviewer's pick) the review item closes in that transaction too.
    Returns the override as stored (stamped) and the closed item."""
    stamped = replace(override, created=time.time())
    if closing is None:
        store.put_override_with_feedback(stamped, feedback)
        return stamped, None
    closed = store.decide_review(
        closing.item_id,
        closing.status,
        closing.decision,
        feedback,
        apply=lambda tx: store.apply_override(tx, stamped),
    )
    return stamped, closed


def aspect_of(text: str) -> str:
    """``parse_aspect``, failing as ``BadParameter``: a huge ratio ("1e308") overflows
    rather than raising ValueError."""
    try:
        return parse_aspect(text)
    except ValueError as exc:
        raise BadParameter(str(exc)) from None
    except OverflowError:
        raise BadParameter(f"aspect must be W:H with sides up to 100000, got {text!r}") from None


@dataclass(frozen=True)
class UserCrop:
    """A user's crop as asked for, checked on its own (not yet against its source)."""

    aspect: str
    rect: Rect
    ctx: str
    reason: str


def user_crop(aspect: object, rect: object, ctx: object, reason: object) -> UserCrop:
    """Check the admin API's fields: ``aspect`` (W:H, a ratio or any), ``rect`` ([x, y, w,
    h]), ``ctx`` (a context or empty) and ``reason`` (cut to 2000 characters)."""
    canonical = aspect_of(str(aspect))
    box = rect_from_json(rect)
    if box is None:
        raise BadParameter("rect must be [x, y, w, h] in source pixels")
    context = ctx or ""
    if context not in CONTEXTS:
        raise BadParameter("ctx must be one of gallery, search, feed, featured, social, hero")
    return UserCrop(canonical, box, str(context), str(reason or "")[:MAX_REASON])


def user_override(
    path: SourcePath, crop: UserCrop, width: int, height: int, reviewer: str
) -> tuple[CropOverride, Feedback]:
    """The override a user sets on a ``width`` x ``height`` source, and the feedback that
    keeps it as a correction (published at once)."""
    if not fits_source(crop.rect, width, height):
        raise BadParameter(f"rect must lie inside the {width}x{height} source")
    override = CropOverride(
        path=path,
        aspect=crop.aspect,
        ctx=crop.ctx,
        rect=crop.rect,
        by="user",
        reviewer=reviewer,
        reason=crop.reason,
    )
    feedback = Feedback(
        review_id=None,
        path=path,
        component="crop",
        action="override",
        ai_output={},
        correction={"aspect": crop.aspect, "ctx": crop.ctx, "rect": rect_json(crop.rect)},
        reason=crop.reason,
        reviewer=reviewer,
        seconds=None,
        context={"published": True},
    )
    return override, feedback
