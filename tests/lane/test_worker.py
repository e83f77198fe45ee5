"""The worker's contract on a real SQLite store: success finishes, failures back off
exponentially, permanent failures and exhausted attempts dead-letter, unknown kinds too."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from proxy.config import LaneConfig
from proxy.lane.worker import JobFailed, Worker, backoff
from proxy.stores import Store, open_store
from proxy.stores.base import Job


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(f"sqlite:///{tmp_path / 'lane.db'}")
    yield opened
    opened.close()


def lane(**overrides: float) -> LaneConfig:
    values = {"backoff_s": 0.0001, "max_attempts": 3, "lease_s": 30.0, **overrides}
    return LaneConfig(**values)  # type: ignore[arg-type]


def test_backoff_doubles_and_is_capped() -> None:
    config = LaneConfig(backoff_s=2.0)
    assert [backoff(config, n) for n in (1, 2, 3, 4)] == [2.0, 4.0, 8.0, 16.0]
    assert backoff(config, 40) == 3600.0


def test_success_finishes_the_job(store: Store) -> None:
    seen: list[str] = []

    async def handler(job: Job) -> None:
        seen.append(job.subject)

    store.enqueue("k", "a.jpg")
    worker = Worker(store, {"k": handler}, lane())
    assert asyncio.run(worker.drain()) == 1
    assert seen == ["a.jpg"] and store.job_counts() == {"done": 1}


def test_transient_failures_retry_then_dead_letter(store: Store) -> None:
    calls = 0

    async def flaky(job: Job) -> None:
        nonlocal calls
        calls += 1
        raise RuntimeError("model server down")

    store.enqueue("k", "a.jpg")
    worker = Worker(store, {"k": flaky}, lane())

    async def until_dead() -> None:
        for _ in range(200):
            await worker.run_once()
            if store.job_counts().get("dead"):
                return
            await asyncio.sleep(0.005)

    asyncio.run(until_dead())
    assert calls == 3  # max_attempts
    job = store.job("k", "a.jpg")
    assert job is not None and job.status == "dead"
    assert job.last_error == "RuntimeError: model server down"


def test_a_retry_is_scheduled_after_the_backoff(store: Store) -> None:
    async def failing(job: Job) -> None:
        raise JobFailed("429", retry_in_s=30)

    store.enqueue("k", "a.jpg")
    worker = Worker(store, {"k": failing}, lane())
    assert asyncio.run(worker.run_once())
    assert not asyncio.run(worker.run_once())  # not due for 30 s
    job = store.job("k", "a.jpg")
    assert job is not None and job.status == "queued" and job.attempts == 1


def test_permanent_failures_and_unknown_kinds_dead_letter_at_once(store: Store) -> None:
    async def broken(job: Job) -> None:
        raise JobFailed("undecodable", permanent=True)

    store.enqueue("k", "a.jpg")
    store.enqueue("mystery", "b.jpg")
    worker = Worker(store, {"k": broken}, lane(max_attempts=5))
    assert asyncio.run(worker.drain()) == 2
    assert store.job_counts() == {"dead": 2}
    mystery = store.job("mystery", "b.jpg")
    assert mystery is not None and "no handler" in (mystery.last_error or "")


def test_a_hung_handler_is_cut_at_the_lease(store: Store) -> None:
    async def hangs(job: Job) -> None:
        await asyncio.sleep(10)

    store.enqueue("k", "a.jpg")
    worker = Worker(store, {"k": hangs}, lane(lease_s=0.2, max_attempts=1))
    assert asyncio.run(worker.run_once())
    job = store.job("k", "a.jpg")
    assert job is not None and job.status == "dead" and "Timeout" in (job.last_error or "")
