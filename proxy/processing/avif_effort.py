"""Pick the AVIF encoder effort from a time budget, measured on this machine.

AVIF at default effort is what makes peers slow. Rather than guess, encode a synthetic
1 MP image at rising efforts and keep the highest that fits the budget; the result is
remembered in the data dir, keyed by libvips version, CPU count and budget.
"""

from __future__ import annotations

import fcntl
import json
import logging
import math
import os
import threading
import time
from pathlib import Path

import pyvips

log = logging.getLogger(__name__)
MAX_EFFORT = 9


def _sample() -> pyvips.Image:
    """1 MP of texture plus smooth gradients: harder than most photos for the encoder."""
    noise = pyvips.Image.perlin(1000, 1000, cell_size=64, seed=7)
    detail = pyvips.Image.gaussnoise(1000, 1000, sigma=18, mean=128, seed=11)
    ramp = pyvips.Image.xyz(1000, 1000)[0] / 4
    red = (noise * 90 + 128).cast("uchar")
    green = (detail * 0.5 + ramp * 0.5).cast("uchar")
    blue = (noise * 60 + detail * 0.4).cast("uchar")
    return red.bandjoin([green, blue]).copy(interpretation="srgb")


def measure(budget_s: float, quality: int = 60) -> int:
    sample = _sample().copy_memory()
    chosen = 0
    for effort in range(MAX_EFFORT + 1):
        started = time.perf_counter()
        sample.heifsave_buffer(Q=quality, compression="av1", effort=effort)
        elapsed = time.perf_counter() - started
        log.info("avif effort %d: %.3f s per MP", effort, elapsed)
        if elapsed > budget_s:
            break
        chosen = effort
    return chosen


class AvifEffort:
    """Thread-safe, lazily calibrated effort for one budget."""

    def __init__(self, budget_s: float, cache_dir: Path | None) -> None:
        self.budget_s = budget_s
        self._cache_file = cache_dir / "avif-effort.json" if cache_dir else None
        self._lock = threading.Lock()
        self._effort: int | None = None

    @classmethod
    def fixed(cls, effort: int) -> AvifEffort:
        """An operator-chosen effort: no calibration."""
        chosen = cls(0.0, None)
        chosen._effort = effort
        return chosen

    @property
    def _key(self) -> str:
        vips = ".".join(str(pyvips.version(part)) for part in range(3))
        return f"vips-{vips}/cpus-{os.cpu_count()}/budget-{self.budget_s}"

    def get(self) -> int:
        if self._effort is not None:
            return self._effort
        with self._lock:
            if self._effort is None:
                loaded = self._load()
                self._effort = loaded if loaded is not None else self._calibrate_once()
            return self._effort

    def _calibrate_once(self) -> int:
        """Calibrate, unless another process of this node (``server.workers``) is doing it:
        then wait for its result. Sixteen workers encoding at once would each measure a
        sixteenth of the machine, and pick too low an effort."""
        if self._cache_file is None:
            return self._calibrate()
        self._cache_file.parent.mkdir(parents=True, exist_ok=True)
        lock = self._cache_file.with_suffix(".lock")
        with lock.open("a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file closes
            loaded = self._load()  # what the process that held the lock measured
            return loaded if loaded is not None else self._calibrate()

    def for_pixels(self, pixels: int) -> int:
        """The effort for an output of ``pixels``: the calibrated one up to 1 MP, then one
        step lower per doubling. Each step down about halves the time (0.06, 0.11, 0.26,
        0.38 s per MP for efforts 0-3 on 2 cores), and libaom cannot be stopped mid-encode,
        so a 36 MP AVIF must not take 36 times the 1 MP budget (effort 0: about 2 s)."""
        effort = self.get()
        doublings = math.ceil(math.log2(pixels / 1_000_000)) if pixels > 1_000_000 else 0
        return max(0, effort - doublings)

    def _load(self) -> int | None:
        if not self._cache_file or not self._cache_file.exists():
            return None
        try:
            saved = json.loads(self._cache_file.read_text())
        except (OSError, ValueError):
            return None
        value = saved.get(self._key)
        return int(value) if isinstance(value, int) else None

    def _calibrate(self) -> int:
        effort = measure(self.budget_s)
        log.info("avif effort %d chosen for a %.2f s/MP budget", effort, self.budget_s)
        if self._cache_file:
            try:
                self._cache_file.parent.mkdir(parents=True, exist_ok=True)
                self._cache_file.write_text(json.dumps({self._key: effort}))
            except OSError:
                log.warning("cannot remember the AVIF calibration in %s", self._cache_file)
        return effort
