"""The sliding window that limits wrong admin tokens and review-opening requests."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from proxy.windows import SlidingWindow


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_key_is_refused_past_its_limit_until_the_window_moves() -> None:
    clock = Clock()
    window = SlidingWindow(3, 60.0, clock=clock)
    assert [window.take("a") for _ in range(4)] == [True, True, True, False]
    assert window.take("b")  # another key has its own budget
    clock.now += 30
    wait = window.retry_after("a")
    assert wait is not None and 29 < wait <= 30
    clock.now += 30
    assert window.retry_after("a") is None
    assert window.take("a")


def test_the_keys_tracked_are_bounded() -> None:
    window = SlidingWindow(1, 60.0, max_keys=100)
    for n in range(10_000):
        window.record(f"client-{n}")
    assert len(window._events) <= 100


@given(st.lists(st.floats(min_value=0, max_value=500), max_size=60), st.integers(1, 8))
def test_never_more_than_the_limit_in_any_window(gaps: list[float], limit: int) -> None:
    clock = Clock()
    window = SlidingWindow(limit, 60.0, clock=clock)
    taken: list[float] = []
    for gap in gaps:
        clock.now += gap
        if window.take("k"):
            taken.append(clock.now)
    for start in taken:
        assert sum(1 for t in taken if start <= t < start + 60.0) <= limit
