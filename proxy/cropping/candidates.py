"""Ranked crop candidates: where a fixed-size window goes, from analysis evidence.

The window is the largest region of the output's aspect that fits the source
(``geometry.window_size``); a candidate only chooses its *position*, so a crop never
zooms in on a small subject. Everything here is pure (numbers and small numpy arrays),
so the guarantees are property-tested.

The score is lexicographic: each tier decides only between windows the tiers before it
leave equal (``people.lexicographic`` folds them into one number in [0, 1])::

    1. confident faces kept whole (counted: one outweighs any number of uncertain people)
    2. uncertain people kept whole (possible faces, person regions), weighted by
       confidence, never all-or-nothing
    3. no person cut by a window edge
    4. the group's centre of mass in the window's central third
    5. every text box whole
    6. soft = (1 - 1e-6) * kept + 1e-6 * centre prior (closeness to the centred default)
       kept = (0.30 * salient mass kept (grid if given, else box overlap)
               + 0.15 * text kept whole (area fraction, minus half the cut fraction, >= 0)
               + 0.10 * subject alignment with the thirds grid) / 0.55

Tiers 1-4 are ``proxy.cropping.people``'s, which also searches every position for the
best window by them (the ``faces`` proposal). A kind of evidence that is missing leaves
its tier out, so with no evidence only the centre prior differs between windows; it is
weighted to break ties only.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

import numpy as np
import numpy.typing as npt

from proxy.cropping.people import (
    CENTRE_LEVELS,
    KINDS,
    Person,
    best_window,
    lexicographic,
    searched,
    tiers,
)
from proxy.geometry import Box, Rect, Size, place_window

Grid = npt.NDArray[np.float32]

# Proposal order; also the tie-break between equal scores (earlier wins).
STRATEGIES = ("faces", "text", "saliency", "thirds", "center")
DUPLICATE_PX = 4  # windows whose corners are this close are the same crop
MAX_BOXES = 64  # boxes considered when searching for the best cluster
_EPS = 1e-6

W_SALIENCY, W_TEXT, W_THIRDS = 0.30, 0.15, 0.10
# Centre prior: a tie-break only. Far below what one pixel of movement changes in ``kept``
# (a trade-off against real evidence would let the top window jump against the subject).
W_CENTRE = 1e-6


@dataclass(frozen=True)
class Evidence:
    """What the analysers found, in source pixels.

    ``saliency_grid``: optional coarse saliency map (float 0..1, any small shape) that
    covers the whole source; when given, it measures how much salient mass a window keeps.
    """

    faces: tuple[Box, ...] = ()
    saliency: Box | None = None
    saliency_mass: float = 0.0
    saliency_grid: Grid | None = field(default=None, compare=False, repr=False)
    text: tuple[Box, ...] = ()
    saliency_centroid: tuple[float, float] | None = None
    possible_faces: tuple[Box, ...] = ()
    # Person regions (a body around an uncertain face): uncertain people, like possible faces.
    people: tuple[Box, ...] = ()


@dataclass(frozen=True)
class Candidate:
    rect: Rect
    score: float
    strategy: str
    reasons: tuple[str, ...]
    merged: tuple[str, ...] = ()  # strategies that proposed (nearly) the same window


# --- adapters from the detectors' results (duck-typed: no detector imports here) ---


class _SaliencyLike(Protocol):
    @property
    def mask(self) -> npt.NDArray[np.uint8]: ...
    @property
    def box(self) -> Box: ...
    @property
    def mass(self) -> float: ...
    @property
    def centroid(self) -> tuple[float, float]: ...


def evidence_from(
    faces: Iterable[Box] = (),
    saliency: _SaliencyLike | None = None,
    text: Iterable[Box] = (),
) -> Evidence:
    """Evidence from ``Face``s, a ``Saliency`` and text boxes (``TextResult.regions``)."""
    face_boxes = tuple(Box(f.x, f.y, f.w, f.h, f.score) for f in faces)
    text_boxes = tuple(Box(t.x, t.y, t.w, t.h, t.score) for t in text)
    if saliency is None or saliency.mass <= 0:
        return Evidence(faces=face_boxes, text=text_boxes)
    grid = np.asarray(saliency.mask, dtype=np.float32) / np.float32(255.0)
    return Evidence(
        faces=face_boxes,
        saliency=saliency.box,
        saliency_mass=saliency.mass,
        saliency_grid=grid,
        text=text_boxes,
        saliency_centroid=saliency.centroid,
    )


# --- small geometry helpers ---


def _clip(box: Box, source: Size) -> Box | None:
    x0, y0 = max(box.x, 0.0), max(box.y, 0.0)
    x1, y1 = min(box.x + box.w, float(source.width)), min(box.y + box.h, float(source.height))
    if x1 - x0 <= _EPS or y1 - y0 <= _EPS:
        return None
    return Box(x0, y0, x1 - x0, y1 - y0, box.score)


def _clip_all(boxes: Iterable[Box], source: Size) -> list[Box]:
    return [c for c in (_clip(b, source) for b in boxes) if c is not None]


def _inside(box: Box, win: Rect) -> bool:
    return (
        box.x >= win.x - _EPS
        and box.y >= win.y - _EPS
        and box.x + box.w <= win.x + win.w + _EPS
        and box.y + box.h <= win.y + win.h + _EPS
    )


def _overlap(box: Box, win: Rect) -> float:
    ox = min(box.x + box.w, win.x + win.w) - max(box.x, win.x)
    oy = min(box.y + box.h, win.y + win.h) - max(box.y, win.y)
    return max(ox, 0.0) * max(oy, 0.0)


def _cut_edges(box: Box, win: Rect) -> list[str]:
    """Window edges that cut through ``box`` (empty when inside or entirely outside)."""
    if _overlap(box, win) <= _EPS or _inside(box, win):
        return []
    edges = []
    if box.x < win.x - _EPS:
        edges.append("left")
    if box.x + box.w > win.x + win.w + _EPS:
        edges.append("right")
    if box.y < win.y - _EPS:
        edges.append("top")
    if box.y + box.h > win.y + win.h + _EPS:
        edges.append("bottom")
    return edges


def _union(boxes: Sequence[Box]) -> Box:
    x0, y0 = min(b.x for b in boxes), min(b.y for b in boxes)
    x1, y1 = max(b.x + b.w for b in boxes), max(b.y + b.h for b in boxes)
    return Box(x0, y0, x1 - x0, y1 - y0)


def _round(value: float) -> int:
    return math.floor(value + 0.5)  # half up: no banker's rounding surprises


def _span(lo: float, hi: float, centre: float, size: int, extent: int) -> int:
    """Start of a ``size``-long span inside ``[0, extent]``, centred on ``centre``, that
    covers ``[lo, hi]`` whenever it can."""
    start = _round(centre - size / 2)
    first, last = max(math.ceil(hi - _EPS) - size, 0), min(math.floor(lo + _EPS), extent - size)
    if first <= last:
        start = min(max(start, first), last)
    return min(max(start, 0), extent - size)


def _covering(target: Box, centre: tuple[float, float], source: Size, window: Size) -> Rect:
    x = _span(target.x, target.x + target.w, centre[0], window.width, source.width)
    y = _span(target.y, target.y + target.h, centre[1], window.height, source.height)
    return Rect(x, y, window.width, window.height)


def _centred(source: Size, window: Size) -> Rect:
    """The centred default window, exactly as ``geometry.plan_layout`` places it."""
    whole = Rect(0, 0, source.width, source.height)
    return place_window(whole, window, source.width / 2, source.height / 2)


def _people(evidence: Evidence, source: Size) -> list[Person]:
    """Everyone the people tiers weigh, clipped to the source: confident faces first."""
    return [
        Person(b.x, b.y, b.w, b.h, b.score, kind)
        for boxes, kind in (
            (evidence.faces, "face"),
            (evidence.possible_faces, "possible face"),
            (evidence.people, "person region"),
        )
        for b in _clip_all(boxes, source)
    ]


def _best_cluster(
    boxes: Sequence[Box], weights: Sequence[float], source: Size, window: Size
) -> list[Box]:
    """The boxes a window keeps whole when placed to keep the most weight whole."""
    order = sorted(range(len(boxes)), key=lambda i: -weights[i])[:MAX_BOXES]
    chosen = [boxes[i] for i in order]
    weight = np.array([weights[i] for i in order], dtype=np.float64)
    x0 = np.array([b.x for b in chosen])
    x1 = np.array([b.x + b.w for b in chosen])
    y0 = np.array([b.y for b in chosen])
    y1 = np.array([b.y + b.h for b in chosen])

    def starts(
        lo: npt.NDArray[np.float64], hi: npt.NDArray[np.float64], size: int, extent: int
    ) -> npt.NDArray[np.float64]:
        raw = np.concatenate([np.floor(lo + _EPS), np.ceil(hi - _EPS) - size])
        return np.unique(np.clip(raw, 0, extent - size))

    xs = starts(x0, x1, window.width, source.width)
    ys = starts(y0, y1, window.height, source.height)
    in_x = (x0[None, :] >= xs[:, None] - _EPS) & (x1[None, :] <= xs[:, None] + window.width + _EPS)
    in_y = (y0[None, :] >= ys[:, None] - _EPS) & (y1[None, :] <= ys[:, None] + window.height + _EPS)
    kept = in_y.astype(np.float64) @ (in_x * weight[None, :]).T  # (len(ys), len(xs))
    row, col = np.unravel_index(int(np.argmax(kept)), kept.shape)
    mask = in_y[row] & in_x[col]
    return [b for b, keep in zip(chosen, mask, strict=True) if keep] or chosen[:1]


def _grid_fractions(start: float, size: float, extent: int, cells: int) -> npt.NDArray[np.float64]:
    """Fraction of each grid cell (along one axis) covered by ``[start, start + size]``."""
    edges = np.linspace(0.0, float(extent), cells + 1)
    lo, hi = edges[:-1], edges[1:]
    covered = np.clip(np.minimum(hi, start + size) - np.maximum(lo, start), 0.0, None)
    return np.asarray(covered / np.maximum(hi - lo, _EPS), dtype=np.float64)


def _grid(evidence: Evidence) -> npt.NDArray[np.float64] | None:
    grid = evidence.saliency_grid
    if grid is None or grid.ndim != 2 or grid.size == 0:
        return None
    values = np.clip(np.nan_to_num(np.asarray(grid, dtype=np.float64)), 0.0, None)
    return values if values.sum() > _EPS else None


def _centroid(evidence: Evidence, source: Size) -> tuple[float, float] | None:
    if evidence.saliency_centroid is not None:
        return evidence.saliency_centroid
    grid = _grid(evidence)
    if grid is not None:
        rows, cols = grid.shape
        total = grid.sum()
        cx = float((grid.sum(axis=0) * (np.arange(cols) + 0.5)).sum() / total) / cols
        cy = float((grid.sum(axis=1) * (np.arange(rows) + 0.5)).sum() / total) / rows
        return cx * source.width, cy * source.height
    box = _clip(evidence.saliency, source) if evidence.saliency is not None else None
    return box.center if box is not None else None


def _subject(evidence: Evidence, source: Size) -> tuple[float, float] | None:
    """The main subject: the faces' union centre, else the saliency centroid."""
    faces = _clip_all(evidence.faces, source)
    if faces:
        return _union(faces).center
    return _centroid(evidence, source)


