"""Where a window keeps the most people: the people tiers of the crop score, for many
window positions at once, and the exhaustive search over positions. Pure numpy.

The tiers, each deciding only between windows the tiers before it leave equal:

1. ``confident``: confident faces kept whole (a face bigger than the window counts by
   the share of the most the window could show of it). Counted, so one confident face
   outweighs any number of uncertain people.
2. ``uncertain``: possible faces and person regions kept whole, weighted by confidence
   in whole percents (never all-or-nothing: keeping 4 of 5 beats keeping 3).
3. ``uncut``: no person cut by a window edge, when another window keeps the same people
   whole.
4. ``centre``: the group's centre of mass in the window's central third (falling to 0 at
   the edge), quantised so that the tiers below decide between windows that hold it.

Only the window's *position* varies. Whole-keeping, cutting and the centre term change
only where a window edge meets a box edge or the centre's thirds, so those positions
(``breakpoints``), crossed over both axes, contain the best of all integer positions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from proxy.geometry import Box

Floats = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]

EPS = 1e-6
MAX_PEOPLE = 32  # boxes searched (confident first, then by weight): bounds the search cost
CENTRE_LEVELS = 64  # the centre tier is quantised to this many steps


KINDS = ("face", "possible face", "person region")


@dataclass(frozen=True)
class Person(Box):
    """A box (source pixels) with how sure the detector is, and its kind (``KINDS``):
    faces at the face threshold are confident; possible faces and person regions are not."""

    kind: str = "face"

    @property
    def confident(self) -> bool:
        return self.kind == "face"

    @property
    def weight(self) -> float:
        return max(self.score, 0.01) * math.sqrt(max(self.w, 0.0) * max(self.h, 0.0))


@dataclass(frozen=True)
class Tiers:
    """Per window (arrays shaped like the grid of positions): the four tiers in [0, 1] and
    their smallest meaningful steps."""

    confident: Floats
    uncertain: Floats
    uncut: Floats
    centre: Floats
    confident_step: float
    uncertain_step: float
    uncut_step: float


def percent(score: float) -> int:
    """A confidence in whole percents (at least 1): the uncertain tier weighs people by it,
    so two sets of people differ by at least one percent point or not at all."""
    return max(1, min(100, round(score * 100)))


def group_centre(people: Sequence[Person]) -> tuple[float, float] | None:
    """The people's centre of mass (weights: confidence x sqrt(area))."""
    weights = [p.weight for p in people]
    total = sum(weights)
    if not people or total <= 0:
        return None
    cx = sum(w * (p.x + p.w / 2) for w, p in zip(weights, people, strict=True)) / total
    cy = sum(w * (p.y + p.h / 2) for w, p in zip(weights, people, strict=True)) / total
    return cx, cy


def searched(people: Sequence[Person]) -> list[Person]:
    """The boxes the search considers: confident ones first, then by weight."""
    return sorted(people, key=lambda p: (not p.confident, -p.weight))[:MAX_PEOPLE]


def _axis(starts: Floats, lo: Floats, hi: Floats, size: int) -> tuple[Bools, Bools, Floats]:
    """Along one axis, per (start, box): box within the span, overlapping it, overlap."""
    s = starts[:, None]
    within = (lo[None, :] >= s - EPS) & (hi[None, :] <= s + size + EPS)
    overlap = np.clip(np.minimum(hi[None, :], s + size) - np.maximum(lo[None, :], s), 0.0, None)
    return within, overlap > EPS, overlap


def _centre_axis(point: float, starts: Floats, size: int, extent: int) -> Floats:
    """1 when ``point`` is in the central third of the span, falling to 0 at its edges;
    neutral (1) on an axis where the window cannot move."""
    if size >= extent:
        return np.ones_like(starts)
    u = (point - starts) / size
    distance = np.maximum(np.maximum(1 / 3 - u, u - 2 / 3), 0.0)
    return np.asarray(np.clip(1.0 - 3.0 * distance, 0.0, 1.0), dtype=np.float64)


