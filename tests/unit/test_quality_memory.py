"""q=auto on a large output. Verification (the lane's search): the metric sees at most
``SCORED_PIXELS`` (tiles at full resolution, not the whole output), and every probe's encode
dies with its deadline. The request path: a large first answer is one lazy encode at the
fixed quality, and it too dies with the request deadline."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace

import pytest
import pyvips

from proxy.config import LimitsConfig
from proxy.errors import DeadlineExceeded
from proxy.negotiate import parse_accept
from proxy.params import parse_params
from proxy.policies import DEFAULT_POLICIES
from proxy.processing.avif_effort import AvifEffort
from proxy.processing.compress import QualityTools
from proxy.processing.finalize import EncoderSettings
from proxy.processing.pipeline import RenderSettings, render
from proxy.quality import ssimulacra2
from proxy.quality.decisions import QualityDecisions
from proxy.quality.predictor import QualityPredictor
from proxy.quality.windows import SCORED_PIXELS

ENCODER = EncoderSettings(AvifEffort.fixed(2))


def photo(width: int, height: int) -> bytes:
    noise = pyvips.Image.gaussnoise(width, height, sigma=30, mean=128, seed=5).gaussblur(1.2)
    ramp = pyvips.Image.xyz(width, height)[0] * (255 / width)
    image = (noise * 0.6 + ramp * 0.4).cast("uchar")
    return bytes(image.bandjoin([noise.cast("uchar"), ramp.cast("uchar")]).jpegsave_buffer(Q=92))


def settings(
    metric: Callable[[pyvips.Image], Callable[[pyvips.Image], float]], *, verify: bool = True
) -> RenderSettings:
    tools = QualityTools(
        metric,
        QualityPredictor(None),
        QualityDecisions(None),
        DEFAULT_POLICIES,
        ENCODER,
        verify=verify,
    )
    return RenderSettings(LimitsConfig(), DEFAULT_POLICIES, ENCODER, quality=tools)


def test_a_large_output_is_scored_on_tiles_within_the_budget() -> None:
    seen: list[tuple[int, int]] = []

    def recording(reference: pyvips.Image) -> Callable[[pyvips.Image], float]:
        seen.append((reference.width, reference.height))
        measure = ssimulacra2.Reference(reference)

        def scored(distorted: pyvips.Image) -> float:
            seen.append((distorted.width, distorted.height))
            return measure(distorted)

        return scored

    blob = photo(3200, 2400)  # 7.7 MP
    rendered = render(
        blob, parse_params("fm=jpeg"), parse_accept(""), settings(recording), deadline=1e18
    )
    assert rendered.score is not None and rendered.encodes
    assert len(seen) >= 2 and len(set(seen)) == 1, seen  # probes scored like the reference
    width, height = seen[0]
    assert width * height <= SCORED_PIXELS
    decoded = pyvips.Image.new_from_buffer(rendered.body, "")
    assert (decoded.width, decoded.height) == (3200, 2400)  # the output itself is whole


def test_a_small_output_is_scored_whole() -> None:
    sizes: list[tuple[int, int]] = []

    def recording(reference: pyvips.Image) -> Callable[[pyvips.Image], float]:
        sizes.append((reference.width, reference.height))
        return ssimulacra2.Reference(reference)

    blob = photo(400, 300)
    render(blob, parse_params("fm=webp"), parse_accept(""), settings(recording), deadline=1e18)
    assert sizes == [(400, 300)]


def test_q_auto_stops_at_the_deadline() -> None:
    """Every libvips evaluation of q=auto (the reference, the tiles, each encode) runs under
    the watchdog: past the deadline the render stops within moments instead of probing on."""
    blob = photo(6000, 4000)  # 24 MP: many seconds of work for a whole-image search
    quick = replace(settings(ssimulacra2.Reference), fingerprint=lambda _blob: "0" * 16)
    # budgets well under each search's own time here (WebP ~7.5 s, JPEG ~1.1 s in all)
    for query, budget in (("fm=webp", 1.0), ("fm=jpeg", 0.4), ("fm=webp", 2.5)):
        started = time.monotonic()
        with pytest.raises(DeadlineExceeded) as raised:
            render(
                blob,
                parse_params(query),
                parse_accept(""),
                quick,
                deadline=started + budget,
            )
        assert "prepare" not in str(raised.value)  # it reached the search
        assert time.monotonic() - started < budget + 1.0, query


def never(_reference: pyvips.Image) -> Callable[[pyvips.Image], float]:
    raise AssertionError("the request path must not measure")


def test_a_large_answer_is_one_pass_at_the_fixed_quality_and_final() -> None:
    blob = photo(3200, 2400)  # 7.7 MP: above fixed_quality_above_pixels
    quick = replace(settings(never, verify=False), fingerprint=lambda _blob: "1" * 16)
    rendered = render(blob, parse_params("fm=webp"), parse_accept(""), quick, deadline=1e18)
    assert rendered.stage == "final" and rendered.score is None  # the planned answer
    assert rendered.quality == DEFAULT_POLICIES["general"].quality_for("webp")
    assert "fixed-quality:large-output" in rendered.notes
    decoded = pyvips.Image.new_from_buffer(rendered.body, "")
    assert (decoded.width, decoded.height) == (3200, 2400)


def test_the_first_answer_stops_at_the_deadline() -> None:
    """The request path's one encode is killed at the deadline too: no core stays busy."""
    blob = photo(6000, 4000)
    quick = replace(settings(never, verify=False), fingerprint=lambda _blob: "2" * 16)
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded):
        render(blob, parse_params("fm=webp"), parse_accept(""), quick, deadline=started + 0.5)
    assert time.monotonic() - started < 1.5


def test_a_large_avif_gets_a_faster_effort() -> None:
    """libaom cannot be stopped mid-encode: its time must shrink with the output."""
    effort = AvifEffort.fixed(3)
    assert [effort.for_pixels(mp * 1_000_000) for mp in (0, 1, 2, 3, 4, 8, 40)] == [
        3,
        3,
        2,
        1,
        1,
        0,
        0,
    ]
