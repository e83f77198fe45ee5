"""What each AI component costs: inferences run, wall and CPU seconds, inferences each cache
saved, VLM tokens, and an estimate from configured prices.

Every process tallies in memory (:class:`CostMeter`) and adds its tallies to the store's
``ai_costs`` rows (per UTC day and component) every ``costs.flush_s`` and when asked, so
the endpoint, ``/metrics`` and every node read one shared truth.

A cache hit is attributed to exactly one cache, by what it shares with the computation
that filled it (:func:`saving_of`): the same bytes at the same path (another size or
variant of the source), the same bytes at another path (a re-upload), or only the
perceptual hash (other bytes that look the same: a re-encode, a resized copy).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Literal, Protocol, get_args

from proxy.config import CostsConfig
from proxy.errors import BadParameter

log = logging.getLogger(__name__)

AI_COMPONENTS: tuple[str, ...] = (
    "faces",
    "saliency",
    "text",
    "content",
    "nsfw",
    "vlm",
    "quality",
)
Saving = Literal["phash", "sizes", "reupload"]
SAVINGS: tuple[Saving, ...] = get_args(Saving)
FIELDS: tuple[str, ...] = (
    "inferences",
    "wall_s",
    "cpu_s",
    "saved_phash",
    "saved_sizes",
    "saved_reupload",
    "tokens_in",
    "tokens_out",
)
Origin = tuple[str, str]  # (path, digest of the bytes) of the computation a cache holds


def day_of(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d")


def bytes_digest(blob: bytes) -> str:
    """Which bytes a computation saw (the BLAKE2b the phash memo uses: cheap)."""
    return hashlib.blake2b(blob, digest_size=16).hexdigest()


def saving_of(origin: Sequence[str] | None, path: str, digest: str) -> Saving:
    """Which cache saved an inference (see the module docstring)."""
    if not origin or len(origin) != 2 or origin[1] != digest:
        return "phash"
    return "sizes" if origin[0] == path else "reupload"


class CostSink(Protocol):
    def add_costs(self, day: str, tallies: Mapping[str, Mapping[str, float]]) -> None: ...


class CostMeter:
    """Thread-safe tallies of one process, flushed to ``sink`` (None: kept, never written)."""

    def __init__(
        self,
        sink: CostSink | None,
        flush_s: float = 2.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.sink = sink
        self.flush_s = flush_s
        self.clock = clock
        self._lock = threading.Lock()
        self._flushing = threading.Lock()
        self._pending: dict[tuple[str, str], dict[str, float]] = {}
        self._last_flush = time.monotonic()

    def _add(self, component: str, field: str, amount: float) -> None:
        key = (day_of(self.clock()), component)
        with self._lock:
            tally = self._pending.setdefault(key, dict.fromkeys(FIELDS, 0.0))
            tally[field] += amount
        if time.monotonic() - self._last_flush >= self.flush_s:
            self.flush()

    def ran(self, component: str, wall_s: float, cpu_s: float, n: int = 1) -> None:
        self._add(component, "inferences", n)
        self._add(component, "wall_s", wall_s)
        self._add(component, "cpu_s", cpu_s)

    def saved(self, component: str, how: Saving, n: int = 1) -> None:
        self._add(component, f"saved_{how}", n)

    def tokens(self, tokens_in: int, tokens_out: int) -> None:
        self._add("vlm", "tokens_in", tokens_in)
        self._add("vlm", "tokens_out", tokens_out)

    @contextlib.contextmanager
    def measure(self, component: str, counted: bool = True) -> Iterator[None]:
        """Times the block (wall, and CPU of this thread) as one inference of ``component``;
        ``counted=False`` (the model is not loaded) tallies nothing."""
        wall, cpu = time.perf_counter(), time.thread_time()
        try:
            yield
        finally:
            if counted:
                self.ran(component, time.perf_counter() - wall, time.thread_time() - cpu)

    def flush(self) -> None:
        """Add the pending tallies to the store; on failure they wait for the next flush."""
        with self._flushing:
            with self._lock:
                pending, self._pending = self._pending, {}
                self._last_flush = time.monotonic()
            if not pending or self.sink is None:
                return
            by_day: dict[str, dict[str, dict[str, float]]] = {}
            for (day, component), tally in pending.items():
                by_day.setdefault(day, {})[component] = tally
            try:
                for day, tallies in by_day.items():
                    self.sink.add_costs(day, tallies)
            except Exception:  # the store blinked: the numbers are kept, not lost
                log.warning("AI cost tallies not written; retrying later", exc_info=True)
                with self._lock:
                    for key, tally in pending.items():
                        mine = self._pending.setdefault(key, dict.fromkeys(FIELDS, 0.0))
                        for field, amount in tally.items():
                            mine[field] += amount


def parse_since(raw: str | None) -> str:
    """``since``: a UTC day (2026-12-01) or epoch seconds, as the first day counted ("" =
    everything)."""
    if raw is None or raw == "":
        return ""
    try:
        return datetime.strptime(raw, "%Y-%m-%d").strftime("%Y-%m-%d")
    except ValueError:
        pass
    try:
        seconds = float(raw)
        if not 0 <= seconds < 1e11:
            raise ValueError(raw)
        return day_of(seconds)
    except ValueError:
        raise BadParameter("since must be a day (YYYY-MM-DD) or epoch seconds") from None


def _cost(component: str, tally: Mapping[str, float], prices: CostsConfig) -> float:
    cost = tally["inferences"] / 1000 * prices.per_1k(component)
    if component == "vlm":
        cost += tally["tokens_in"] * prices.vlm_per_token_in
        cost += tally["tokens_out"] * prices.vlm_per_token_out
    return cost


def _saved_cost(component: str, tally: Mapping[str, float], prices: CostsConfig) -> float:
    saved = sum(tally[f"saved_{how}"] for how in SAVINGS)
    if not saved:
        return 0.0
    per_inference = prices.per_1k(component) / 1000
    if component == "vlm" and tally["inferences"]:  # a saved call saves its average tokens
        per_inference += (
            tally["tokens_in"] * prices.vlm_per_token_in
            + tally["tokens_out"] * prices.vlm_per_token_out
        ) / tally["inferences"]
    return saved * per_inference


def _numbers(component: str, tally: Mapping[str, float], prices: CostsConfig) -> dict[str, Any]:
    saved = {how: int(tally[f"saved_{how}"]) for how in SAVINGS}
    return {
        "inferences": int(tally["inferences"]),
        "wall_s": round(tally["wall_s"], 3),
        "cpu_s": round(tally["cpu_s"], 3),
        "saved": {**saved, "total": sum(saved.values())},
        "tokens_in": int(tally["tokens_in"]),
        "tokens_out": int(tally["tokens_out"]),
        "cost": round(_cost(component, tally, prices), 6),
        "saved_cost": round(_saved_cost(component, tally, prices), 6),
    }


def cost_report(
    rows: Sequence[tuple[Any, ...]], prices: CostsConfig, images: int, since: str
) -> dict[str, Any]:
    """``rows``: (day, component, *FIELDS) from the store; ``images``: sources first seen
    since ``since``. Per component, totals, cost per image and the trend per day."""
    per_component = {name: dict.fromkeys(FIELDS, 0.0) for name in AI_COMPONENTS}
    per_day: dict[str, dict[str, float]] = {}
    for day, component, *values in rows:
        tally = dict(zip(FIELDS, (float(v or 0) for v in values), strict=True))
        into = per_component.setdefault(component, dict.fromkeys(FIELDS, 0.0))
        for field, amount in tally.items():
            into[field] += amount
        today = per_day.setdefault(day, {"inferences": 0.0, "saved": 0.0, "cost": 0.0})
        today["inferences"] += tally["inferences"]
        today["saved"] += sum(tally[f"saved_{how}"] for how in SAVINGS)
        today["cost"] += _cost(component, tally, prices)
    components = {name: _numbers(name, tally, prices) for name, tally in per_component.items()}
    total_cost = sum(c["cost"] for c in components.values())
    totals = {
        "inferences": sum(c["inferences"] for c in components.values()),
        "wall_s": round(sum(c["wall_s"] for c in components.values()), 3),
        "cpu_s": round(sum(c["cpu_s"] for c in components.values()), 3),
        "saved": {
            how: sum(c["saved"][how] for c in components.values()) for how in (*SAVINGS, "total")
        },
        "tokens_in": components.get("vlm", {}).get("tokens_in", 0),
        "tokens_out": components.get("vlm", {}).get("tokens_out", 0),
        "cost": round(total_cost, 6),
        "saved_cost": round(sum(c["saved_cost"] for c in components.values()), 6),
    }
    return {
        "since": since or None,
        "images": images,
        "cost_per_image": round(total_cost / images, 6) if images else None,
        "inferences_per_image": round(totals["inferences"] / images, 3) if images else None,
        "components": components,
        "totals": totals,
        "days": [
            {
                "day": day,
                "inferences": int(numbers["inferences"]),
                "saved": int(numbers["saved"]),
                "cost": round(numbers["cost"], 6),
            }
            for day, numbers in sorted(per_day.items())
        ],
        "prices": prices.model_dump(exclude={"flush_s"}),
    }
