"""Model-backed detectors: faces (YuNet) and the salient object (U-2-Net small).

Each is built once from the models folder (``storage.models_dir``), verifies its file
against ``models/manifest.toml`` and reports ``available`` / ``reason``; an unavailable
detector answers ``[]`` / ``None`` instead of raising. See ``proxy.detectors.base``.
"""

from proxy.detectors.base import Component
from proxy.detectors.faces import Face, FaceDetector
from proxy.detectors.saliency import Saliency, SaliencyDetector

__all__ = ["Component", "Face", "FaceDetector", "Saliency", "SaliencyDetector"]
