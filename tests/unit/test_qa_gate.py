"""The QA gate's quarantine: a failing output is never returned, the retry runs with safe
settings (centre crop, fixed quality), and a second failure raises the QA problem."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
import pyvips

from proxy.config import LimitsConfig
from proxy.negotiate import parse_accept
from proxy.params import TransformParams, parse_params
from proxy.policies import DEFAULT_POLICIES
from proxy.processing.avif_effort import AvifEffort
from proxy.processing.finalize import EncoderSettings
from proxy.processing.pipeline import RenderSettings, render
from proxy.processing.rendered import Rendered
from proxy.qa.checks import Check, Expectation, QALimits, QAReport, check_output
from proxy.qa.gate import OutputFailedQA, QualityGate
from proxy.telemetry import Telemetry

SETTINGS = RenderSettings(
    LimitsConfig(), DEFAULT_POLICIES, EncoderSettings(avif=AvifEffort.fixed(2))
)


def photo() -> bytes:
    image = pyvips.Image.xyz(320, 200).extract_band(0).cast("uchar").bandjoin([90, 160])
    return bytes(image.copy(interpretation="srgb").write_to_buffer(".png"))


class FlakyCheck:
    """The real checks, except that the first ``failures`` outputs are reported broken."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.calls = 0

    def __call__(self, body: bytes, expected: Expectation, limits: QALimits) -> QAReport:
        self.calls += 1
        if self.calls <= self.failures:
            return QAReport((Check("dimensions", False, "injected failure"),))
        return check_output(body, expected, limits)


def run(failures: int) -> tuple[Rendered, list[tuple[TransformParams, bool]], Telemetry]:
    telemetry = Telemetry()
    io = ThreadPoolExecutor(max_workers=1)
    gate = QualityGate(
        QALimits(), DEFAULT_POLICIES, telemetry, None, io, check=FlakyCheck(failures)
    )
    blob = photo()
    asked: list[tuple[TransformParams, bool]] = []

    def attempt(params: TransformParams, safe: bool) -> Rendered:
        asked.append((params, safe))
        return render(blob, params, parse_accept("image/webp"), SETTINGS, deadline=1e18)

    params = parse_params("w=100&h=100&fit=crop&crop=smart&fm=jpeg", default_crop="smart")
    try:
        return gate.checked("p.png", "w=100", params, attempt), asked, telemetry
    finally:
        io.shutdown()


def value(telemetry: Telemetry, result: str) -> float:
    sample = telemetry.registry.get_sample_value("loupe_qa_outputs_total", {"result": result})
    return sample or 0.0


def test_a_passing_output_is_returned_as_is() -> None:
    rendered, asked, telemetry = run(failures=0)
    assert [safe for _, safe in asked] == [False]
    assert "qa-reprocessed" not in rendered.notes
    assert value(telemetry, "passed") == 1


def test_a_failing_output_is_quarantined_and_redone_safely() -> None:
    rendered, asked, telemetry = run(failures=1)
    assert [safe for _, safe in asked] == [False, True]
    assert asked[1][0].crop == "center"  # no models on the safe path
    assert "qa-reprocessed" in rendered.notes
    assert value(telemetry, "quarantined") == 1 and value(telemetry, "passed") == 1


def test_a_second_failure_raises() -> None:
    with pytest.raises(OutputFailedQA, match="injected failure"):
        run(failures=2)


class BrokenCheck:
    def __call__(self, body: bytes, expected: Expectation, limits: QALimits) -> QAReport:
        raise RuntimeError("the QA metric crashed")


def test_a_broken_checker_serves_the_output_unchecked_and_says_so() -> None:
    telemetry = Telemetry()
    io = ThreadPoolExecutor(max_workers=1)
    gate = QualityGate(QALimits(), DEFAULT_POLICIES, telemetry, None, io, check=BrokenCheck())
    blob = photo()
    params = parse_params("w=100&fm=jpeg", default_crop="smart")

    def attempt(asked: TransformParams, safe: bool) -> Rendered:
        return render(blob, asked, parse_accept("image/jpeg"), SETTINGS, deadline=1e18)

    try:
        rendered = gate.checked("p.png", "w=100", params, attempt)
    finally:
        io.shutdown()
    assert "qa-unavailable" in rendered.notes and rendered.body
    assert value(telemetry, "unchecked") == 1
