"""The CDN purge outbox on both backends: written by the decision's own transaction,
coalesced per prefix, leased, retried with backoff and dead-lettered."""

from __future__ import annotations

import time

from proxy.cropping.overrides import CropOverride
from proxy.geometry import Rect
from proxy.sources.paths import SourcePath
from proxy.stores import Store


def test_every_decision_that_changes_bytes_queues_a_purge(store: Store) -> None:
    path = SourcePath("shop/shoe.jpg")
    store.put_override(CropOverride(path=path, aspect="1:1", rect=Rect(0, 0, 10, 10)))
    store.put_rule("shop", "never-crop", "ann", "packshots")
    store.bump_generation(SourcePath("other.jpg"), reason="purge")
    pending = {item.prefix: item.reason for item in store.claim_purges(10, 30)}
    assert pending == {"shop/shoe.jpg": "override", "shop": "rule", "other.jpg": "purge"}


def test_purges_coalesce_per_prefix_and_one_queued_again_while_sent_stays(store: Store) -> None:
    store.bump_generation("a.jpg", reason="purge")
    store.bump_generation("a.jpg", reason="override")
    [item] = store.claim_purges(10, 30)
    assert item.reason == "purge,override"  # both events, one purge
    assert store.claim_purges(10, 30) == []  # leased
    store.bump_generation("a.jpg", reason="rule")  # a new decision while it is being sent
    store.purges_sent([item])
    [again] = store.claim_purges(10, 30)  # due at once, with the new reason
    assert again.reason == "rule" and again.seq > item.seq
    store.purges_sent([again])
    assert store.claim_purges(10, 30) == []
    assert store.purge_counts()["pending"] == 0


def test_a_failing_purge_backs_off_then_is_dead_lettered_and_revives(store: Store) -> None:
    store.queue_purge("b.jpg", "purge")
    [item] = store.claim_purges(10, 30)
    assert store.purges_failed([item], "HTTP 503", lambda n: 0.0, dead_after_s=3600) == 0
    [retry] = store.claim_purges(10, 30)
    assert retry.attempts == 1
    assert store.purges_failed([retry], "HTTP 503", lambda n: 60.0, dead_after_s=3600) == 0
    assert store.claim_purges(10, 30) == []  # backing off
    counts = store.purge_counts()
    assert counts["pending"] == 1 and counts["dead"] == 0
    time.sleep(0.01)
    late = store.purges("pending")[0]
    assert store.purges_failed([late], "HTTP 503", lambda n: 0.0, dead_after_s=0.001) == 1
    assert store.purge_counts()["dead"] == 1
    [dead] = store.purges("dead")
    assert dead.last_error == "HTTP 503" and dead.attempts == 3
    store.queue_purge("b.jpg", "override")  # a new decision revives it
    [revived] = store.claim_purges(10, 30)
    assert revived.attempts == 0 and revived.reason == "override"


def test_a_machine_verdict_on_never_served_bytes_purges_nothing(store: Store) -> None:
    path = SourcePath("m.jpg")
    store.bind_content(path, "id-1", "digest-1")
    store.set_verdict("digest-1", "clear", 0.1)  # unscanned -> clear: nothing at the edge yet
    assert store.claim_purges(10, 30) == []
    store.set_verdict("digest-1", "held", 0.9, human=True)
    assert [item.prefix for item in store.claim_purges(10, 30)] == ["m.jpg"]


def test_a_sent_purge_is_repeated_once_after_the_delay(store: Store) -> None:
    store.queue_purge("r.jpg", "override")
    [first] = store.claim_purges(10, 30)
    store.purges_sent([first], repeat_after_s=0.05)
    assert store.claim_purges(10, 30) == []  # not yet
    time.sleep(0.06)
    [follow_up] = store.claim_purges(10, 30)
    assert follow_up.repeated and follow_up.prefix == "r.jpg"
    store.purges_sent([follow_up], repeat_after_s=0.05)
    time.sleep(0.06)
    assert store.claim_purges(10, 30) == [] and store.purge_counts()["pending"] == 0
    store.queue_purge("r.jpg", "rule")  # a new decision starts over: two sends again
    [again] = store.claim_purges(10, 30)
    assert not again.repeated


def test_a_new_decision_does_not_wait_for_the_previous_purge_s_repeat(store: Store) -> None:
    store.queue_purge("n.jpg", "purge")
    [first] = store.claim_purges(10, 30)
    store.purges_sent([first], repeat_after_s=60)
    store.queue_purge("n.jpg", "review")
    [due] = store.claim_purges(10, 30)
    assert due.reason == "review" and not due.repeated
