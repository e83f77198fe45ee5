"""Fast first answer, best answer soon, against a real server and its lane: a cold ``q=auto``
request is predicted (provisional, short max-age), verified in the lane, and final from then
on (full max-age, the verified format); explicit ``q``/``fm`` and lossless policies are final
at once; AVIF comes first only when small enough; large outputs are planned to fit the
deadline, and a deadline that passes stops the work."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from proxy.sources.paths import canonical_path
from proxy.stores import open_store
from tests.integration.imaging import decode, size
from tests.support import FAST_LANE, LoupeServer, wait_for

BROWSER = {"Accept": "image/avif,image/webp,image/*,*/*;q=0.8"}
YEAR = "public, max-age=31536000, stale-while-revalidate=86400"
BIG = "large_6000x4000_flower_upscaled.jpg"


@pytest.fixture(scope="module")
def root(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("provisional-root")
    for name in ("kodim03.png", "kodim12.png", "kodim19.png", "kodim22.png"):
        shutil.copy(data_root / "kodak" / name, folder / name)
    shutil.copy(data_root / "generated" / BIG, folder / BIG)
    return folder


@pytest.fixture(scope="module")
def node(root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LoupeServer]:
    running = LoupeServer(root, tmp_path_factory.mktemp("provisional-data"), env=FAST_LANE)
    yield running
    running.stop()


def fetch(node: LoupeServer, target: str, headers: dict[str, str] | None = None) -> httpx.Response:
    response = httpx.get(f"{node.url}/img/{target}", headers=headers or BROWSER, timeout=60)
    assert response.status_code == 200, response.text[:300]
    return response


def test_a_cold_default_request_is_provisional_then_final(node: LoupeServer) -> None:
    first = fetch(node, "kodim03.png?w=600")
    assert first.headers["x-loupe-stage"] == "provisional"
    assert first.headers["cache-control"] == "public, max-age=300"
    assert first.headers["vary"] == "Accept"
    assert "x-loupe-score" not in first.headers
    assert first.headers["x-loupe-encodes"] == "1"
    assert first.headers["content-type"] == "image/webp"  # 600 px: too big for AVIF first
    assert "avif-after-verification" in first.headers["x-loupe-note"]

    def final() -> httpx.Response | None:
        answer = fetch(node, "kodim03.png?w=600")
        return answer if answer.headers["x-loupe-stage"] == "final" else None

    last = wait_for(final, timeout=60, interval=0.2, what="the verification of kodim03")
    assert last.headers["cache-control"] == YEAR
    assert "x-loupe-score" not in last.headers  # encoded once at a verified quality
    store = open_store(f"sqlite:///{node.log.parent / 'loupe.db'}")
    try:
        subject = next(iter(_verify_subjects(store, "kodim03.png")))

        def done() -> bool:  # the decision lands before the job publishes and finishes
            job = store.job("verify", subject)
            return job is not None and job.status == "done"

        wait_for(done, timeout=30, what="the verify job to finish")
        assert store.count_quality_pairs() >= 1
        assert sum(store.outcomes().get("quality", {}).values()) >= 1
    finally:
        store.close()
    assert last.headers["content-type"] in ("image/avif", "image/webp", "image/jpeg")
    assert size(decode(last)) == size(decode(first))
    # Another size in the bucket: final at once, the same format.
    other = fetch(node, "kodim03.png?w=610")
    assert other.headers["x-loupe-stage"] == "final"
    assert other.headers["content-type"] == last.headers["content-type"]


def _verify_subjects(store, path: str) -> list[str]:  # type: ignore[no-untyped-def]
    with store.transaction(write=False) as tx:
        rows = tx.run(
            "SELECT subject FROM jobs WHERE kind = 'verify' AND subject LIKE ?", (f"{path}|%",)
        )
    return [row[0] for row in rows]


@pytest.mark.parametrize(
    "query",
    ["kodim12.png?w=300&q=70", "kodim12.png?w=300&fm=png", "kodim12.png?w=300&q=70&fm=webp"],
)
def test_explicit_quality_or_lossless_format_is_final_at_once(
    node: LoupeServer, query: str
) -> None:
    answer = fetch(node, query)
    assert answer.headers["x-loupe-stage"] == "final"
    assert answer.headers["cache-control"] == YEAR
    if "q=70" in query:
        assert answer.headers["x-loupe-quality"] == "70"


def test_lossless_policies_are_final_and_lossless(node: LoupeServer) -> None:
    for policy in ("medical", "legal"):
        answer = fetch(node, f"kodim12.png?w=300&policy={policy}")
        assert answer.headers["x-loupe-quality"] == "lossless"
        assert answer.headers["x-loupe-stage"] == "final"
        assert answer.headers["content-type"] in ("image/png", "image/webp")


def test_a_small_output_may_be_avif_at_once(node: LoupeServer) -> None:
    small = fetch(node, "kodim19.png?w=200")  # 200x300: within the AVIF first-answer budget
    assert small.headers["content-type"] == "image/avif"
    assert small.headers["x-loupe-stage"] == "provisional"


def test_without_budget_avif_waits_for_verification(root: Path, tmp_path: Path) -> None:
    env = {**FAST_LANE, "LOUPE_IMAGES_AVIF_FIRST_ANSWER_S": "0"}
    server = LoupeServer(root, tmp_path / "data", env=env)
    try:
        first = fetch(server, "kodim22.png?w=200")
        assert first.headers["content-type"] == "image/webp"
        assert "avif-after-verification" in first.headers["x-loupe-note"]
    finally:
        server.stop()


def test_a_24_mp_photo_at_full_size_is_planned_to_fit(node: LoupeServer) -> None:
    started = time.monotonic()
    answer = fetch(node, BIG)  # 6000x4000, browser Accept, q=auto
    took = time.monotonic() - started
    assert answer.headers["content-type"] == "image/jpeg"  # WebP/AVIF would take several times
    assert "planned-for-deadline" in answer.headers["x-loupe-note"]
    assert "fixed-quality:large-output" in answer.headers["x-loupe-note"]
    assert answer.headers["x-loupe-stage"] == "final"  # the planned answer for this size
    assert answer.headers["cache-control"] == YEAR
    assert took < 15, took


def test_a_passed_deadline_stops_the_work_and_is_logged(root: Path, tmp_path: Path) -> None:
    env = {"LOUPE_SERVER_REQUEST_DEADLINE_S": "0.3", "LOUPE_LANE_WORKERS": "0"}
    server = LoupeServer(root, tmp_path / "data", env=env)
    try:
        answer = httpx.get(f"{server.url}/img/{BIG}?fm=webp&q=90", headers=BROWSER, timeout=60)
        assert answer.status_code == 503
        stat = Path(f"/proc/{server.process.pid}/stat")
        before = _cpu_seconds(stat)
        time.sleep(1.0)
        assert _cpu_seconds(stat) - before < 0.3  # nothing kept a core busy after the 503
    finally:
        server.stop()
    log = server.log.read_text(errors="replace")
    assert "503 deadline-exceeded" in log


def _cpu_seconds(stat: Path) -> float:
    import os

    fields = stat.read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_the_decision_is_shared_through_the_store(node: LoupeServer) -> None:
    """What the lane verified is in the store, keyed with the predictor's identity."""
    store = open_store(f"sqlite:///{node.log.parent / 'loupe.db'}")
    try:
        wait_for(lambda: _verify_subjects(store, "kodim03.png"), what="a verify job")
        with store.transaction(write=False) as tx:
            rows = tx.run("SELECT key, model, quality FROM quality_decisions")
        assert rows and all(row[1] and len(row[1]) == 16 for row in rows)
        assert canonical_path("kodim03.png") == "kodim03.png"
    finally:
        store.close()
