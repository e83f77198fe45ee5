"""SingleFlight: identical concurrent requests compute once and share the result."""

from __future__ import annotations

import asyncio

import pytest

from proxy.cache.singleflight import SingleFlight


class Work:
    """A computation that counts its runs and waits to be released."""

    def __init__(self, value: str = "done", error: Exception | None = None) -> None:
        self.calls = 0
        self.release = asyncio.Event()
        self.value = value
        self.error = error

    async def __call__(self) -> str:
        self.calls += 1
        await self.release.wait()
        if self.error is not None:
            raise self.error
        return f"{self.value}-{self.calls}"


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def test_concurrent_callers_share_one_computation() -> None:
    async def scenario() -> None:
        flights: SingleFlight[str] = SingleFlight()
        work = Work()
        callers = [asyncio.create_task(flights.run("k", work)) for _ in range(5)]
        await settle()
        assert len(flights) == 1
        work.release.set()
        results = await asyncio.gather(*callers)
        assert work.calls == 1
        assert [value for value, _ in results] == ["done-1"] * 5
        assert [joined for _, joined in results] == [False, True, True, True, True]
        assert len(flights) == 0

        # A second wave after completion computes again.
        again = await flights.run("k", work)
        assert again == ("done-2", False)
        assert work.calls == 2

    asyncio.run(scenario())


def test_different_keys_compute_separately() -> None:
    async def scenario() -> None:
        flights: SingleFlight[str] = SingleFlight()
        a, b = Work("a"), Work("b")
        a.release.set()
        b.release.set()
        results = await asyncio.gather(flights.run("a", a), flights.run("b", b))
        assert results == [("a-1", False), ("b-1", False)]
        assert (a.calls, b.calls) == (1, 1)

    asyncio.run(scenario())


def test_an_exception_reaches_every_waiter_and_is_not_remembered() -> None:
    async def scenario() -> None:
        flights: SingleFlight[str] = SingleFlight()
        work = Work(error=ValueError("broken image"))
        callers = [asyncio.create_task(flights.run("k", work)) for _ in range(3)]
        await settle()
        work.release.set()
        results = await asyncio.gather(*callers, return_exceptions=True)
        assert work.calls == 1
        assert all(isinstance(r, ValueError) and str(r) == "broken image" for r in results)
        assert len(flights) == 0

        work.error = None
        assert await flights.run("k", work) == ("done-2", False)

    asyncio.run(scenario())


def test_cancelling_the_first_caller_does_not_cancel_the_others() -> None:
    async def scenario() -> None:
        flights: SingleFlight[str] = SingleFlight()
        work = Work()
        first = asyncio.create_task(flights.run("k", work))
        await settle()
        second = asyncio.create_task(flights.run("k", work))
        await settle()
        first.cancel()
        await settle()
        assert first.cancelled()
        assert len(flights) == 1  # the computation is still in flight
        work.release.set()
        assert await second == ("done-1", True)
        assert work.calls == 1
        with pytest.raises(asyncio.CancelledError):
            await first

    asyncio.run(scenario())


def test_a_lone_cancelled_caller_still_lets_the_work_finish_for_late_joiners() -> None:
    async def scenario() -> None:
        flights: SingleFlight[str] = SingleFlight()
        work = Work()
        first = asyncio.create_task(flights.run("k", work))
        await settle()
        first.cancel()
        await settle()
        late = asyncio.create_task(flights.run("k", work))
        await settle()
        work.release.set()
        assert await late == ("done-1", True)
        assert work.calls == 1

    asyncio.run(scenario())
