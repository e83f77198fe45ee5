"""Refit the quality predictor on what verification measured, and keep it only if it is better.

Rows are ``features.model_input`` rows with the minimal passing quality as the label: the
shipped training set (``models/quality/quality_dataset.npz``, labelled by
``models/quality/train.py``) plus the pairs the lane's ``verify`` job recorded. The held-out
split is by picture: the shipped set's own split, and for verified pairs a stable hash of
the perceptual hash, so no picture is on both sides. The margin is learned again on the
held-out rows (``quality.margin``). scikit-learn and skl2onnx are the ``train`` extra.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from proxy.manifest import sha256_of
from proxy.quality import margin as margins
from proxy.quality.features import FEATURE_NAMES, FORMATS, model_input

DATASET_FILE = "quality/quality_dataset.npz"
HOLDOUT_EVERY = 5
# A verified pair is what this deployment really serves (its pictures, sizes and encoders):
# it counts as much as this many rows of the generic corpus when fitting (and the held-out
# pairs judge a retrained model once there are MIN_VERIFIED_HELD_OUT of them).
VERIFIED_WEIGHT = 3.0
INPUTS = len(FEATURE_NAMES) + len(FORMATS) + 1


class TrainingUnavailable(Exception):
    """scikit-learn or skl2onnx is not installed (``pip install 'loupe[train]'``)."""


@dataclass(frozen=True)
class Rows:
    X: npt.NDArray[np.float32]
    y: npt.NDArray[np.float64]
    fmt: npt.NDArray[Any]
    held_out: npt.NDArray[np.bool_]
    weight: npt.NDArray[np.float64]

    def __len__(self) -> int:
        return len(self.y)

    def join(self, other: Rows) -> Rows:
        return Rows(
            np.concatenate([self.X, other.X]).astype(np.float32),
            np.concatenate([self.y, other.y]),
            np.concatenate([self.fmt, other.fmt]),
            np.concatenate([self.held_out, other.held_out]),
            np.concatenate([self.weight, other.weight]),
        )


def load_shipped(path: Path) -> Rows:
    with np.load(path, allow_pickle=False) as data:
        held = data["held_out"].astype(bool)
        # A held-out target that even q=100 misses cannot judge a margin: left out.
        keep = ~(held & ~data["reachable"].astype(bool))
        return Rows(
            data["X"][keep].astype(np.float32),
            data["y"][keep].astype(np.float64),
            data["fmt"][keep].astype(str),
            held[keep],
            np.ones(int(keep.sum())),
        )


def held_out_picture(phash: str) -> bool:
    """One picture in ``HOLDOUT_EVERY``, by a stable hash of its perceptual hash."""
    return int(hashlib.sha1(phash.encode()).hexdigest(), 16) % HOLDOUT_EVERY == 2


def verified_rows(pairs: Sequence[tuple[str, Sequence[float], str, float, int]]) -> Rows:
    """``(phash, features, format, target, quality)`` as the store keeps them."""
    if not pairs:
        empty = np.zeros((0, INPUTS), dtype=np.float32)
        none = np.zeros(0)
        return Rows(empty, none, np.zeros(0, dtype=str), np.zeros(0, dtype=bool), none)
    X = np.concatenate(
        [
            model_input(np.asarray(feats, dtype=np.float32), fmt, target)
            for _phash, feats, fmt, target, _q in pairs
        ]
    )
    return Rows(
        X.astype(np.float32),
        np.array([q for *_, q in pairs], dtype=np.float64),
        np.array([fmt for _p, _f, fmt, _t, _q in pairs]),
        np.array([held_out_picture(phash) for phash, *_ in pairs]),
        np.full(len(pairs), VERIFIED_WEIGHT),
    )


def _sklearn() -> tuple[Any, Any, Any]:
    try:
        from skl2onnx import convert_sklearn  # type: ignore[import-untyped]
        from skl2onnx.common.data_types import FloatTensorType  # type: ignore[import-untyped]
        from sklearn.ensemble import GradientBoostingRegressor  # type: ignore[import-untyped]
    except ImportError as exc:
        raise TrainingUnavailable(
            f"retraining needs scikit-learn and skl2onnx: pip install 'loupe[train]' ({exc})"
        ) from exc
    return GradientBoostingRegressor, convert_sklearn, FloatTensorType


def fit_onnx(rows: Rows, out: Path, *, trees: int = 150) -> None:
    """The shipped model's recipe (``models/quality/train.py``) on ``rows``' training side."""
    regressor, convert, tensor = _sklearn()
    model = regressor(
        loss="huber",
        n_estimators=trees,
        max_depth=3,
        learning_rate=0.08,
        subsample=0.8,
        min_samples_leaf=5,
        random_state=0,
    )
    train = ~rows.held_out
    model.fit(rows.X[train], rows.y[train], sample_weight=rows.weight[train])
    onx = convert(model, initial_types=[("input", tensor([None, INPUTS]))], target_opset=17)
    onx.graph.name = "loupe_quality_predictor"
    onx.doc_string = "Loupe q=auto quality predictor, retrained on verified pairs"
    out.write_bytes(onx.SerializeToString())


def predict(path: Path, X: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (output,) = session.run(None, {session.get_inputs()[0].name: X.astype(np.float32)})[:1]
    return np.asarray(output, dtype=np.float64).reshape(-1)


MIN_VERIFIED_HELD_OUT = 10  # held-out verified rows from which they alone judge the MAE


@dataclass(frozen=True)
class Scores:
    mae: float  # all held-out rows
    miss_rate: float  # held-out first answers (prediction + margin) below the minimal quality
    margins: dict[str, int]
    mae_verified: float | None = None  # held-out verified pairs only (None: there are none)
    verified_rows: int = 0

    @property
    def judged(self) -> float:
        """The MAE a retrained model must lower: on this deployment's own held-out pairs
        when there are enough of them, else on every held-out row."""
        if self.mae_verified is not None and self.verified_rows >= MIN_VERIFIED_HELD_OUT:
            return self.mae_verified
        return self.mae


def evaluate(model: Path, rows: Rows, learned: dict[str, int] | None = None) -> Scores:
    """Held-out MAE, and the miss rate with ``learned`` margins (learned here when None)."""
    test = rows.held_out
    guess = predict(model, rows.X[test])
    error = np.abs(np.clip(np.rint(guess), 1, 100) - rows.y[test])
    mae = float(np.mean(error))
    chosen = (
        learned
        if learned is not None
        else margins.learn_margins(guess, rows.y[test], rows.fmt[test])
    )
    mine = rows.weight[test] > 1.0  # the verified pairs (VERIFIED_WEIGHT)
    return Scores(
        mae,
        margins.miss_rate(guess, rows.y[test], rows.fmt[test], chosen),
        chosen,
        float(np.mean(error[mine])) if mine.any() else None,
        int(mine.sum()),
    )


@dataclass(frozen=True)
class Outcome:
    before: Scores
    after: Scores
    installed: bool
    rows: int
    verified: int
    reason: str


def better(before: Scores, after: Scores) -> bool:
    """Lower held-out MAE (``Scores.judged``), without more first answers below the target."""
    allowed = max(before.miss_rate, 1 - margins.COVERAGE) + 0.01
    return after.judged < before.judged and after.miss_rate <= allowed


def retrain(
    current: Path,
    current_calibration: margins.Calibration | None,
    shipped: Rows,
    verified: Rows,
    install_to: Path,
    *,
    trees: int = 150,
) -> Outcome:
    """Fit on shipped + verified rows; install at ``install_to`` (with its calibration) only
    when ``better`` than ``current`` on the same held-out rows."""
    rows = shipped.join(verified)
    if not rows.held_out.any() or rows.held_out.all():
        raise ValueError("the held-out split is empty on one side")
    old = current_calibration.margins if current_calibration else None
    before = evaluate(current, rows, dict(old) if old else None)
    with tempfile.TemporaryDirectory(prefix="loupe-retrain-") as folder:
        candidate = Path(folder) / "quality_predictor.onnx"
        fit_onnx(rows, candidate, trees=trees)
        after = evaluate(candidate, rows)
        if not better(before, after):
            reason = (
                f"not installed: held-out MAE {after.judged:.2f} vs {before.judged:.2f}, "
                f"miss rate {after.miss_rate:.1%} vs {before.miss_rate:.1%}"
            )
            return Outcome(before, after, False, len(rows), len(verified), reason)
        install_to.parent.mkdir(parents=True, exist_ok=True)
        staged = install_to.with_suffix(".onnx.tmp")
        staged.write_bytes(candidate.read_bytes())
        calibration = margins.Calibration(
            sha256_of(staged),
            margins.COVERAGE,
            after.margins,
            int(rows.held_out.sum()),
            {"held_out_mae": round(after.mae, 3), "miss_rate": round(after.miss_rate, 4)},
        )
        margins.save(install_to, calibration)  # names the new sha256 before the model lands
        staged.replace(install_to)
    return Outcome(before, after, True, len(rows), len(verified), "installed")
