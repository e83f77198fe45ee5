"""The predictor's safety margin: quality steps added to its guess so that a first answer,
served before anything is measured, meets the target often enough.

It is learned, not chosen: per format, the smallest whole number of steps that puts the
prediction at or above the measured minimal quality on ``COVERAGE`` of the held-out rows.
It is stored beside the model it belongs to (``<model>.calibration.json``, naming that
model's sha256), so a retrained model never runs with its predecessor's margin.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

log = logging.getLogger(__name__)
COVERAGE = 0.95  # share of first answers the margin keeps at the target
DEFAULT_MARGIN = 8  # quality steps when no calibration belongs to the loaded model
MAX_MARGIN = 30


@dataclass(frozen=True)
class Calibration:
    model_sha256: str
    coverage: float
    margins: Mapping[str, int]
    rows: int = 0
    extra: Mapping[str, Any] = field(default_factory=dict)

    def margin(self, fmt: str) -> int:
        return int(self.margins.get(fmt, max(self.margins.values(), default=DEFAULT_MARGIN)))

    def to_json(self) -> str:
        return json.dumps(
            {
                "model_sha256": self.model_sha256,
                "coverage": self.coverage,
                "margins": dict(self.margins),
                "rows": self.rows,
                **dict(self.extra),
            },
            indent=2,
            sort_keys=True,
        )


def learn_margins(
    predicted: npt.NDArray[np.float64],
    minimal: npt.NDArray[np.float64],
    formats: Sequence[str] | npt.NDArray[Any],
    coverage: float = COVERAGE,
) -> dict[str, int]:
    """Per format, the smallest ``m`` >= 0 with ``round(predicted) + m >= minimal`` on at least
    ``coverage`` of the rows: the ``coverage`` quantile of the under-prediction."""
    fmts = np.asarray(formats)
    guess = np.clip(np.rint(np.asarray(predicted, dtype=np.float64)), 1, 100)
    need = np.asarray(minimal, dtype=np.float64) - guess  # steps missing per row
    margins: dict[str, int] = {}
    for fmt in sorted(set(fmts.tolist())):
        short = need[fmts == fmt]
        if not short.size:
            continue
        value = float(np.quantile(short, coverage, method="higher"))
        margins[str(fmt)] = int(min(MAX_MARGIN, max(0, np.ceil(value))))
    return margins


def miss_rate(
    predicted: npt.NDArray[np.float64],
    minimal: npt.NDArray[np.float64],
    formats: Sequence[str] | npt.NDArray[Any],
    margins: Mapping[str, int],
) -> float:
    """Share of rows whose prediction plus margin stays below the minimal quality."""
    fmts = np.asarray(formats)
    guess = np.clip(np.rint(np.asarray(predicted, dtype=np.float64)), 1, 100)
    add = np.array([margins.get(str(f), DEFAULT_MARGIN) for f in fmts], dtype=np.float64)
    served = np.minimum(100, guess + add)
    return float(np.mean(served < np.asarray(minimal))) if len(fmts) else 0.0


def sidecar(model_path: Path) -> Path:
    return model_path.with_name(model_path.stem + ".calibration.json")


def load(model_path: Path, sha256: str) -> Calibration | None:
    """The calibration stored beside ``model_path`` when it names this very model."""
    path = sidecar(model_path)
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("quality predictor calibration %s unreadable: %s", path, exc)
        return None
    if not isinstance(raw, dict) or raw.get("model_sha256") != sha256:
        log.warning("quality predictor calibration %s belongs to another model", path)
        return None
    margins = raw.get("margins")
    if not isinstance(margins, dict) or not all(
        isinstance(v, int) and 0 <= v <= MAX_MARGIN for v in margins.values()
    ):
        log.warning("quality predictor calibration %s has no valid margins", path)
        return None
    known = {"model_sha256", "coverage", "margins", "rows"}
    return Calibration(
        sha256,
        float(raw.get("coverage", COVERAGE)),
        {str(k): int(v) for k, v in margins.items()},
        int(raw.get("rows", 0)),
        {k: v for k, v in raw.items() if k not in known},
    )


def save(model_path: Path, calibration: Calibration) -> Path:
    path = sidecar(model_path)
    path.write_text(calibration.to_json() + "\n")
    return path
