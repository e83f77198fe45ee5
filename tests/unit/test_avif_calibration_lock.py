"""AVIF calibration once per node: a worker waits for the one calibrating, then reads its
result (``proxy.processing.avif_effort``)."""

from __future__ import annotations

import fcntl
import json
import os
import time
from pathlib import Path

from proxy.processing.avif_effort import AvifEffort


def test_a_worker_waits_for_the_calibration_another_holds(tmp_path: Path) -> None:
    effort = AvifEffort(0.6, tmp_path)
    cache = tmp_path / "avif-effort.json"
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # "another worker": holds the lock, calibrates (here: 0.3 s), writes
        with cache.with_suffix(".lock").open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            os.write(ready_w, b"x")
            time.sleep(0.3)
            cache.write_text(json.dumps({effort._key: 7}))
        os._exit(0)
    os.read(ready_r, 1)
    started = time.monotonic()
    assert effort.get() == 7  # its result, not a calibration of our own
    assert 0.2 < time.monotonic() - started < 5
    os.waitpid(pid, 0)
