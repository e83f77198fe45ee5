"""The admin API's bodies as pydantic models: requests keep their checks and messages (a 400
problem, never a pydantic error), responses keep their JSON spelling, and the OpenAPI document
is generated from them."""

from __future__ import annotations

import pytest

from proxy.cropping.overrides import CropOverride
from proxy.errors import BadParameter
from proxy.geometry import Rect
from proxy.server import admin_models as m
from proxy.server.admin_reports import Metrics
from proxy.server.openapi import document
from proxy.sources.paths import SourcePath
from proxy.stores.base import AltText


@pytest.mark.parametrize(
    ("model", "body", "message"),
    [
        (m.OverrideRequest, {"rect": [0, 0, 1]}, "rect must be [x, y, w, h] in source pixels"),
        (m.OverrideRequest, {"aspect": None, "rect": [0, 0, 1, 1]}, "aspect"),
        (m.OverrideRequest, {"rect": [0, 0, 1, 1], "ctx": "nope"}, "ctx must be one of"),
        (m.AltRequest, {"text": 5}, "text must be a string of at most 1000 characters"),
        (m.RuleRequest, {"rule": "x"}, "rule must be one of never-crop"),
        (m.RuleRequest, {"rule": "never-crop", "reason": " "}, "a reason is required"),
        (m.Decision, {"action": {}}, "action must be accept, reject or edit"),
        (m.Decision, {"action": "edit", "seconds": True}, "seconds must be a number"),
    ],
)
def test_a_bad_request_body_is_the_same_bad_parameter(
    model: type[m.Open], body: dict[str, object], message: str
) -> None:
    with pytest.raises(BadParameter, match=message.replace("[", r"\[")):
        m.parse(model, body)


def test_a_request_body_is_read_as_before() -> None:
    crop = m.parse(
        m.OverrideRequest, {"aspect": "32:18", "rect": [1, 2, 3, 4], "ctx": "", "x": 1}
    ).crop()
    assert (crop.aspect, crop.rect, crop.ctx, crop.reason) == ("16:9", Rect(1, 2, 3, 4), "", "")
    rule = m.parse(m.RuleRequest, {"rule": "never-crop", "reason": "  packshots "})
    assert (rule.prefix, rule.reason) == ("", "packshots")
    decision = m.parse(m.Decision, {"action": "edit", "value": 5, "reason": " r "})
    assert decision.decision("ann").value == 5  # the value is judged with its item


def test_responses_keep_their_spelling() -> None:
    path = SourcePath("a.png")
    alt = m.Alt.at(path, None).model_dump(mode="json", exclude_unset=True)
    assert alt == {
        "path": "a.png",
        "text": "",
        "status": "empty",
        "confidence": None,
        "machine_generated": False,
        "model": None,
    }
    draft = m.Alt.at(path, AltText(path, "a door", "draft", confidence=1))
    assert draft.model_dump(mode="json", exclude_unset=True)["draft"] == "a door"
    assert draft.model_dump(mode="json")["confidence"] == 1  # an int stays an int
    stored = m.StoredOverride.stored(path, CropOverride(path, "any", Rect(0, 0, 5, 5), created=3))
    assert stored.model_dump(mode="json")["ctx"] is None


def test_the_document_is_generated_from_the_models() -> None:
    schemas = document()["components"]["schemas"]
    assert schemas["Metrics"]["additionalProperties"] is False
    assert set(schemas["Metrics"]["properties"]["components"]["required"]) == {
        "alt",
        "crop",
        "qa",
        "moderation",
        "sample",
    }
    assert schemas["OverrideRequest"]["required"] == ["rect"]
    assert schemas["SearchHit"]["properties"]["class"]
    assert Metrics.model_json_schema()["additionalProperties"] is False
