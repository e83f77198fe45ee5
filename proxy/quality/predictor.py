"""The quality predictor: content features -> the quality likely to meet a target score.

An ONNX regressor trained in the repo (``models/quality/``). A first answer is encoded at
its guess plus a learned safety margin (``quality.margin``, stored beside the model), and
the lane's ``verify`` job measures it afterwards. Missing or broken: ``available`` is False
and first answers use the policy's fixed quality.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from proxy.detectors.base import model_report, open_session, session_provider
from proxy.manifest import sha256_of
from proxy.providers import CPU_ONLY
from proxy.quality import margin as margins
from proxy.quality.features import model_input

log = logging.getLogger(__name__)


class QualityPredictor:
    model_name = "quality_predictor"

    def __init__(self, model_path: Path | None, providers: Sequence[str] = CPU_ONLY) -> None:
        self.session: ort.InferenceSession | None = None
        self.sha256: str | None = None  # identity of the loaded file, for decision keys
        self.provider: str | None = None
        self.calibration: margins.Calibration | None = None
        self.reason = self.state = "no model configured"
        if model_path is None:
            return
        if not model_path.is_file():
            self.reason = f"model file {model_path} is missing"
            self.state = "missing"
            log.warning("quality predictor unavailable: %s", self.reason)
            return
        try:
            session = open_session(model_path, providers=providers)
            self.input_name = session.get_inputs()[0].name
            self.sha256 = sha256_of(model_path)
        except Exception as exc:  # onnxruntime raises several unrelated types
            self.reason = f"model {model_path} failed to load: {exc}"
            self.state = "failed to load"
            log.warning("quality predictor unavailable: %s", self.reason)
            return
        self.session = session
        self.provider = session_provider(session)
        self.calibration = margins.load(model_path, self.sha256)
        if self.calibration is None:
            log.warning(
                "quality predictor %s has no calibration beside it: first answers add %d "
                "quality steps",
                model_path,
                margins.DEFAULT_MARGIN,
            )
        self.reason = self.state = "ready"

    @property
    def identity(self) -> str:
        """What a remembered decision depends on: this model's bytes, or none."""
        return self.sha256 or "none"

    def describe(self) -> dict[str, str | None]:
        return model_report(self)

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

    def margin(self, fmt: str) -> int:
        """Quality steps added to a guess that nothing will measure before it is served."""
        if self.calibration is None:
            return margins.DEFAULT_MARGIN
        return self.calibration.margin(fmt)

    def first_answer(
        self, features: npt.NDArray[np.float32], fmt: str, target: float
    ) -> int | None:
        """The guess plus the margin, 1-100; None when the model cannot answer."""
        guess = self.predict(features, fmt, target)
        return None if guess is None else min(100, guess + self.margin(fmt))
