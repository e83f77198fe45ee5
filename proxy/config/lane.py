"""The background lane and the checks it runs: jobs, q=auto verification, QA."""

from __future__ import annotations

from pydantic import Field

from proxy.config.base import Section


class LaneConfig(Section):
    workers: int = Field(1, ge=0, le=64, description="in-process background workers (0 = none)")
    max_attempts: int = Field(5, ge=1, description="failures before a job is dead-lettered")
    backoff_s: float = Field(2.0, gt=0, description="first retry delay; doubles per attempt")
    lease_s: float = Field(120.0, gt=0, description="a claimed job returns to the queue after")
    poll_s: float = Field(0.5, gt=0, description="idle workers look for jobs this often")
    stop_grace_s: float = Field(
        10.0, ge=0, description="on shutdown, running jobs may finish within this"
    )


class QualityConfig(Section):
    verify_deadline_s: float = Field(
        120.0, gt=0, description="the lane's verify job: time for one picture's search"
    )
    retrain_every: int = Field(
        0, ge=0, description="retrain the quality predictor every N verified pairs (0 = off)"
    )


class QAConfig(Section):
    sample_rate: float = Field(
        0.01, ge=0, le=1, description="share of new sources sent to human review"
    )
    max_bytes_per_pixel: float = Field(
        4.0, gt=0, description="a lossy output larger than this per pixel is suspect"
    )
    min_bytes: int = Field(64, ge=0, description="smaller outputs (beyond 64x64 px) are suspect")
    duplicate_distance: int = Field(
        6, ge=0, le=16, description="phash Hamming distance counted as a near-duplicate"
    )
