"""Ranked crop candidates: where a fixed-size window goes, from analysis evidence.

The window is the largest region of the output's aspect that fits the source
(``geometry.window_size``); a candidate only chooses its *position*, so a crop never
zooms in on a small subject. Each strategy (``STRATEGIES``) proposes one position and
``proxy.cropping.scoring.score`` scores it; ``rank`` keeps the best distinct ones. The
``faces`` proposal is ``proxy.cropping.people``'s search of every position for the best
window by the people tiers. Everything here is pure (numbers and small numpy arrays), so
the guarantees are property-tested.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np
import numpy.typing as npt

from proxy.cropping.people import best_window, searched
from proxy.cropping.scoring import (
    EPS,
    Evidence,
    centred_window,
    clip_box,
    clip_boxes,
    people_in,
    saliency_centroid,
    score,
    subject_point,
    union_box,
)
from proxy.geometry import Box, Rect, Size

# Proposal order; also the tie-break between equal scores (earlier wins).
STRATEGIES = ("faces", "text", "saliency", "thirds", "center")
DUPLICATE_PX = 4  # windows whose corners are this close are the same crop
MAX_BOXES = 64  # boxes considered when searching for the best cluster


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


def _round(value: float) -> int:
    return math.floor(value + 0.5)  # half up: no banker's rounding surprises


def _span(lo: float, hi: float, centre: float, size: int, extent: int) -> int:
    """Start of a ``size``-long span inside ``[0, extent]``, centred on ``centre``, that
    covers ``[lo, hi]`` whenever it can."""
    start = _round(centre - size / 2)
    first, last = max(math.ceil(hi - EPS) - size, 0), min(math.floor(lo + EPS), extent - size)
    if first <= last:
        start = min(max(start, first), last)
    return min(max(start, 0), extent - size)


def _covering(target: Box, centre: tuple[float, float], source: Size, window: Size) -> Rect:
    x = _span(target.x, target.x + target.w, centre[0], window.width, source.width)
    y = _span(target.y, target.y + target.h, centre[1], window.height, source.height)
    return Rect(x, y, window.width, window.height)


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
        raw = np.concatenate([np.floor(lo + EPS), np.ceil(hi - EPS) - size])
        return np.unique(np.clip(raw, 0, extent - size))

    xs = starts(x0, x1, window.width, source.width)
    ys = starts(y0, y1, window.height, source.height)
    in_x = (x0[None, :] >= xs[:, None] - EPS) & (x1[None, :] <= xs[:, None] + window.width + EPS)
    in_y = (y0[None, :] >= ys[:, None] - EPS) & (y1[None, :] <= ys[:, None] + window.height + EPS)
    kept = in_y.astype(np.float64) @ (in_x * weight[None, :]).T  # (len(ys), len(xs))
    row, col = np.unravel_index(int(np.argmax(kept)), kept.shape)
    mask = in_y[row] & in_x[col]
    return [b for b, keep in zip(chosen, mask, strict=True) if keep] or chosen[:1]


def _check(source: Size, window: Size) -> None:
    if not (0 < window.width <= source.width and 0 < window.height <= source.height):
        raise ValueError(f"window {window} does not fit the source {source}")


def _proposals(source: Size, window: Size, evidence: Evidence) -> list[tuple[str, Rect]]:
    out: list[tuple[str, Rect]] = []
    people = searched(people_in(evidence, source))
    if people:
        x, y = best_window(people, (window.width, window.height), (source.width, source.height))
        out.append(("faces", Rect(x, y, window.width, window.height)))

    texts = clip_boxes(evidence.text, source)
    if texts:
        target = union_box(_best_cluster(texts, [t.area for t in texts], source, window))
        out.append(("text", _covering(target, target.center, source, window)))

    centroid = saliency_centroid(evidence, source)
    box = clip_box(evidence.saliency, source) if evidence.saliency is not None else None
    if centroid is not None:
        target = box if box is not None else Box(centroid[0], centroid[1], 0.0, 0.0)
        out.append(("saliency", _covering(target, centroid, source, window)))

    centred = centred_window(source, window)
    subject = subject_point(evidence, source)
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
