"""The encoder memory plan: refused (or, for fm=auto, another format) before any decoding."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proxy.config import LimitsConfig
from proxy.errors import BadParameter
from proxy.negotiate import parse_accept
from proxy.params import parse_params
from proxy.policies import DEFAULT_POLICIES
from proxy.processing.encoder_memory import BYTES_PER_PIXEL, encoder_bytes
from proxy.processing.plan import RenderPlan, SourceInfo
from proxy.processing.prepare import PrepareOptions, make_plan

FORMATS = ["avif", "webp", "gif", "jpeg", "png"]
ALL = parse_accept("image/avif,image/webp,*/*")


def source(width: int, height: int, *, alpha: bool, pages: int = 1) -> SourceInfo:
    return SourceInfo("png", width, height, pages, 1, alpha, 1000)


DEFAULTS = LimitsConfig()


def plan(info: SourceInfo, query: str, limits: LimitsConfig = DEFAULTS) -> RenderPlan:
    options = PrepareOptions(limits, "general")
    return make_plan(info, parse_params(query), ALL, DEFAULT_POLICIES, options)


@given(
    st.sampled_from(FORMATS),
    st.booleans(),
    st.booleans(),
    st.integers(0, 10**9),
    st.integers(0, 10**9),
)
def test_more_pixels_never_need_less(
    fmt: str, lossless: bool, alpha: bool, small: int, extra: int
) -> None:
    less = encoder_bytes(fmt, lossless=lossless, alpha=alpha, pixels=small)
    more = encoder_bytes(fmt, lossless=lossless, alpha=alpha, pixels=small + extra)
    assert 0 <= less <= more
    if not alpha:
        assert less <= encoder_bytes(fmt, lossless=lossless, alpha=True, pixels=small)


def test_every_output_format_has_a_figure() -> None:
    assert set(FORMATS) | {"webp-lossless"} == set(BYTES_PER_PIXEL)


def test_a_40_mp_rgba_avif_is_refused_but_fm_auto_falls_back() -> None:
    big = source(6324, 6324, alpha=True)  # 40 MP with alpha: ~1.2 GB of libaom
    with pytest.raises(BadParameter, match="avif needs about"):
        plan(big, "fm=avif")
    chosen = plan(big, "")  # fm=auto, the client takes AVIF and WebP
    assert chosen.format == "webp"
    assert "avif-too-large" in chosen.notes
    assert plan(source(6324, 6324, alpha=False), "fm=avif").format == "avif"  # RGB: 800 MB
    assert plan(big, "w=3000&fm=avif").format == "avif"  # 9 MP: small enough


def test_a_lower_limit_applies_to_every_format() -> None:
    limits = LimitsConfig(max_encoder_bytes=100 << 20)
    info = source(6000, 4000, alpha=False)  # 24 MP
    with pytest.raises(BadParameter, match="gif needs about"):
        plan(info, "fm=gif", limits)
    with pytest.raises(BadParameter, match="jpeg needs about"):
        plan(info, "fm=jpeg", limits)
    assert plan(info, "fm=png", limits).format == "png"  # 2 B/px: 48 MB
    assert plan(info, "w=2000&fm=gif", limits).format == "gif"


def test_fm_auto_falls_back_as_far_as_needed() -> None:
    big = source(6324, 6324, alpha=True)  # lossless WebP of 40 MP RGBA: ~880 MB
    chosen = plan(big, "policy=medical")
    assert (chosen.format, chosen.lossless) == ("png", True)
    assert "webp-too-large" in chosen.notes
    with pytest.raises(BadParameter, match="webp needs about"):
        plan(big, "fm=webp&policy=medical")
