"""Retraining the quality predictor: refit on the shipped rows plus the store's verified
pairs, judged on a held-out split by picture, installed (with a new margin) only when it
beats the model in use, and reported before and after, from the command line too."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from proxy.config import Config, StorageConfig
from proxy.lane.tasks.retrain import retrain_quality
from proxy.manifest import sha256_of
from proxy.quality import margin
from proxy.quality.predictor import QualityPredictor
from proxy.quality.training import held_out_picture, verified_rows
from proxy.rendering import retrained_predictor
from proxy.stores import Store, open_store
from tests.support import REPO, constant_predictor

pytest.importorskip("sklearn")
pytest.importorskip("skl2onnx")
TREES = 20  # enough to beat a constant; keeps each fit well under a second


@pytest.fixture
def store(tmp_path: Path) -> Store:
    opened = open_store(f"sqlite:///{tmp_path / 'loupe.db'}")
    return opened


def config_for(tmp_path: Path, models: Path) -> Config:
    return Config(storage=StorageConfig(data_dir=tmp_path / "data", models_dir=models))


def add_pairs(store: Store, n: int) -> None:
    """Measured pairs as the verify job records them (features of 12, a quality label)."""
    rng = np.random.default_rng(1)
    for i in range(n):
        features = rng.uniform(0, 1, 12).tolist()
        store.add_quality_pair(
            f"{i:016x}", features, "jpeg", 75.0, int(60 + 20 * features[3]), 76.0
        )


def test_verified_pairs_are_split_by_picture() -> None:
    pairs = [(f"{i:016x}", [0.5] * 12, "webp", 80.0, 70) for i in range(200)]
    rows = verified_rows(pairs)
    assert rows.X.shape == (200, 16) and rows.held_out.sum() in range(20, 70)
    assert all(rows.held_out[i] == held_out_picture(pairs[i][0]) for i in range(200))


def test_a_better_model_is_installed_with_its_margin(tmp_path: Path, store: Store) -> None:
    models = tmp_path / "models"
    constant_predictor(models, 60.0, {"jpeg": 0, "webp": 0, "avif": 0})  # a poor model
    add_pairs(store, 100)
    config = config_for(tmp_path, models)
    outcome = retrain_quality(config, store, trees=TREES)
    assert outcome.installed, outcome.reason
    assert outcome.verified == 100 and outcome.rows > 600
    assert outcome.after.mae < outcome.before.mae
    # Enough held-out pairs of its own: they are what judged it.
    assert outcome.before.verified_rows >= 10
    assert outcome.after.judged == outcome.after.mae_verified
    assert outcome.after.judged < outcome.before.judged
    installed = retrained_predictor(config.storage.data_dir)
    predictor = QualityPredictor(installed)
    assert predictor.available and predictor.calibration is not None
    assert predictor.calibration.model_sha256 == sha256_of(installed)
    assert predictor.calibration.margins == outcome.after.margins
    assert outcome.after.miss_rate <= 1 - margin.COVERAGE + 0.01
    # The same data again: the installed model is not beaten, so nothing changes.
    again = retrain_quality(config, store, trees=TREES)
    assert not again.installed and "not installed" in again.reason
    assert sha256_of(installed) == predictor.calibration.model_sha256
    store.close()


def test_the_command_reports_before_and_after(tmp_path: Path, store: Store) -> None:
    models = tmp_path / "models"
    constant_predictor(models, 60.0, {"jpeg": 0, "webp": 0, "avif": 0})
    store.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOUPE_")}
    done = subprocess.run(
        [sys.executable, "-m", "proxy", "models", "retrain", "quality", "--trees", str(TREES),
         "--data-dir", str(tmp_path / "data"), "--models-dir", str(models),
         "--store", f"sqlite:///{tmp_path / 'loupe.db'}"],
        capture_output=True, text=True, timeout=120, cwd=REPO, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "held-out MAE:       before" in done.stdout
    assert "held-out miss rate: before" in done.stdout
    assert "installed" in done.stdout
    assert retrained_predictor(tmp_path / "data").is_file()
