"""Retrain the quality predictor on the verified pairs plus the shipped training set
(``quality.training``): ``loupe models retrain quality``, and the lane job that
``quality.retrain_every`` schedules. A better model is installed in the data folder with its
calibration; it serves from the next start (its sha256 is in every decision key, so the
decisions of the old one are not reused)."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from proxy.config import Config
from proxy.lane.worker import JobFailed
from proxy.model_files import find_model
from proxy.quality import margin as margins
from proxy.quality import training
from proxy.quality.predictor import QualityPredictor
from proxy.rendering import predictor_path, retrained_predictor
from proxy.stores.base import Job
from proxy.stores.protocols import QualityStore

log = logging.getLogger(__name__)
KIND = "retrain-quality"


def retrain_quality(config: Config, store: QualityStore, *, trees: int = 150) -> training.Outcome:
    """Refit, compare on the held-out split, install only when better."""
    current = predictor_path(config)
    if current is None:
        raise FileNotFoundError("no quality predictor to compare with")
    shipped_file = find_model(training.DATASET_FILE, config.storage.models_dir)
    if shipped_file is None:
        raise FileNotFoundError(f"the shipped training set {training.DATASET_FILE} is missing")
    shipped = training.load_shipped(shipped_file)
    verified = training.verified_rows(store.quality_pairs())
    loaded = QualityPredictor(current)
    calibration = loaded.calibration
    if calibration is None and loaded.sha256:
        calibration = margins.Calibration(
            loaded.sha256,
            margins.COVERAGE,
            dict.fromkeys(("jpeg", "webp", "avif"), margins.DEFAULT_MARGIN),
        )
    target = retrained_predictor(config.storage.data_dir)
    return training.retrain(current, calibration, shipped, verified, target, trees=trees)


def describe(outcome: training.Outcome) -> str:
    b, a = outcome.before, outcome.after
    mine = (
        f", on the {b.verified_rows} held-out verified pairs {b.mae_verified:.2f} -> "
        f"{a.mae_verified:.2f}"
        if b.mae_verified is not None and a.mae_verified is not None
        else ""
    )
    return (
        f"{outcome.rows} rows ({outcome.verified} verified pairs); held-out MAE "
        f"{b.mae:.2f} -> {a.mae:.2f}{mine}, miss rate {b.miss_rate:.1%} -> "
        f"{a.miss_rate:.1%}, margins {b.margins} -> {a.margins}; {outcome.reason}"
    )


class RetrainTask:
    def __init__(self, config: Config, store: QualityStore) -> None:
        self.config = config
        self.store = store

    async def __call__(self, job: Job) -> None:
        try:
            outcome = await asyncio.to_thread(retrain_quality, self.config, self.store)
        except (training.TrainingUnavailable, FileNotFoundError, ValueError) as exc:
            raise JobFailed(str(exc), permanent=True) from exc
        log.info("quality predictor retrained: %s", describe(outcome))


def installed_at(config: Config) -> Path:
    return retrained_predictor(config.storage.data_dir)
