"""The flywheel's pure parts: which cache saved an inference, the cost report's arithmetic,
tallies kept when the store blinks, the calibrated threshold, and which decisions replay."""

from __future__ import annotations

import threading
from collections.abc import Mapping

import pytest

from proxy.commands.replay import case_of, collect, iou
from proxy.config import CalibrationConfig, CostsConfig
from proxy.errors import BadParameter
from proxy.feedback.calibration import Observation, sample_due, threshold_for
from proxy.feedback.costs import FIELDS, CostMeter, cost_report, parse_since, saving_of
from proxy.sources.paths import SourcePath
from proxy.stores.base import Feedback


def test_a_hit_is_credited_to_exactly_one_cache() -> None:
    origin = ("shop/a.png", "d1")
    assert saving_of(origin, "shop/a.png", "d1") == "sizes"
    assert saving_of(origin, "shop/b.png", "d1") == "reupload"
    assert saving_of(origin, "shop/a.png", "d2") == "phash"  # the file changed, looks the same
    assert saving_of(None, "shop/a.png", "d1") == "phash"  # cached before origins were kept


def test_since_is_a_day_or_epoch_seconds() -> None:
    assert parse_since(None) == "" and parse_since("") == ""
    assert parse_since("2026-12-01") == "2026-12-01"
    assert parse_since("1796083200") == "2026-12-01"  # 2026-12-01T00:00:00Z
    assert parse_since("1796083200.5") == "2026-12-01"
    for bad in ("yesterday", "2026-13-01", "-5", "1e300", "nan"):
        with pytest.raises(BadParameter):
            parse_since(bad)


def _row(day: str, component: str, **values: float) -> tuple[object, ...]:
    return (day, component, *(values.get(field, 0) for field in FIELDS))


def test_the_cost_report_adds_up() -> None:
    prices = CostsConfig(faces_per_1k=2.0, vlm_per_1k=10.0, vlm_per_token_in=0.001)
    rows = [
        _row("2026-12-01", "faces", inferences=500, wall_s=1.5, cpu_s=1.0, saved_sizes=1500),
        _row("2026-12-02", "faces", inferences=500, saved_phash=10, saved_reupload=5),
        _row("2026-12-02", "vlm", inferences=10, tokens_in=6000, tokens_out=100, saved_phash=5),
    ]
    report = cost_report(rows, prices, images=20, since="")
    faces, vlm = report["components"]["faces"], report["components"]["vlm"]
    assert faces["inferences"] == 1000 and faces["cost"] == 2.0
    assert faces["saved"] == {"phash": 10, "sizes": 1500, "reupload": 5, "total": 1515}
    assert faces["saved_cost"] == pytest.approx(1515 * 0.002)
    assert vlm["cost"] == pytest.approx(0.1 + 6.0)  # 10 calls at 10/1000, 6000 tokens at 0.001
    assert vlm["saved_cost"] == pytest.approx(5 * (0.01 + 0.6))  # a call's average tokens too
    assert report["totals"]["cost"] == pytest.approx(8.1)
    assert report["cost_per_image"] == pytest.approx(8.1 / 20)
    assert [d["day"] for d in report["days"]] == ["2026-12-01", "2026-12-02"]
    assert report["days"][0] == {"day": "2026-12-01", "inferences": 500, "saved": 1500, "cost": 1.0}
    assert report["components"]["nsfw"]["inferences"] == 0  # every component, even unused
    assert cost_report([], prices, images=0, since="")["cost_per_image"] is None


class FlakySink:
    def __init__(self) -> None:
        self.fail = True
        self.written: list[tuple[str, dict[str, dict[str, float]]]] = []
        self.lock = threading.Lock()

    def add_costs(self, day: str, tallies: Mapping[str, Mapping[str, float]]) -> None:
        if self.fail:
            raise OSError("the store blinked")
        with self.lock:
            self.written.append((day, {k: dict(v) for k, v in tallies.items()}))


def test_tallies_survive_a_failed_flush() -> None:
    sink = FlakySink()
    meter = CostMeter(sink, flush_s=3600, clock=lambda: 1796083200.0)
    meter.ran("faces", 0.5, 0.25)
    meter.saved("faces", "sizes")
    meter.tokens(600, 20)
    meter.flush()  # fails: kept
    meter.ran("faces", 0.5, 0.25)
    sink.fail = False
    meter.flush()
    meter.flush()  # nothing new: nothing written
    assert len(sink.written) == 1
    day, tallies = sink.written[0]
    assert day == "2026-12-01"
    assert tallies["faces"]["inferences"] == 2 and tallies["faces"]["wall_s"] == 1.0
    assert tallies["faces"]["saved_sizes"] == 1
    assert tallies["vlm"]["tokens_in"] == 600 and tallies["vlm"]["tokens_out"] == 20


