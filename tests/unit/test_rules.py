"""Exception rules: which apply to a path, and what they do to a request."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from proxy.params import parse_params
from proxy.rules import apply_rules, covers, normalise_prefix, rules_for

segments = st.text(alphabet="abc", min_size=1, max_size=3)


def test_a_folder_rule_covers_its_folder_only() -> None:
    assert covers("shop", "shop/a.jpg") and covers("shop", "shop/x/y.png")
    assert not covers("shop", "shopping/a.jpg") and not covers("shop", "blog/a.jpg")
    assert covers("shop/a.jpg", "shop/a.jpg") and covers("", "anything.png")
    assert normalise_prefix("/shop/ ") == "shop"


@given(st.lists(segments, min_size=1, max_size=4), st.lists(segments, max_size=3))
def test_a_prefix_covers_exactly_its_subtree(folder: list[str], rest: list[str]) -> None:
    prefix = "/".join(folder)
    inside = "/".join([*folder, *rest, "f.jpg"])
    assert covers(prefix, inside)
    assert not covers(prefix + "x", inside) or inside.startswith(prefix + "x/")


def test_rules_for_collects_every_matching_rule() -> None:
    rules = [("shop", "never-crop"), ("", "lossless-only"), ("blog", "center-crop")]
    assert rules_for("shop/a.jpg", rules) == {"never-crop", "lossless-only"}


def test_never_crop_pads_instead() -> None:
    params = parse_params("w=100&h=100&fit=crop", default_crop="smart")
    changed = apply_rules(params, frozenset({"never-crop"}))
    assert changed.fit == "fill" and (changed.width, changed.height) == (100, 100)


def test_center_crop_takes_the_models_out() -> None:
    params = parse_params("w=100&h=100&fit=crop&crop=smart", default_crop="smart")
    assert apply_rules(params, frozenset({"center-crop"})).crop == "center"
    focal = parse_params("w=100&h=100&fit=crop&crop=focalpoint&fp-x=0.2", default_crop="smart")
    assert apply_rules(focal, frozenset({"center-crop"})).crop == "focalpoint"  # the URL's own


def test_lossless_only_overrides_quality_and_policy() -> None:
    params = parse_params("w=100&q=40&policy=product", default_crop="smart")
    changed = apply_rules(params, frozenset({"lossless-only"}))
    assert changed.policy == "legal" and changed.quality is None
    medical = parse_params("w=100&policy=medical", default_crop="smart")
    assert apply_rules(medical, frozenset({"lossless-only"})).policy == "medical"