def tiers(
    people: Sequence[Person],
    xs: Floats,
    ys: Floats,
    window: tuple[int, int],
    source: tuple[int, int],
) -> Tiers:
    """The tiers for every window at (x in ``xs``) x (y in ``ys``): arrays (len(ys), len(xs))."""
    ww, wh = window
    x0 = np.array([p.x for p in people], dtype=np.float64)
    y0 = np.array([p.y for p in people], dtype=np.float64)
    x1 = x0 + np.array([p.w for p in people], dtype=np.float64)
    y1 = y0 + np.array([p.h for p in people], dtype=np.float64)
    in_x, touch_x, over_x = _axis(xs, x0, x1, ww)
    in_y, touch_y, over_y = _axis(ys, y0, y1, wh)
    inside = in_y[:, None, :] & in_x[None, :, :]
    fits = ((x1 - x0) <= ww + EPS) & ((y1 - y0) <= wh + EPS)
    # A box bigger than the window: the share of the most the window could show of it.
    most = np.minimum(x1 - x0, ww) * np.minimum(y1 - y0, wh)
    share = over_y[:, None, :] * over_x[None, :, :] / np.maximum(most, EPS)
    shown = np.where(fits, inside.astype(np.float64), np.clip(share, 0.0, 1.0))
    cut = touch_y[:, None, :] & touch_x[None, :, :] & ~inside & fits

    confident = np.array([p.confident for p in people], dtype=bool)
    scores = np.array([percent(p.score) for p in people], dtype=np.float64)
    shape = (len(ys), len(xs))
    n_confident = int(confident.sum())
    if n_confident:
        confident_tier = shown[:, :, confident].sum(axis=2) / n_confident
    else:
        confident_tier = np.ones(shape)
    unsure = scores[~confident]
    if unsure.size:
        uncertain_tier = (shown[:, :, ~confident] * unsure).sum(axis=2) / unsure.sum()
        uncertain_step = float(1.0 / unsure.sum())  # whole percents: no smaller difference
    else:
        uncertain_tier, uncertain_step = np.ones(shape), 1.0
    uncut_tier = 1.0 - cut.sum(axis=2) / max(len(people), 1)

    centre_tier = np.ones(shape)
    centre = group_centre(people)
    if centre is not None:
        cx = _centre_axis(centre[0], xs, ww, source[0])
        cy = _centre_axis(centre[1], ys, wh, source[1])
        exact = np.minimum(cy[:, None], cx[None, :])
        centre_tier = np.floor(exact * CENTRE_LEVELS + EPS) / CENTRE_LEVELS
    return Tiers(
        confident=confident_tier,
        uncertain=uncertain_tier,
        uncut=uncut_tier,
        centre=centre_tier,
        confident_step=1.0 / max(n_confident, 1),
        uncertain_step=uncertain_step,
        uncut_step=1.0 / max(len(people), 1),
    )


def breakpoints(
    lo: Sequence[float], hi: Sequence[float], centre: float | None, size: int, extent: int
) -> Floats:
    """Integer starts along one axis where some tier can change: a box edge meets a window
    edge (from inside or outside), the centre crosses a thirds line; plus both ends."""
    values: list[float] = []
    for a, b in zip(lo, hi, strict=True):
        values += [a, b - size, b, a - size]
    if centre is not None:
        values += [centre - size / 3, centre - 2 * size / 3, centre - size / 2]
    raw = np.array(values, dtype=np.float64)
    options = np.concatenate(
        [np.floor(raw + EPS), np.ceil(raw - EPS), np.floor(raw - EPS), np.ceil(raw + EPS)]
    )
    options = np.concatenate([options, [0.0, float(extent - size)]])
    return np.unique(np.clip(options, 0.0, float(extent - size)))


def lexicographic(values: Sequence[tuple[float, float]], rest: float) -> float:
    """Fold tiers (value in [0, 1], its smallest meaningful step) over ``rest`` in [0, 1]
    into one number in [0, 1] in which a tier's step always outweighs everything below."""
    total = rest
    for value, step in reversed(values):
        gap = 0.5 * step
        total = (value + gap * total) / (1.0 + gap)
    return total


def best_window(
    people: Sequence[Person],
    window: tuple[int, int],
    source: tuple[int, int],
) -> tuple[int, int]:
    """The position keeping the most people by the tiers; among equals, the window whose
    centre is nearest the group's centre of mass, then the leftmost, topmost."""
    ww, wh = window
    chosen = searched(people)
    centre = group_centre(chosen)
    xs = breakpoints(
        [p.x for p in chosen],
        [p.x + p.w for p in chosen],
        None if centre is None else centre[0],
        ww,
        source[0],
    )
    ys = breakpoints(
        [p.y for p in chosen],
        [p.y + p.h for p in chosen],
        None if centre is None else centre[1],
        wh,
        source[1],
    )
    t = tiers(chosen, xs, ys, window, source)
    rows, cols = _lexicographic_argmax(t)
    if centre is not None and len(rows) > 1:
        dx = (xs[cols] + ww / 2 - centre[0]) / ww
        dy = (ys[rows] + wh / 2 - centre[1]) / wh
        near = np.lexsort((xs[cols], ys[rows], dx * dx + dy * dy))[0]
    else:
        near = np.lexsort((xs[cols], ys[rows]))[0]
    return int(xs[cols[near]]), int(ys[rows[near]])


def _lexicographic_argmax(t: Tiers) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """(rows, cols) of the windows best on the tiers, compared one tier after another."""
    candidates = np.ones_like(t.confident, dtype=bool)
    for value in (t.confident, t.uncertain, t.uncut, t.centre):
        top = value[candidates].max()
        candidates &= value >= top - 1e-9
    rows, cols = np.nonzero(candidates)
    return rows, cols
