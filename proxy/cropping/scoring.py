"""How well a crop window keeps what the analysers found: the ``Evidence`` and its score.

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

Tiers 1-4 are ``proxy.cropping.people``'s. A kind of evidence that is missing leaves its
tier out, so with no evidence only the centre prior differs between windows; it is
weighted to break ties only. The box helpers here (clipping, unions, the subject) are
shared with the proposals in ``proxy.cropping.candidates``. Pure numbers and small numpy
arrays, property-tested.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from proxy.cropping.people import CENTRE_LEVELS, KINDS, Person, lexicographic, searched, tiers
from proxy.geometry import Box, Rect, Size, place_window

Grid = npt.NDArray[np.float32]
EPS = 1e-6

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


def clip_box(box: Box, source: Size) -> Box | None:
    x0, y0 = max(box.x, 0.0), max(box.y, 0.0)
    x1, y1 = min(box.x + box.w, float(source.width)), min(box.y + box.h, float(source.height))
    if x1 - x0 <= EPS or y1 - y0 <= EPS:
        return None
    return Box(x0, y0, x1 - x0, y1 - y0, box.score)


def clip_boxes(boxes: Iterable[Box], source: Size) -> list[Box]:
    return [c for c in (clip_box(b, source) for b in boxes) if c is not None]


def _inside(box: Box, win: Rect) -> bool:
    return (
        box.x >= win.x - EPS
        and box.y >= win.y - EPS
        and box.x + box.w <= win.x + win.w + EPS
        and box.y + box.h <= win.y + win.h + EPS
    )


def _overlap(box: Box, win: Rect) -> float:
    ox = min(box.x + box.w, win.x + win.w) - max(box.x, win.x)
    oy = min(box.y + box.h, win.y + win.h) - max(box.y, win.y)
    return max(ox, 0.0) * max(oy, 0.0)


def _cut_edges(box: Box, win: Rect) -> list[str]:
    """Window edges that cut through ``box`` (empty when inside or entirely outside)."""
    if _overlap(box, win) <= EPS or _inside(box, win):
        return []
    edges = []
    if box.x < win.x - EPS:
        edges.append("left")
    if box.x + box.w > win.x + win.w + EPS:
        edges.append("right")
    if box.y < win.y - EPS:
        edges.append("top")
    if box.y + box.h > win.y + win.h + EPS:
        edges.append("bottom")
    return edges


def union_box(boxes: Sequence[Box]) -> Box:
    x0, y0 = min(b.x for b in boxes), min(b.y for b in boxes)
    x1, y1 = max(b.x + b.w for b in boxes), max(b.y + b.h for b in boxes)
    return Box(x0, y0, x1 - x0, y1 - y0)


def centred_window(source: Size, window: Size) -> Rect:
    """The centred default window, exactly as ``geometry.plan_layout`` places it."""
    whole = Rect(0, 0, source.width, source.height)
    return place_window(whole, window, source.width / 2, source.height / 2)


def people_in(evidence: Evidence, source: Size) -> list[Person]:
    """Everyone the people tiers weigh, clipped to the source: confident faces first."""
    return [
        Person(b.x, b.y, b.w, b.h, b.score, kind)
        for boxes, kind in (
            (evidence.faces, "face"),
            (evidence.possible_faces, "possible face"),
            (evidence.people, "person region"),
        )
        for b in clip_boxes(boxes, source)
    ]


def _grid_fractions(start: float, size: float, extent: int, cells: int) -> npt.NDArray[np.float64]:
    """Fraction of each grid cell (along one axis) covered by ``[start, start + size]``."""
    edges = np.linspace(0.0, float(extent), cells + 1)
    lo, hi = edges[:-1], edges[1:]
    covered = np.clip(np.minimum(hi, start + size) - np.maximum(lo, start), 0.0, None)
    return np.asarray(covered / np.maximum(hi - lo, EPS), dtype=np.float64)


def _grid(evidence: Evidence) -> npt.NDArray[np.float64] | None:
    grid = evidence.saliency_grid
    if grid is None or grid.ndim != 2 or grid.size == 0:
        return None
    values = np.clip(np.nan_to_num(np.asarray(grid, dtype=np.float64)), 0.0, None)
    return values if values.sum() > EPS else None


def saliency_centroid(evidence: Evidence, source: Size) -> tuple[float, float] | None:
    if evidence.saliency_centroid is not None:
        return evidence.saliency_centroid
    grid = _grid(evidence)
    if grid is not None:
        rows, cols = grid.shape
        total = grid.sum()
        cx = float((grid.sum(axis=0) * (np.arange(cols) + 0.5)).sum() / total) / cols
        cy = float((grid.sum(axis=1) * (np.arange(rows) + 0.5)).sum() / total) / rows
        return cx * source.width, cy * source.height
    box = clip_box(evidence.saliency, source) if evidence.saliency is not None else None
    return box.center if box is not None else None


def subject_point(evidence: Evidence, source: Size) -> tuple[float, float] | None:
    """The main subject: the faces' union centre, else the saliency centroid."""
    faces = clip_boxes(evidence.faces, source)
    if faces:
        return union_box(faces).center
    return saliency_centroid(evidence, source)


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
    people = searched(people_in(evidence, source))
    if people:
        levels = _people_levels(people, window, source)
        reasons += _people_reasons(people, window)

    texts = clip_boxes(evidence.text, source)
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
    box = clip_box(evidence.saliency, source) if evidence.saliency is not None else None
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
    subject = subject_point(evidence, source)
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
    home = centred_window(source, Size(window.w, window.h))
    off_x = abs(window.x - home.x) / max(source.width - window.w, 1)
    off_y = abs(window.y - home.y) / max(source.height - window.h, 1)
    centre = 1.0 - min(1.0, off_x + off_y)
    if not reasons:
        reasons.append("no subject found: centred" if centre >= 1.0 - EPS else "no subject found")

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
    for kind in KINDS:
        alike = [p for p in people if p.kind == kind]
        if alike:
            kept = sum(_inside(p, window) for p in alike)
            noun = kind if len(alike) == 1 and kind == "face" else f"{kind}s"
            reasons.append(f"keeps {kept}/{len(alike)} {noun}")
    for edge in ("left", "right", "top", "bottom"):
        count = sum(
            1
            for p in faces
            if (edges := _cut_edges(p, window))
            and edges[0] == edge
            and p.w <= window.w + EPS
            and p.h <= window.h + EPS
        )
        if count:
            reasons.append(f"cuts {_plural(count, 'face')} at the {edge} edge")
    return reasons
