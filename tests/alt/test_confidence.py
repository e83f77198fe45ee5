"""Confidence from token logprobs: only the alt text's own tokens count, weak tokens weigh."""

from __future__ import annotations

import math

import pytest

from proxy.alt import confidence as conf
from tests.vlm_server import tokenize


def logprobs_for(pieces: list[tuple[str, float]]) -> dict[str, object]:
    """An OpenAI ``logprobs`` object: every token of each text gets that text's probability."""
    return {
        "content": [
            {"token": token, "logprob": math.log(prob), "bytes": None, "top_logprobs": []}
            for text, prob in pieces
            for token in tokenize(text)
        ]
    }


def json_answer(alt_prob: float, scaffold_prob: float, digits_prob: float) -> dict[str, object]:
    return logprobs_for(
        [
            ('{"alt": "', scaffold_prob),
            ("A red leather boot on a wooden floor.", alt_prob),
            ('", "confidence": ', scaffold_prob),
            ("0.9", digits_prob),
            ("}", scaffold_prob),
        ]
    )


def test_uniformly_likely_text_keeps_its_probability() -> None:
    assert conf.from_logprobs(json_answer(0.97, 0.999, 0.999)) == pytest.approx(0.97)


def test_uniformly_unlikely_text_scores_low() -> None:
    assert conf.from_logprobs(json_answer(0.3, 0.999, 0.999)) == pytest.approx(0.3)


def test_scaffolding_and_confidence_digits_are_ignored() -> None:
    # near-certain alt text inside improbable JSON and digits: still confident
    assert conf.from_logprobs(json_answer(0.97, 0.01, 0.01)) == pytest.approx(0.97)
    # improbable alt text inside near-certain scaffolding: still unsure
    assert conf.from_logprobs(json_answer(0.2, 0.9999, 0.9999)) == pytest.approx(0.2)


def test_one_guessed_word_pulls_confidence_below_a_typical_threshold() -> None:
    tokens = [0.98] * 19 + [0.05]
    logprobs = [math.log(p) for p in tokens]
    overall = math.exp(sum(logprobs) / len(logprobs))
    assert overall > 0.8  # the plain geometric mean would publish the guess
    score = conf.score(logprobs)
    assert score is not None and score < 0.5


def test_score_handles_edge_values() -> None:
    assert conf.score([]) is None
    assert conf.score([math.nan, math.inf]) is None
    assert conf.score([0.5, 0.0]) == pytest.approx(1.0)  # positive logprobs clamp to p=1
    assert conf.score([-9999.0, -0.01]) == pytest.approx(0.0)


def test_plain_text_answers_count_every_token() -> None:
    logprobs = logprobs_for([("A dog asleep on a sofa.", 0.9)])
    assert conf.from_logprobs(logprobs) == pytest.approx(0.9)


def test_tokens_spanning_the_quote_still_count() -> None:
    # a real tokenizer merges '"A' and '."}'; the alt text's tokens must still be found
    content = [
        ("{", 0.999),
        ('"alt', 0.999),
        ('":', 0.999),
        (' "A', 0.5),
        (" dog", 0.5),
        ('."}', 0.5),
    ]
    logprobs = {"content": [{"token": t, "logprob": math.log(p)} for t, p in content]}
    assert conf.from_logprobs(logprobs) == pytest.approx(0.5)


def test_missing_or_malformed_logprobs_give_none() -> None:
    assert conf.from_logprobs(None) is None
    assert conf.from_logprobs({"content": None}) is None
    assert conf.from_logprobs({"content": []}) is None
    assert conf.from_logprobs({"content": ["x"]}) is None
    assert conf.from_logprobs({"content": [{"logprob": -0.1}]}) is None
    assert conf.from_logprobs({"content": [{"token": "   ", "logprob": -0.1}]}) is None


def test_tokens_that_parse_unlike_the_content_are_ignored() -> None:
    # the content was JSON, the tokens are plain text: they do not describe that answer
    logprobs = logprobs_for([("A dog asleep on a sofa.", 0.9)])
    assert conf.from_logprobs(logprobs, structured=True) is None
    assert conf.from_logprobs(logprobs, structured=False) == pytest.approx(0.9)


def test_byte_tokens_are_decoded() -> None:
    logprobs = {"content": [{"bytes": list(b"A cat."), "logprob": math.log(0.8)}]}
    assert conf.from_logprobs(logprobs) == pytest.approx(0.8)


@pytest.mark.parametrize(
    ("content", "alt", "rating"),
    [
        ('{"alt": "A dog.", "confidence": 0.8}', "A dog.", 0.8),
        ('```json\n{"alt": "A dog.", "confidence": 0.8}\n```', "A dog.", 0.8),
        ('Sure! {"alt": "A dog.", "confidence": "0.7"} Hope it helps.', "A dog.", 0.7),
        ('{"result": {"alt": "A \\"big\\" dog.", "confidence": 85}}', 'A "big" dog.', 0.85),
        ('{"alt": "A dog.", "confidence": 1.7}', "A dog.", 0.017),
        ('{"alt": "A dog.", "confidence": "90%"}', "A dog.", 0.9),
        ('{"alt": "A dog.", "confidence": -2}', "A dog.", 0.0),
        ('{"alt": "A dog.", "confidence": true}', "A dog.", None),
        ('{"alt": "A dog."}', "A dog.", None),
        ("  A dog on a sofa.  ", "A dog on a sofa.", None),
        ("```\nA dog on a sofa.\n```", "A dog on a sofa.", None),
    ],
)
def test_parse_content(content: str, alt: str, rating: float | None) -> None:
    parsed = conf.parse_content(content)
    assert parsed is not None
    assert parsed.alt == alt
    assert parsed.self_rated == (pytest.approx(rating) if rating is not None else None)


def test_parse_content_positions_index_the_raw_text() -> None:
    content = 'ok ```json\n{"alt": "A dog.", "confidence": 0.8}\n```'
    parsed = conf.parse_content(content)
    assert parsed is not None and parsed.structured
    assert content[parsed.start : parsed.end] == "A dog."


def test_parse_content_of_nothing() -> None:
    assert conf.parse_content("") is None
    assert conf.parse_content("  \n ```json\n```") is None
