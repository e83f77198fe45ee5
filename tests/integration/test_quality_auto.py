"""``q=auto`` against a real server: every lossy policy and format meets its SSIMULACRA2
target (re-measured here on the decoded bytes, against the same transform rendered
losslessly with ``fm=png``), decisions are reused across sizes and restarts, lossless
policies stay lossless, and a broken predictor still serves within the target.

The server uses the committed predictor (``models/quality/quality_predictor.onnx``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import pyvips

from proxy.policies import DEFAULT_POLICIES
from proxy.quality.decisions import size_bucket
from proxy.quality.ssimulacra2 import score
from tests.integration.imaging import NO_MODERN, decode, get, pixels, size
from tests.support import LoupeServer

PHOTO = "kodak/kodim03.png"  # 768x512, opaque
SCREENSHOT = "generated/screenshot_ui.png"  # 1440x900, opaque, text-heavy
LOSSY_POLICIES = ("general", "product", "art", "screenshot")
LOSSLESS_POLICIES = ("medical", "legal")
FORMATS = ("jpeg", "webp", "avif")
MIME = {"jpeg": "image/jpeg", "webp": "image/webp", "avif": "image/avif", "png": "image/png"}
TOLERANCE = 0.5  # score points: our re-measurement vs the target
WIDTH = 320
SAME_BUCKET_WIDTH = 328  # 320x213 and 328x219 pixels share a half-octave size bucket
MODERN = {"Accept": "image/avif,image/webp,image/*,*/*;q=0.8"}


def source_for(policy: str) -> str:
    return SCREENSHOT if policy == "screenshot" else PHOTO


def notes(response: httpx.Response) -> list[str]:
    raw = response.headers.get("x-loupe-note", "")
    return [part.strip() for part in raw.split(",") if part.strip()]


def lossless_reference(server: LoupeServer, path: str, query: str) -> pyvips.Image:
    """The same transform, rendered losslessly (PNG): what q=auto scores against."""
    response = get(server, path, f"{query}&fm=png")
    assert response.headers["content-type"] == "image/png"
    return decode(response)


def check_meets_target(
    server: LoupeServer, path: str, query: str, response: httpx.Response, policy: str
) -> float:
    """Re-measure the served bytes against the lossless rendering of ``query`` (the
    transform without ``fm``); returns our score."""
    target = DEFAULT_POLICIES[policy].target
    assert target is not None
    header_score = float(response.headers["x-loupe-score"])
    assert header_score >= target, f"X-Loupe-Score {header_score} below target {target}"
    reference = lossless_reference(server, path, query)
    served = decode(response)
    assert size(served) == size(reference)
    measured = score(reference, served)
    assert measured >= target - TOLERANCE, f"re-measured {measured:.2f} < target {target}"
    if response.headers["x-loupe-quality"] != "lossless":
        assert abs(measured - header_score) <= TOLERANCE, (measured, header_score)
    return measured


@pytest.fixture(scope="module")
def quality_server(
    data_root: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LoupeServer]:
    """A server of its own: fresh decisions, so first requests really search."""
    running = LoupeServer(data_root, tmp_path_factory.mktemp("quality-auto"))
    yield running
    running.stop()


# --------------------------------------------------------------------------------------
# Every lossy policy x format.


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("policy", LOSSY_POLICIES)
def test_auto_meets_policy_target(quality_server: LoupeServer, policy: str, fmt: str) -> None:
    path, query = source_for(policy), f"w={WIDTH}&policy={policy}"
    response = get(quality_server, path, f"{query}&fm={fmt}")
    assert response.status_code == 200, response.text[:300]
    assert response.headers["x-loupe-policy"] == policy
    assert response.headers["x-loupe-cache"] == "miss"
    assert "predictor-unavailable" not in notes(response), "the committed model did not load"
    assert "target-unreached" not in notes(response)
    assert int(response.headers["x-loupe-encodes"]) >= 1
    rule = DEFAULT_POLICIES[policy]
    quality = response.headers["x-loupe-quality"]
    if quality == "lossless":
        # Screenshots may go lossless WebP when that is smaller than the lossy answer.
        assert rule.consider_lossless and fmt == "webp"
        assert response.headers["content-type"] == "image/webp"
        assert float(response.headers["x-loupe-score"]) == 100.0
    else:
        assert response.headers["content-type"] == MIME[fmt]
        assert int(quality) >= (rule.min_quality or 1)
        assert int(quality) <= 100
    check_meets_target(quality_server, path, query, response, policy)


# --------------------------------------------------------------------------------------
# Decisions: another size in the same bucket, and a refetch after the results are gone.


def test_same_bucket_sizes() -> None:
    assert size_bucket(320 * 213) == size_bucket(SAME_BUCKET_WIDTH * 219)


@pytest.mark.parametrize("fmt", FORMATS)
def test_second_size_in_bucket_reuses_decision(quality_server: LoupeServer, fmt: str) -> None:
    path = "kodak/kodim07.png"  # a picture no other test here asks for
    first = get(quality_server, path, f"w={WIDTH}&fm={fmt}&policy=general")
    assert first.status_code == 200
    assert int(first.headers["x-loupe-encodes"]) >= 1
    second = get(quality_server, path, f"w={SAME_BUCKET_WIDTH}&fm={fmt}&policy=general")
    assert second.status_code == 200
    assert second.headers["x-loupe-cache"] == "miss"  # a new result, rendered
    assert second.headers["x-loupe-encodes"] == "0"
    assert second.headers["x-loupe-quality"] == first.headers["x-loupe-quality"]
    assert size(decode(second))[0] == SAME_BUCKET_WIDTH
    # The reused quality still looks right at the neighbouring size.
    reference = lossless_reference(quality_server, path, f"w={SAME_BUCKET_WIDTH}")
    assert score(reference, decode(second)) >= 75 - 2.0


def test_refetch_after_purge_reuses_decision(data_root: Path, tmp_path: Path) -> None:
    """Results gone (a new server, result caches off), decisions kept: no search."""
    data_dir = tmp_path / "data"
    path = "kodak/kodim12.png"
    queries = [f"w={WIDTH}&fm={fmt}&policy=product" for fmt in FORMATS]
    first = LoupeServer(data_root, data_dir)
    try:
        before = [get(first, path, q) for q in queries]
    finally:
        first.stop()
    for response in before:
        assert response.status_code == 200
        assert int(response.headers["x-loupe-encodes"]) >= 1
    uncached = {"LOUPE_CACHE_MEMORY_BYTES": "0", "LOUPE_CACHE_DISK_BYTES": "0"}
    second = LoupeServer(data_root, data_dir, env=uncached)
    try:
        for query, earlier in zip(queries, before, strict=True):
            for _ in range(2):  # nothing is cached: both render, neither searches
                again = get(second, path, query)
                assert again.status_code == 200
                assert again.headers["x-loupe-cache"] == "miss"
                assert again.headers["x-loupe-encodes"] == "0", query
                assert again.headers["x-loupe-quality"] == earlier.headers["x-loupe-quality"]
                assert again.content == earlier.content  # same quality, same encoder: same bytes
    finally:
        second.stop()


# --------------------------------------------------------------------------------------
# Lossless policies: whatever fm asks, the pixels are the lossless rendering's.


@pytest.mark.parametrize("fm", ["jpeg", "webp", "avif", "png", "auto"])
@pytest.mark.parametrize("policy", LOSSLESS_POLICIES)
def test_lossless_policies_are_pixel_identical(
    quality_server: LoupeServer, policy: str, fm: str
) -> None:
    reference = decode(get(quality_server, PHOTO, f"w={WIDTH}&fm=png"))
    for headers, extra in ((NO_MODERN, ""), (MODERN, ""), (MODERN, "&q=40")):
        response = get(quality_server, PHOTO, f"w={WIDTH}&fm={fm}&policy={policy}{extra}", headers)
        assert response.status_code == 200, response.text[:300]
        assert response.headers["content-type"] in ("image/png", "image/webp")
        assert response.headers["x-loupe-quality"] == "lossless"
        assert "x-loupe-encodes" not in response.headers  # nothing was searched
        served = decode(response)
        assert size(served) == size(reference)
        assert served.bands == reference.bands
        assert np.array_equal(pixels(served), pixels(reference)), (policy, fm, extra)


# --------------------------------------------------------------------------------------
# A broken predictor: the search starts from the policy's default and still verifies.


@pytest.fixture(scope="module")
def broken_predictor_server(
    data_root: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LoupeServer]:
    models = tmp_path_factory.mktemp("broken-models")
    (models / "quality").mkdir()
    (models / "quality" / "quality_predictor.onnx").write_bytes(b"\x00garbage, not ONNX\xff" * 7)
    # models_dir is searched before the repo's models/, so the garbage file is found first.
    running = LoupeServer(
        data_root,
        tmp_path_factory.mktemp("broken-data"),
        env={"LOUPE_STORAGE_MODELS_DIR": str(models)},
    )
    yield running
    running.stop()


@pytest.mark.parametrize("fmt", FORMATS)
def test_broken_predictor_still_meets_target(
    broken_predictor_server: LoupeServer, fmt: str
) -> None:
    path, query = PHOTO, f"w={WIDTH}&policy=general"
    response = get(broken_predictor_server, path, f"{query}&fm={fmt}")
    assert response.status_code == 200, response.text[:300]
    assert "predictor-unavailable" in notes(response)
    assert "target-unreached" not in notes(response)
    assert int(response.headers["x-loupe-encodes"]) >= 1
    assert int(response.headers["x-loupe-quality"]) >= (
        DEFAULT_POLICIES["general"].min_quality or 1
    )
    check_meets_target(broken_predictor_server, path, query, response, "general")
    log = broken_predictor_server.log.read_text(errors="replace")
    assert "quality predictor unavailable" in log
