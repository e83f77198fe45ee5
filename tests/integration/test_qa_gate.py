"""QA on every output: passing outputs are recorded in /meta; an output that fails twice is a
problem+json 500, never cached, counted and alerted."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx

from tests.support import LoupeServer, wait_for


def test_every_output_is_checked_and_shown_in_meta(server: LoupeServer) -> None:
    before = server.metric("loupe_qa_outputs_total", 'result="passed"')
    response = httpx.get(f"{server.url}/img/kodak/kodim03.png?w=211&fm=webp", timeout=60)
    assert response.status_code == 200
    assert "qa;dur=" in response.headers["server-timing"]
    assert server.metric("loupe_qa_outputs_total", 'result="passed"') == before + 1

    def recorded() -> list[dict[str, object]]:
        meta = httpx.get(f"{server.url}/meta/kodak/kodim03.png", timeout=60).json()
        return [r for r in meta["qa"]["recent"] if "w=211" in str(r["variant"])]

    [result] = wait_for(recorded, what="the QA result in /meta")
    assert result["passed"] is True
    names = {check["name"] for check in result["checks"]}  # type: ignore[union-attr]
    assert names == {"decodes", "dimensions", "quality", "srgb", "bytes", "not-blank"}


def test_an_output_failing_twice_is_a_500_and_never_cached(data_root: Path, tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    shutil.copy(data_root / "kodak" / "kodim03.png", root / "hats.png")
    # No lossy output can be this small: both the first and the safe attempt fail "bytes".
    strict = LoupeServer(root, tmp_path / "data", env={"LOUPE_QA_MAX_BYTES_PER_PIXEL": "0.0001"})
    try:
        for attempt in (1, 2):
            response = httpx.get(f"{strict.url}/img/hats.png?w=600&fm=jpeg", timeout=60)
            assert response.status_code == 500
            problem = response.json()
            assert problem["type"].endswith("/output-failed-qa")
            assert "bytes" in problem["detail"]
            assert strict.metric("loupe_renders_total") == 0  # nothing computed was kept
            assert strict.metric("loupe_qa_outputs_total", 'result="failed"') == attempt
        assert strict.metric("loupe_qa_outputs_total", 'result="quarantined"') == 2
        assert "ALERT: QA failed twice" in strict.log.read_text()
        # lossless outputs have no byte ceiling: PNG is still served
        png = httpx.get(f"{strict.url}/img/hats.png?w=100&fm=png", timeout=60)
        assert png.status_code == 200
    finally:
        strict.stop()
