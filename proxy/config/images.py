"""What is rendered and how: limits on sources and outputs, the caches, and the
encoders' and policies' settings."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator

from proxy.config.base import CommaList, CropName, PolicyName, Section
from proxy.params import KNOWN


class LimitsConfig(Section):
    max_source_bytes: int = Field(64 * 1024 * 1024, ge=1)
    max_source_pixels: int = Field(100_000_000, ge=1, description="header-read, before decoding")
    max_output_pixels: int = Field(40_000_000, ge=1)
    max_frames: int = Field(256, ge=1)
    max_animation_pixels: int = Field(64_000_000, ge=1, description="frames x output pixels")
    max_encoder_bytes: int = Field(
        768 << 20,
        ge=1,
        description="memory an output's encoder may need (planned from its size): "
        "fm=auto falls back to a leaner format, else 400",
    )
    max_animation_canvas_pixels: int = Field(
        64_000_000,
        ge=1,
        description="frames x source canvas pixels an animated output decodes (header-read)",
    )


class CacheConfig(Section):
    memory_bytes: int = Field(64 * 1024 * 1024, ge=0)
    memory_max_item_bytes: int = Field(4 * 1024 * 1024, ge=0)
    disk_bytes: int = Field(2 * 1024 * 1024 * 1024, ge=0)
    max_age_s: int = Field(31_536_000, ge=0, description="Cache-Control max-age of images")
    stale_while_revalidate_s: int = Field(86_400, ge=0)
    error_max_age_s: int = Field(60, ge=0)


class ImagesConfig(Section):
    default_crop: CropName = "smart"
    default_policy: PolicyName = "general"
    source_policies: dict[str, PolicyName] = Field(
        default_factory=dict,
        description="path prefix -> policy for sources under it; policy= in the URL wins",
    )
    avif_time_budget_s: float = Field(
        0.6, gt=0, description="AVIF effort is the highest that encodes 1 MP within this"
    )
    avif_effort: int | None = Field(
        None, ge=0, le=9, description="fixed AVIF effort; unset = calibrate to the budget"
    )
    avif_first_answer_s: float = Field(
        0.05,
        ge=0,
        description="fm=auto: a first (unverified) answer is AVIF only when its encode is "
        "expected within this (avif_time_budget_s per MP); otherwise after verification",
    )
    provisional_max_age_s: int = Field(
        300, ge=0, description="Cache-Control max-age of a predicted, not yet verified answer"
    )
    fixed_quality_above_pixels: int = Field(
        4_000_000,
        ge=0,
        description="first answers of larger outputs: the policy's fixed quality, one pass, "
        "and JPEG rather than WebP/AVIF for fm=auto (planned to fit the deadline)",
    )
    webp_effort: int = Field(4, ge=0, le=6)
    webp_first_answer_effort: int = Field(
        1,
        ge=0,
        le=6,
        description="libwebp effort of provisional q=auto answers (their verification and "
        "final answers use webp_effort): about 0.4x the encode time, ~10% more bytes for "
        "the few minutes they live, the same scores on average",
    )
    webp_smart_subsample: bool = Field(
        False, description="sharp YUV for every WebP: doubles encode time, rarely pays"
    )
    jpeg_progressive: bool = Field(False, description="progressive JPEG: ~1% smaller, 2x encode")
    png_compression: int = Field(6, ge=0, le=9)
    allow_svg: bool = False
    policies_file: Path | None = None
    ignored_params: CommaList = Field(
        (),
        description="query parameters dropped before the signature check and the cache key, "
        "besides ixlib and utm_*; a trailing * matches a prefix",
    )

    @field_validator("ignored_params")
    @classmethod
    def _not_a_contract_parameter(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            prefix = name.lower().removesuffix("*")  # ignoring compares without case
            hits = [k for k in KNOWN if k.startswith(prefix)] if name.endswith("*") else [prefix]
            if not prefix or set(hits) & KNOWN:
                raise ValueError(f"{name!r} cannot be ignored: it is empty or names a parameter")
        return value

    @field_validator("source_policies", mode="before")
    @classmethod
    def _source_policies_from_text(cls, value: object) -> object:
        """``prefix=policy,prefix=policy`` (environment) or a mapping (TOML)."""
        if isinstance(value, str):
            pairs = {}
            for item in (part for part in value.split(",") if part.strip()):
                prefix, sep, policy = item.partition("=")
                if not sep or not prefix.strip():
                    raise ValueError(f"source policy must be PREFIX=POLICY, got {item!r}")
                pairs[prefix.strip()] = policy.strip()
            return pairs
        return value
