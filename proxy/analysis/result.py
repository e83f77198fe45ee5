"""What analysis found, in orientation-corrected source pixels, as plain data (it is
cached as JSON-able dicts and served by ``/meta``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from proxy.geometry import Size, turn_box, turned_size


@dataclass(frozen=True)
class FoundBox:
    x: float
    y: float
    width: float
    height: float
    score: float = 1.0


@dataclass(frozen=True)
class SaliencyResult:
    box: FoundBox
    mass: float
    centroid: tuple[float, float]
    grid: tuple[tuple[float, ...], ...]  # coarse 0-1 map over the whole source


@dataclass(frozen=True)
class ModelUsed:
    """One model that went into an analysis: which part, which model, which bytes."""

    component: str  # faces, saliency, content
    name: str  # the manifest entry
    sha256: str


@dataclass(frozen=True)
class Analysis:
    phash: str
    width: int
    height: int
    faces: tuple[FoundBox, ...] = ()
    saliency: SaliencyResult | None = None
    text: tuple[FoundBox, ...] = ()
    text_coverage: float = 0.0
    content: tuple[str, float] | None = None  # (class, confidence)
    unavailable: dict[str, str] = field(default_factory=dict)  # component -> reason
    # Detections below the face threshold: cropping keeps them when it can (small real
    # faces score low), /meta lists them apart; never counted as faces.
    possible_faces: tuple[FoundBox, ...] = ()
    # Person regions: the salient blob around a possible face (its body); cropping keeps
    # them like possible faces.
    people: tuple[FoundBox, ...] = ()
    models: tuple[ModelUsed, ...] = ()  # what produced it (the cache key has their sha256)
    version: int = 0  # the analysis code version

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def turned(self, rotate: int, flip: str) -> Analysis:
        """The same findings in the coordinates of the picture turned by ``rot``/``flip``
        (the analysis itself is cached once, for the picture as its EXIF shows it)."""
        if not rotate and not flip:
            return self
        size = Size(self.width, self.height)

        def box(found: FoundBox) -> FoundBox:
            x, y, w, h = turn_box((found.x, found.y, found.width, found.height), size, rotate, flip)
            return FoundBox(x, y, w, h, found.score)

        saliency = self.saliency
        if saliency is not None:
            grid = np.rot90(np.asarray(saliency.grid, dtype=np.float64), k=-(rotate // 90))
            if "h" in flip:
                grid = np.fliplr(grid)
            if "v" in flip:
                grid = np.flipud(grid)
            cx, cy, _, _ = turn_box((*saliency.centroid, 0.0, 0.0), size, rotate, flip)
            saliency = SaliencyResult(
                box=box(saliency.box),
                mass=saliency.mass,
                centroid=(cx, cy),
                grid=tuple(tuple(float(v) for v in row) for row in grid),
            )
        turned = turned_size(size, rotate)
        return replace(
            self,
            width=turned.width,
            height=turned.height,
            faces=tuple(box(face) for face in self.faces),
            possible_faces=tuple(box(face) for face in self.possible_faces),
            text=tuple(box(region) for region in self.text),
            saliency=saliency,
        )

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Analysis:
        saliency = raw.get("saliency")
        content = raw.get("content")
        return cls(
            phash=raw["phash"],
            width=raw["width"],
            height=raw["height"],
            faces=tuple(FoundBox(**box) for box in raw.get("faces", ())),
            saliency=SaliencyResult(
                box=FoundBox(**saliency["box"]),
                mass=saliency["mass"],
                centroid=(saliency["centroid"][0], saliency["centroid"][1]),
                grid=tuple(tuple(row) for row in saliency["grid"]),
            )
            if saliency
            else None,
            text=tuple(FoundBox(**box) for box in raw.get("text", ())),
            text_coverage=raw.get("text_coverage", 0.0),
            content=(content[0], content[1]) if content else None,
            unavailable=dict(raw.get("unavailable", {})),
            possible_faces=tuple(FoundBox(**box) for box in raw.get("possible_faces", ())),
            people=tuple(FoundBox(**box) for box in raw.get("people", ())),
            models=tuple(ModelUsed(**model) for model in raw.get("models", ())),
            version=int(raw.get("version", 0)),
        )
