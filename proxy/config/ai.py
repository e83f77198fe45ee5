"""The AI components: analysis providers, the VLM, moderation, their costs and calibration."""

from __future__ import annotations

from pydantic import Field, field_validator

from proxy.config.base import SECRET, CommaList, Section
from proxy.providers import provider_name


class AnalysisConfig(Section):
    providers: CommaList = Field(
        ("cuda", "cpu"),
        description="onnxruntime execution providers, best first (cuda, rocm, coreml, "
        "directml, openvino, tensorrt or a full name); those this onnxruntime build lacks "
        "are skipped, CPU is always the last resort. CUDA needs the gpu extra",
    )

    @field_validator("providers")
    @classmethod
    def _known_providers(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            provider_name(name)  # raises ValueError naming the known ones
        return value


class VlmConfig(Section):
    url: str | None = Field(
        None, description="OpenAI-compatible base URL (…/v1); unset = alt text off"
    )
    model: str = "llava"
    api_key: str | None = Field(None, json_schema_extra=SECRET)
    timeout_s: float = Field(30.0, gt=0)
    max_tokens: int = Field(200, ge=16, le=4096)
    confidence_threshold: float = Field(
        0.7, ge=0, le=1, description="below: kept as a draft and sent to review"
    )
    max_image_side: int = Field(768, ge=64, le=4096, description="the image sent is this small")


class ModerationConfig(Section):
    enabled: bool = Field(False, description="scan every source; unscanned is never served")
    unsafe_threshold: float = Field(
        0.8, ge=0, le=1, description="NSFW score at or above: held (451) until approved"
    )
    review_threshold: float = Field(
        0.4, ge=0, le=1, description="NSFW score at or above: served, but a human looks"
    )
    review_max_age_s: int = Field(
        60, ge=0, description="Cache-Control max-age of an image a human has yet to review"
    )


class CostsConfig(Section):
    """Prices for the cost estimate of each AI component (any currency, 0 = not priced)."""

    faces_per_1k: float = Field(0.0, ge=0, description="per 1000 face detections")
    saliency_per_1k: float = Field(0.0, ge=0, description="per 1000 saliency maps")
    text_per_1k: float = Field(0.0, ge=0, description="per 1000 text searches")
    content_per_1k: float = Field(0.0, ge=0, description="per 1000 content classifications")
    nsfw_per_1k: float = Field(0.0, ge=0, description="per 1000 NSFW scores")
    quality_per_1k: float = Field(0.0, ge=0, description="per 1000 q=auto searches")
    vlm_per_1k: float = Field(0.0, ge=0, description="per 1000 VLM calls (on top of tokens)")
    vlm_per_token_in: float = Field(0.0, ge=0, description="per prompt token sent to the VLM")
    vlm_per_token_out: float = Field(0.0, ge=0, description="per token the VLM answered")
    flush_s: float = Field(2.0, gt=0, description="each process adds its tallies this often")

    def per_1k(self, component: str) -> float:
        return float(getattr(self, f"{component}_per_1k"))


class CalibrationConfig(Section):
    target_precision: float = Field(
        0.95, gt=0, le=1, description="share accepted as is that an auto-accept must reach"
    )
    bins: int = Field(10, ge=2, le=100, description="confidence bins of the reliability diagram")
    min_decisions: int = Field(
        20, ge=1, description="human decisions above a threshold before it may be proposed"
    )
    apply: bool = Field(False, description="let the proposed thresholds replace the configured")
    sample_rate: float = Field(
        0.02, ge=0, le=1, description="share of auto-accepted outputs sent for a human look"
    )
