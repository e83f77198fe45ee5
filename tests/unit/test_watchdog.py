"""The encode deadline: one timer thread kills a libvips evaluation that runs too long."""

from __future__ import annotations

import time

import pytest
import pyvips

from proxy.processing.watchdog import Watchdog


def slow_image() -> pyvips.Image:
    """Synthetic and lazy: a few hundred ms of blur when encoded, no file needed."""
    return pyvips.Image.gaussnoise(3000, 3000).gaussblur(10).cast("uchar")


def test_an_evaluation_past_its_deadline_is_killed_promptly() -> None:
    watchdog = Watchdog()
    image = slow_image()
    started = time.monotonic()
    with watchdog.watch(image, started + 0.05) as killed:
        with pytest.raises(pyvips.Error):
            image.write_to_buffer(".jpg")
        assert killed()
    assert time.monotonic() - started < 0.5


def test_a_finished_evaluation_is_left_alone_and_disarmed() -> None:
    watchdog = Watchdog()
    image = pyvips.Image.black(64, 64)
    with watchdog.watch(image, time.monotonic() + 0.05) as killed:
        assert image.write_to_buffer(".png")
    time.sleep(0.15)  # past the deadline: nothing is killed after the fact
    assert not killed()
    assert not watchdog._armed and not watchdog._killed


def test_many_watches_share_one_thread_and_the_earliest_deadline_fires_first() -> None:
    watchdog = Watchdog()
    late, early = slow_image(), slow_image()
    now = time.monotonic()
    with watchdog.watch(late, now + 60) as late_killed:
        with watchdog.watch(early, now + 0.05) as early_killed:
            with pytest.raises(pyvips.Error):
                early.write_to_buffer(".jpg")
            assert early_killed()
        assert not late_killed()
    assert watchdog._thread is not None


def test_a_deadline_far_in_the_future_keeps_the_thread_alive() -> None:
    watchdog = Watchdog()
    image = slow_image()
    with watchdog.watch(pyvips.Image.black(8, 8), 1e18):  # "no deadline", as tests pass it
        time.sleep(0.05)
        assert watchdog._thread is not None and watchdog._thread.is_alive()
        with watchdog.watch(image, time.monotonic() + 0.05) as killed:
            with pytest.raises(pyvips.Error):
                image.write_to_buffer(".jpg")
            assert killed()
