"""Provisional ``q=auto`` WebP answers are encoded at the faster first-answer effort; the
verification scores that answer as it was served, and the final answer (verified) is
encoded at the configured effort."""

from __future__ import annotations

from dataclasses import replace
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
from proxy.processing.rendered import Rendered
from proxy.quality import ssimulacra2
from proxy.quality.decisions import QualityDecisions
from proxy.quality.predictor import QualityPredictor

ENCODER = EncoderSettings(AvifEffort.fixed(2), webp_effort=4)


def settings(encoder: EncoderSettings = ENCODER, decisions: Path | None = None) -> RenderSettings:
    tools = QualityTools(
        ssimulacra2.Reference,
        QualityPredictor(None),
        QualityDecisions(decisions),
        DEFAULT_POLICIES,
        encoder,
        webp_first_answer_effort=1,
    )
    return RenderSettings(
        LimitsConfig(), DEFAULT_POLICIES, encoder, quality=tools, fingerprint=lambda _: "ab" * 8
    )


@pytest.fixture(scope="module")
def photo() -> bytes:
    noise = pyvips.Image.gaussnoise(200, 150, sigma=40, mean=128, seed=5)
    ramp = pyvips.Image.xyz(200, 150)[0] * 1.2
    image = (noise * 0.5 + ramp).cast("uchar").bandjoin([noise.cast("uchar"), ramp.cast("uchar")])
    return bytes(image.copy(interpretation="srgb").pngsave_buffer())


def run(blob: bytes, conf: RenderSettings, query: str) -> Rendered:
    return render(blob, parse_params(query), parse_accept(""), conf, deadline=1e18)


def test_a_provisional_webp_is_encoded_at_the_first_answer_effort(
    photo: bytes, tmp_path: Path
) -> None:
    conf = settings(decisions=tmp_path)
    first = run(photo, conf, "w=160&fm=webp")
    assert first.stage == "provisional" and first.quality is not None
    fixed = f"w=160&fm=webp&q={first.quality}"
    fast = run(photo, settings(replace(ENCODER, webp_effort=1)), fixed)
    assert first.body == fast.body
    assert first.body != run(photo, conf, fixed).body  # not the configured effort

    assert conf.quality is not None
    verifying = replace(conf, quality=replace(conf.quality, verify=True))
    verified = run(photo, verifying, "w=160&fm=webp")
    reference = pyvips.Image.new_from_buffer(run(photo, conf, "w=160&fm=png").body, "")
    served = ssimulacra2.score(reference, pyvips.Image.new_from_buffer(first.body, ""))
    assert verified.first_quality == first.quality
    assert verified.first_score == pytest.approx(served, abs=1e-6)

    final = run(photo, conf, "w=160&fm=webp")
    assert final.stage == "final" and final.quality == verified.quality
    assert final.body == run(photo, conf, f"w=160&fm=webp&q={final.quality}").body


def test_jpeg_first_answers_keep_their_options(photo: bytes) -> None:
    first = run(photo, settings(), "w=160&fm=jpeg")
    assert first.stage == "provisional"
    fixed = run(photo, settings(), f"w=160&fm=jpeg&q={first.quality}")
    assert first.body == fixed.body
