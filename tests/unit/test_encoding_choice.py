"""The plan names its encoding strategy once, in prepare; the plan carries decisions only
(its resolved policy included), and the bytes come back as a separate ``Rendered``."""

from __future__ import annotations

import dataclasses

import pytest
import pyvips

from proxy.config import LimitsConfig
from proxy.negotiate import parse_accept
from proxy.params import parse_params
from proxy.policies import DEFAULT_POLICIES
from proxy.processing.avif_effort import AvifEffort
from proxy.processing.compress import (
    PredictedEncode,
    QualityTools,
    SearchedEncode,
    choose_encoding,
    encoding_of,
)
from proxy.processing.finalize import EncoderSettings, FixedEncode
from proxy.processing.pipeline import STEPS, RenderSettings, render
from proxy.processing.plan import RenderPlan, SourceInfo
from proxy.processing.prepare import PrepareOptions, make_plan
from proxy.quality import ssimulacra2
from proxy.quality.decisions import QualityDecisions
from proxy.quality.predictor import QualityPredictor

ENCODER = EncoderSettings(AvifEffort.fixed(2))
ALL = parse_accept("image/avif,image/webp,*/*")


def tools(verify: bool = False) -> QualityTools:
    return QualityTools(
        ssimulacra2.Reference,
        QualityPredictor(None),
        QualityDecisions(None),
        DEFAULT_POLICIES,
        ENCODER,
        verify=verify,
    )


def plan(query: str, width: int = 800, height: int = 600) -> RenderPlan:
    info = SourceInfo("png", width, height, 1, 1, False, 1000)
    options = PrepareOptions(LimitsConfig(), "general")
    return make_plan(info, parse_params(query), ALL, DEFAULT_POLICIES, options)


@pytest.mark.parametrize(
    ("query", "verify", "expected"),
    [
        ("w=300&fm=webp", False, "predicted"),
        ("w=300&fm=webp", True, "searched"),
        ("w=300&fm=webp&q=60", False, "fixed"),
        ("w=300&fm=png", False, "fixed"),
        ("w=300&fm=webp&policy=legal", False, "fixed"),  # lossless: nothing to choose
    ],
)
def test_the_encoding_is_chosen_from_the_plan(query: str, verify: bool, expected: str) -> None:
    chosen = choose_encoding(plan(query), tools(verify))
    assert chosen.encoding == expected
    strategy = encoding_of(chosen, tools(verify))
    kinds = {"fixed": FixedEncode, "predicted": PredictedEncode, "searched": SearchedEncode}
    assert isinstance(strategy, kinds[expected])


def test_without_quality_tools_every_plan_is_fixed() -> None:
    assert choose_encoding(plan("w=300&fm=webp"), None).encoding == "fixed"


def test_an_output_too_small_to_measure_is_fixed_and_says_so() -> None:
    chosen = choose_encoding(plan("w=5&fm=webp"), tools())
    assert chosen.encoding == "fixed" and chosen.notes[-1] == "too-small-to-measure"


def test_the_plan_carries_the_policy_and_no_outcome() -> None:
    planned = plan("w=300&fm=webp&policy=screenshot")
    assert planned.policy is DEFAULT_POLICIES["screenshot"]
    fields = {f.name for f in dataclasses.fields(RenderPlan)}
    assert not fields & {"body", "score", "encodes", "stage"}


def test_the_pixel_steps_are_pure_pixels_and_encoding_is_not_one() -> None:
    names = [name for name, _ in STEPS]
    assert names == [
        "orient",
        "turn",
        "colorspace",
        "focus",
        "crop",
        "scale",
        "effects",
        "pad",
        "flatten",
    ]


def test_rendered_reports_the_encode_beside_the_plan() -> None:
    image = pyvips.Image.xyz(64, 48)[0].cast("uchar").bandjoin([40, 200])
    blob = bytes(image.copy(interpretation="srgb").pngsave_buffer())
    settings = RenderSettings(LimitsConfig(), DEFAULT_POLICIES, ENCODER)
    rendered = render(blob, parse_params("w=32&fm=jpeg&q=70"), ALL, settings, deadline=1e18)
    assert rendered.quality == rendered.plan.quality == 70
    assert rendered.mime == "image/jpeg" and rendered.stage == "final"
    assert rendered.notes == rendered.plan.notes
    stages = [stage for stage, _ in rendered.timings]
    assert stages[-3:] == ["flatten", "compress", "encode"]