def _thirds_alignment(point: float, start: int, size: int, extent: int) -> float:
    """1 on or between the thirds lines, falling to 0 at the window edge. Neutral (1) on an
    axis where the window cannot move."""
    if size >= extent:
        return 1.0
    u = (point - start) / size
    distance = max(1 / 3 - u, u - 2 / 3, 0.0)
    return max(0.0, 1.0 - 3.0 * distance)


def _on_thirds_line(point: float, start: int, size: int, extent: int) -> bool:
    if size >= extent:
        return False
    u = (point - start) / size
    return min(abs(u - 1 / 3), abs(u - 2 / 3)) <= 0.02


def _plural(count: int, word: str) -> str:
    if count == 1:
        return f"{count} {word}"
    return f"{count} {word}es" if word.endswith("x") else f"{count} {word}s"


# --- the public API ---


def score(window: Rect, source: Size, evidence: Evidence) -> tuple[float, tuple[str, ...]]:
    """How well ``window`` keeps the evidence: a score in [0, 1] and the reasons."""
    reasons: list[str] = []

    levels: list[tuple[float, float]] = []  # (tier value, its smallest step), best first
    people = searched(_people(evidence, source))
    if people:
        levels = _people_levels(people, window, source)
        reasons += _people_reasons(people, window)

    texts = _clip_all(evidence.text, source)
    text_all, text_kept = 1.0, 1.0
    if texts:
        area = sum(t.area for t in texts)
        whole = [_inside(t, window) for t in texts]
        cut_boxes = [t for t in texts if _cut_edges(t, window)]
        kept_area = sum(t.area for t, keep in zip(texts, whole, strict=True) if keep)
        cut_area = sum(t.area for t in cut_boxes)
        text_all = 1.0 if all(whole) else 0.0
        text_kept = max(0.0, (kept_area - 0.5 * cut_area) / area)
        if all(whole):
            reasons.append("keeps all text whole")
        else:
            reasons.append(f"keeps {sum(whole)}/{len(texts)} text boxes whole")
            if cut_boxes:
                reasons.append(f"cuts {_plural(len(cut_boxes), 'text box')}")

    salient = 1.0
    grid = _grid(evidence)
    box = _clip(evidence.saliency, source) if evidence.saliency is not None else None
    if grid is not None:
        rows, cols = grid.shape
        fx = _grid_fractions(window.x, window.w, source.width, cols)
        fy = _grid_fractions(window.y, window.h, source.height, rows)
        salient = float(min(1.0, (fy @ grid @ fx) / grid.sum()))
    elif box is not None:
        salient = _overlap(box, window) / box.area
    if grid is not None or box is not None:
        reasons.append(f"keeps {round(salient * 100)}% of the salient area")

    alignment = 1.0
    subject = _subject(evidence, source)
    if subject is not None:
        ax = _thirds_alignment(subject[0], window.x, window.w, source.width)
        ay = _thirds_alignment(subject[1], window.y, window.h, source.height)
        alignment = (ax + ay) / 2
        if _on_thirds_line(subject[0], window.x, window.w, source.width) or _on_thirds_line(
            subject[1], window.y, window.h, source.height
        ):
            reasons.append("puts the subject on a thirds line")

    # Centre prior: distance from the pipeline's centred default (not the geometric centre,
    # which can sit on a half pixel and tie two windows).
    home = _centred(source, Size(window.w, window.h))
    off_x = abs(window.x - home.x) / max(source.width - window.w, 1)
    off_y = abs(window.y - home.y) / max(source.height - window.h, 1)
    centre = 1.0 - min(1.0, off_x + off_y)
    if not reasons:
        reasons.append("no subject found: centred" if centre >= 1.0 - _EPS else "no subject found")

    kept = (W_SALIENCY * salient + W_TEXT * text_kept + W_THIRDS * alignment) / (
        W_SALIENCY + W_TEXT + W_THIRDS
    )
    soft = (1 - W_CENTRE) * kept + W_CENTRE * centre
    if texts:
        levels.append((text_all, 1.0))
    return min(1.0, max(0.0, lexicographic(levels, soft))), tuple(reasons)


