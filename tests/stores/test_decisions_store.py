"""Verdicts that belong to bytes, decision generations, and text the store refuses, on
SQLite and PostgreSQL alike."""

from __future__ import annotations

import pytest

from proxy.cropping.overrides import CropOverride
from proxy.errors import BadParameter
from proxy.geometry import Rect
from proxy.sources.paths import SourcePath, canonical_path
from proxy.stores import Store
from proxy.stores.base import AltText

A = canonical_path("shop/shoes/a.png")
B = canonical_path("shop/hats/b.png")


def test_a_verdict_belongs_to_the_bytes_not_the_path(store: Store) -> None:
    assert store.moderation_of(A, "id-1") is None
    assert store.bind_content(A, "id-1", "digest-1") is None  # never judged: scan it
    store.set_verdict("digest-1", "held", 0.9)
    assert store.moderation_of(A, "id-1") == "held"
    store.set_verdict("digest-1", "approved", None, human=True)
    assert store.moderation_of(A, "id-1") == "approved"
    # the same bytes under another path share the human's verdict
    assert store.bind_content(B, "id-9", "digest-1") == "approved"
    # new bytes at the same path are not approved by it
    assert store.moderation_of(A, "id-2") is None
    assert store.bind_content(A, "id-2", "digest-2") is None
    assert store.moderation_of(A, "id-2") is None
    # and a machine verdict never replaces a human's
    assert store.set_verdict("digest-1", "held", 0.95) == []
    assert store.moderation_of(B, "id-9") == "approved"


def test_every_decision_bumps_the_generation_of_what_it_covers(store: Store) -> None:
    seen = [store.generation(A)]

    def bumped() -> bool:
        now = store.generation(A)
        moved = now > seen[-1]
        seen.append(now)
        return moved

    store.put_override(CropOverride(path=A, aspect="16:9", rect=Rect(0, 0, 16, 9)))
    assert bumped()
    assert store.delete_overrides(A) == 1 and bumped()
    assert store.delete_overrides(A) == 0 and not bumped()  # nothing changed
    store.put_rule("shop", "never-crop", "r", "why")  # a folder rule covers what is below it
    assert bumped()
    assert store.generation(B) > 0
    assert store.delete_rule("shop", "never-crop") and bumped()
    store.put_rule("", "center-crop", "r", "why")  # every source
    assert bumped()
    store.put_rule("other", "center-crop", "r", "why")  # not above A
    assert not bumped()
    store.bind_content(A, "id", "digest")
    store.set_verdict("digest", "review", 0.5)  # a moderation verdict on its bytes
    assert bumped()
    store.bump_generation(A)  # a purge
    assert bumped()
    store.put_alt(AltText(path=A, text="words", status="user"))  # not in the image
    assert not bumped()


def test_decisions_for_reads_generation_crops_and_covering_rules_together(store: Store) -> None:
    store.put_override(CropOverride(path=A, aspect="1:1", rect=Rect(1, 2, 3, 3)))
    store.put_rule("shop", "lossless-only", "r", "why")
    store.put_rule("shop/shoes/a.png", "never-crop", "r", "why")
    store.put_rule("shop/shoe", "center-crop", "r", "why")  # a sibling prefix: not covering
    generation, overrides, rules = store.decisions_for(A)
    assert generation == store.generation(A) == 3
    assert [o.rect for o in overrides] == [Rect(1, 2, 3, 3)]
    assert sorted(rules) == [("shop", "lossless-only"), ("shop/shoes/a.png", "never-crop")]


@pytest.mark.parametrize(
    "write",
    [
        lambda store: store.put_alt(AltText(path=A, text="nul\x00here", status="user")),
        lambda store: store.put_rule("shop", "never-crop", "r", "a \x00 reason"),
        lambda store: store.overrides(SourcePath("a\x00.png")),
    ],
)
def test_text_with_a_nul_byte_is_a_bad_parameter(store: Store, write: object) -> None:
    with pytest.raises(BadParameter):
        write(store)  # type: ignore[operator]
