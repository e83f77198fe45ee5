"""q=auto scores large outputs on tiles: the tiles' properties, for any output size."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from proxy.geometry import Rect
from proxy.quality.windows import ALIGN, SCORED_PIXELS, TILE, columns_of, score_windows

SIDES = st.integers(min_value=1, max_value=32_768)
BUDGETS = st.integers(min_value=64 * 64, max_value=8 * SCORED_PIXELS)


def _overlap(a: Rect, b: Rect) -> bool:
    return a.x < b.x + b.w and b.x < a.x + a.w and a.y < b.y + b.h and b.y < a.y + a.h


@given(SIDES, SIDES, BUDGETS)
def test_windows_lie_inside_never_overlap_and_fit_the_budget(
    width: int, height: int, budget: int
) -> None:
    windows = score_windows(width, height, budget)
    assert windows
    for window in windows:
        assert window.x >= 0 and window.y >= 0 and window.w > 0 and window.h > 0
        assert window.x + window.w <= width and window.y + window.h <= height
    for i, a in enumerate(windows):
        for b in windows[i + 1 :]:
            assert not _overlap(a, b), (a, b)
    if width * height > budget:
        assert sum(w.w * w.h for w in windows) <= max(budget, min(TILE, width) * min(TILE, height))


@given(SIDES, SIDES, BUDGETS)
def test_windows_form_a_grid_the_mosaic_can_join(width: int, height: int, budget: int) -> None:
    windows = score_windows(width, height, budget)
    columns = columns_of(windows)
    assert len(windows) % columns == 0
    rows = [windows[i : i + columns] for i in range(0, len(windows), columns)]
    for row in rows:
        assert len({w.y for w in row}) == 1
        assert [w.x for w in row] == sorted(w.x for w in row)
    assert [row[0].y for row in rows] == sorted(row[0].y for row in rows)
    assert len({(w.w, w.h) for w in windows}) == 1  # equal tiles


@given(SIDES, SIDES)
def test_an_output_within_the_budget_is_scored_whole(width: int, height: int) -> None:
    if width * height <= SCORED_PIXELS:
        assert score_windows(width, height) == (Rect(0, 0, width, height),)


@given(st.integers(min_value=2048, max_value=32_768), st.integers(min_value=2048, max_value=32_768))
def test_a_large_output_is_sampled_all_over(width: int, height: int) -> None:
    windows = score_windows(width, height)
    assert len(windows) >= 4
    assert all(w.x % ALIGN == 0 and w.y % ALIGN == 0 for w in windows)
    # Spread: the tiles reach into every half of the image, both ways.
    assert min(w.x for w in windows) < width / 2 <= max(w.x + w.w for w in windows)
    assert min(w.y for w in windows) < height / 2 <= max(w.y + w.h for w in windows)
    # Several tiles along an axis span most of it (one tile sits in the middle).
    if columns_of(windows) > 1:
        assert (
            min(w.x for w in windows) < width * 0.4 < width * 0.6 < max(w.x + w.w for w in windows)
        )
    if len(windows) > columns_of(windows):
        assert (
            min(w.y for w in windows)
            < height * 0.4
            < height * 0.6
            < max(w.y + w.h for w in windows)
        )
