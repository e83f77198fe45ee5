"""Which onnxruntime execution providers a model session asks for (``analysis.providers``).

Pure and import-light (no onnxruntime here), so the config can validate the names and the
choice is testable on a CPU-only build: the GPU build (the ``gpu`` extra, onnxruntime-gpu)
lists CUDA among its available providers and the same function picks it.
"""

from __future__ import annotations

from collections.abc import Sequence

CPU = "CPUExecutionProvider"
CPU_ONLY: tuple[str, ...] = (CPU,)
# Short names for analysis.providers; a full onnxruntime name (…ExecutionProvider) works too.
PROVIDER_ALIASES = {
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "rocm": "ROCMExecutionProvider",
    "migraphx": "MIGraphXExecutionProvider",
    "directml": "DmlExecutionProvider",
    "dml": "DmlExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
    "cpu": CPU,
}


def provider_name(name: str) -> str:
    """``cuda`` -> ``CUDAExecutionProvider``; full names pass; anything else is refused."""
    full = PROVIDER_ALIASES.get(name.strip().lower(), name.strip())
    if not full.endswith("ExecutionProvider"):
        known = ", ".join(sorted(PROVIDER_ALIASES))
        raise ValueError(f"unknown execution provider {name!r}; use one of {known}")
    return full


def choose_providers(wanted: Sequence[str], available: Sequence[str]) -> tuple[str, ...]:
    """The providers to ask onnxruntime for, best first: those of ``wanted`` (aliases
    allowed) that this onnxruntime build has, in ``wanted``'s order, then CPU, always last,
    so a machine without the accelerator (or a CPU-only build) still runs every model."""
    chosen: list[str] = []
    for name in wanted:
        full = provider_name(name)
        if full in available and full not in chosen and full != CPU:
            chosen.append(full)
    return (*chosen, CPU)
