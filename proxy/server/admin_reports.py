"""The admin API's reports as pydantic models: the collaboration metrics, the AI's costs and
what each confidence means. ``proxy.feedback`` computes them as plain dicts; the handlers
serialise them through these models, and the OpenAPI document is generated from them."""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import Field

from proxy.feedback.calibration import CALIBRATED, SETTINGS
from proxy.feedback.costs import AI_COMPONENTS
from proxy.server.admin_models import (
    Closed,
    Count,
    Number,
    Rate,
    Seconds,
    Unit,
    UnitOrNull,
    UnixTime,
    fixed_keys,
)
from proxy.stores.base import COMPONENTS

Money = Seconds  # a number, at least 0


class ComponentMetrics(Closed):
    auto: Count
    sent_to_review: Count
    auto_accept_rate: UnitOrNull
    reviewed: Count
    override_rate: UnitOrNull
    pending: Count
    off: bool = Field(
        description="nothing to decide (alt text without a VLM, moderation when disabled): "
        "left out of the queue and of the auto-accept rate"
    )


class ReviewSeconds(Closed):
    median: Rate
    count: Count
    trend: list[Number] = Field(description="median seconds per trend_bucket reviews, oldest first")
    trend_bucket: int = Field(ge=1)


class FailedPurge(Closed):
    path: str = Field(description="source or folder")
    reason: str
    attempts: Count
    error: str | None
    queued: UnixTime


class Purges(Closed):
    pending: Count
    dead: Count = Field(description="dead-lettered after cdn.dead_after_s of failures")
    oldest_pending_s: Seconds
    failed: list[FailedPurge] = Field(description="the oldest dead-lettered purges")


class Metrics(Closed):
    auto_accept_rate: UnitOrNull
    components: dict[str, ComponentMetrics] = Field(json_schema_extra=fixed_keys(COMPONENTS))
    review_seconds: ReviewSeconds
    post_publication_correction_rate: Rate
    post_publication_corrections: Count
    user_initiated_corrections: Count
    decisions: Count
    jobs: dict[str, Count] = Field(
        description="background jobs by status (queued, running, done, dead)"
    )
    purges: Purges


class Saved(Closed):
    phash: Count = Field(description="other bytes with the same perceptual hash")
    sizes: Count = Field(description="the same source (path and bytes), another size")
    reupload: Count = Field(description="the same bytes under another path")
    total: Count


class ComponentCosts(Closed):
    inferences: Count = Field(description="model runs (quality: q=auto searches)")
    wall_s: Seconds
    cpu_s: Seconds = Field(description="0 for the VLM (remote)")
    saved: Saved
    tokens_in: Count
    tokens_out: Count
    cost: Money = Field(description="inferences x costs.<component>_per_1k / 1000 (+ tokens)")
    saved_cost: Money = Field(description="what the saved inferences would have cost")


class CostTotals(Closed):
    inferences: Count
    wall_s: Seconds
    cpu_s: Seconds
    saved: Saved
    tokens_in: Count
    tokens_out: Count
    cost: Money
    saved_cost: Money


class CostDay(Closed):
    day: str
    inferences: Count
    saved: Count
    cost: Money


class Costs(Closed):
    since: str | None = Field(description="first UTC day counted")
    images: Count = Field(description="sources first seen since then")
    cost_per_image: Rate
    inferences_per_image: Rate
    components: dict[str, ComponentCosts] = Field(json_schema_extra=fixed_keys(AI_COMPONENTS))
    totals: CostTotals
    days: list[CostDay] = Field(description="per UTC day, oldest first")
    prices: dict[str, Number] = Field(description="the configured costs.* prices")


class Bin(Closed):
    low: Unit
    high: Unit
    count: Count
    accepted: Count
    share_accepted: UnitOrNull


class ComponentCalibration(Closed):
    decisions: Count = Field(description="human decisions with a confidence")
    sampled: Count = Field(description="of them, on auto-accepted outputs sampled")
    accepted_as_is: UnitOrNull
    bins: list[Bin]
    threshold: UnitOrNull = Field(
        description="the lowest confidence whose decisions at or above it reach the target "
        "precision (null: none does yet)"
    )
    precision: UnitOrNull
    decisions_above: Count
    auto_accept_rate: UnitOrNull = Field(description="at the proposed threshold")
    rate_of: Literal["outputs", "decided outputs"]
    current_threshold: UnitOrNull
    current_auto_accept_rate: UnitOrNull
    setting: str | None = Field(
        description="the setting the threshold replaces when applied (null: shown only)"
    )


Setting = Literal["alt", "moderation"]  # the components whose threshold is a setting


class Applied(Closed):
    component: Setting
    setting: str
    from_: Number = Field(alias="from")
    to: Number


class Calibration(Closed):
    target_precision: Unit
    min_decisions: Count
    apply: bool = Field(description="calibration.apply")
    applied: list[Applied] = Field(
        description="the thresholds this call applied (each logged as a decision)"
    )
    components: dict[str, ComponentCalibration] = Field(json_schema_extra=fixed_keys(CALIBRATED))


assert set(get_args(Setting)) == set(SETTINGS), "Setting must list calibration.SETTINGS"