def test_a_model_that_is_not_loaded_costs_nothing() -> None:
    sink = FlakySink()
    sink.fail = False
    meter = CostMeter(sink)
    with meter.measure("faces", counted=False):
        pass
    with meter.measure("text"):
        sum(range(10_000))
    meter.flush()
    (_day, tallies), *_ = sink.written
    assert set(tallies) == {"text"} and tallies["text"]["inferences"] == 1
    assert 0 <= tallies["text"]["cpu_s"] <= tallies["text"]["wall_s"] + 0.01


def _seen(confidence: float, accepted: bool) -> Observation:
    return Observation("alt", confidence, accepted, False)


def test_the_threshold_is_the_lowest_that_reaches_the_target() -> None:
    seen = [_seen(0.9, True)] * 5 + [_seen(0.8, True)] * 4 + [_seen(0.8, False)]
    seen += [_seen(0.5, False)] * 5
    # 0.9: 5/5; 0.8: 9/10 = 90%; 0.5: 9/15
    assert threshold_for(seen, 0.95, 5) == (0.9, 1.0, 5)
    assert threshold_for(seen, 0.9, 5) == (0.8, 0.9, 10)
    assert threshold_for(seen, 0.95, 6) is None  # too few decisions above 0.9
    assert threshold_for([], 0.95, 1) is None
    # ties: a threshold takes every output of its confidence, never half of them
    tied = [_seen(0.7, True)] * 3 + [_seen(0.7, False)]
    assert threshold_for(tied, 0.95, 1) is None


def test_sampling_of_auto_accepted_outputs_is_every_nth() -> None:
    def sampled(rate: float, items: int) -> list[int]:
        done = 0
        picked = []
        for seen in range(items):
            if sample_due(seen, done, rate=rate):
                done += 1
                picked.append(seen + 1)
        return picked

    assert sampled(0.25, 10) == [4, 8]
    assert sampled(1.0, 3) == [1, 2, 3]
    assert sampled(0.0, 100) == []
    assert sampled(0.02, 49) == []  # a small site's first outputs stay automatic


def test_iou() -> None:
    assert iou([0, 0, 10, 10], [0, 0, 10, 10]) == 1.0
    assert iou([0, 0, 10, 10], [5, 0, 10, 10]) == pytest.approx(50 / 150)
    assert iou([0, 0, 10, 10], [20, 20, 5, 5]) == 0.0


def _event(component: str, action: str, **fields: object) -> Feedback:
    base: dict[str, object] = {
        "review_id": 1,
        "path": SourcePath("a.png"),
        "component": component,
        "action": action,
        "ai_output": {},
        "correction": None,
        "reason": "",
        "reviewer": "x",
        "seconds": None,
        "context": {},
        "created": 10.0,
        "id": 1,
    }
    base.update(fields)
    return Feedback(**base)  # type: ignore[arg-type]


def test_which_decisions_replay() -> None:
    candidates = [{"x": 1, "y": 2, "width": 3, "height": 4, "score": 0.9}]
    crop = {"w": 400, "h": 400, "candidates": candidates}
    accepted = case_of(_event("crop", "accept", ai_output=crop))
    assert accepted is not None and accepted.human == {
        "box": [400, 400],
        "rect": [1, 2, 3, 4],
        "by": "review",
    }
    drawn = case_of(_event("crop", "edit", ai_output=crop, correction={"rect": [5, 6, 7, 8]}))
    assert drawn is not None and drawn.human["rect"] == [5, 6, 7, 8]
    assert case_of(_event("crop", "reject", ai_output=crop)) is None
    override = _event(
        "crop", "override", review_id=None, correction={"aspect": "16:9", "rect": [0, 0, 16, 9]}
    )
    found = case_of(override)
    assert found is not None and found.human["box"] == [1000, 562]
    assert case_of(_event("sample", "accept", ai_output={"stratum": "shop|photo|q"})) is not None
    assert case_of(_event("sample", "accept", ai_output={"stratum": "shop|-|q"})) is None
    assert case_of(_event("sample", "reject", ai_output={"stratum": "shop|photo|q"})) is None
    assert case_of(_event("alt", "accept", ai_output={"draft": ""})) is None  # a failure
    kept = case_of(_event("alt", "accept", ai_output={"draft": "A barn."}))
    assert kept is not None and kept.human["kept"] is True
    assert case_of(_event("calibration", "threshold")) is None
    # the latest decision per source and box; --since drops the older ones
    older = _event("moderation", "reject", created=5.0, id=2)
    newer = _event("moderation", "accept", created=20.0, id=3)
    chosen = collect([older, newer], [], component="moderation")
    assert [c.human["verdict"] for c in chosen] == ["approved"]
    assert collect([older, newer], [], since=30.0) == []


def test_calibration_config_defaults() -> None:
    config = CalibrationConfig()
    assert config.target_precision == 0.95 and config.apply is False
