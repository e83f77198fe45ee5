"""ProcessingPool: bounded admission (503 + Retry-After) and a per-job deadline."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator

import pytest

from proxy.errors import DeadlineExceeded, Overloaded
from proxy.server.pool import ProcessingPool
from proxy.server.problems import problem_of


@pytest.fixture
def gate() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()  # never leave a worker blocked


def blocked(gate: threading.Event, result: str = "ok") -> Callable[[float], str]:
    def work(deadline: float) -> str:
        assert deadline > time.monotonic() - 60
        gate.wait(timeout=10)
        return result

    return work


async def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, "condition not reached"
        await asyncio.sleep(0.005)


def test_work_runs_off_the_loop_with_its_deadline() -> None:
    async def scenario() -> None:
        pool = ProcessingPool(workers=1, queue_limit=0, retry_after_s=1)
        seen: list[tuple[str, float]] = []

        def work(deadline: float) -> int:
            seen.append((threading.current_thread().name, deadline - time.monotonic()))
            return 42

        assert await pool.run(work, 5.0) == 42
        ((name, left),) = seen
        assert name.startswith("loupe-render")
        assert 4.0 < left <= 5.0
        await wait_until(lambda: pool.in_flight == 0)
        pool.shutdown()

    asyncio.run(scenario())


def test_past_capacity_is_overloaded_with_retry_after(gate: threading.Event) -> None:
    async def scenario() -> None:
        pool = ProcessingPool(workers=1, queue_limit=1, retry_after_s=7)
        assert pool.capacity == 2
        running = [asyncio.create_task(pool.run(blocked(gate, f"r{i}"), 10)) for i in range(2)]
        await wait_until(lambda: pool.in_flight == 2)
        with pytest.raises(Overloaded) as raised:
            await pool.run(blocked(gate), 10)
        assert not isinstance(raised.value, DeadlineExceeded)
        assert problem_of(raised.value).status == 503
        assert raised.value.headers == {"Retry-After": "7"}
        assert "2 renders in flight" in raised.value.detail
        assert pool.in_flight == 2  # the refused job took no slot

        gate.set()
        assert await asyncio.gather(*running) == ["r0", "r1"]
        await wait_until(lambda: pool.in_flight == 0)
        # Capacity is back once the renders finish.
        assert await pool.run(blocked(gate, "again"), 10) == "again"
        pool.shutdown()

    asyncio.run(scenario())


def test_a_slow_job_past_its_deadline_is_deadline_exceeded(gate: threading.Event) -> None:
    async def scenario() -> None:
        pool = ProcessingPool(workers=1, queue_limit=2, retry_after_s=3)
        started = time.monotonic()
        with pytest.raises(DeadlineExceeded) as raised:
            await pool.run(blocked(gate), 0.05)
        assert time.monotonic() - started < 2
        assert problem_of(raised.value).status == 503
        assert raised.value.headers == {"Retry-After": "3"}
        assert "longer than 0.05 s" in raised.value.detail
        # The started job holds its slot until it really stops.
        assert pool.in_flight == 1
        gate.set()
        await wait_until(lambda: pool.in_flight == 0)
        pool.shutdown()

    asyncio.run(scenario())


def test_a_queued_job_past_its_deadline_never_runs(gate: threading.Event) -> None:
    async def scenario() -> None:
        pool = ProcessingPool(workers=1, queue_limit=1, retry_after_s=1)
        ran: list[str] = []

        def queued(deadline: float) -> str:
            ran.append("queued")
            return "queued"

        first = asyncio.create_task(pool.run(blocked(gate, "first"), 10))
        await wait_until(lambda: pool.in_flight == 1)
        with pytest.raises(DeadlineExceeded):
            await pool.run(queued, 0.05)
        await wait_until(lambda: pool.in_flight == 1)  # the cancelled job gave its slot back
        gate.set()
        assert await first == "first"
        await wait_until(lambda: pool.in_flight == 0)
        pool.shutdown()
        assert ran == []

    asyncio.run(scenario())
