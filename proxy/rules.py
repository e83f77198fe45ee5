"""Reviewers' exception rules for a source or a folder ("never crop", "lossless only"), and
what they do to a request. Pure functions; the store keeps the rules.

Rules rewrite the request's parameters before the cache key is computed, so a new rule
takes effect on the next request without a purge, and the cache never mixes the two.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Literal, get_args

from proxy.params import AI_CROPS, LOSSLESS_POLICIES, TransformParams
from proxy.sources.paths import EVERY_SOURCE, SourcePath, SourcePrefix, canonical_prefix

RuleName = Literal["never-crop", "center-crop", "lossless-only", "no-alt-text"]
RULES: dict[RuleName, str] = {
    "never-crop": "fit=crop pads to the box instead of cutting (fit=fill)",
    "center-crop": "crops are centred: no model places them",
    "lossless-only": "lossless output only, whatever the URL asks",
    "no-alt-text": "no alt text is drafted by the model for these sources",
}
assert tuple(RULES) == get_args(RuleName), "each rule has its meaning, in the same order"


def normalise_prefix(prefix: str) -> SourcePrefix:
    """``shop/``, ``/shop`` and ``./shop`` are the folder ``shop`` (the canonical source
    path); empty is every source. Raises ``BadPath`` for what no source path can be."""
    return canonical_prefix(prefix) or EVERY_SOURCE


def covers(prefix: SourcePrefix, path: SourcePath) -> bool:
    """A rule on ``shop`` (a :func:`normalise_prefix`) covers ``shop`` itself and everything
    under ``shop/``; an empty prefix covers every source. Both are canonical: compared as
    they are."""
    return not prefix or path == prefix or path.startswith(prefix + "/")


def rules_for(path: SourcePath, rules: Iterable[tuple[SourcePrefix, str]]) -> frozenset[str]:
    """The rules of ``(prefix, rule)`` pairs that apply to ``path``."""
    return frozenset(rule for prefix, rule in rules if covers(prefix, path))


def apply_rules(params: TransformParams, rules: frozenset[str]) -> TransformParams:
    if "never-crop" in rules and params.fit == "crop":
        params = replace(params, fit="fill")
    if "center-crop" in rules and params.crop in AI_CROPS:
        params = replace(params, crop="center", crop_explicit=True)
    if "lossless-only" in rules and params.policy not in LOSSLESS_POLICIES:
        params = replace(params, policy="legal", quality=None)
    return params
