"""Execution providers: the choice is one pure function of what is configured and what this
onnxruntime build offers; CPU is always the last resort. Checked here on the CPU build (CI
has no GPU): the GPU build lists CUDA among its providers and the same function picks it."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from proxy.config import load_config
from proxy.detectors.base import available_providers
from proxy.detectors.faces import FaceDetector
from proxy.errors import ConfigError
from proxy.providers import CPU, PROVIDER_ALIASES, choose_providers, provider_name

CUDA = "CUDAExecutionProvider"
GPU_BUILD = (
    "TensorrtExecutionProvider",
    CUDA,
    CPU,
)  # what onnxruntime-gpu reports on a CUDA machine
CPU_BUILD = ("AzureExecutionProvider", CPU)  # what the CPU wheel reports


def test_cuda_first_on_the_gpu_build() -> None:
    assert choose_providers(("cuda", "cpu"), GPU_BUILD) == (CUDA, CPU)


def test_the_cpu_build_falls_back_to_cpu() -> None:
    assert choose_providers(("cuda", "cpu"), CPU_BUILD) == (CPU,)


def test_the_configured_order_is_kept_and_cpu_comes_last() -> None:
    chosen = choose_providers(("cpu", "tensorrt", "cuda"), GPU_BUILD)
    assert chosen == ("TensorrtExecutionProvider", CUDA, CPU)


def test_full_names_and_aliases_are_the_same() -> None:
    assert choose_providers((CUDA,), GPU_BUILD) == choose_providers(("CUDA",), GPU_BUILD)


def test_an_unknown_provider_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown execution provider 'cudda'"):
        provider_name("cudda")


names = st.sampled_from(sorted(PROVIDER_ALIASES))


@given(st.lists(names, max_size=6), st.lists(names.map(provider_name), max_size=6))
def test_choice_properties(wanted: list[str], available: list[str]) -> None:
    chosen = choose_providers(wanted, available)
    assert chosen[-1] == CPU and chosen.count(CPU) == 1
    assert len(set(chosen)) == len(chosen)
    assert all(name in available for name in chosen[:-1])
    order = [provider_name(name) for name in wanted]
    assert list(chosen[:-1]) == sorted(chosen[:-1], key=order.index)


def test_config_validates_the_providers() -> None:
    config = load_config(environ={"LOUPE_ANALYSIS_PROVIDERS": "cuda, cpu"})
    assert config.analysis.providers == ("cuda", "cpu")
    with pytest.raises(ConfigError, match=r"analysis\.providers"):
        load_config(environ={"LOUPE_ANALYSIS_PROVIDERS": "gpu"})


def test_a_real_session_reports_its_provider(tmp_path: Path) -> None:
    """Asking for CUDA first gives a working session everywhere: on the CPU build (CI), CPU."""
    detector = FaceDetector(tmp_path, providers=("cuda", "cpu"))
    assert detector.available, detector.reason
    expected = CUDA if CUDA in available_providers() else CPU
    assert detector.provider in (expected, CPU)
    if expected == CPU:
        assert detector.provider == CPU
    described = detector.describe()
    assert described["provider"] == CPU and described["sha256"] == detector.sha256
    assert "/" not in str(described)  # no paths
