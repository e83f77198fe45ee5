"""Model-backed detectors: faces (YuNet), the salient object (U-2-Net small) and the NSFW
score (open_nsfw).

Each is built once from the models folder (``storage.models_dir``), verifies its file
against ``models/manifest.toml`` and reports ``available`` / ``reason``; an unavailable
detector answers ``[]`` / ``None`` instead of raising (the NSFW score raises
``NsfwScoreError``: moderation holds what it cannot scan). See ``proxy.detectors.base``.
"""

from proxy.detectors.base import Component
from proxy.detectors.faces import Face, FaceDetector
from proxy.detectors.nsfw import NsfwDetector, NsfwScoreError
from proxy.detectors.saliency import Saliency, SaliencyDetector

__all__ = [
    "Component",
    "Face",
    "FaceDetector",
    "NsfwDetector",
    "NsfwScoreError",
    "Saliency",
    "SaliencyDetector",
]
