"""Person regions (``proxy.detectors.people``): the salient blob around an uncertain face."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.detectors.faces import Face
from proxy.detectors.people import MAX_SHARE, person_regions


def _Face(x: float, y: float, w: float, h: float, score: float) -> Face:
    return Face(x, y, w, h, score, landmarks=())


def mask_with(*blobs: tuple[int, int, int, int], shape: tuple[int, int] = (48, 64)) -> np.ndarray:
    """A 0-255 mask with salient rectangles (row0, col0, row1, col1) in cell units."""
    mask = np.zeros(shape, dtype=np.uint8)
    for r0, c0, r1, c1 in blobs:
        mask[r0:r1, c0:c1] = 230
    return mask


IMAGE = (640, 480)  # 10 px per mask cell


def test_the_body_under_an_uncertain_face_becomes_a_person_region() -> None:
    face = _Face(205, 100, 20, 24, 0.6)  # cells 20-22 x 10-12
    mask = mask_with((11, 18, 30, 25))  # a standing body from the chin down
    (region,) = person_regions(mask, IMAGE, [face])
    assert (region.x, region.y) == (180, 100) and region.score == 0.6
    assert region.x + region.w == 250 and region.y + region.h == 300


def test_a_person_lying_down_is_a_wide_region() -> None:
    face = _Face(100, 300, 22, 20, 0.5)
    mask = mask_with((29, 12, 33, 30))  # the body stretched out to the right
    (region,) = person_regions(mask, IMAGE, [face])
    assert region.w > 2.5 * region.h and region.x == 100


def test_no_region_when_the_blob_is_the_scene_far_away_or_missing() -> None:
    face = _Face(205, 100, 20, 24, 0.6)
    scene = mask_with((0, 0, 48, 40))  # most of the picture is salient
    assert scene.astype(bool).mean() > MAX_SHARE
    assert person_regions(scene, IMAGE, [face]) == []
    elsewhere = mask_with((30, 50, 40, 60))
    assert person_regions(elsewhere, IMAGE, [face]) == []
    assert person_regions(mask_with(), IMAGE, [face]) == []
    assert person_regions(mask_with((11, 18, 30, 25)), IMAGE, []) == []


def test_a_sliver_far_longer_than_a_body_is_not_a_person() -> None:
    face = _Face(205, 100, 10, 10, 0.6)
    rail = mask_with((11, 0, 13, 64))  # a railing across the whole width
    assert person_regions(rail, IMAGE, [face]) == []


@settings(max_examples=60, deadline=None)
@given(
    st.integers(0, 47),
    st.integers(0, 63),
    st.integers(1, 20),
    st.integers(1, 20),
    st.integers(0, 600),
    st.integers(0, 440),
    st.integers(4, 40),
)
def test_a_region_holds_its_face_and_stays_in_the_picture(
    r0: int, c0: int, rows: int, cols: int, x: int, y: int, size: int
) -> None:
    face = _Face(x, y, size, size, 0.7)
    for region in person_regions(mask_with((r0, c0, r0 + rows, c0 + cols)), IMAGE, [face]):
        assert region.x <= face.x and region.y <= face.y
        assert region.x + region.w >= face.x + face.w
        assert region.y + region.h >= face.y + face.h
        assert region.x >= 0 and region.y >= 0
        assert region.x + region.w <= max(IMAGE[0], face.x + face.w)
        assert region.y + region.h <= max(IMAGE[1], face.y + face.h)
