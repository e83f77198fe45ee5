"""Which sources a human reviews: a small share (``qa.sample_rate``, typically 0.5-1%) of each
stratum, so a rare origin, content class or processing path is looked at from its first
image on instead of being drowned by the common ones.

Pure functions; the store keeps each stratum's counters (``seen``, ``sampled``) and updates
them atomically with the decision. Per stratum, after ``n`` items exactly ``ceil(n * rate)``
were sampled, evenly spread: the first one, then one whenever the share would otherwise
fall below ``rate``. The total over ``k`` strata is below ``n * rate + k``.
"""

from __future__ import annotations

import math
from fractions import Fraction

SEPARATOR = "|"
NONE = "-"  # a part that is unknown (no content class) or absent (a file at the root)


def stratum(path: str, content_class: str | None, processing_path: str) -> str:
    """``source|class|processing``, e.g. ``shop|photo|q=auto/webp``. The source is the first
    segment of the source path (its origin or top folder); ``%`` and ``|`` inside a part are
    percent-escaped so two different strata never share a name."""
    segments = [segment for segment in path.split("/") if segment]
    source = segments[0] if len(segments) > 1 else NONE
    parts = (source, content_class or NONE, processing_path or NONE)
    return SEPARATOR.join(part.replace("%", "%25").replace("|", "%7C") for part in parts)


def should_sample(seen: int, sampled: int, rate: float) -> bool:
    """Whether the next item of a stratum goes to review, given the items ``seen`` and
    ``sampled`` in it before this one: yes while ``sampled < ceil((seen + 1) * rate)``.

    ``rate`` is taken as the decimal it was written as (0.07 is 7/100, not the binary float
    just above it), so exact multiples of ``1 / rate`` are not sampled one item early."""
    if seen < 0 or not 0 <= sampled <= seen:
        raise ValueError(f"need 0 <= sampled <= seen, got seen={seen}, sampled={sampled}")
    if not 0 <= rate <= 1:  # also rejects NaN
        raise ValueError(f"rate must be in [0, 1], got {rate}")
    if rate == 0:
        return False
    share = Fraction(repr(float(rate)))
    quota = math.ceil((seen + 1) * share)
    return sampled < quota
