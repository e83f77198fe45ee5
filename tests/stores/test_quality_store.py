"""Verified q=auto decisions and the measured training pairs, identical on SQLite and
PostgreSQL: decisions are shared by every node through the store, and a newer measurement
of the same picture, format, target and size bucket replaces the older one."""

from __future__ import annotations

from pathlib import Path

from proxy.quality.decisions import QualityDecisions
from proxy.stores import Store


def test_decisions_are_shared_through_the_store(store: Store, tmp_path: Path) -> None:
    here = QualityDecisions(tmp_path / "a", store=store)
    there = QualityDecisions(tmp_path / "b", store=store)  # another node: its own memo
    key = QualityDecisions.key("00ff00ff00ff00ff", "webp", 240_000, "general", "a" * 64)
    assert there.get(key) is None
    here.record(key, phash="00ff00ff00ff00ff", fmt="webp", pixels=240_000, policy="general",
                model="a" * 64, quality=71, score=75.4)  # fmt: skip
    assert there.get(key) == 71
    assert there.decision(key) == ("webp", 71, 75.4)
    won = QualityDecisions.format_key("00ff00ff00ff00ff", 240_000, "general", "avif,webp", "a")
    here.record(won, phash="00ff00ff00ff00ff", fmt="avif", pixels=240_000, policy="general",
                model="a", quality=None, score=76.0)  # fmt: skip
    assert there.winner(won) == "avif" and there.get(won) is None
    here.close()
    there.close()


def test_pairs_keep_one_measurement_per_picture_format_target_and_size(store: Store) -> None:
    features = [0.1] * 12
    store.add_quality_pair("p1", features, "jpeg", 75.0, 80, 75.5, bucket=34)
    store.add_quality_pair("p1", features, "jpeg", 75.0, 78, 75.2, bucket=34)  # remeasured
    store.add_quality_pair("p1", features, "jpeg", 75.0, 76, 75.1, bucket=40)  # another size
    store.add_quality_pair("p1", features, "webp", 75.0, 82, 75.3, bucket=34)
    assert store.count_quality_pairs() == 3
    pairs = sorted(store.quality_pairs(), key=lambda p: (p[2], p[4]))
    assert [(fmt, q) for _p, _f, fmt, _t, q in pairs] == [("jpeg", 76), ("jpeg", 78), ("webp", 82)]
    assert pairs[0][1] == features and pairs[0][3] == 75.0
