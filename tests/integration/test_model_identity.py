"""A result rendered without a model is not served once the model is there: the result
cache key carries the identity of the models a render may consult, so no purge is needed.
/meta names the models that made the analysis and /readyz where each runs, never a path."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx

from proxy.detectors.base import available_providers
from proxy.manifest import load
from tests.support import LoupeServer, broken_crop_models

QUERY = {"w": 600, "h": 200, "fit": "crop", "crop": "smart", "fm": "jpeg"}


def test_a_result_made_without_the_models_is_not_served_once_they_are_there(
    data_root: Path, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    root.mkdir()
    shutil.copy(data_root / "kodak" / "kodim18.png", root / "portrait.png")
    data = tmp_path / "data"
    models = broken_crop_models(tmp_path / "models")
    blind = LoupeServer(root, data, args=("--models-dir", str(models)))
    try:
        first = httpx.get(f"{blind.url}/img/portrait.png", params=QUERY, timeout=60)
        assert first.status_code == 200
        assert "requested=smart" in first.headers["x-loupe-crop"]  # attention fallback
        again = httpx.get(f"{blind.url}/img/portrait.png", params=QUERY, timeout=60)
        assert again.headers["x-loupe-cache"] == "hit"
        meta = httpx.get(f"{blind.url}/meta/portrait.png", timeout=60).json()
        assert meta["unavailable"]["faces"] == "model yunet mismatch"
        assert str(models) not in str(meta) and str(tmp_path) not in str(meta)
    finally:
        blind.stop()

    seeing = LoupeServer(root, data)  # same data dir and caches; the shipped models load
    try:
        response = httpx.get(f"{seeing.url}/img/portrait.png", params=QUERY, timeout=60)
        assert response.status_code == 200
        assert response.headers["x-loupe-cache"] == "miss"
        crop = response.headers["x-loupe-crop"]
        assert "strategy=smart" in crop and "requested=" not in crop, crop
        meta = httpx.get(f"{seeing.url}/meta/portrait.png", timeout=60).json()
        assert meta["unavailable"] == {} and len(meta["faces"]) == 1
        used = {model["name"]: model["sha256"] for model in meta["models"]}
        assert used["yunet"] == load()["yunet"].sha256
        assert used["u2netp"] == load()["u2netp"].sha256
        ready = httpx.get(f"{seeing.url}/readyz", timeout=10).json()
        providers = {model["model"]: model["provider"] for model in ready["models"]}
        assert providers["yunet"] and providers["u2netp"] and providers["quality_predictor"]
        assert str(tmp_path) not in str(ready) and "site-packages" not in str(ready)
        log = seeing.log.read_text()
        assert "model yunet (sha256 8f2383e4dd3c) runs on" in log
        if "CUDAExecutionProvider" not in available_providers():  # the CPU build (CI)
            assert "analysis.providers: cuda not in this onnxruntime build" in log
            assert providers["yunet"] == "CPUExecutionProvider"
    finally:
        seeing.stop()
