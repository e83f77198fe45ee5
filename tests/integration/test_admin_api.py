"""The admin API over real HTTP: token checks, crop overrides that win at every size of their
aspect (and survive a restart), hero crops queued for review, purge and metrics."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import FAST_LANE, LoupeServer, shared_dir, wait_for

TOKEN = "admin-secret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def folders(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("admin-root")
    shutil.copy(data_root / "kodak" / "kodim12.png", root / "couple.png")
    shutil.copy(data_root / "kodak" / "kodim03.png", root / "hats.png")
    return root, tmp_path_factory.mktemp("admin-data")


def start(folders: tuple[Path, Path]) -> LoupeServer:
    root, data = folders
    models = shared_dir() / "models"
    return LoupeServer(
        root,
        data,
        env=FAST_LANE,
        args=("--admin-token", TOKEN, "--models-dir", str(models)),
    )


@pytest.fixture(scope="module")
def server(folders: tuple[Path, Path]) -> Iterator[LoupeServer]:
    running = start(folders)
    yield running
    running.stop()


def crop_header(response: httpx.Response) -> dict[str, str]:
    assert response.status_code == 200, response.text
    parts = dict(part.strip().split("=", 1) for part in response.headers["x-loupe-crop"].split(";"))
    return parts


def image(server: LoupeServer, path: str, **params: Any) -> httpx.Response:
    return httpx.get(f"{server.url}/img/{path}", params=params, timeout=60)


def test_admin_needs_the_token(server: LoupeServer, folders: tuple[Path, Path]) -> None:
    url = f"{server.url}/admin/api/overrides/couple.png"
    missing = httpx.get(url, timeout=10)
    assert missing.status_code == 401
    assert missing.headers["content-type"] == "application/problem+json"
    assert "bearer" in missing.headers["www-authenticate"].lower()
    wrong = httpx.get(url, headers={"Authorization": "Bearer nope"}, timeout=10)
    assert wrong.status_code == 403
    assert httpx.get(url, headers=AUTH, timeout=10).status_code == 200


def test_admin_is_closed_without_a_configured_token(data_root: Path, tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    closed = LoupeServer(root, tmp_path / "data")
    try:
        response = httpx.get(f"{closed.url}/admin/api/metrics", headers=AUTH, timeout=10)
        assert response.status_code == 403
        assert "--admin-token" in response.json()["detail"]
    finally:
        closed.stop()


@pytest.mark.parametrize(
    "body",
    [
        {"aspect": "16:9", "rect": [0, 0, 10]},
        {"aspect": "16:9", "rect": [0, 0, 5000, 10]},
        {"aspect": "sixteen", "rect": [0, 0, 160, 90]},
        {"aspect": "16:9", "rect": [0, 0, 160, 90], "ctx": "nowhere"},
        {"aspect": "16:9", "rect": ["a", 0, 160, 90]},
        [1, 2],
    ],
)
def test_bad_overrides_are_400(server: LoupeServer, body: object) -> None:
    response = httpx.put(
        f"{server.url}/admin/api/overrides/couple.png", json=body, headers=AUTH, timeout=30
    )
    assert response.status_code == 400, response.text
    assert response.headers["content-type"] == "application/problem+json"


def test_override_for_missing_source_is_404(server: LoupeServer) -> None:
    response = httpx.put(
        f"{server.url}/admin/api/overrides/nope.png",
        json={"aspect": "1:1", "rect": [0, 0, 10, 10]},
        headers=AUTH,
        timeout=10,
    )
    assert response.status_code == 404


def test_a_user_override_wins_at_every_size_of_its_aspect(
    server: LoupeServer, folders: tuple[Path, Path]
) -> None:
    before = crop_header(image(server, "couple.png", w=320, h=180, fit="crop"))
    assert before["by"] == "ai"
    rect = [100, 50, 480, 270]  # 16:9 in the 768x512 source
    put = httpx.put(
        f"{server.url}/admin/api/overrides/couple.png",
        json={"aspect": "16:9", "rect": rect, "reason": "keep both faces"},
        headers=AUTH,
        timeout=30,
    )
    assert put.status_code == 200, put.text
    assert put.json()["by"] == "user"
    for width, height in ((320, 180), (160, 90), (480, 270), (200, 113)):
        header = crop_header(image(server, "couple.png", w=width, h=height, fit="crop"))
        assert header["by"] == "user" and header["strategy"] == "override", (width, header)
        x, y, w, h = (int(v) for v in header["rect"].split(","))
        assert abs(x - 100) <= 2 and abs(y - 50) <= 2 and abs(w - 480) <= 3 and abs(h - 270) <= 3
    other = crop_header(image(server, "couple.png", w=200, h=200, fit="crop"))
    assert other["by"] == "ai"  # 1:1 is another aspect
    listed = httpx.get(f"{server.url}/admin/api/overrides/couple.png", headers=AUTH, timeout=10)
    assert [o["rect"] for o in listed.json()["overrides"]] == [rect]


def test_an_override_survives_a_restart(data_root: Path, tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    shutil.copy(data_root / "kodak" / "kodim12.png", root / "couple.png")
    folders = (root, tmp_path / "data")
    first = start(folders)
    try:
        put = httpx.put(
            f"{first.url}/admin/api/overrides/couple.png",
            json={"aspect": "16:9", "rect": [100, 50, 480, 270]},
            headers=AUTH,
            timeout=30,
        )
        assert put.status_code == 200, put.text
    finally:
        first.stop()
    again = start(folders)  # same data dir: the embedded SQLite store
    try:
        assert crop_header(image(again, "couple.png", w=320, h=180, fit="crop"))["by"] == "user"
        deleted = httpx.delete(
            f"{again.url}/admin/api/overrides/couple.png",
            params={"aspect": "16:9"},
            headers=AUTH,
            timeout=10,
        )
        assert deleted.status_code == 204
        assert crop_header(image(again, "couple.png", w=320, h=180, fit="crop"))["by"] == "ai"
    finally:
        again.stop()


def pending(server: LoupeServer, component: str) -> list[dict[str, Any]]:
    response = httpx.get(
        f"{server.url}/admin/api/review",
        params={"component": component},
        headers=AUTH,
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


def test_hero_crops_are_queued_and_a_picked_candidate_is_served(server: LoupeServer) -> None:
    params = {"w": 400, "h": 400, "fit": "crop", "crop": "smart", "ctx": "hero"}
    first = crop_header(image(server, "hats.png", **params))
    assert first["by"] == "ai"
    item = wait_for(
        lambda: [i for i in pending(server, "crop") if i["path"] == "hats.png"], what="crop item"
    )[0]
    payload = item["payload"]
    assert payload["aspect"] == "1:1" and payload["ctx"] == "hero"
    assert len(payload["candidates"]) == 3
    assert all(c["reasons"] for c in payload["candidates"])
    # overriding the AI needs a reason
    url = f"{server.url}/admin/api/review/{item['id']}"
    no_reason = httpx.post(url, json={"action": "edit", "value": {"candidate": 2}}, headers=AUTH)
    assert no_reason.status_code == 400
    decided = httpx.post(
        url,
        json={"action": "edit", "value": {"candidate": 2}, "reason": "hats matter", "seconds": 4.5},
        headers=AUTH,
        timeout=10,
    )
    assert decided.status_code == 200, decided.text
    assert decided.json()["status"] == "edited"
    again = httpx.post(url, json={"action": "accept"}, headers=AUTH, timeout=10)
    assert again.status_code == 409
    chosen = payload["candidates"][1]
    served = crop_header(image(server, "hats.png", **params))
    assert served["by"] == "human" and served["strategy"] == "override"
    x, y, w, h = (int(v) for v in served["rect"].split(","))
    assert abs(x - chosen["x"]) <= 2 and abs(y - chosen["y"]) <= 2
    assert abs(w - chosen["width"]) <= 3 and abs(h - chosen["height"]) <= 3
    # only in that context: a gallery request still takes the AI's top candidate
    gallery = crop_header(image(server, "hats.png", **{**params, "ctx": "gallery"}))
    assert gallery["by"] == "ai"
    metrics = httpx.get(f"{server.url}/admin/api/metrics", headers=AUTH, timeout=10).json()
    crop = metrics["components"]["crop"]
    assert crop["reviewed"] >= 1 and crop["override_rate"] == 1.0
    assert metrics["review_seconds"]["median"] == 4.5


def test_crops_endpoint_lists_three_ranked_candidates(server: LoupeServer) -> None:
    response = httpx.get(
        f"{server.url}/admin/api/crops/couple.png",
        params={"w": 300, "h": 300},
        headers=AUTH,
        timeout=60,
    )
    assert response.status_code == 200, response.text
    candidates = response.json()["candidates"]
    assert len(candidates) == 3
    scores = [c["score"] for c in candidates]
    assert scores == sorted(scores, reverse=True)
    assert all(c["strategy"] and c["reasons"] for c in candidates)
    missing = httpx.get(f"{server.url}/admin/api/crops/couple.png", headers=AUTH, timeout=10)
    assert missing.status_code == 400


def test_purge_drops_every_cached_variant(server: LoupeServer) -> None:
    # A fixed quality: a q=auto answer would be replaced by the lane's final one meanwhile.
    for width in (100, 150):
        image(server, "hats.png", w=width, q=80)
    assert image(server, "hats.png", w=100, q=80).headers["x-loupe-cache"] == "hit"
    response = httpx.post(f"{server.url}/admin/api/purge/hats.png", headers=AUTH, timeout=10)
    assert response.status_code == 200 and response.json()["purged"] >= 2
    for width in (100, 150):
        assert image(server, "hats.png", w=width, q=80).headers["x-loupe-cache"] == "miss"


def test_review_decisions_validate_their_body(server: LoupeServer) -> None:
    for body in ({"action": "maybe"}, {"action": "accept", "seconds": -1}, []):
        response = httpx.post(
            f"{server.url}/admin/api/review/1", json=body, headers=AUTH, timeout=10
        )
        assert response.status_code in (400, 404), response.text
    assert httpx.get(f"{server.url}/admin/api/review/999999", headers=AUTH).status_code == 404
    bad = httpx.get(
        f"{server.url}/admin/api/review", params={"component": "x"}, headers=AUTH, timeout=10
    )
    assert bad.status_code == 400


def test_problem_types_are_uris(server: LoupeServer) -> None:
    response = httpx.get(f"{server.url}/admin/api/review/abc", headers=AUTH, timeout=10)
    assert response.status_code == 404
    assert (
        re.match(r"https?://", response.json()["type"]) or response.json()["type"] == "about:blank"
    )


def test_exception_rules_change_what_is_served_next(server: LoupeServer) -> None:
    rules = f"{server.url}/admin/api/rules"
    params = {"w": 200, "h": 200, "fit": "crop", "fm": "webp"}
    before = image(server, "couple.png", **params)
    assert "x-loupe-rules" not in before.headers
    assert (
        httpx.put(rules, json={"prefix": "/", "rule": "never-crop"}, headers=AUTH).status_code
        == 400
    )
    for rule in ("never-crop", "lossless-only"):
        put = httpx.put(
            rules,
            json={"prefix": "couple.png", "rule": rule, "reason": "the client asked"},
            headers=AUTH,
            timeout=10,
        )
        assert put.status_code == 200, put.text
    after = image(server, "couple.png", **params)
    assert after.headers["x-loupe-rules"] == "lossless-only, never-crop"
    assert after.headers["x-loupe-quality"] == "lossless"
    assert crop_header(after)["rect"] == "0,0,768,512"  # the whole source, padded to the box
    other = image(server, "hats.png", **params)
    assert "x-loupe-rules" not in other.headers  # another source: untouched
    listed = httpx.get(rules, headers=AUTH, timeout=10).json()["rules"]
    assert {(r["prefix"], r["rule"]) for r in listed} == {
        ("couple.png", "never-crop"),
        ("couple.png", "lossless-only"),
    }
    for rule in ("never-crop", "lossless-only"):
        deleted = httpx.delete(
            rules, params={"prefix": "couple.png", "rule": rule}, headers=AUTH, timeout=10
        )
        assert deleted.status_code == 204
    assert "x-loupe-rules" not in image(server, "couple.png", **params).headers


def test_collaboration_metrics_reach_prometheus(server: LoupeServer) -> None:
    """After the hero-crop decision above: the shared numbers are on /metrics too."""
    decided = server.metric("loupe_review_decisions_total", 'action="edit",component="crop"')
    assert decided >= 1
    assert server.metric("loupe_override_ratio", 'component="crop"') == 1.0
    assert server.metric("loupe_review_seconds_median") == 4.5
    assert server.metric("loupe_ai_decisions_total", 'component="crop",outcome="review"') >= 1


def test_feedback_export_writes_every_decision_as_jsonl(
    server: LoupeServer, folders: tuple[Path, Path], tmp_path: Path
) -> None:
    """After the decisions above: each line pairs the AI output with the human correction."""
    import json
    import subprocess
    import sys

    from tests.support import REPO

    _root, data = folders
    out = tmp_path / "feedback.jsonl"
    result = subprocess.run(
        [sys.executable, "-m", "proxy", "feedback", "export", "--data-dir", str(data),
         "--out", str(out)],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert lines and "exported" in result.stderr
    crop = [line for line in lines if line["component"] == "crop" and line["action"] == "edit"]
    assert crop, lines
    assert crop[0]["ai_output"]["candidates"] and crop[0]["correction"]["candidate"] == 2
    assert crop[0]["reason"] == "hats matter" and crop[0]["seconds"] == 4.5
    assert {"id", "path", "context", "reviewer", "created"} <= set(crop[0])


def test_without_a_vlm_alt_text_is_off_not_queued(server: LoupeServer) -> None:
    """No VLM: nothing for a human to decide about alt text. No review items, no tally in
    the auto-accept rate; the metrics and the page say "off", the empty rates "n/a"."""
    assert image(server, "couple.png", w=120).status_code == 200

    def lane_idle() -> dict[str, Any] | None:
        body = httpx.get(f"{server.url}/admin/api/metrics", headers=AUTH, timeout=10).json()
        jobs = body["jobs"]
        idle = jobs.get("done") and not jobs.get("queued") and not jobs.get("running")
        return body if idle else None

    metrics = wait_for(lane_idle, what="the lane to finish")
    assert pending(server, "alt") == []
    alt = metrics["components"]["alt"]
    assert alt["off"] is True and alt["auto"] == alt["sent_to_review"] == 0
    assert alt["auto_accept_rate"] is None and alt["override_rate"] is None
    assert metrics["components"]["crop"]["off"] is False
    assert metrics["components"]["moderation"]["off"] is True  # moderation is not enabled
    login = httpx.post(
        f"{server.url}/admin/login", data={"token": TOKEN, "reviewer": "x"}, timeout=10
    )
    shell = httpx.get(f"{server.url}/admin/", cookies=login.cookies, timeout=10).text
    assert 'data-off="alt moderation"' in shell and ">alt (off)</a>" in shell
