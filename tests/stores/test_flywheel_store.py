"""The flywheel's tables on both stores: cost tallies added up across processes, sources
counted from a time, calibrated thresholds applied with their logged decision."""

from __future__ import annotations

from proxy.sources.paths import SourcePath
from proxy.stores import Store
from proxy.stores.base import AltText, Feedback, SourceRecord


def test_cost_tallies_add_up_per_day_and_component(store: Store) -> None:
    store.add_costs("2026-12-01", {"faces": {"inferences": 2, "wall_s": 0.5, "cpu_s": 0.25}})
    store.add_costs(  # another process, the same day: added, not replaced
        "2026-12-01",
        {"faces": {"inferences": 1, "saved_sizes": 3}, "vlm": {"tokens_in": 600}},
    )
    store.add_costs("2026-12-02", {"faces": {"saved_phash": 1}})
    rows = store.costs()
    assert [tuple(r[:2]) for r in rows] == [
        ("2026-12-01", "faces"),
        ("2026-12-01", "vlm"),
        ("2026-12-02", "faces"),
    ]
    _day, _name, inferences, wall, cpu, phash, sizes, reupload, tokens_in, tokens_out = rows[0]
    assert (inferences, phash, sizes, reupload, tokens_in, tokens_out) == (3, 0, 3, 0, 0, 0)
    assert abs(wall - 0.5) < 1e-9 and abs(cpu - 0.25) < 1e-9
    assert rows[1][8] == 600
    assert [tuple(r[:2]) for r in store.costs("2026-12-02")] == [("2026-12-02", "faces")]


def test_sources_are_counted_from_a_time(store: Store) -> None:
    store.record_source(SourceRecord(SourcePath("a.png"), width=1, height=1))
    assert store.sources_seen() == 1
    assert store.sources_seen(since=4e9) == 0


def test_a_threshold_is_applied_with_its_decision(store: Store) -> None:
    assert store.threshold("alt") is None
    log = Feedback(
        review_id=None,
        path=SourcePath(""),
        component="calibration",
        action="threshold",
        ai_output={"component": "alt", "value": 0.7},
        correction={"value": 0.85},
        reason="precision",
        reviewer="calibration",
        seconds=None,
        context={},
    )
    store.set_threshold("alt", 0.85, 0.7, log)
    store.set_threshold("alt", 0.8, 0.7, log)
    assert store.threshold("alt") == 0.8
    assert [f.correction for f in store.feedback()] == [{"value": 0.85}, {"value": 0.85}]
    store.put_machine_alt(AltText(SourcePath("b.png"), "A dog.", "machine", confidence=0.9))
    store.set_verdict("f" * 64, "clear", 0.125)
    assert store.alt_confidences() == [0.9] and store.nsfw_scores() == [0.125]
