"""What every model-backed detector shares: find its file through the manifest, refuse it
unless size and sha256 match, open one onnxruntime session (one intra-op thread) on the first
available execution provider of ``analysis.providers`` (CPU last, always), and report
``available`` / ``reason`` instead of raising when anything is missing or broken.

Each component knows its identity (the manifest entry's sha256): caches of what models
computed are keyed by it, so a changed model recomputes instead of serving stale results.

``InferenceSession.run`` is thread-safe, so one session serves every worker thread.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import ClassVar, Protocol

import numpy as np
import numpy.typing as npt
import onnxruntime as ort

from proxy.manifest import ManifestError, ModelEntry, load, locate
from proxy.providers import CPU, CPU_ONLY, choose_providers

log = logging.getLogger(__name__)

U8 = npt.NDArray[np.uint8]
F32 = npt.NDArray[np.float32]


def available_providers() -> tuple[str, ...]:
    return tuple(ort.get_available_providers())


def open_session(
    path: Path, *, lean: bool = False, providers: Sequence[str] = CPU_ONLY
) -> ort.InferenceSession:
    """One session on ``providers`` (see :func:`choose_providers`). No CPU memory arena: a
    node's RSS must fall back after a big model ran. ``lean`` trades speed for peak memory
    (basic graph optimisations: no layout copies)."""
    options = ort.SessionOptions()
    if lean:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only: no per-session warnings in the logs
    options.enable_cpu_mem_arena = False
    options.enable_mem_pattern = False
    chosen = choose_providers(providers, available_providers())
    return ort.InferenceSession(str(path), options, providers=list(chosen))


def session_provider(session: ort.InferenceSession) -> str:
    """The provider the session really runs on (onnxruntime falls back to CPU quietly when
    an accelerator fails to initialise)."""
    providers = session.get_providers()
    return str(providers[0]) if providers else CPU


class LoadedModel(Protocol):
    """What a model-backed part says about itself (detectors, the quality predictor)."""

    @property
    def model_name(self) -> str: ...

    sha256: str | None
    provider: str | None
    state: str


def model_report(model: LoadedModel) -> dict[str, str | None]:
    """What /readyz and the start-up log say about a model: its bytes and provider, no paths."""
    return {
        "model": model.model_name,
        "sha256": model.sha256,
        "provider": model.provider,
        "state": model.state,
    }


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
        self,
        models_dir: Path,
        *,
        manifest: Mapping[str, ModelEntry] | None = None,
        providers: Sequence[str] = CPU_ONLY,
    ) -> None:
        self.session: ort.InferenceSession | None = None
        self.model_path: Path | None = None
        self.sha256: str | None = None  # the loaded file's identity
        self.provider: str | None = None
        self.reason = "not loaded"
        self.state = "not loaded"  # reason without paths: safe to show clients (/meta)
        try:
            entries = load() if manifest is None else manifest
        except ManifestError as exc:
            self._refuse(str(exc), "no manifest")
            return
        entry = entries.get(self.model_name)
        if entry is None:
            self._refuse(f"the model manifest has no [{self.model_name}] entry", "not listed")
            return
        status = locate(entry, models_dir)
        if not status.ok or status.path is None:
            self._refuse(f"model {entry.file} is {status.state}: {status.detail}", status.state)
            return
        try:
            session = open_session(status.path, lean=self.lean, providers=providers)
            self._accept(session)
        except Exception as exc:  # onnxruntime raises several unrelated types
            self._refuse(f"model {status.path} failed to load: {exc}", "failed to load")
            return
        self.session = session
        self.model_path = status.path
        self.sha256 = entry.sha256
        self.provider = session_provider(session)
        self.reason = self.state = "ready"

    def _refuse(self, reason: str, state: str) -> None:
        self.reason = reason
        self.state = f"model {self.model_name} {state}"
        log.warning("%s unavailable: %s", self.kind, reason)

    def describe(self) -> dict[str, str | None]:
        return model_report(self)

    def _accept(self, session: ort.InferenceSession) -> None:
        """Check the session's signature; raise ``ValueError`` when it is not the model."""

    @property
    def available(self) -> bool:
        return self.session is not None
