"""What every model-backed detector shares: find its file through the manifest, refuse it
unless size and sha256 match, open one CPU onnxruntime session (one intra-op thread), and
report ``available`` / ``reason`` instead of raising when anything is missing or broken.

``InferenceSession.run`` is thread-safe, so one session serves every worker thread.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar, Protocol

import numpy as np
import numpy.typing as npt
import onnxruntime as ort
import pyvips

from proxy.manifest import ManifestError, ModelEntry, load, locate

log = logging.getLogger(__name__)

U8 = npt.NDArray[np.uint8]
F32 = npt.NDArray[np.float32]


def open_session(path: Path, *, lean: bool = False) -> ort.InferenceSession:
    """One CPU session. No memory arena: a node's RSS must fall back after a big model ran.
    ``lean`` trades speed for peak memory (basic graph optimisations: no layout copies)."""
    options = ort.SessionOptions()
    if lean:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only: no per-session warnings in the logs
    options.enable_cpu_mem_arena = False
    options.enable_mem_pattern = False
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class Component(Protocol):
    """What the server needs of any optional, model-backed component."""

    @property
    def available(self) -> bool: ...

    reason: str


class OnnxComponent:
    """Base of the detectors: subclasses name their manifest entry and check the session's
    inputs and outputs in :meth:`_accept` (raise ``ValueError`` to refuse it)."""

    model_name: ClassVar[str]
    kind: ClassVar[str] = "detector"
    lean: ClassVar[bool] = False  # see open_session

    def __init__(
        self, models_dir: Path, *, manifest: Mapping[str, ModelEntry] | None = None
    ) -> None:
        self.session: ort.InferenceSession | None = None
        self.model_path: Path | None = None
        self.reason = "not loaded"
        try:
            entries = load() if manifest is None else manifest
        except ManifestError as exc:
            self._refuse(str(exc))
            return
        entry = entries.get(self.model_name)
        if entry is None:
            self._refuse(f"the model manifest has no [{self.model_name}] entry")
            return
        status = locate(entry, models_dir)
        if not status.ok or status.path is None:
            self._refuse(f"model {entry.file} is {status.state}: {status.detail}")
            return
        try:
            session = open_session(status.path, lean=self.lean)
            self._accept(session)
        except Exception as exc:  # onnxruntime raises several unrelated types
            self._refuse(f"model {status.path} failed to load: {exc}")
            return
        self.session = session
        self.model_path = status.path
        self.reason = "ready"

    def _refuse(self, reason: str) -> None:
        self.reason = reason
        log.warning("%s unavailable: %s", self.kind, reason)

    def _accept(self, session: ort.InferenceSession) -> None:
        """Check the session's signature; raise ``ValueError`` when it is not the model."""

    @property
    def available(self) -> bool:
        return self.session is not None


def rgb8(image: pyvips.Image, background: tuple[int, int, int] = (255, 255, 255)) -> pyvips.Image:
    """Any libvips image as 3-band 8-bit sRGB: alpha flattened onto ``background``."""
    if image.interpretation != "srgb" or image.format != "uchar":
        # 16-bit, grey, CMYK, Lab ... to 8-bit sRGB; what libvips cannot convert stays as is
        with contextlib.suppress(pyvips.Error):
            image = image.colourspace("srgb")
    if image.format != "uchar":
        image = image.cast("uchar")
    if image.hasalpha():
        image = image.flatten(background=list(background))
    if image.bands == 1:
        image = image.bandjoin([image, image])
    elif image.bands == 2:
        image = image.extract_band(0).bandjoin([image.extract_band(0), image.extract_band(0)])
    elif image.bands > 3:
        image = image.extract_band(0, n=3)
    return image


def resize_to(image: pyvips.Image, width: int, height: int) -> pyvips.Image:
    """Resize to exactly ``width`` x ``height`` (libvips may round a pixel off otherwise)."""
    resized = image.resize(width / image.width, vscale=height / image.height)
    if resized.width != width or resized.height != height:
        resized = resized.gravity("north-west", width, height, extend="copy")
    return resized


def pixels(image: pyvips.Image) -> U8:
    """An 8-bit image as a (height, width, bands) array."""
    return np.ndarray(
        buffer=image.write_to_memory(),
        dtype=np.uint8,
        shape=(image.height, image.width, image.bands),
    )
