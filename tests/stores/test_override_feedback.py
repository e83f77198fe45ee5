"""``put_override``: a human crop and its feedback row commit together or not at all, from
the admin API (a user's crop) and from the review queue (a reviewer's pick) alike."""

from __future__ import annotations

from typing import Literal

import pytest

from proxy.cropping.overrides import CropOverride
from proxy.curation.overrides import Closing, put_override
from proxy.geometry import Rect
from proxy.sources.paths import SourcePath
from proxy.stores import Store
from proxy.stores.base import Feedback

PATH = SourcePath("shop/shoe.jpg")


def _override(by: Literal["user", "human"] = "user") -> CropOverride:
    return CropOverride(PATH, "16:9", Rect(0, 0, 160, 90), by=by, reviewer="ann", reason="faces")


def _feedback(review_id: int | None = None, **ai_output: object) -> Feedback:
    return Feedback(
        review_id=review_id,
        path=PATH,
        component="crop",
        action="override",
        ai_output=dict(ai_output),
        correction={"rect": [0, 0, 160, 90]},
        reason="faces",
        reviewer="ann",
        seconds=None,
        context={"published": True},
    )


def test_the_override_and_its_feedback_are_stored_together(store: Store) -> None:
    before = store.generation(PATH)
    stored, closed = put_override(store, _override(), _feedback())
    assert closed is None and stored.created > 0
    assert store.overrides(PATH) == [stored]
    [row] = list(store.feedback())
    assert (row.path, row.component, row.action) == (PATH, "crop", "override")
    assert store.generation(PATH) > before


def test_a_failing_feedback_write_leaves_no_override(store: Store) -> None:
    before = store.generation(PATH)
    with pytest.raises(TypeError):  # the AI output cannot be written as JSON
        put_override(store, _override(), _feedback(model=object()))
    assert store.overrides(PATH) == []
    assert list(store.feedback()) == []
    assert store.generation(PATH) == before


def test_a_reviewers_pick_closes_its_item_in_the_same_transaction(store: Store) -> None:
    item = store.open_review(PATH, "crop", f"{PATH}|16:9|hero", {"aspect": "16:9"})
    assert item is not None
    closing = Closing(item.id, "edited", {"action": "edit"})
    stored, closed = put_override(store, _override("human"), _feedback(item.id), closing)
    assert closed is not None and closed.status == "edited"
    assert store.overrides(PATH) == [stored]
    assert [row.review_id for row in store.feedback()] == [item.id]


def test_a_failing_pick_leaves_the_item_pending_and_no_override(store: Store) -> None:
    item = store.open_review(PATH, "crop", f"{PATH}|16:9|hero", {"aspect": "16:9"})
    assert item is not None
    closing = Closing(item.id, "edited", {"action": "edit"})
    with pytest.raises(TypeError):
        put_override(store, _override("human"), _feedback(item.id, model=object()), closing)
    assert store.review(item.id).status == "pending"
    assert store.overrides(PATH) == []
    assert list(store.feedback()) == []
