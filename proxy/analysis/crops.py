"""Crops from an analysis: turn a cached ``Analysis`` into ``proxy.cropping`` ``Evidence``
for a region of the source (the whole source, or a URL's ``rect``) and rank its windows.
Boxes are shifted into the region, and the saliency grid is used only when the region is
the whole source (it covers the whole source). Here rather than in ``proxy.cropping`` so
that cropping stays pure and below the store (which keeps its ``CropOverride``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from proxy.analysis.result import Analysis
from proxy.cropping.candidates import Candidate, pick, rank
from proxy.cropping.scoring import Evidence
from proxy.geometry import Box, Rect, Size, plan_layout


def _shift(box: Box, region: Rect) -> Box:
    return Box(box.x - region.x, box.y - region.y, box.w, box.h, box.score)


def _inside(box: Box, region: Rect) -> bool:
    return box.x + box.w > 0 and box.y + box.h > 0 and box.x < region.w and box.y < region.h


def _within(found: tuple[Box, ...], region: Rect) -> tuple[Box, ...]:
    """The boxes that touch ``region``, in its coordinates."""
    return tuple(b for b in (_shift(f, region) for f in found) if _inside(b, region))


# On a photograph or painting, text boxes covering less than this share of the picture are
# specks (roof ridges, stripes, a number plate) more often than text a crop must keep whole:
# they would outrank the salient subject. Text-like classes keep every box.
MIN_PICTURE_TEXT = 0.01
PICTURE_CLASSES = ("photo", "art")


def text_counts(analysis: Analysis) -> bool:
    """Whether the text boxes are evidence a crop should keep whole."""
    picture = analysis.content is not None and analysis.content[0] in PICTURE_CLASSES
    return not picture or analysis.text_coverage >= MIN_PICTURE_TEXT


def evidence_for(analysis: Analysis, region: Rect) -> Evidence:
    whole = (region.x, region.y, region.w, region.h) == (0, 0, analysis.width, analysis.height)
    faces = _within(analysis.faces, region)
    possible = _within(analysis.possible_faces, region)
    text = _within(analysis.text, region) if text_counts(analysis) else ()
    people = _within(analysis.people, region)
    saliency = analysis.saliency
    if saliency is None:
        return Evidence(faces=faces, text=text, possible_faces=possible, people=people)
    centroid = (saliency.centroid[0] - region.x, saliency.centroid[1] - region.y)
    return Evidence(
        faces=faces,
        saliency=_shift(saliency.box, region),
        saliency_mass=saliency.mass,
        saliency_grid=np.asarray(saliency.grid, dtype=np.float32) if whole else None,
        text=text,
        saliency_centroid=centroid,
        possible_faces=possible,
        people=people,
    )


def candidates_for(analysis: Analysis, region: Rect, window: Size) -> list[Candidate]:
    """Three ranked candidates, in source pixels."""
    ranked = rank(Size(region.w, region.h), window, evidence_for(analysis, region))
    return [
        Candidate(
            Rect(c.rect.x + region.x, c.rect.y + region.y, c.rect.w, c.rect.h),
            c.score,
            c.strategy,
            c.reasons,
            c.merged,
        )
        for c in ranked
    ]


def choose(candidates: list[Candidate], requested: str) -> Candidate | None:
    """``crop=smart``: the top candidate; ``crop=faces``: the face-weighted one."""
    if not candidates:
        return None
    if requested == "faces":
        return pick(candidates, "faces") or candidates[0]
    return candidates[0]


def ranked_crops(
    source: Size | Any, analysis: Analysis, width: int, height: int
) -> list[dict[str, Any]]:
    """Three ranked candidates for a ``fit=crop`` of ``width`` x ``height`` of the whole
    source (anything with ``width`` and ``height``), as JSON-ready dicts."""
    layout = plan_layout(
        Size(source.width, source.height), width=width, height=height, fit="crop", upscale=False
    )
    if layout is None:
        return []
    window = Size(layout.window.w, layout.window.h)
    return [
        {
            "x": c.rect.x,
            "y": c.rect.y,
            "width": c.rect.w,
            "height": c.rect.h,
            "score": round(c.score, 4),
            "strategy": c.strategy,
            "reasons": list(c.reasons),
        }
        for c in candidates_for(analysis, layout.region, window)
    ]
