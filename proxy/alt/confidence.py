"""How sure the model was of its alt text, from token log-probabilities or its own rating.

Log-probabilities measure what the model *did*; a self-rating is just more generated text, so
it is used only when a server returns no logprobs. Only the tokens that spell the alt text
count: the JSON scaffolding (``{"alt": "``) is near-certain and would inflate the score, and the
confidence digits are a different question altogether.

The score combines two views of the alt-text tokens, each a probability in 0..1:

* the geometric mean of all token probabilities (``exp(mean(logprob))``), the per-token
  likelihood of the whole sentence, independent of its length;
* the geometric mean of the weakest tenth of the tokens (at least one): a single guessed noun
  ("a red *bicycle*" at p=0.05) is exactly the hallucination that matters, yet in a 20-token
  sentence of near-certain function words it barely moves the overall mean.

``confidence = sqrt(overall * weakest)``: either view being low makes the result low, a sentence
that is uniformly likely keeps its probability, and, unlike the single minimum, one
tokenisation quirk in a long sentence does not zero it.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

WEAKEST_SHARE = 0.1
"""Share of the alt-text tokens, at least one, that count as "the weakest"."""

_ALT_KEYS = ("alt", "alt_text", "alttext", "description")
_FENCE = re.compile(r"```[A-Za-z0-9_-]*[ \t]*\n?|```")


@dataclass(frozen=True)
class TokenLogprob:
    token: str
    logprob: float


@dataclass(frozen=True)
class ParsedContent:
    """The alt text as the model wrote it (still unsanitised) and where it sits in the text."""

    alt: str
    start: int
    end: int
    self_rated: float | None
    structured: bool
    """``True`` when the alt text came out of a JSON object, ``False`` for plain text."""


def tokens_from(logprobs: object) -> list[TokenLogprob] | None:
    """``choices[0].logprobs`` in the OpenAI chat shape (``{"content": [{token, logprob}]}``),
    or ``None`` when absent or malformed. Tokens without a usable logprob are dropped."""
    if not isinstance(logprobs, Mapping):
        return None
    content = logprobs.get("content")
    if not isinstance(content, list) or not content:
        return None
    tokens: list[TokenLogprob] = []
    for item in content:
        if not isinstance(item, Mapping):
            return None
        token = item.get("token")
        if not isinstance(token, str):
            raw = item.get("bytes")
            if not isinstance(raw, list) or not all(isinstance(b, int) for b in raw):
                return None
            token = bytes(b & 0xFF for b in raw).decode("utf-8", "replace")
        logprob = item.get("logprob")
        if isinstance(logprob, bool) or not isinstance(logprob, int | float):
            logprob = math.nan
        tokens.append(TokenLogprob(token, float(logprob)))
    return tokens


def parse_content(content: str) -> ParsedContent | None:
    """Find the alt text in a model's reply: a JSON object with an ``alt`` key, possibly in a
    code fence or with prose around it, else the whole reply as plain text.

    Positions index ``content`` itself, so the same parse over the joined logprob tokens tells
    which tokens spell the alt text.
    """
    found = _find_json_alt(content)
    if found is not None:
        return found
    if not content.strip():
        return None
    # plain text: everything but code fences and surrounding whitespace
    unfenced = _FENCE.sub(lambda m: " " * len(m.group(0)), content)
    stripped = unfenced.strip()
    if not stripped:
        return None
    start = unfenced.index(stripped)
    return ParsedContent(stripped, start, start + len(stripped), None, structured=False)


def _find_json_alt(content: str) -> ParsedContent | None:
    decoder = json.JSONDecoder()
    position = content.find("{")
    while position != -1:
        try:
            value, end = decoder.raw_decode(content, position)
        except (ValueError, RecursionError):
            value, end = None, position
        if isinstance(value, dict):
            key = next((k for k in _ALT_KEYS if isinstance(value.get(k), str)), None)
            if key is not None:
                span = _string_span(content, position, end, key)
                start, stop = span if span is not None else (position, end)
                return ParsedContent(
                    value[key], start, stop, rating(value.get("confidence")), structured=True
                )
        # the next brace, which may open an object nested in this one ({"result": {"alt": ..}})
        position = content.find("{", position + 1)
    return None


def _string_span(content: str, start: int, end: int, key: str) -> tuple[int, int] | None:
    """Where the string value of ``key`` lies (between its quotes) in ``content[start:end]``."""
    pattern = re.compile(r'"' + re.escape(key) + r'"\s*:\s*"((?:[^"\\]|\\.)*)"', re.DOTALL)
    match = pattern.search(content, start, end)
    return (match.start(1), match.end(1)) if match else None


def rating(value: Any) -> float | None:
    """A self-rating as 0..1: numbers or numeric strings; 1 < x <= 100 reads as a percentage
    (models do write ``85``); anything else, including NaN and booleans, is no rating."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        text = value.strip().rstrip("%").strip()
        try:
            number = float(text)
        except ValueError:
            return None
        if value.strip().endswith("%"):
            number /= 100
    elif isinstance(value, int | float):
        number = float(value)
    else:
        return None
    if not math.isfinite(number):
        return None
    if 1 < number <= 100:
        number /= 100
    return min(1.0, max(0.0, number))


def alt_tokens(
    tokens: Sequence[TokenLogprob], structured: bool | None = None
) -> list[TokenLogprob] | None:
    """The tokens overlapping the alt text, located by parsing the tokens' own concatenation
    (servers' token strings do not always add up to ``message.content`` byte for byte).

    ``structured`` is how ``message.content`` parsed; when the tokens parse differently they do
    not describe that answer (truncated, or another choice's), and ``None`` is returned.
    """
    joined = "".join(token.token for token in tokens)
    parsed = parse_content(joined)
    if parsed is None or parsed.start >= parsed.end:
        return None
    if structured is not None and parsed.structured != structured:
        return None
    chosen: list[TokenLogprob] = []
    offset = 0
    for token in tokens:
        token_end = offset + len(token.token)
        if token_end > parsed.start and offset < parsed.end:
            chosen.append(token)
        offset = token_end
    return chosen or None


def score(logprobs: Sequence[float], weakest_share: float = WEAKEST_SHARE) -> float | None:
    """``sqrt(geometric mean * geometric mean of the weakest share)`` of the token
    probabilities; ``None`` when no token has a finite logprob."""
    values = sorted(min(0.0, lp) for lp in logprobs if math.isfinite(lp))
    if not values:
        return None
    weakest = values[: max(1, math.ceil(len(values) * weakest_share))]
    overall = sum(values) / len(values)
    low = sum(weakest) / len(weakest)
    return min(1.0, max(0.0, math.exp((overall + low) / 2)))


def from_logprobs(logprobs: object, structured: bool | None = None) -> float | None:
    """Confidence from ``choices[0].logprobs``, or ``None`` when it cannot be computed.
    ``structured``: see :func:`alt_tokens`."""
    tokens = tokens_from(logprobs)
    if tokens is None:
        return None
    chosen = alt_tokens(tokens, structured)
    if chosen is None:
        return None
    return score([token.logprob for token in chosen])
