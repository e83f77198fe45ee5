"""q=auto never fails: in verification a failing metric falls back to the policy's fixed
quality and a missing predictor only changes where the search starts; on the request path
nothing is measured at all (the first answer is predicted)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import pyvips

from proxy.config import LimitsConfig
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

ENCODER = EncoderSettings(AvifEffort.fixed(2))


def settings(metric, predictor: QualityPredictor, verify: bool = True) -> RenderSettings:  # type: ignore[no-untyped-def]
    tools = QualityTools(
        metric, predictor, QualityDecisions(None), DEFAULT_POLICIES, ENCODER, verify=verify
    )
    return RenderSettings(LimitsConfig(), DEFAULT_POLICIES, ENCODER, quality=tools)


@pytest.fixture(scope="module")
def photo() -> bytes:
    noise = pyvips.Image.gaussnoise(160, 120, sigma=40, mean=128, seed=3)
    ramp = pyvips.Image.xyz(160, 120)[0] * 1.5
    image = (noise * 0.5 + ramp).cast("uchar").bandjoin([noise.cast("uchar"), ramp.cast("uchar")])
    return bytes(image.copy(interpretation="srgb").pngsave_buffer())


def run(blob: bytes, tools: RenderSettings, query: str = "w=120&fm=jpeg"):  # type: ignore[no-untyped-def]
    return render(blob, parse_params(query), parse_accept(""), tools, deadline=1e18)


def test_a_failing_metric_falls_back_to_the_fixed_quality(photo: bytes) -> None:
    def broken(_reference: pyvips.Image) -> Callable[[pyvips.Image], float]:
        def measure(_distorted: pyvips.Image) -> float:
            raise RuntimeError("metric exploded")

        return measure

    rendered = run(photo, settings(broken, QualityPredictor(None)))
    assert rendered.quality == DEFAULT_POLICIES["general"].quality_for("jpeg")
    assert rendered.score is None
    assert "quality-fallback:metric-failed" in rendered.notes
    assert pyvips.Image.new_from_buffer(rendered.body, "").width == 120


def test_a_missing_predictor_still_meets_the_target(photo: bytes, tmp_path: Path) -> None:
    absent = QualityPredictor(tmp_path / "nope.onnx")
    assert not absent.available
    rendered = run(photo, settings(ssimulacra2.Reference, absent))
    assert "predictor-unavailable" in rendered.notes
    assert rendered.score is not None and rendered.score >= 75
    assert rendered.encodes is not None and rendered.encodes >= 1


def test_the_request_path_never_measures(photo: bytes) -> None:
    def exploding(_reference: pyvips.Image) -> Callable[[pyvips.Image], float]:
        raise AssertionError("the metric ran on the request path")

    rendered = run(photo, settings(exploding, QualityPredictor(None), verify=False))
    assert rendered.stage == "provisional"
    assert rendered.score is None and rendered.encodes == 1
    assert rendered.quality == DEFAULT_POLICIES["general"].quality_for("jpeg")
    assert "predictor-unavailable" in rendered.notes
