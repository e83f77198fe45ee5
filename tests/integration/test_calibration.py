"""Calibration against a known sequence of human decisions, made with the real decision
code on the real store, then read over HTTP from a real server: bins, shares accepted as
is, the threshold that reaches the target precision and the auto-accept rate it gives.
Thresholds change only with ``calibration.apply = true``, and each change is a logged
decision."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from proxy.curation.review import Decision, decide
from proxy.sources.paths import SourcePath
from proxy.stores import open_store
from proxy.stores.base import AltText
from tests.support import REPO, LoupeServer

TOKEN = "calibration-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ENV = {"LOUPE_CALIBRATION_MIN_DECISIONS": "5", "LOUPE_LANE_WORKERS": "0"}

# (confidence, actions, sampled): the known sequence, per component.
ALT = (
    (0.15, ("reject", "edit"), False),
    (0.45, ("accept", "accept", "edit", "reject"), False),
    (0.65, ("accept", "accept", "accept", "edit"), False),
    (0.85, ("accept",) * 5, True),
    (0.95, ("accept",) * 5, True),
)
MODERATION = (  # NSFW score; accept approves the picture
    (0.85, ("reject",) * 3, False),
    (0.55, ("accept", "accept", "reject", "reject"), False),
    (0.05, ("accept",) * 6, True),
)
CROP = (  # top candidate's score; "edit1" keeps candidate 1, "edit2" picks the second
    (0.3, ("edit2", "edit2")),
    (0.7, ("accept", "accept", "accept", "edit2")),
    (0.9, ("accept",) * 4 + ("edit1",)),
)


def _candidate(score: float, x: int) -> dict[str, Any]:
    return {"x": x, "y": 0, "width": 100, "height": 100, "score": score, "strategy": "faces"}


def record_decisions(data: Path) -> None:
    store = open_store(f"sqlite:///{(data / 'loupe.db').resolve()}")
    try:
        n = 0

        def run(component: str, payload: dict[str, Any], action: str, value: Any = None) -> None:
            nonlocal n
            n += 1
            path = SourcePath(f"{component}/{n}.png")
            item = store.open_review(path, component, path, payload)
            assert item is not None
            reason = "" if action == "accept" or value == {"candidate": 1} else "not right"
            decide(store, item, Decision(action, value, reason, 3.0, "tester"))  # type: ignore[arg-type]

        for confidence, actions, sampled in ALT:
            for action in actions:
                payload = {
                    "reason": "sampled" if sampled else "low-confidence",
                    "draft": "A red barn.",
                    "confidence": confidence,
                }
                run("alt", payload, action, {"text": "A barn, red."} if action == "edit" else None)
        for i in range(5):  # published alone, never reviewed: the population only
            store.put_machine_alt(
                AltText(SourcePath(f"auto/{i}.png"), "A field.", "machine", confidence=0.75)
            )
        for score, actions, sampled in MODERATION:
            for action in actions:
                digest = f"{n:064x}"
                store.set_verdict(digest, "clear" if sampled else "review", score)
                payload = {"score": score, "digest": digest, "reason": "sampled" if sampled else ""}
                run("moderation", payload, action)
        for i in range(7):
            store.set_verdict(f"{1000 + i:064x}", "clear", 0.3)
        for score, actions in CROP:
            for action in actions:
                payload = {
                    "aspect": "1:1",
                    "ctx": "hero",
                    "candidates": [_candidate(score, 0), _candidate(score / 2, 50)],
                    "source": {"width": 400, "height": 400},
                }
                if action.startswith("edit"):
                    run("crop", payload, "edit", {"candidate": int(action[-1])})
                else:
                    run("crop", payload, action)
    finally:
        store.close()


def bins(counts: dict[int, tuple[int, int]]) -> list[dict[str, Any]]:
    """Ten bins: {index: (count, accepted)}; the others empty (share n/a)."""
    out = []
    for i in range(10):
        count, accepted = counts.get(i, (0, 0))
        out.append(
            {
                "low": round(i / 10, 4),
                "high": round((i + 1) / 10, 4),
                "count": count,
                "accepted": accepted,
                "share_accepted": round(accepted / count, 4) if count else None,
            }
        )
    return out


def calibration(server: LoupeServer) -> dict[str, Any]:
    response = httpx.get(f"{server.url}/admin/api/calibration", headers=AUTH, timeout=10)
    assert response.status_code == 200, response.text
    return dict(response.json())


def export(data: Path) -> list[dict[str, Any]]:
    result = subprocess.run(
        [sys.executable, "-m", "proxy", "feedback", "export", "--data-dir", str(data)],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in result.stdout.splitlines()]


def test_calibration_follows_from_a_known_sequence_of_decisions(
    data_root: Path, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    # the schema first (a server start), then the decisions, then the server that reads them
    LoupeServer(tmp_path / "root", data, env=ENV, args=("--admin-token", TOKEN)).stop()
    record_decisions(data)

    server = LoupeServer(tmp_path / "root", data, env=ENV, args=("--admin-token", TOKEN))
    try:
        assert httpx.get(f"{server.url}/admin/api/calibration", timeout=10).status_code == 401
        report = calibration(server)
    finally:
        server.stop()
    assert report["target_precision"] == 0.95 and report["apply"] is False
    assert report["applied"] == []
    alt = report["components"]["alt"]
    assert alt["bins"] == bins({1: (2, 0), 4: (4, 2), 6: (4, 3), 8: (5, 5), 9: (5, 5)})
    assert alt["decisions"] == 20 and alt["sampled"] == 10 and alt["accepted_as_is"] == 0.75
    # 0.85 and up: 10 of 10 kept; with 0.65 too 13 of 14 (92.9%) is below 95%
    assert (alt["threshold"], alt["precision"], alt["decisions_above"]) == (0.85, 1.0, 10)
    # of the 20 alt texts with a confidence, 10 are at 0.85 or more; 15 at 0.7 (configured)
    assert alt["auto_accept_rate"] == 0.5 and alt["rate_of"] == "outputs"
    assert alt["current_threshold"] == 0.7 and alt["current_auto_accept_rate"] == 0.75
    assert alt["setting"] == "vlm.confidence_threshold"

    moderation = report["components"]["moderation"]
    assert moderation["bins"] == bins({1: (3, 0), 4: (4, 2), 9: (6, 6)})
    assert moderation["decisions"] == 13 and moderation["sampled"] == 6
    assert moderation["threshold"] == 0.95 and moderation["precision"] == 1.0
    assert moderation["decisions_above"] == 6
    # 20 scored pictures: 6 at confidence 0.95, 7 more at 0.7 (score 0.3), which the
    # configured review threshold 0.4 (confidence 0.6) clears too
    assert moderation["auto_accept_rate"] == 0.3
    assert moderation["current_threshold"] == 0.6
    assert moderation["current_auto_accept_rate"] == 0.65

    crop = report["components"]["crop"]
    assert crop["bins"] == bins({3: (2, 0), 7: (4, 3), 9: (5, 5)})
    assert (crop["threshold"], crop["decisions_above"], crop["sampled"]) == (0.9, 5, 0)
    assert crop["auto_accept_rate"] == round(5 / 11, 4) and crop["rate_of"] == "decided outputs"
    assert crop["current_threshold"] is None and crop["setting"] is None

    assert not [e for e in export(data) if e["component"] == "calibration"]  # nothing applied

    # calibration.apply = true: both thresholds change, each a logged decision, once
    applying = LoupeServer(
        tmp_path / "root",
        data,
        env={**ENV, "LOUPE_CALIBRATION_APPLY": "true"},
        args=("--admin-token", TOKEN),
    )
    try:
        applied = calibration(applying)
        again = calibration(applying)
    finally:
        applying.stop()
    assert applied["applied"] == [
        {"component": "alt", "setting": "vlm.confidence_threshold", "from": 0.7, "to": 0.85},
        {"component": "moderation", "setting": "moderation.review_threshold", "from": 0.4,
         "to": 0.05},
    ]  # fmt: skip
    assert applied["components"]["alt"]["current_threshold"] == 0.85
    assert again["applied"] == [] and again["components"]["alt"]["current_threshold"] == 0.85
    assert again["components"]["moderation"]["current_threshold"] == 0.95
    assert again["components"]["moderation"]["current_auto_accept_rate"] == 0.3
    logged = [e for e in export(data) if e["component"] == "calibration"]
    assert [(e["action"], e["ai_output"]["component"], e["correction"]) for e in logged] == [
        ("threshold", "alt", {"value": 0.85}),
        ("threshold", "moderation", {"value": 0.05}),
    ]
    assert "100.0% of 10 human decisions" in logged[0]["reason"]
    assert logged[0]["reviewer"] == "calibration"
    store = open_store(f"sqlite:///{(data / 'loupe.db').resolve()}")
    try:
        assert store.threshold("alt") == 0.85 and store.threshold("moderation") == 0.05
    finally:
        store.close()
