"""What each AI component costs, against a known sequence of requests on a real server:
one picture under three names (the original, a byte-identical re-upload, a JPEG re-encode
with the same perceptual hash), each asked for as a smart crop, the first at two sizes.

Every model runs once for the picture; every other need of it is a cache hit, attributed
to the cache that served it: across sizes (same path, same bytes), by re-upload (same
bytes, another path) or by perceptual hash (other bytes that look the same)."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import pyvips

from proxy.fingerprint import phash as phash_of
from tests.support import FAST_LANE, LoupeServer, shared_dir, wait_for
from tests.vlm_server import VlmServer

TOKEN = "costs-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PRICES = {
    "faces_per_1k": 1.0,
    "saliency_per_1k": 2.0,
    "text_per_1k": 0.5,
    "content_per_1k": 0.25,
    "nsfw_per_1k": 4.0,
    "quality_per_1k": 8.0,
    "vlm_per_1k": 10.0,
    "vlm_per_token_in": 0.00001,
    "vlm_per_token_out": 0.00003,
}
CROP = {"fit": "crop", "crop": "smart", "w": "300", "h": "300"}
SAME_BUCKET = {**CROP, "w": "310", "h": "290"}  # 89 900 px: the same q=auto size bucket
ANALYSIS = ("faces", "saliency", "text", "content")


@pytest.fixture(scope="module")
def server(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoupeServer]:
    root = tmp_path_factory.mktemp("costs-root")
    original = data_root / "kodak" / "kodim12.png"
    shutil.copy(original, root / "a.png")
    shutil.copy(original, root / "b.png")  # a re-upload: the same bytes
    pyvips.Image.new_from_file(str(original)).write_to_file(str(root / "c.jpg"), Q=95)
    assert phash_of((root / "c.jpg").read_bytes()) == phash_of((root / "a.png").read_bytes())
    env = {
        **FAST_LANE,
        "LOUPE_MODERATION_ENABLED": "true",
        "LOUPE_COSTS_FLUSH_S": "600",  # only the endpoint's and the scrape's flushes
        "LOUPE_CALIBRATION_SAMPLE_RATE": "1",  # every auto-accepted output gets a look too
        **{f"LOUPE_COSTS_{key.upper()}": str(value) for key, value in PRICES.items()},
    }
    with VlmServer(mode="logprobs") as vlm:  # usage: 600 tokens in, 20 out per call
        running = LoupeServer(
            root,
            tmp_path_factory.mktemp("costs-data"),
            env=env,
            args=(
                "--vlm-url", vlm.url, "--admin-token", TOKEN,
                "--models-dir", str(shared_dir() / "models"),
            ),
        )  # fmt: skip
        yield running
        running.stop()


def costs(server: LoupeServer, **params: str) -> httpx.Response:
    return httpx.get(f"{server.url}/admin/api/costs", params=params, headers=AUTH, timeout=10)


def idle(server: LoupeServer) -> bool:
    metrics = httpx.get(f"{server.url}/admin/api/metrics", headers=AUTH, timeout=10).json()
    return not (metrics["jobs"].get("queued") or metrics["jobs"].get("running"))


def settled(server: LoupeServer) -> dict[str, Any] | None:
    """The report once the lane is idle (fingerprints, alt texts, moderation all done)."""
    metrics = httpx.get(f"{server.url}/admin/api/metrics", headers=AUTH, timeout=10).json()
    jobs = metrics["jobs"]
    if jobs.get("queued") or jobs.get("running"):
        return None
    report = costs(server).json()
    return report if report["components"]["vlm"]["saved"]["total"] == 2 else None


def test_every_number_follows_from_a_known_sequence_of_requests(server: LoupeServer) -> None:
    empty = costs(server).json()
    assert empty["totals"]["inferences"] == 0 and empty["cost_per_image"] is None
    assert empty["images"] == 0 and empty["days"] == []
    for path, params in (
        ("a.png", CROP),
        ("a.png", SAME_BUCKET),
        ("b.png", CROP),
        ("c.jpg", CROP),
    ):
        response = httpx.get(f"{server.url}/img/{path}", params=params, timeout=60)
        assert response.status_code == 200, response.text
        # in order: the lane's jobs for one request (fingerprint, verify) end before the next
        wait_for(lambda: idle(server), timeout=60, what="the lane to finish the request's jobs")
    report = wait_for(lambda: settled(server), timeout=60, what="the lane to settle")
    parts = report["components"]

    # Analysis: 8 needs (4 requests, 3 lane fingerprints, the verify job of a.png's first
    # answer), one run (the request path's text and class included); a.png three times more
    # (sizes), b.png twice (re-upload), c.jpg twice (perceptual hash).
    for name in ANALYSIS:
        numbers = parts[name]
        assert numbers["inferences"] == 1, (name, numbers)
        assert numbers["saved"] == {"phash": 2, "sizes": 3, "reupload": 2, "total": 7}, name
        assert 0 < numbers["wall_s"] < 30 and 0 <= numbers["cpu_s"] <= numbers["wall_s"] + 0.05
        assert numbers["tokens_in"] == numbers["tokens_out"] == 0
    # q=auto: one search; the other three requests reuse its decision (same size bucket).
    assert parts["quality"]["inferences"] == 1
    assert parts["quality"]["saved"] == {"phash": 1, "sizes": 1, "reupload": 1, "total": 3}
    assert parts["quality"]["cpu_s"] > 0
    # NSFW: a.png and c.jpg scored; b.png's bytes already had a verdict.
    assert parts["nsfw"]["inferences"] == 2
    assert parts["nsfw"]["saved"] == {"phash": 0, "sizes": 0, "reupload": 1, "total": 1}
    # VLM: one call (its tokens), the other two names reuse the text of the same picture.
    vlm = parts["vlm"]
    assert vlm["inferences"] == 1 and vlm["tokens_in"] == 600 and vlm["tokens_out"] == 20
    assert vlm["saved"] == {"phash": 2, "sizes": 0, "reupload": 0, "total": 2}
    assert vlm["wall_s"] > 0 and vlm["cpu_s"] == 0

    # Prices: per 1000 inferences, and per token for the VLM.
    expected = {
        "faces": 0.001,
        "saliency": 0.002,
        "text": 0.0005,
        "content": 0.00025,
        "nsfw": 0.008,
        "quality": 0.008,
        "vlm": 0.01 + 600 * 0.00001 + 20 * 0.00003,
    }
    saved = {
        "faces": 7 * 0.001,
        "saliency": 7 * 0.002,
        "text": 7 * 0.0005,
        "content": 7 * 0.00025,
        "nsfw": 0.004,
        "quality": 3 * 0.008,
        "vlm": 2 * expected["vlm"],  # a saved call saves its average tokens too
    }
    for name, cost in expected.items():
        assert parts[name]["cost"] == pytest.approx(cost, abs=1e-6), name
        assert parts[name]["saved_cost"] == pytest.approx(saved[name], abs=1e-6), name
    total = sum(expected.values())
    totals = report["totals"]
    assert totals["cost"] == pytest.approx(total, abs=1e-6)
    assert totals["saved_cost"] == pytest.approx(sum(saved.values()), abs=1e-6)
    assert totals["inferences"] == 4 + 1 + 2 + 1
    assert totals["saved"] == {"phash": 11, "sizes": 13, "reupload": 10, "total": 34}
    assert totals["tokens_in"] == 600 and totals["tokens_out"] == 20
    assert report["images"] == 3
    assert report["cost_per_image"] == pytest.approx(total / 3, abs=1e-6)
    today = time.strftime("%Y-%m-%d", time.gmtime())
    assert report["days"] == [
        {"day": today, "inferences": 8, "saved": 34, "cost": pytest.approx(total, abs=1e-6)}
    ]

    # since: from today on, the same; from tomorrow on, nothing; nonsense is a 400
    assert costs(server, since=today).json()["totals"] == totals
    assert costs(server, since=str(time.time() - 3600)).json()["totals"]["inferences"] == 8
    later = costs(server, since=str(time.time() + 2 * 86400)).json()
    assert later["totals"]["inferences"] == 0 and later["images"] == 0
    bad = costs(server, since="last tuesday")
    assert bad.status_code == 400 and bad.headers["content-type"].startswith("application/problem")

    # /metrics: the same numbers, shared by every node
    assert server.metric("loupe_ai_inferences_total", 'component="faces"') == 1
    assert server.metric("loupe_ai_inferences_saved_total", 'cache="phash",component="vlm"') == 2
    assert server.metric("loupe_vlm_tokens_total", 'direction="in"') == 600
    assert server.metric("loupe_ai_cost_estimate", 'component="nsfw"') == pytest.approx(0.008)
    assert server.metric("loupe_ai_cost_per_image") == pytest.approx(total / 3, abs=1e-6)


def test_auto_accepted_outputs_are_sampled_for_calibration(server: LoupeServer) -> None:
    """After the sequence above: the one VLM text (published, confident) and the two
    pictures the model scored clear also went to a human, marked "sampled"; a decision on
    one lands in the high-confidence bins of the calibration."""

    def review(component: str) -> list[dict[str, Any]]:
        response = httpx.get(
            f"{server.url}/admin/api/review",
            params={"component": component},
            headers=AUTH,
            timeout=10,
        )
        return list(response.json()["items"])

    alt = review("alt")
    assert [(i["path"], i["payload"]["reason"]) for i in alt] == [("a.png", "sampled")]
    meta = httpx.get(f"{server.url}/meta/a.png", timeout=30).json()
    assert meta["alt"]["status"] == "machine"  # published all the same
    moderation = review("moderation")
    assert sorted(i["path"] for i in moderation) == ["a.png", "c.jpg"]
    assert {i["payload"]["reason"] for i in moderation} == {"sampled"}
    decided = httpx.post(
        f"{server.url}/admin/api/review/{alt[0]['id']}",
        json={"action": "accept"},
        headers=AUTH,
        timeout=10,
    )
    assert decided.status_code == 200, decided.text
    report = httpx.get(f"{server.url}/admin/api/calibration", headers=AUTH, timeout=10).json()
    numbers = report["components"]["alt"]
    assert numbers["decisions"] == numbers["sampled"] == 1 and numbers["accepted_as_is"] == 1.0
    confidence = alt[0]["payload"]["confidence"]
    assert confidence >= 0.7
    (high,) = [b for b in numbers["bins"] if b["count"]]
    assert high["low"] <= confidence <= high["high"] and high["share_accepted"] == 1.0
