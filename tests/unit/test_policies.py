"""Compression policies: the documented TOML equals the embedded defaults, and bad files fail."""

from __future__ import annotations

from pathlib import Path
from typing import get_args

import pytest

from proxy.errors import ConfigError
from proxy.formats import LOSSY_FORMATS
from proxy.params import LOSSLESS_POLICIES, PolicyName
from proxy.policies import DEFAULT_POLICIES, load_policies, parse_policies

REPO = Path(__file__).resolve().parents[2]
DOCUMENTED = REPO / "config" / "policies.toml"


def test_documented_file_equals_the_embedded_defaults() -> None:
    loaded = load_policies(DOCUMENTED)
    assert dict(loaded) == dict(DEFAULT_POLICIES)
    for name, policy in DEFAULT_POLICIES.items():
        assert dict(loaded[name].default_quality) == dict(policy.default_quality), name


def test_default_policies_match_the_contract() -> None:
    assert set(DEFAULT_POLICIES) == {"general", "product", "art", "screenshot", "medical", "legal"}
    assert not DEFAULT_POLICIES["medical"].lossy
    assert not DEFAULT_POLICIES["legal"].lossy
    for name in ("general", "product", "art", "screenshot"):
        assert DEFAULT_POLICIES[name].lossy, name
    assert DEFAULT_POLICIES["screenshot"].consider_lossless
    assert load_policies(None) is DEFAULT_POLICIES


def test_default_policies_are_the_url_words() -> None:
    # policy= takes params.PolicyName; the rules' lossless-only set is its lossless part.
    assert tuple(DEFAULT_POLICIES) == get_args(PolicyName)
    assert {name for name, p in DEFAULT_POLICIES.items() if not p.lossy} == LOSSLESS_POLICIES
    for policy in DEFAULT_POLICIES.values():
        assert tuple(policy.default_quality) in ((), LOSSY_FORMATS), policy.name


def test_quality_for_uses_the_format_default_then_min_quality() -> None:
    general = DEFAULT_POLICIES["general"]
    assert general.quality_for("jpeg") == 80
    assert general.quality_for("avif") == 60
    assert DEFAULT_POLICIES["product"].quality_for("webp") == 88
    assert DEFAULT_POLICIES["medical"].quality_for("webp") == 95
    assert DEFAULT_POLICIES["screenshot"].quality_for("png") == 80


LOSSY = {"default_quality": {"jpeg": 80, "webp": 80, "avif": 60}}


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ({"x": {**LOSSY, "colour": 1}}, "policy 'x': unknown keys ['colour']"),
        ({"x": {"default_quality": {"jpeg": 80}}}, "needs default_quality for jpeg, webp, avif"),
        ({"x": {"default_quality": {**LOSSY["default_quality"], "png": 9}}}, "default_quality.png"),
        ({"x": {"default_quality": {"jpeg": 0, "webp": 80, "avif": 60}}}, "default_quality.jpeg"),
        ({"x": {"default_quality": {"jpeg": 80, "webp": 101, "avif": 60}}}, "must be 1-100"),
        ({"x": {"default_quality": {"jpeg": "80", "webp": 80, "avif": 60}}}, "must be 1-100"),
    ],
)
def test_bad_policies_are_config_errors(raw: dict[str, dict[str, object]], fragment: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_policies(raw)
    assert fragment in raised.value.detail


def test_a_lossless_policy_needs_no_qualities() -> None:
    policy = parse_policies({"x": {"lossy": False, "min_quality": 90}})["x"]
    assert not policy.lossy
    assert policy.quality_for("jpeg") == 90


def test_a_replacement_file_must_name_every_policy(tmp_path: Path) -> None:
    partial = tmp_path / "policies.toml"
    partial.write_text("[general]\ndefault_quality = { jpeg = 70, webp = 70, avif = 50 }\n")
    with pytest.raises(ConfigError, match="missing policies"):
        load_policies(partial)


def test_a_replacement_file_is_used(tmp_path: Path) -> None:
    text = DOCUMENTED.read_text().replace(
        "default_quality = { jpeg = 80, webp = 80, avif = 60 }",
        "default_quality = { jpeg = 70, webp = 71, avif = 50 }",
    )
    custom = tmp_path / "policies.toml"
    custom.write_text(text)
    policies = load_policies(custom)
    assert policies["general"].quality_for("webp") == 71
    assert policies["product"] == DEFAULT_POLICIES["product"]
    assert policies["general"] != DEFAULT_POLICIES["general"]


def test_source_policies_take_the_longest_prefix() -> None:
    from proxy.policies import policy_for_path

    mapping = {"scans/": "medical", "scans/public/": "general", "shop": "product"}
    assert policy_for_path("scans/x-ray.png", mapping) == "medical"
    assert policy_for_path("/scans/public/a.png", mapping) == "general"
    assert policy_for_path("shop/shoe.jpg", mapping) == "product"
    assert policy_for_path("blog/a.jpg", mapping) is None