def _people_levels(
    people: Sequence[Person], window: Rect, source: Size
) -> list[tuple[float, float]]:
    """The people tiers of one window, those the evidence has, as (value, step)."""
    one = tiers(
        people,
        np.array([float(window.x)]),
        np.array([float(window.y)]),
        (window.w, window.h),
        (source.width, source.height),
    )
    levels = []
    if any(p.confident for p in people):
        levels.append((float(one.confident[0, 0]), one.confident_step))
    if not all(p.confident for p in people):
        levels.append((float(one.uncertain[0, 0]), one.uncertain_step))
    levels.append((float(one.uncut[0, 0]), one.uncut_step))
    levels.append((float(one.centre[0, 0]), 1.0 / CENTRE_LEVELS))
    return levels


def _people_reasons(people: Sequence[Person], window: Rect) -> list[str]:
    reasons = []
    faces = [p for p in people if p.confident]
    boxes = {id(p): Box(p.x, p.y, p.w, p.h, p.score) for p in people}
    for kind in KINDS:
        alike = [p for p in people if p.kind == kind]
        if alike:
            kept = sum(_inside(boxes[id(p)], window) for p in alike)
            noun = kind if len(alike) == 1 and kind == "face" else f"{kind}s"
            reasons.append(f"keeps {kept}/{len(alike)} {noun}")
    for edge in ("left", "right", "top", "bottom"):
        count = sum(
            1
            for p in faces
            if (edges := _cut_edges(boxes[id(p)], window))
            and edges[0] == edge
            and p.w <= window.w + _EPS
            and p.h <= window.h + _EPS
        )
        if count:
            reasons.append(f"cuts {_plural(count, 'face')} at the {edge} edge")
    return reasons


