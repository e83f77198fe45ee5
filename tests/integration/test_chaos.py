"""Chaos: break every AI component at once (crop models gone, quality predictor and content
classifier corrupt, the VLM unreachable) and the image request still answers 200 with the
documented fallbacks named in its headers; the alt text waits for a human."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx

from tests.support import FAST_LANE, LoupeServer, free_port, wait_for

TOKEN = "chaos"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def test_every_ai_component_broken_degrades_gracefully(data_root: Path, tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    shutil.copy(data_root / "kodak" / "kodim12.png", root / "couple.png")
    models = tmp_path / "models"  # every model corrupted: found here first, then refused
    (models / "quality").mkdir(parents=True)
    (models / "content").mkdir()
    (models / "face_detection_yunet_2023mar.onnx").write_bytes(b"not yunet")
    (models / "u2netp.onnx").write_bytes(b"not u2netp")
    (models / "quality" / "quality_predictor.onnx").write_bytes(b"\0" * 100)
    (models / "content" / "content_classifier.onnx").write_bytes(b"garbage")
    dead_vlm = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    server = LoupeServer(
        root,
        tmp_path / "data",
        env=FAST_LANE,
        args=("--models-dir", str(models), "--vlm-url", dead_vlm, "--admin-token", TOKEN),
    )
    try:
        response = httpx.get(
            f"{server.url}/img/couple.png",
            params={"w": 300, "h": 300, "fit": "crop", "crop": "smart", "fm": "webp"},
            timeout=60,
        )
        assert response.status_code == 200, response.text
        crop = response.headers["x-loupe-crop"]
        assert "strategy=attention" in crop and "requested=smart" in crop  # crop models gone
        assert "predictor-unavailable" in response.headers["x-loupe-note"]  # q=auto still ran
        assert response.headers["x-loupe-quality"].isdigit()
        meta = httpx.get(f"{server.url}/meta/couple.png", timeout=60).json()
        assert set(meta["unavailable"]) >= {"faces", "saliency", "content"}
        assert meta["content"] is None

        def alt_review() -> list[dict[str, object]]:
            items = httpx.get(
                f"{server.url}/admin/api/review", params={"component": "alt"}, headers=AUTH
            ).json()["items"]
            return [i for i in items if i["path"] == "couple.png"]

        [item] = wait_for(alt_review, timeout=30, what="the alt review item")
        assert item["payload"]["reason"] == "connect_error"  # type: ignore[index]
        alt = httpx.get(f"{server.url}/admin/api/alt/couple.png", headers=AUTH).json()
        assert alt["text"] == "" and alt["status"] == "empty"
    finally:
        server.stop()
