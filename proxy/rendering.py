"""The render settings every process builds the same way: ``loupe serve`` for requests, and
the lane (in the server or in ``loupe worker``) for ``verify`` jobs, which run the same
pipeline with the perceptual search switched on."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from proxy.analysis.analyzer import Analyzer
from proxy.config import Config
from proxy.feedback.costs import CostMeter
from proxy.fingerprint import PhashMemo
from proxy.model_files import find_model
from proxy.policies import load_policies
from proxy.processing.avif_effort import AvifEffort
from proxy.processing.compress import QualityTools
from proxy.processing.finalize import EncoderSettings
from proxy.processing.pipeline import RenderSettings
from proxy.processing.validate import Scanner
from proxy.quality import ssimulacra2
from proxy.quality.decisions import DecisionStore, QualityDecisions
from proxy.quality.predictor import QualityPredictor

PREDICTOR_FILE = "quality/quality_predictor.onnx"


def retrained_predictor(data_dir: Path) -> Path:
    """Where ``loupe models retrain quality`` installs a better predictor (with its
    calibration); found before the shipped one."""
    return data_dir / "models" / PREDICTOR_FILE


def predictor_path(config: Config) -> Path | None:
    retrained = retrained_predictor(config.storage.data_dir)
    if retrained.is_file():
        return retrained
    return find_model(PREDICTOR_FILE, config.storage.models_dir)


@dataclass(frozen=True)
class Rendering:
    settings: RenderSettings  # the request path: predicted first answers
    avif: AvifEffort
    decisions: QualityDecisions
    predictor: QualityPredictor

    @property
    def verifying(self) -> RenderSettings:
        """The same pipeline with the search on, for the lane's ``verify`` job."""
        tools = self.settings.quality
        assert tools is not None
        return replace(self.settings, quality=replace(tools, verify=True))


def build_rendering(
    config: Config,
    analyzer: Analyzer,
    fingerprint: PhashMemo,
    store: DecisionStore | None,
    scan: Scanner | None = None,
    *,
    meter: CostMeter | None = None,
) -> Rendering:
    data_dir = config.storage.data_dir
    images = config.images
    avif = AvifEffort(images.avif_time_budget_s, data_dir)
    if images.avif_effort is not None:
        avif = AvifEffort.fixed(images.avif_effort)
    policies = load_policies(images.policies_file)
    encoder = EncoderSettings(
        avif=avif,
        png_compression=images.png_compression,
        webp_effort=images.webp_effort,
        webp_smart_subsample=images.webp_smart_subsample,
        jpeg_progressive=images.jpeg_progressive,
    )
    decisions = QualityDecisions(data_dir / "ai" / "quality", store=store)
    predictor = QualityPredictor(predictor_path(config), config.analysis.providers)
    settings = RenderSettings(
        limits=config.limits,
        policies=policies,
        encoder=encoder,
        allow_svg=images.allow_svg,
        scan=scan,
        default_policy=images.default_policy,
        fingerprint=fingerprint,
        analyzer=analyzer,
        quality=QualityTools(
            metric=ssimulacra2.Reference,
            predictor=predictor,
            decisions=decisions,
            policies=policies,
            encoder=encoder,
            fixed_above_pixels=images.fixed_quality_above_pixels,
            avif_s_per_mp=images.avif_time_budget_s,
            avif_first_answer_s=images.avif_first_answer_s,
            webp_first_answer_effort=images.webp_first_answer_effort,
            meter=meter,
        ),
    )
    return Rendering(settings, avif, decisions, predictor)