def _check(source: Size, window: Size) -> None:
    if not (0 < window.width <= source.width and 0 < window.height <= source.height):
        raise ValueError(f"window {window} does not fit the source {source}")


def _proposals(source: Size, window: Size, evidence: Evidence) -> list[tuple[str, Rect]]:
    out: list[tuple[str, Rect]] = []
    people = searched(_people(evidence, source))
    if people:
        x, y = best_window(people, (window.width, window.height), (source.width, source.height))
        out.append(("faces", Rect(x, y, window.width, window.height)))

    texts = _clip_all(evidence.text, source)
    if texts:
        target = _union(_best_cluster(texts, [t.area for t in texts], source, window))
        out.append(("text", _covering(target, target.center, source, window)))

    centroid = _centroid(evidence, source)
    box = _clip(evidence.saliency, source) if evidence.saliency is not None else None
    if centroid is not None:
        target = box if box is not None else Box(centroid[0], centroid[1], 0.0, 0.0)
        out.append(("saliency", _covering(target, centroid, source, window)))

    centred = _centred(source, window)
    subject = _subject(evidence, source)
    if subject is not None:
        # The least move from the centre crop that puts the subject on (or between) the
        # thirds lines: a subject outside the central third lands on the nearest line.
        # Continuous in the subject, so the placement never jumps against its motion.
        left = min(max(centred.x, subject[0] - 2 * window.width / 3), subject[0] - window.width / 3)
        top = min(
            max(centred.y, subject[1] - 2 * window.height / 3), subject[1] - window.height / 3
        )
        x = min(max(_round(left), 0), source.width - window.width)
        y = min(max(_round(top), 0), source.height - window.height)
        out.append(("thirds", Rect(x, y, window.width, window.height)))

    out.append(("center", centred))
    return out


