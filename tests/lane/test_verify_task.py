"""The lane's ``verify`` job on real libvips and a real SQLite store: it measures the served
first answer, searches the lowest passing quality per format, records the decisions (format
winner included) and the training pairs, and a first answer found under the target makes
the source's cache keys change. Afterwards the request path answers final at once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from proxy.analysis.analyzer import Analyzer
from proxy.config import Config, ImagesConfig, StorageConfig
from proxy.fingerprint import PhashMemo
from proxy.lane.reading import SourceBytes
from proxy.lane.tasks.verify import VerifyTask, accept_of, candidates
from proxy.negotiate import AcceptClass
from proxy.params import parse_params
from proxy.processing.pipeline import render
from proxy.rendering import Rendering, build_rendering
from proxy.sources.local import LocalSource
from proxy.sources.paths import canonical_path
from proxy.stores import Store, open_store
from tests.support import constant_predictor, shared_data

BROWSER = AcceptClass(avif=True, webp=True)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(f"sqlite:///{tmp_path / 'loupe.db'}")
    yield opened
    opened.close()


def rendering_for(tmp_path: Path, store: Store, models_dir: Path | None = None) -> Rendering:
    config = Config(
        storage=StorageConfig(data_dir=tmp_path / "data", models_dir=models_dir or tmp_path),
        images=ImagesConfig(avif_effort=2),
    )
    analyzer = Analyzer(tmp_path / "no-models", None)
    return build_rendering(config, analyzer, PhashMemo(), store)


def task_for(tmp_path: Path, store: Store, rendering: Rendering) -> VerifyTask:
    sources = SourceBytes(LocalSource(tmp_path), 1 << 26, tmp_path)

    def queue_retrain(round_: int) -> None:
        store.enqueue("retrain-quality", f"pairs-{round_}", {})

    return VerifyTask(
        store,
        sources,
        rendering.verifying,
        default_crop="smart",
        deadline_s=60,
        retrain_every=2,  # quality.retrain_every: a retrain per 2 verified pairs
        queue_retrain=queue_retrain,
    )


def first_answer(rendering: Rendering, blob: bytes, query: str, accept: AcceptClass):  # type: ignore[no-untyped-def]
    return render(blob, parse_params(query), accept, rendering.settings, deadline=1e18)


def test_verification_decides_and_the_next_answer_is_final(tmp_path: Path, store: Store) -> None:
    blob = (shared_data() / "kodak" / "kodim03.png").read_bytes()
    rendering = rendering_for(tmp_path, store)
    first = first_answer(rendering, blob, "w=400", BROWSER)
    assert first.stage == "provisional" and first.score is None
    assert first.plan.format == "webp"  # AVIF waits for verification at this size
    payload = {
        "path": "p.png",
        "query": "w=400",
        "accept": BROWSER.key,
        "format": first.plan.format,
        "quality": first.quality,
    }
    report = task_for(tmp_path, store, rendering).verify(canonical_path("p.png"), blob, payload)
    assert set(report) >= {"avif", "webp", "jpeg", "first", "winner"}
    assert report["first"]["quality"] == first.quality  # the served answer, measured
    pairs = store.quality_pairs()
    assert {fmt for _p, _f, fmt, _t, _q in pairs} <= {"avif", "webp", "jpeg"} and pairs
    assert all(len(features) == 12 and target == 75 for _p, features, _f, target, _q in pairs)
    assert store.outcomes()["quality"] == {"provisional-ok": 1}
    assert len(pairs) >= 2 and store.job("retrain-quality", f"pairs-{len(pairs) // 2}")
    # Now the request path answers final at once, in the winning format, at its quality.
    final = first_answer(rendering, blob, "w=400", BROWSER)
    winner = report["winner"]
    assert final.stage == "final" and final.plan.format == winner
    assert final.quality == report[winner]["quality"] and final.encodes == 0
    assert final.score is None  # one encode, no metric
    other_size = first_answer(rendering, blob, "w=390", BROWSER)  # same size bucket
    assert other_size.stage == "final"
    # A client without AVIF or WebP has its own format decision still to come.
    plain = first_answer(rendering, blob, "w=400", AcceptClass(False, False))
    assert plain.plan.format == "jpeg" and plain.stage == "provisional"
    rendering.decisions.close()


def test_a_first_answer_under_the_target_is_counted_and_its_keys_change(
    tmp_path: Path, store: Store
) -> None:
    """A predictor that guesses quality 1 with no margin: the first answer sits at the
    policy's floor (50), far under the target; verification says so."""
    models = tmp_path / "models"
    constant_predictor(models, 1.0, {"jpeg": 0, "webp": 0, "avif": 0})
    blob = (shared_data() / "kodak" / "kodim03.png").read_bytes()
    rendering = rendering_for(tmp_path, store, models)
    first = first_answer(rendering, blob, "w=320&fm=jpeg", BROWSER)
    assert first.quality == 50 and first.stage == "provisional"
    path = canonical_path("p.png")
    before = store.generation(path)
    payload = {"path": "p.png", "query": "fm=jpeg&w=320", "accept": "", "format": "jpeg",
               "quality": 50}  # fmt: skip
    report = task_for(tmp_path, store, rendering).verify(path, blob, payload)
    assert report["first"]["below_floor"] and report["first"]["score"] < 73
    assert store.outcomes()["quality"] == {"provisional-below-floor": 1}
    assert store.generation(path) == before + 1
    # and the CDN copies of the provisional answer are purged (the outbox, same transaction)
    [purge] = store.purges(status="pending")
    assert (purge.prefix, purge.reason) == ("p.png", "provisional-below-floor")
    final = first_answer(rendering, blob, "w=320&fm=jpeg", BROWSER)
    assert final.stage == "final" and final.quality is not None
    assert final.quality > 50
    rendering.decisions.close()


def test_medical_stays_lossless_and_has_nothing_to_verify(tmp_path: Path, store: Store) -> None:
    blob = (shared_data() / "kodak" / "kodim03.png").read_bytes()
    rendering = rendering_for(tmp_path, store)
    for accept in (BROWSER, AcceptClass(False, False)):
        answer = first_answer(rendering, blob, "w=200&policy=medical", accept)
        assert answer.lossless and answer.stage == "final"
        assert answer.plan.format in ("png", "webp")
    rendering.decisions.close()


def test_the_formats_tried_follow_the_accept_class_and_alpha() -> None:
    auto, webp = parse_params("w=10"), parse_params("w=10&fm=webp")
    assert candidates(auto, accept_of("avif,webp"), has_alpha=False) == ["avif", "webp", "jpeg"]
    assert candidates(auto, accept_of("webp"), has_alpha=True) == ["webp"]
    assert candidates(auto, accept_of(""), has_alpha=False) == ["jpeg"]
    assert candidates(webp, accept_of("avif,webp"), has_alpha=False) == ["webp"]
