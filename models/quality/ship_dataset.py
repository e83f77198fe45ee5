#!/usr/bin/env python3
"""Ship the labelled rows and calibrate the shipped predictor's safety margin.

    python3 models/quality/train.py --no-eval --out /tmp/q.onnx --cache-dir D   # same model
    python3 models/quality/ship_dataset.py D/dataset.npz

Writes ``quality_dataset.npz`` (the rows ``loupe models retrain quality`` refits on, with
the same held-out split by picture as ``train.py``) and
``quality_predictor.calibration.json``: per format, the smallest margin that puts the
shipped model's guess at or above the minimal quality on 95% of the held-out rows
(rows whose target even q=100 misses are left out).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parents[1]), str(HERE)]

from train import split_groups  # noqa: E402

from proxy.manifest import sha256_of  # noqa: E402
from proxy.quality import margin  # noqa: E402
from proxy.quality.training import Rows, predict  # noqa: E402


def main(argv: list[str]) -> int:
    source = Path(argv[0])
    model = HERE / "quality_predictor.onnx"
    with np.load(source, allow_pickle=False) as data:
        images = data["image"].astype(str)
        held = split_groups(sorted(set(images.tolist())), smoke=False)
        from corpus import group_of

        held_out = np.array([group_of(name) in held for name in images])
        rows = Rows(
            data["X"].astype(np.float32),
            data["y"].astype(np.float64),
            data["fmt"].astype(str),
            held_out,
            np.ones(len(held_out)),
        )
        np.savez_compressed(
            HERE / "quality_dataset.npz",
            X=rows.X,
            y=rows.y,
            fmt=rows.fmt,
            held_out=held_out,
            reachable=data["reachable"].astype(bool),
            image=images,
        )
        # A target that even q=100 misses says nothing about the margin: left out.
        reachable = data["reachable"].astype(bool)
        widths = sorted({int(w) for w in data["width"]})
    test = rows.held_out & reachable
    guess = predict(model, rows.X[test])
    learned = margin.learn_margins(guess, rows.y[test], rows.fmt[test])
    mae = float(np.mean(np.abs(np.clip(np.rint(guess), 1, 100) - rows.y[test])))
    miss = margin.miss_rate(guess, rows.y[test], rows.fmt[test], learned)
    calibration = margin.Calibration(
        sha256_of(model),
        margin.COVERAGE,
        learned,
        int(test.sum()),
        {
            "held_out_mae": round(mae, 3),
            "miss_rate": round(miss, 4),
            "data": f"models/quality/train.py labels, output widths {widths[0]}-{widths[-1]} px",
        },
    )
    margin.save(model, calibration)
    print(f"{len(rows)} rows ({int(test.sum())} held out); margins {learned}; "
          f"held-out MAE {mae:.2f}, miss rate with margin {miss:.1%}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
