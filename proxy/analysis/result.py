"""What analysis found, in orientation-corrected source pixels, as plain data (it is
cached as JSON-able dicts and served by ``/meta``). Boxes are ``geometry.Box``es; their
JSON spells the sides ``width``/``height`` (:func:`box_dict`), as the cache and ``/meta``
always have."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np

from proxy.geometry import Box, Size, turn_box, turned_size

BOX_FIELDS = ("faces", "text", "possible_faces", "people")  # the Analysis fields of boxes


def box_dict(box: Box) -> dict[str, float]:
    """A box as the cache and ``/meta`` write it."""
    return {"x": box.x, "y": box.y, "width": box.w, "height": box.h, "score": box.score}


def box_from(raw: dict[str, Any]) -> Box:
    """:func:`box_dict` read back (``score`` optional, 1 when absent)."""
    return Box(raw["x"], raw["y"], raw["width"], raw["height"], raw.get("score", 1.0))


@dataclass(frozen=True)
class SaliencyResult:
    box: Box
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
    faces: tuple[Box, ...] = ()
    saliency: SaliencyResult | None = None
    text: tuple[Box, ...] = ()
    text_coverage: float = 0.0
    content: tuple[str, float] | None = None  # (class, confidence)
    unavailable: dict[str, str] = field(default_factory=dict)  # component -> reason
    # Detections below the face threshold: cropping keeps them when it can (small real
    # faces score low), /meta lists them apart; never counted as faces.
    possible_faces: tuple[Box, ...] = ()
    # Person regions: the salient blob around a possible face (its body); cropping keeps
    # them like possible faces.
    people: tuple[Box, ...] = ()
    models: tuple[ModelUsed, ...] = ()  # what produced it (the cache key has their sha256)
    version: int = 0  # the analysis code version

    def to_dict(self) -> dict[str, Any]:
        raw = asdict(self)
        for name in BOX_FIELDS:
            raw[name] = tuple(box_dict(box) for box in getattr(self, name))
        if self.saliency is not None:
            raw["saliency"]["box"] = box_dict(self.saliency.box)
        return raw

    def turned(self, rotate: int, flip: str) -> Analysis:
        """The same findings in the coordinates of the picture turned by ``rot``/``flip``
        (the analysis itself is cached once, for the picture as its EXIF shows it)."""
        if not rotate and not flip:
            return self
        size = Size(self.width, self.height)

        def box(found: Box) -> Box:
            return turn_box(found, size, rotate, flip)

        saliency = self.saliency
        if saliency is not None:
            grid = np.rot90(np.asarray(saliency.grid, dtype=np.float64), k=-(rotate // 90))
            if "h" in flip:
                grid = np.fliplr(grid)
            if "v" in flip:
                grid = np.flipud(grid)
            centroid = turn_box(Box(*saliency.centroid, 0.0, 0.0), size, rotate, flip)
            saliency = SaliencyResult(
                box=box(saliency.box),
                mass=saliency.mass,
                centroid=(centroid.x, centroid.y),
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
            faces=tuple(box_from(box) for box in raw.get("faces", ())),
            saliency=SaliencyResult(
                box=box_from(saliency["box"]),
                mass=saliency["mass"],
                centroid=(saliency["centroid"][0], saliency["centroid"][1]),
                grid=tuple(tuple(row) for row in saliency["grid"]),
            )
            if saliency
            else None,
            text=tuple(box_from(box) for box in raw.get("text", ())),
            text_coverage=raw.get("text_coverage", 0.0),
            content=(content[0], content[1]) if content else None,
            unavailable=dict(raw.get("unavailable", {})),
            possible_faces=tuple(box_from(box) for box in raw.get("possible_faces", ())),
            people=tuple(box_from(box) for box in raw.get("people", ())),
            models=tuple(ModelUsed(**model) for model in raw.get("models", ())),
            version=int(raw.get("version", 0)),
        )
