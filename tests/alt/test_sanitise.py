"""Turning the model's words into alt text, or refusing to."""

from __future__ import annotations

import pytest

from proxy.alt.client import VlmBadResponse, sanitise


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  A red   boot\non a floor.  ", "A red boot on a floor."),
        ('"A red boot."', "A red boot."),
        ("\u201cA red boot.\u201d", "A red boot."),
        ("Alt text: a red boot.", "A red boot."),
        ('ALT-TEXT - "Image of a red boot."', "A red boot."),
        ("An image of a red boot.", "A red boot."),
        ("Picture showing two boats at sea.", "Two boats at sea."),
        ("iPhone on a desk.", "iPhone on a desk."),
        ("A 100-year-old oak tree.", "A 100-year-old oak tree."),
        ("A black dog on a white sofa.", "A black dog on a white sofa."),
        ("Two people walking on a beach at sunset.", "Two people walking on a beach at sunset."),
    ],
)
def test_tidies(raw: str, expected: str) -> None:
    assert sanitise(raw) == expected


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("", "empty"),
        ('  "" ', "empty"),
        ("Alt text:", "empty"),
        ("I'm sorry, but I can't help with that.", "refusal"),
        ("I cannot identify people in images.", "refusal"),
        ("Sorry, I am unable to see the image.", "refusal"),
        ("As an AI, I cannot see images.", "refusal"),
        ("A boot. As an AI language model I may be wrong.", "refusal"),
        ("word " * 70, "too_long"),
        ("This is Barack Obama speaking at a podium.", "identifies_person"),
        ("It's likely Taylor Swift on stage.", "identifies_person"),
        ("He is probably John Smith.", "identifies_person"),
        ("A woman named Maria holding a cup.", "identifies_person"),
        ("A man who resembles Elvis Presley.", "identifies_person"),
        ("Mr. Smith at his desk.", "identifies_person"),
        ("President Lincoln's portrait on a wall.", "identifies_person"),
        ("A 30-year-old woman smiling.", "personal_traits"),
        ("A man in his early forties reading.", "personal_traits"),
        ("An Asian woman holding an umbrella.", "personal_traits"),
    ],
)
def test_rejects(raw: str, reason: str) -> None:
    with pytest.raises(VlmBadResponse) as caught:
        sanitise(raw)
    assert caught.value.reason == reason
