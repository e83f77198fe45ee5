"""Logs an operator can use, read from real servers: one access line per request (text or
JSON, switchable), every 5xx with its cause (deadline 503s too), hypercorn's Running on
line once, and "alt text disabled" once at start instead of once per image."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import httpx
import pyvips

from tests.support import FAST_LANE, LoupeServer, wait_for

TOKEN = "logs"


def _root(tmp_path: Path, data_root: Path) -> Path:
    root = tmp_path / "root"
    root.mkdir()
    for name in ("kodim03.png", "kodim12.png"):
        shutil.copy(data_root / "kodak" / name, root / name)
    return root


def test_text_access_lines_running_once_alt_text_disabled_once(
    data_root: Path, tmp_path: Path
) -> None:
    server = LoupeServer(
        _root(tmp_path, data_root), tmp_path / "data", env=FAST_LANE, args=("--admin-token", TOKEN)
    )
    try:
        first = httpx.get(f"{server.url}/img/kodim03.png?w=120&fm=jpeg", timeout=60)
        again = httpx.get(f"{server.url}/img/kodim03.png?w=120&fm=jpeg", timeout=60)
        other = httpx.get(f"{server.url}/img/kodim12.png?w=90&fm=png", timeout=60)
        missing = httpx.get(f"{server.url}/img/nope.png?w=90", timeout=60)
        assert [r.status_code for r in (first, again, other, missing)] == [200, 200, 200, 404]

        auth = {"Authorization": f"Bearer {TOKEN}"}

        def lane_idle() -> bool:
            jobs = httpx.get(f"{server.url}/admin/api/metrics", headers=auth).json()["jobs"]
            # both images went through every job, the alt-text one included
            return jobs.get("done", 0) >= 4 and not jobs.get("queued") and not jobs.get("running")

        wait_for(lane_idle, timeout=30, what="the jobs of both images")
        items = httpx.get(
            f"{server.url}/admin/api/review", params={"component": "alt"}, headers=auth
        ).json()["items"]
        assert items == []  # no VLM: alt text is off, nothing for a human to decide
    finally:
        server.stop()
    log = server.log.read_text()
    lines = log.splitlines()
    access = [line for line in lines if " loupe.access: " in line]
    size = len(first.content)
    assert any(f"GET /img/kodim03.png?w=120&fm=jpeg 200 {size}B " in line for line in access)
    assert any(line.endswith("cache=miss") and "kodim03" in line for line in access)
    assert any(line.endswith("cache=hit") and "kodim03" in line for line in access)
    assert any("GET /img/nope.png?w=90 404 " in line for line in access)
    assert sum("Running on" in line for line in lines) == 1
    assert sum("alt text disabled" in line for line in lines) == 1
    assert "alt text for" not in log  # nothing per image


def test_json_logs_and_deadline_503s_with_their_cause(data_root: Path, tmp_path: Path) -> None:
    env = {"LOUPE_LOG_FORMAT": "json", "LOUPE_SERVER_REQUEST_DEADLINE_S": "0.001"}
    server = LoupeServer(_root(tmp_path, data_root), tmp_path / "data", env=env)
    try:
        response = httpx.get(f"{server.url}/img/kodim12.png?w=700&fm=avif&q=auto", timeout=60)
        assert response.status_code == 503
        assert response.json()["type"].endswith("/deadline-exceeded")
    finally:
        server.stop()
    entries = [json.loads(line) for line in server.log.read_text().splitlines() if line.strip()]
    assert all({"time", "level", "logger", "message"} <= set(entry) for entry in entries)
    [access] = [e for e in entries if e["logger"] == "loupe.access" and e["path"] != "/healthz"]
    assert access["method"] == "GET" and access["status"] == 503
    assert access["path"] == "/img/kodim12.png?w=700&fm=avif&q=auto"
    assert access["bytes"] == len(response.content) and access["ms"] >= 0 and access["cache"] == "-"
    [cause] = [e for e in entries if e["level"] == "warning" and "503" in e["message"]]
    assert "deadline-exceeded" in cause["message"] and "/img/kodim12.png" in cause["message"]


def test_access_lines_can_be_switched_off(data_root: Path, tmp_path: Path) -> None:
    server = LoupeServer(
        _root(tmp_path, data_root), tmp_path / "data", env={"LOUPE_LOG_ACCESS": "false"}
    )
    try:
        assert httpx.get(f"{server.url}/img/kodim03.png?w=50", timeout=60).status_code == 200
    finally:
        server.stop()
    assert "loupe.access" not in server.log.read_text()


def test_several_workers_say_running_on_and_alt_text_disabled_once(
    data_root: Path, tmp_path: Path
) -> None:
    env = {**FAST_LANE, "LOUPE_SERVER_WORKERS": "2"}
    server = LoupeServer(_root(tmp_path, data_root), tmp_path / "data", env=env)
    try:
        pids = set()
        for _ in range(20):  # new connections until both workers answered
            with httpx.Client(base_url=server.url, timeout=30) as client:
                pids.add(client.get("/readyz").json()["worker"]["pid"])
            if len(pids) == 2:
                break
        assert len(pids) == 2
    finally:
        server.stop()
    lines = server.log.read_text().splitlines()
    assert sum("worker 1 started" in line for line in lines) == 1, lines
    assert sum("Running on" in line for line in lines) == 1
    assert sum("alt text disabled" in line for line in lines) == 1


def test_a_damaged_source_is_a_422_and_a_warning_not_an_error_traceback(
    data_root: Path, tmp_path: Path
) -> None:
    """A damaged upload is the client's problem (422): the models that read it first (crop
    analysis, content class) say so in one warning, with no ERROR or traceback for an
    operator to chase."""
    root = tmp_path / "root"
    root.mkdir()
    whole = pyvips.Image.new_from_file(str(data_root / "kodak" / "kodim03.png"))
    interlaced = whole.pngsave_buffer(interlace=True)
    (root / "cut.png").write_bytes(interlaced[: len(interlaced) // 2])  # the header is intact
    server = LoupeServer(root, tmp_path / "data")
    try:
        for query in ("w=200&h=200&fit=crop&crop=smart", "w=200&fm=auto&q=auto"):
            response = httpx.get(
                f"{server.url}/img/cut.png?{query}",
                headers={"Accept": "image/avif,image/webp,*/*"},
                timeout=60,
            )
            assert response.status_code == 422, response.text
            assert response.headers["content-type"] == "application/problem+json"
    finally:
        server.stop()
    log = server.log.read_text()
    assert " ERROR " not in log and "Traceback" not in log, log
    assert "could not decode the source" in log
