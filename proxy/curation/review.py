"""What a reviewer's decision does: close the item, keep the feedback beside the AI output it
judged, and change what is served next (an override, an alt text, a moderation verdict) in
the same transaction."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal, Protocol, cast

from proxy.cropping.overrides import CropOverride, fits_source, rect_from_json, rect_json
from proxy.curation.overrides import Closing, put_override
from proxy.errors import BadParameter
from proxy.geometry import Rect
from proxy.stores.base import AltText, Feedback, ReviewItem
from proxy.stores.protocols import AltStore, ModerationStore, OverrideStore, ReviewStore
from proxy.stores.sql import Tx

Action = Literal["accept", "reject", "edit"]
STATUS = {"accept": "accepted", "reject": "rejected", "edit": "edited"}
MAX_SIDE = 1_000_000  # bounds a rect when an (older) item does not name its source's size


class DecidingStore(ReviewStore, AltStore, OverrideStore, ModerationStore, Protocol):
    """What deciding an item touches: the queue, and the aggregates its effect changes."""


@dataclass(frozen=True)
class Decision:
    action: Action
    value: Any
    reason: str
    seconds: float | None
    reviewer: str


def parse_decision(body: object, reviewer: str) -> Decision:
    if not isinstance(body, dict):
        raise BadParameter("the body must be a JSON object")
    action = body.get("action")
    if not isinstance(action, str) or action not in STATUS:  # a dict or list is unhashable
        raise BadParameter("action must be accept, reject or edit")
    reason = body.get("reason") or ""
    if not isinstance(reason, str) or len(reason) > 2000:
        raise BadParameter("reason must be a string of at most 2000 characters")
    seconds = body.get("seconds")
    if seconds is not None and (
        not isinstance(seconds, int | float)
        or isinstance(seconds, bool)
        or not 0 <= seconds < 86400
    ):
        raise BadParameter("seconds must be a number of seconds spent on the review")
    return Decision(cast(Action, action), body.get("value"), reason.strip(), seconds, reviewer)


def _crop_choice(item: ReviewItem, decision: Decision) -> Rect | None:
    """The rect a crop decision makes the override: a candidate (1-based) or a rect."""
    candidates = item.payload.get("candidates") or []
    if decision.action == "reject":
        return None
    if decision.action == "accept":
        index = 1
    else:
        value = decision.value if isinstance(decision.value, dict) else {}
        if "rect" in value:
            box = rect_from_json(value["rect"])
            if box is None:
                raise BadParameter("value.rect must be [x, y, w, h] in source pixels")
            # Outside the source the override would never be served (and a huge number
            # would not even fit the store's integer columns).
            size = item.payload.get("source") or {}
            width, height = size.get("width", MAX_SIDE), size.get("height", MAX_SIDE)
            if not fits_source(box, width, height):
                raise BadParameter(f"value.rect must lie inside the {width}x{height} source")
            return box
        picked = value.get("candidate")
        if not isinstance(picked, int) or isinstance(picked, bool):
            raise BadParameter("a crop edit needs value.candidate (1-3) or value.rect")
        index = picked
    if not 1 <= index <= len(candidates):
        raise BadParameter(f"candidate {index} does not exist (there are {len(candidates)})")
    chosen = candidates[index - 1]
    return Rect(chosen["x"], chosen["y"], chosen["width"], chosen["height"])


def _overrides_the_ai(item: ReviewItem, decision: Decision) -> bool:
    if decision.action == "accept":
        return False
    if item.component == "crop" and decision.action == "edit":
        value = decision.value if isinstance(decision.value, dict) else {}
        return value.get("candidate") != 1
    return True


def decide(store: DecidingStore, item: ReviewItem, decision: Decision) -> ReviewItem:
    """Apply ``decision`` to ``item``; a reason is required whenever the human overrides."""
    if _overrides_the_ai(item, decision) and not decision.reason:
        raise BadParameter("a reason is required when overriding the AI (reject or edit)")
    effect: Any = None
    override: CropOverride | None = None
    correction: dict[str, Any] | None = None
    published = False
    if item.component == "alt":
        current = store.alt(item.path)
        published = current is not None and current.status == "machine"
        draft = item.payload.get("draft") or (current.text if current else "")
        if decision.action == "edit":
            text = (
                decision.value.get("text") if isinstance(decision.value, dict) else decision.value
            )
            if not isinstance(text, str) or not text.strip() or len(text) > 1000:
                raise BadParameter("an alt edit needs value.text (1-1000 characters)")
            correction = {"text": text.strip()}
            alt = AltText(
                item.path, text.strip(), "reviewed", phash=current.phash if current else None
            )
        elif decision.action == "accept":
            if not draft:
                raise BadParameter("there is no draft to accept: edit it instead")
            alt = AltText(
                item.path,
                draft,
                "reviewed",
                phash=current.phash if current else None,
                confidence=item.payload.get("confidence"),
                model=item.payload.get("model"),
            )
        else:
            correction = {"text": ""}
            alt = AltText(item.path, "", "empty", phash=current.phash if current else None)

        def effect(tx: Tx) -> None:
            store.apply_alt(tx, alt)

    elif item.component == "crop":
        rect = _crop_choice(item, decision)
        if rect is not None:
            if decision.action == "edit":
                correction = {
                    "rect": rect_json(rect),
                    "candidate": (decision.value or {}).get("candidate"),
                }
            override = CropOverride(
                path=item.path,
                aspect=str(item.payload.get("aspect", "any")),
                ctx=str(item.payload.get("ctx", "")),
                rect=rect,
                by="human",
                reviewer=decision.reviewer,
                reason=decision.reason,
            )

    elif item.component == "moderation":
        verdict = "approved" if decision.action == "accept" else "rejected"
        if decision.action == "edit":
            raise BadParameter("moderation items are accepted (approve) or rejected")
        correction = {"moderation": verdict}
        digest = item.payload.get("digest")

        def effect(tx: Tx) -> None:
            # The verdict is on the bytes the item showed: other bytes at the same path
            # (changed since) are not approved by it, the same bytes elsewhere are.
            if isinstance(digest, str) and digest:
                store.apply_verdict(tx, digest, verdict, None, human=True)
            else:
                store.apply_moderation(tx, item.path, verdict)

    feedback = Feedback(
        review_id=item.id,
        path=item.path,
        component=item.component,
        action=decision.action,
        ai_output=item.payload,
        correction=correction,
        reason=decision.reason,
        reviewer=decision.reviewer,
        seconds=decision.seconds,
        context={"subject": item.subject, "published": published},
    )
    record = {"action": decision.action, "value": decision.value, "reason": decision.reason}
    if override is not None:  # a picked crop: the same write as the admin API's override
        closing = Closing(item.id, STATUS[decision.action], record)
        _stored, closed = put_override(store, override, feedback, closing)
        assert closed is not None
        return closed
    return store.decide_review(item.id, STATUS[decision.action], record, feedback, apply=effect)
