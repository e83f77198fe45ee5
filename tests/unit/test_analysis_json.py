"""An analysis' JSON (the analysis cache, /meta) spells boxes as it always has:
``{"x", "y", "width", "height", "score"}``, and reads back to the same ``geometry.Box``es."""

from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from proxy.analysis.result import Analysis, SaliencyResult, box_dict, box_from
from proxy.geometry import Box

coords = st.floats(0, 5000, allow_nan=False)
boxes = st.builds(Box, coords, coords, coords, coords, st.floats(0, 1))


@given(boxes)
def test_a_box_round_trips_through_its_json(box: Box) -> None:
    raw = json.loads(json.dumps(box_dict(box)))
    assert list(raw) == ["x", "y", "width", "height", "score"]
    assert box_from(raw) == box


def test_an_analysis_keeps_its_json_shape() -> None:
    analysis = Analysis(
        phash="0" * 16,
        width=640,
        height=480,
        faces=(Box(1, 2, 3, 4, 0.9),),
        saliency=SaliencyResult(Box(10, 20, 30, 40), 0.25, (25.0, 40.0), ((0.5,),)),
        text=(Box(5, 6, 7, 8, 0.7),),
        possible_faces=(Box(9, 9, 2, 2, 0.5),),
        people=(Box(0, 0, 100, 200, 0.5),),
    )
    raw = json.loads(json.dumps(analysis.to_dict()))
    assert raw["faces"] == [{"x": 1, "y": 2, "width": 3, "height": 4, "score": 0.9}]
    assert raw["saliency"]["box"] == {"x": 10, "y": 20, "width": 30, "height": 40, "score": 1.0}
    assert raw["people"] == [{"x": 0, "y": 0, "width": 100, "height": 200, "score": 0.5}]
    assert Analysis.from_dict(raw) == analysis
    # Written before the score was stored: one is the default.
    assert box_from({"x": 1, "y": 2, "width": 3, "height": 4}) == Box(1, 2, 3, 4, 1.0)
