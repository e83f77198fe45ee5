"""Crop candidates (``proxy.cropping``): properties and worked examples."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from proxy.cropping import (
    STRATEGIES,
    Candidate,
    Evidence,
    evidence_from,
    pick,
    propose,
    rank,
    score,
)
from proxy.detectors.faces import Face
from proxy.geometry import Box, Rect, Size, place_window, window_size

FAST = settings(max_examples=60, deadline=None)


def inside(box: Box, rect: Rect) -> bool:
    return (
        box.x >= rect.x
        and box.y >= rect.y
        and box.x + box.w <= rect.x + rect.w
        and box.y + box.h <= rect.y + rect.h
    )


def centred(source: Size, window: Size) -> Rect:
    return place_window(
        Rect(0, 0, source.width, source.height), window, source.width / 2, source.height / 2
    )


@st.composite
def frames(draw: st.DrawFn) -> tuple[Size, Size]:
    """A source and a crop window of some output aspect (the largest that fits)."""
    source = Size(draw(st.integers(40, 3000)), draw(st.integers(40, 3000)))
    out = Size(draw(st.integers(1, 40)), draw(st.integers(1, 40)))
    return source, window_size(source, out)


@st.composite
def boxes_in(draw: st.DrawFn, area: Rect, max_count: int = 4, min_count: int = 1) -> list[Box]:
    """Integer boxes inside ``area`` (which may touch the source border)."""
    out = []
    for _ in range(draw(st.integers(min_count, max_count))):
        w = draw(st.integers(1, area.w))
        h = draw(st.integers(1, area.h))
        x = draw(st.integers(area.x, area.x + area.w - w))
        y = draw(st.integers(area.y, area.y + area.h - h))
        out.append(Box(x, y, w, h, draw(st.floats(0.3, 1.0))))
    return out


@st.composite
def sub_rect(draw: st.DrawFn, source: Size, window: Size) -> Rect:
    x = draw(st.integers(0, source.width - window.width))
    y = draw(st.integers(0, source.height - window.height))
    return Rect(x, y, window.width, window.height)


def whole(source: Size) -> Rect:
    return Rect(0, 0, source.width, source.height)


@st.composite
def grids(draw: st.DrawFn) -> np.ndarray:
    rows, cols = draw(st.integers(1, 8)), draw(st.integers(1, 8))
    values = draw(st.lists(st.floats(0, 1), min_size=rows * cols, max_size=rows * cols))
    return np.array(values, dtype=np.float32).reshape(rows, cols)


@st.composite
def evidence(draw: st.DrawFn, source: Size, faces: bool = True, text: bool = True) -> Evidence:
    area = whole(source)
    face_boxes = draw(boxes_in(area, 5, 0)) if faces else []
    text_boxes = draw(boxes_in(area, 5, 0)) if text else []
    saliency = draw(st.none() | boxes_in(area, 1, 1).map(lambda b: b[0]))
    grid = draw(st.none() | grids()) if saliency is not None else None
    return Evidence(
        faces=tuple(face_boxes),
        saliency=saliency,
        saliency_mass=0.2 if saliency is not None else 0.0,
        saliency_grid=grid,
        text=tuple(text_boxes),
    )


# --- properties ---


@FAST
@given(st.data())
def test_every_candidate_is_a_window_inside_the_source(data: st.DataObject) -> None:
    source, window = data.draw(frames())
    ev = data.draw(evidence(source))
    for candidate in (*propose(source, window, ev), *rank(source, window, ev, n=5)):
        r = candidate.rect
        assert (r.w, r.h) == (window.width, window.height)
        assert 0 <= r.x <= source.width - r.w and 0 <= r.y <= source.height - r.h
        assert 0.0 <= candidate.score <= 1.0
        assert candidate.strategy in STRATEGIES and candidate.reasons


@FAST
@given(st.data())
def test_ranking_is_sorted_distinct_and_deterministic(data: st.DataObject) -> None:
    source, window = data.draw(frames())
    ev = data.draw(evidence(source))
    n = data.draw(st.integers(1, 5))
    ranked = rank(source, window, ev, n=n)
    assert 1 <= len(ranked) <= n
    assert [c.score for c in ranked] == sorted((c.score for c in ranked), reverse=True)
    assert ranked == rank(source, window, ev, n=n)
    for i, a in enumerate(ranked):
        for b in ranked[i + 1 :]:
            assert max(abs(a.rect.x - b.rect.x), abs(a.rect.y - b.rect.y)) > 4


@FAST
@given(frames())
def test_no_evidence_gives_the_centre_crop(frame: tuple[Size, Size]) -> None:
    source, window = frame
    top = rank(source, window, Evidence())[0]
    assert top.rect == centred(source, window)
    assert top.strategy == "center"


@FAST
@given(st.data())
def test_top_keeps_every_face_when_the_window_can_hold_them(data: st.DataObject) -> None:
    source, window = data.draw(frames())
    # Faces anywhere in some window-sized area (borders and lone outliers included),
    # with distracting saliency and text anywhere.
    faces = data.draw(boxes_in(data.draw(sub_rect(source, window)), 6))
    distractions = data.draw(evidence(source, faces=False))
    ev = replace(distractions, faces=tuple(faces))
    top = rank(source, window, ev)[0]
    assert all(inside(f, top.rect) for f in faces), (top, faces)


@FAST
@given(st.data())
def test_possible_faces_never_cost_a_confident_face(data: st.DataObject) -> None:
    source, window = data.draw(frames())
    faces = data.draw(boxes_in(data.draw(sub_rect(source, window)), 4))
    possible = data.draw(boxes_in(whole(source), 5))  # anywhere, even far from the faces
    distractions = data.draw(evidence(source, faces=False))
    ev = replace(distractions, faces=tuple(faces), possible_faces=tuple(possible))
    top = rank(source, window, ev)[0]
    assert all(inside(f, top.rect) for f in faces), (top, faces, possible)


@FAST
@given(st.data())
def test_top_keeps_every_person_when_the_window_can_hold_them(data: st.DataObject) -> None:
    source, window = data.draw(frames())
    area = data.draw(sub_rect(source, window))
    faces = data.draw(boxes_in(area, 3, 0))
    possible = data.draw(boxes_in(area, 3))
    distractions = data.draw(evidence(source, faces=False))  # text and saliency anywhere
    ev = replace(distractions, faces=tuple(faces), possible_faces=tuple(possible))
    top = rank(source, window, ev)[0]
    assert all(inside(f, top.rect) for f in (*faces, *possible)), (top, faces, possible)
    assert f"keeps {len(possible)}/{len(possible)} possible faces" in top.reasons


@st.composite
def cut_through(draw: st.DrawFn, face: Box, source: Size, window: Size) -> Rect | None:
    """A window position whose edge goes through ``face`` (None when there is none)."""

    def through(lo: int, size: int, length: int, extent: int) -> list[int]:
        edges = [lo + k for k in range(1, size)] + [lo + k - length for k in range(1, size)]
        return [s for s in edges if 0 <= s <= extent - length]

    def overlapping(lo: int, size: int, length: int, extent: int) -> list[int]:
        return list(range(max(0, lo - length + 1), min(extent - length, lo + size - 1) + 1))

    x, y, w, h = int(face.x), int(face.y), int(face.w), int(face.h)
    options = [
        (sx, sy)
        for sx in through(x, w, window.width, source.width)
        for sy in overlapping(y, h, window.height, source.height)[:3]
    ] + [
        (sx, sy)
        for sy in through(y, h, window.height, source.height)
        for sx in overlapping(x, w, window.width, source.width)[:3]
    ]
    if not options:
        return None
    sx, sy = draw(st.sampled_from(options))
    return Rect(sx, sy, window.width, window.height)


@FAST
@given(st.data())
def test_cutting_a_face_scores_lower_than_shifting_to_keep_it(data: st.DataObject) -> None:
    source, window = data.draw(frames())
    face = data.draw(boxes_in(data.draw(sub_rect(source, window)), 1))[0]
    cut = data.draw(cut_through(face, source, window))
    assume(cut is not None)
    assert cut is not None and not inside(face, cut)
    # The same window, shifted the least that keeps the face.
    x = min(max(cut.x, int(face.x + face.w) - cut.w), int(face.x))
    y = min(max(cut.y, int(face.y + face.h) - cut.h), int(face.y))
    shifted = Rect(x, y, cut.w, cut.h)
    assert inside(face, shifted)
    distractions = data.draw(evidence(source, faces=False, text=False))
    ev = Evidence(faces=(face,), saliency=distractions.saliency)
    cut_score, reasons = score(cut, source, ev)
    assert cut_score < score(shifted, source, ev)[0]
    assert any(r.startswith("cuts 1 face at the") for r in reasons)


@FAST
@given(st.data())
def test_top_keeps_fitting_text_whole_without_faces(data: st.DataObject) -> None:
    source, window = data.draw(frames())
    text = data.draw(boxes_in(data.draw(sub_rect(source, window)), 6))
    distractions = data.draw(evidence(source, faces=False, text=False))
    ev = Evidence(
        saliency=distractions.saliency,
        saliency_mass=distractions.saliency_mass,
        saliency_grid=distractions.saliency_grid,
        text=tuple(text),
    )
    top = rank(source, window, ev)[0]
    assert all(inside(t, top.rect) for t in text)
    assert "keeps all text whole" in top.reasons


@settings(max_examples=80, deadline=None)
@given(st.data())
def test_moving_a_single_subject_right_never_moves_the_top_left(data: st.DataObject) -> None:
    source, window = data.draw(frames())
    box = data.draw(boxes_in(whole(source), 1))[0]
    dx = data.draw(st.integers(0, int(source.width - box.x - box.w)))
    moved = Box(box.x + dx, box.y, box.w, box.h, box.score)
    kind = data.draw(st.sampled_from(["face", "saliency"]))

    def top(b: Box) -> Rect:
        ev = Evidence(faces=(b,)) if kind == "face" else Evidence(saliency=b, saliency_mass=0.3)
        return rank(source, window, ev)[0].rect

    assert top(moved).x >= top(box).x


# --- worked examples ---


def test_group_and_a_far_away_person_all_kept_in_a_wide_window() -> None:
    source = Size(4000, 1500)
    window = window_size(source, Size(1600, 900))  # 2667 x 1500
    group = (Box(600, 500, 120, 150, 0.99), Box(780, 520, 110, 140, 0.98), Box(950, 510, 115, 145))
    loner = Box(3150, 700, 60, 75, 0.85)  # small and far away, but the window can hold all
    ev = Evidence(faces=(*group, loner), saliency=Box(500, 400, 700, 700), saliency_mass=0.1)
    ranked = rank(source, window, ev)
    top = ranked[0]
    assert all(inside(f, top.rect) for f in (*group, loner))
    assert "keeps 4/4 faces" in top.reasons
    assert pick(ranked, "faces") is top
    # A window on the group alone would cut or drop the loner and must score lower.
    group_only = Rect(0, 0, window.width, window.height)
    assert score(group_only, source, ev)[0] < top.score


def test_portrait_window_keeps_a_face_near_the_right_edge() -> None:
    source = Size(1600, 900)
    window = window_size(source, Size(800, 1000))  # 720 x 900
    face = Box(1460, 200, 120, 150, 0.95)
    ranked = rank(source, window, Evidence(faces=(face,)))
    top = ranked[0]
    assert inside(face, top.rect)
    assert top.rect == Rect(880, 0, 720, 900)  # clamped to the right edge
    assert "keeps 1/1 face" in top.reasons
    # The centre crop misses the face entirely; a crop through it names the edge.
    assert score(centred(source, window), source, Evidence(faces=(face,)))[0] < top.score
    _, reasons = score(Rect(800, 0, 720, 900), source, Evidence(faces=(face,)))
    assert "cuts 1 face at the right edge" in reasons


def test_screenshot_banner_text_stays_whole() -> None:
    source = Size(1280, 2400)  # a tall page capture
    window = window_size(source, Size(1200, 630))  # 1280 x 672, a social card
    banner = (Box(40, 24, 900, 64, 0.9), Box(40, 100, 600, 32, 0.8))
    body = tuple(Box(40, 900 + 60 * i, 1100, 28, 0.7) for i in range(20))  # cannot all fit
    grid = np.zeros((16, 8), dtype=np.float32)
    grid[7:10, 2:6] = 1.0  # an illustration mid-page
    ev = Evidence(
        saliency=Box(320, 1050, 640, 450),
        saliency_mass=0.1,
        saliency_grid=grid,
        text=banner,
    )
    top = rank(source, window, ev)[0]
    assert all(inside(t, top.rect) for t in banner)
    assert top.rect.y == 0 and "keeps all text whole" in top.reasons
    # With body text too, nothing can keep all text: the text strategy keeps the most area.
    text_pick = pick(propose(source, window, Evidence(text=banner + body)), "text")
    assert text_pick is not None
    kept = sum(t.area for t in banner + body if inside(t, text_pick.rect))
    assert kept >= max(
        sum(t.area for t in banner + body if inside(t, Rect(0, y, 1280, 672)))
        for y in range(0, 2400 - 672 + 1, 8)
    )


def test_saliency_grid_measures_the_mass_kept() -> None:
    source, window = Size(1000, 500), Size(500, 500)
    grid = np.zeros((2, 4), dtype=np.float32)
    grid[:, 0] = 1.0  # all mass in the leftmost quarter
    ev = Evidence(saliency=Box(0, 0, 250, 500), saliency_mass=0.25, saliency_grid=grid)
    value, reasons = score(Rect(125, 0, 500, 500), source, ev)
    assert "keeps 50% of the salient area" in reasons
    top = rank(source, window, ev)[0]
    assert top.rect.x == 0 and "keeps 100% of the salient area" in top.reasons
    assert top.score > value


def test_faces_that_cannot_all_fit_keep_the_strongest_cluster() -> None:
    source, window = Size(3000, 1000), Size(1000, 1000)
    trio = (Box(2000, 300, 150, 150), Box(2200, 300, 150, 150), Box(2400, 300, 150, 150))
    lone = Box(100, 300, 150, 150, 0.9)
    ranked = rank(source, window, Evidence(faces=(lone, *trio)))
    faces = pick(ranked, "faces")
    assert faces is not None and ranked[0] == faces
    assert all(inside(f, faces.rect) for f in trio) and not inside(lone, faces.rect)
    assert "keeps 3/4 faces" in faces.reasons


def test_a_small_low_scoring_face_at_the_edge_is_kept_over_text_and_saliency() -> None:
    """kodim24's case: no confident face, a 10x13 px woman at a door (YuNet 0.47) at the
    right edge, text and most of the salient mass on the left."""
    source = Size(768, 512)
    window = window_size(source, Size(288, 512))
    woman = Box(727, 404, 10, 13, 0.47)
    grid = np.zeros((4, 8), dtype=np.float32)
    grid[:, 1:4] = 1.0
    ev = Evidence(
        possible_faces=(woman,),
        saliency=Box(100, 0, 300, 512),
        saliency_mass=0.3,
        saliency_grid=grid,
        text=(Box(150, 60, 120, 30, 0.6),),
    )
    top = rank(source, window, ev)[0]
    assert inside(woman, top.rect) and "keeps 1/1 possible faces" in top.reasons
    assert pick(rank(source, window, ev), "faces") == top
    # Without the possible face, text and saliency decide, as before.
    assert not inside(woman, rank(source, window, replace(ev, possible_faces=()))[0].rect)


def test_duplicates_merge_and_pick_finds_them() -> None:
    source, window = Size(1000, 500), Size(500, 500)
    face = Box(480, 200, 40, 40)  # centred: faces, thirds and centre agree
    ranked = rank(source, window, Evidence(faces=(face,)), n=5)
    assert len(ranked) == 1
    assert {ranked[0].strategy, *ranked[0].merged} == {"faces", "thirds", "center"}
    assert pick(ranked, "center") is ranked[0]
    assert pick(ranked, "text") is None


def test_window_must_fit_the_source() -> None:
    with pytest.raises(ValueError):
        propose(Size(100, 100), Size(101, 50), Evidence())


def test_candidate_fields() -> None:
    candidate = rank(Size(200, 100), Size(100, 100), Evidence())[0]
    assert isinstance(candidate, Candidate)
    assert candidate.rect == Rect(50, 0, 100, 100)
    assert candidate.reasons == ("no subject found: centred",)


@dataclass(frozen=True)
class _Saliency:
    mask: np.ndarray
    box: Box
    mass: float
    centroid: tuple[float, float]


def test_evidence_from_detector_results() -> None:
    mask = np.zeros((32, 64), dtype=np.uint8)
    mask[:, 48:] = 255
    ev = evidence_from(
        faces=[Face(10, 20, 30, 40, 0.9, landmarks=((20.0, 30.0),))],
        saliency=_Saliency(mask, Box(1200.0, 0.0, 400.0, 800.0), 0.25, (1400.0, 400.0)),
        text=[Box(5, 5, 100, 20, 0.5)],
    )
    assert ev.faces == (Box(10, 20, 30, 40, 0.9),)
    assert ev.text == (Box(5, 5, 100, 20, 0.5),)
    assert ev.saliency == Box(1200, 0, 400, 800) and ev.saliency_centroid == (1400.0, 400.0)
    assert ev.saliency_grid is not None and float(ev.saliency_grid.max()) == 1.0
    empty = _Saliency(np.zeros((4, 4), dtype=np.uint8), Box(0, 0, 0, 0), 0.0, (0, 0))
    assert evidence_from(saliency=empty).saliency is None
