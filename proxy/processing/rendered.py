"""What a render made, and the encoding strategies that make it.

The plan (``plan.RenderPlan``) keeps the decisions; the bytes and what was learnt while
making them (the quality actually chosen, the score, the encodes spent, the stage) are the
outcome, ``Rendered``. The plan names its encoding strategy (``RenderPlan.encoding``),
chosen once in prepare (``compress.choose_encoding``):

- ``fixed`` (``finalize.FixedEncode``): the plan's quality, one lazy encode of all frames;
- ``predicted`` (``compress.PredictedEncode``): ``q=auto`` on the request path, one encode
  at a verified decision or the predictor's guess, served provisional without a decision;
- ``searched`` (``compress.SearchedEncode``): ``q=auto`` in the lane's ``verify`` job, the
  SSIMULACRA2 search.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

import pyvips

from proxy.processing.plan import RenderPlan, Stage

if TYPE_CHECKING:
    from proxy.processing.finalize import EncoderSettings


@dataclass(frozen=True)
class Rendered:
    """The bytes of one render and what they are, beside the plan that decided them."""

    body: bytes
    plan: RenderPlan
    quality: int | None  # of the bytes (q=auto: the chosen one); None: lossless or no knob
    lossless: bool
    notes: tuple[str, ...]  # the plan's, then the encode's (then QA's)
    stage: Stage = "final"
    score: float | None = None  # SSIMULACRA2 of the bytes, when measured
    encodes: int | None = None  # encodes the search spent (0: a remembered decision)
    features: tuple[float, ...] | None = None  # the predictor's input, for training pairs
    first_quality: int | None = None  # verify: the quality a first answer was served at
    first_score: float | None = None  # verify: that first answer's measured score
    timings: tuple[tuple[str, float], ...] = ()  # (stage, seconds)

    @property
    def mime(self) -> str:
        return self.plan.mime


@dataclass(frozen=True)
class EncodeJob:
    """What an encoding strategy needs besides the frames and the plan. ``lap(stage)``
    times the work since the last lap (and stops a render past its deadline): a strategy
    laps ``compress`` once its quality is settled (and ``frames`` once an animation's
    frames are materialised); the render laps ``encode`` after it."""

    encoder: EncoderSettings
    deadline: float
    lap: Callable[[str], None]
    delays: list[int] | None = None  # an animation's, ms per frame
    loop: int = 0


class Encoding(Protocol):
    def encode(self, frames: list[pyvips.Image], plan: RenderPlan, job: EncodeJob) -> Rendered:
        """The frames (after every pixel step) encoded as ``plan`` says."""
        ...
