"""The quality predictor: content features -> the quality likely to meet a target score.

An ONNX regressor trained in the repo (``models/quality/``). It only proposes a starting
point; the search verifies it with the real metric, so a poor guess costs an encode, not
a bad image. Missing or broken: ``available`` is False and the search starts from the
policy's default quality.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from proxy.quality.features import model_input

log = logging.getLogger(__name__)


class QualityPredictor:
    def __init__(self, model_path: Path | None) -> None:
        self.session: ort.InferenceSession | None = None
        self.reason = "no model configured"
        if model_path is None:
            return
        if not model_path.is_file():
            self.reason = f"model file {model_path} is missing"
            log.warning("quality predictor unavailable: %s", self.reason)
            return
        try:
            options = ort.SessionOptions()
            options.intra_op_num_threads = 1
            self.session = ort.InferenceSession(
                str(model_path), options, providers=["CPUExecutionProvider"]
            )
            self.input_name = self.session.get_inputs()[0].name
            self.reason = "ready"
        except Exception as exc:  # onnxruntime raises several unrelated types
            self.reason = f"model {model_path} failed to load: {exc}"
            log.warning("quality predictor unavailable: %s", self.reason)

    @property
    def available(self) -> bool:
        return self.session is not None

    def predict(self, features: npt.NDArray[np.float32], fmt: str, target: float) -> int | None:
        """A starting quality 1-100, or None when the model cannot answer."""
        if self.session is None:
            return None
        try:
            row = model_input(features, fmt, target)
            (output,) = self.session.run(None, {self.input_name: row})[:1]
            value = float(np.asarray(output).reshape(-1)[0])
        except Exception as exc:
            log.warning("quality predictor failed: %s", exc)
            return None
        if not np.isfinite(value):
            return None
        return int(min(100, max(1, round(value))))