def propose(source: Size, window: Size, evidence: Evidence) -> list[Candidate]:
    """One scored candidate per applicable strategy, in ``STRATEGIES`` order."""
    _check(source, window)
    candidates = []
    for strategy, rect in _proposals(source, window, evidence):
        value, reasons = score(rect, source, evidence)
        candidates.append(Candidate(rect, value, strategy, reasons))
    return candidates


def _same(a: Rect, b: Rect) -> bool:
    return abs(a.x - b.x) <= DUPLICATE_PX and abs(a.y - b.y) <= DUPLICATE_PX


def rank(source: Size, window: Size, evidence: Evidence, n: int = 3) -> list[Candidate]:
    """The best ``n`` distinct candidates, best first (deterministic)."""
    ordered = sorted(
        propose(source, window, evidence),
        key=lambda c: (-c.score, STRATEGIES.index(c.strategy), c.rect.x, c.rect.y),
    )
    distinct: list[Candidate] = []
    for candidate in ordered:
        for i, kept in enumerate(distinct):
            if _same(kept.rect, candidate.rect):
                distinct[i] = replace(kept, merged=(*kept.merged, candidate.strategy))
                break
        else:
            distinct.append(candidate)
    return distinct[: max(n, 0)]


def pick(candidates: Sequence[Candidate], strategy: str) -> Candidate | None:
    """The candidate a strategy proposed (or that absorbed its near-duplicate), if any."""
    for candidate in candidates:
        if candidate.strategy == strategy:
            return candidate
    for candidate in candidates:
        if strategy in candidate.merged:
            return candidate
    return None
