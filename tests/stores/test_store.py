"""The store's contract, identical on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time

import pytest

from proxy.cropping.overrides import CropOverride
from proxy.geometry import Rect
from proxy.stores import Store, open_store
from proxy.stores.base import (
    AltText,
    Feedback,
    QAResult,
    ReviewConflict,
    ReviewNotFound,
    SourceRecord,
)
from proxy.stores.migrations import MIGRATIONS


def test_migrations_are_versioned_and_idempotent(store: Store, store_url: str) -> None:
    assert store.schema_version() == MIGRATIONS[-1].version
    again = open_store(store_url)
    try:
        assert again.migrate() == []  # nothing re-applied
    finally:
        again.close()


def test_source_upsert_keeps_moderation_and_reports_new(store: Store) -> None:
    record, new = store.record_source(SourceRecord(path="a/b.jpg", phash="ffd8000000000001"))
    assert new and record.moderation_status == "unscanned"
    store.set_moderation("a/b.jpg", "held", 0.93)
    record, new = store.record_source(
        SourceRecord(path="a/b.jpg", width=10, height=20, content_class="photo")
    )
    assert not new
    assert (record.width, record.height, record.content_class) == (10, 20, "photo")
    assert record.phash == "ffd8000000000001"  # absent fields keep their value
    assert (record.moderation_status, record.moderation_score) == ("held", 0.93)


def test_near_duplicates_use_the_chunk_index(store: Store) -> None:
    base = 0x0123456789ABCDEF
    store.record_source(SourceRecord(path="orig.jpg", phash=f"{base:016x}"))
    store.record_source(SourceRecord(path="near.jpg", phash=f"{base ^ 0b1011:016x}"))  # 3 bits
    store.record_source(SourceRecord(path="far.jpg", phash=f"{base ^ 0xFF00FF:016x}"))  # 16 bits
    store.record_source(SourceRecord(path="top.jpg", phash=f"{(base ^ (1 << 63)):016x}"))
    found = store.near_duplicates(f"{base:016x}", 6, exclude="orig.jpg")
    assert found == [("top.jpg", 1), ("near.jpg", 3)]
    # a changed hash is re-indexed, not left behind
    store.record_source(SourceRecord(path="near.jpg", phash=f"{~base & (2**64 - 1):016x}"))
    assert store.near_duplicates(f"{base:016x}", 6, exclude="orig.jpg") == [("top.jpg", 1)]


def test_overrides_upsert_list_delete(store: Store) -> None:
    store.put_override(CropOverride(path="p.jpg", aspect="16:9", rect=Rect(1, 2, 160, 90)))
    store.put_override(
        CropOverride(path="p.jpg", aspect="16:9", rect=Rect(3, 4, 320, 180), reason="x")
    )
    store.put_override(
        CropOverride(path="p.jpg", aspect="any", rect=Rect(0, 0, 50, 50), ctx="hero")
    )
    got = store.overrides("p.jpg")
    assert [(o.aspect, o.ctx, o.rect) for o in got] == [
        ("16:9", "", Rect(3, 4, 320, 180)),
        ("any", "hero", Rect(0, 0, 50, 50)),
    ]
    assert store.delete_overrides("p.jpg", "16:9") == 1
    assert store.delete_overrides("p.jpg") == 1
    assert store.overrides("p.jpg") == []


def test_machine_alt_never_overwrites_a_human(store: Store) -> None:
    machine = AltText(path="p.jpg", text="A red shoe.", status="machine", phash="00ff", model="m")
    assert store.put_machine_alt(machine)
    assert store.alt("p.jpg") is not None
    store.put_alt(AltText(path="p.jpg", text="A red running shoe.", status="user"))
    assert not store.put_machine_alt(machine)
    stored = store.alt("p.jpg")
    assert stored is not None and stored.text == "A red running shoe."
    assert stored.status == "user" and not stored.machine_generated


def test_alt_by_phash_prefers_the_best_reviewed_text(store: Store) -> None:
    store.put_alt(AltText(path="a.jpg", text="draft", status="draft", phash="abcd"))
    assert store.alt_by_phash("abcd", exclude="new.jpg") is None  # drafts are never reused
    store.put_alt(AltText(path="b.jpg", text="machine", status="machine", phash="abcd"))
    store.put_alt(AltText(path="c.jpg", text="reviewed", status="reviewed", phash="abcd"))
    best = store.alt_by_phash("abcd", exclude="new.jpg")
    assert best is not None and best.text == "reviewed"
    assert store.alt_by_phash("abcd", exclude="c.jpg") is not None


def test_review_queue_dedupes_pending_and_decides_once(store: Store) -> None:
    item = store.open_review("p.jpg", "alt", "p.jpg", {"draft": "A shoe", "confidence": 0.4})
    assert item is not None and item.status == "pending"
    assert store.open_review("p.jpg", "alt", "p.jpg", {}) is None  # one pending per subject
    assert [i.id for i in store.reviews(component="alt")] == [item.id]
    feedback = Feedback(
        review_id=item.id,
        path="p.jpg",
        component="alt",
        action="edit",
        ai_output=item.payload,
        correction={"text": "A red shoe"},
        reason="colour missing",
        reviewer="ana",
        seconds=7.5,
        context={},
    )

    def effect(tx: object) -> None:
        store.apply_alt(tx, AltText(path="p.jpg", text="A red shoe", status="reviewed"))  # type: ignore[arg-type]

    decided = store.decide_review(item.id, "edited", {"text": "A red shoe"}, feedback, apply=effect)
    assert decided.status == "edited" and decided.decision == {"text": "A red shoe"}
    alt = store.alt("p.jpg")
    assert alt is not None and alt.status == "reviewed"
    with pytest.raises(ReviewConflict):
        store.decide_review(item.id, "accepted", {}, feedback)
    with pytest.raises(ReviewNotFound):
        store.review(10_000)
    [event] = list(store.feedback())
    assert event.ai_output == {"draft": "A shoe", "confidence": 0.4}
    assert event.correction == {"text": "A red shoe"} and event.seconds == 7.5
    # a new item may open once the old one is decided
    assert store.open_review("p.jpg", "alt", "p.jpg", {}) is not None


def test_a_failing_effect_rolls_the_decision_back(store: Store) -> None:
    item = store.open_review("p.jpg", "crop", "p.jpg|16:9|hero", {})
    assert item is not None
    feedback = Feedback(item.id, "p.jpg", "crop", "accept", {}, None, "", "ana", 1.0, {})

    def broken(_tx: object) -> None:
        raise RuntimeError("effect failed")

    with pytest.raises(RuntimeError):
        store.decide_review(item.id, "accepted", {}, feedback, apply=broken)
    assert store.review(item.id).status == "pending"
    assert list(store.feedback()) == []


def test_qa_results_upsert_per_variant(store: Store) -> None:
    store.put_qa(QAResult("p.jpg", "w=10", False, {"checks": []}))
    store.put_qa(QAResult("p.jpg", "w=10", True, {"checks": [1]}))
    store.put_qa(QAResult("p.jpg", "w=20", True, {}))
    results = store.qa_results("p.jpg")
    assert sorted((r.variant, r.passed) for r in results) == [("w=10", True), ("w=20", True)]


def test_stratum_counter_is_atomic_across_threads(store: Store) -> None:
    def every_third(seen: int, sampled: int) -> bool:
        return seen % 3 == 0

    results: list[bool] = []
    lock = threading.Lock()

    def worker() -> None:
        for _ in range(10):
            chosen = store.count_in_stratum("shop|photo", every_third)
            with lock:
                results.append(chosen)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 40 and sum(results) == 14  # seen 0,3,...,39 -> 14 picks


def test_jobs_are_idempotent_leased_retried_and_dead_lettered(store: Store) -> None:
    assert store.enqueue("alt", "p.jpg", {"n": 1})
    assert not store.enqueue("alt", "p.jpg", {"n": 2})  # idempotent
    job = store.claim("w1", lease_s=60)
    assert job is not None and job.kind == "alt" and job.attempts == 1
    assert store.claim("w2", lease_s=60) is None  # leased
    assert store.fail(job, "w1", "boom", retry_in_s=0.0) == "queued"
    job = store.claim("w2", lease_s=60)
    assert job is not None and job.attempts == 2 and job.last_error == "boom"
    assert not store.finish(job, "w1")  # not w1's lease any more
    assert store.fail(job, "w2", "boom again", retry_in_s=None) == "dead"
    assert store.claim("w1", lease_s=60) is None
    assert store.job_counts() == {"dead": 1}
    assert store.enqueue("alt", "p.jpg", again=True)  # a re-upload revives it
    job = store.claim("w1", lease_s=60)
    assert job is not None and job.attempts == 1 and store.finish(job, "w1")
    assert store.job_counts() == {"done": 1}


def test_an_expired_lease_returns_the_job(store: Store) -> None:
    store.enqueue("qa", "p.jpg")
    job = store.claim("dead-worker", lease_s=-1)  # already expired: the worker "died"
    assert job is not None
    again = store.claim("w2", lease_s=60)
    assert again is not None and again.id == job.id and again.attempts == 2
    assert not store.finish(job, "dead-worker")
    assert store.finish(again, "w2")


def test_concurrent_claimers_never_share_a_job(store: Store) -> None:
    for n in range(30):
        store.enqueue("phash", f"p{n}.jpg")
    claimed: list[int] = []
    lock = threading.Lock()

    def worker(name: str) -> None:
        while (job := store.claim(name, lease_s=60)) is not None:
            with lock:
                claimed.append(job.id)
            store.finish(job, name)

    threads = [threading.Thread(target=worker, args=(f"w{n}",)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(claimed) == sorted(set(claimed)) and len(claimed) == 30


def test_one_describer_per_picture(store: Store) -> None:
    assert store.claim_phash("abcd", "a.jpg", ttl_s=60)
    assert not store.claim_phash("abcd", "b.jpg", ttl_s=60)  # a copy waits
    assert store.claim_phash("abcd", "a.jpg", ttl_s=60)  # the holder renews
    assert store.claim_phash("ef01", "b.jpg", ttl_s=60)  # another picture is free
    assert store.claim_phash("9999", "c.jpg", ttl_s=-1)  # expired at once
    assert store.claim_phash("9999", "d.jpg", ttl_s=60)  # so another may take it


def test_a_new_version_of_a_source_runs_its_finished_jobs_again(store: Store) -> None:
    assert store.enqueue("alt", "p.jpg", {}, version="v1")
    job = store.claim("w", lease_s=60)
    assert job is not None and job.payload == {"version": "v1"} and store.finish(job, "w")
    assert not store.enqueue("alt", "p.jpg", {}, version="v1")  # same picture: done is done
    assert store.enqueue("alt", "p.jpg", {}, version="v2")  # a new picture at the same path
    again = store.claim("w", lease_s=60)
    assert again is not None and again.payload == {"version": "v2"} and again.attempts == 1
    assert not store.enqueue("alt", "p.jpg", {}, version="v3")  # running: left alone


def test_sessions_open_close_and_expire(store: Store) -> None:
    now = time.time()
    store.open_session("a" * 64, "Ann", now + 60)
    store.open_session("b" * 64, "Bob", now - 1)  # already over: never open
    assert store.session_open("a" * 64)
    assert not store.session_open("b" * 64)
    assert not store.session_open("c" * 64)
    assert store.close_session("a" * 64)
    assert not store.session_open("a" * 64)
    assert not store.close_session("a" * 64)  # closing twice changes nothing
    store.open_session("d" * 64, "Dee", now + 60)  # a sign-in sweeps expired rows away
    with store.transaction(write=False) as tx:
        assert [row[0] for row in tx.run("SELECT key FROM admin_sessions")] == ["d" * 64]
