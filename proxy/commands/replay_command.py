"""``loupe feedback replay``'s wiring: the store, the sources and today's models as the
server configures them (:mod:`proxy.runtime`; the replay itself is
:mod:`proxy.commands.replay`)."""

from __future__ import annotations

import asyncio
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from proxy.alt.client import AltTextError, VlmClient
from proxy.alt.context import context_for
from proxy.analysis.analyzer import Analyzer
from proxy.commands import replay
from proxy.config import Config
from proxy.detectors.nsfw import NsfwDetector
from proxy.fingerprint import PhashMemo
from proxy.stores import StoreError, open_store


def since_seconds(raw: str | None) -> float:
    """``--since``: a UTC day or unix seconds; ValueError otherwise."""
    if not raw:
        return 0.0
    try:
        return datetime.strptime(raw, "%Y-%m-%d").replace(tzinfo=UTC).timestamp()
    except ValueError:
        return float(raw)


def replay_command(
    config: Config,
    *,
    component: str | None,
    since: str | None,
    vlm: bool,
    out: Path | None,
    progress: bool | None,
) -> int:
    from proxy.rendering import build_rendering
    from proxy.runtime import build_analyzer, build_sources, configure_process

    try:
        start = since_seconds(since)
    except ValueError:
        replay.say(f"--since must be a day (YYYY-MM-DD) or unix seconds, not {since!r}")
        return 2
    client = VlmClient(config.vlm) if vlm else None
    if client is not None and not client.enabled:
        replay.say("--vlm needs a VLM (--vlm-url or vlm.url)")
        return 2
    configure_process(allow_svg=config.images.allow_svg)
    try:
        store = open_store(config.store_url())
    except StoreError as exc:
        replay.say(exc.detail)
        return 1
    source = build_sources(config)
    fingerprint = PhashMemo()
    analyzer: Analyzer | None = None
    read = replay.sync_reader(source, config.limits.max_source_bytes)
    loop: asyncio.AbstractEventLoop = read.loop  # type: ignore[attr-defined]
    try:
        catches = store.reviews(status=None, component="qa", limit=100_000, after_id=0)
        cases = replay.collect(store.feedback(), catches, component=component, since=start)
        applied_alt = store.threshold("alt")
        applied_review = store.threshold("moderation")
        wanted = {case.component for case in cases}
        nsfw = (
            NsfwDetector(config.storage.models_dir, providers=config.analysis.providers)
            if "moderation" in wanted
            else None
        )
        settings = None
        if wanted & {"crop", "content", "qa"}:  # the models load only when needed
            analyzer = build_analyzer(config, fingerprint, cached=False)
            settings = build_rendering(config, analyzer, fingerprint, None).settings

        def describe(path: str, blob: bytes) -> tuple[str, float]:
            assert client is not None
            try:
                draft = loop.run_until_complete(
                    client.describe(blob, context_for(path, blob, None))
                )
            except AltTextError as exc:
                raise ValueError(f"the VLM failed: {exc.reason}") from exc
            return draft.text, draft.confidence

        replayer = replay.Replayer(
            config,
            read,
            analyzer,
            nsfw=nsfw.score if nsfw is not None and nsfw.available else None,
            review_threshold=(
                config.moderation.review_threshold if applied_review is None else applied_review
            ),
            alt_threshold=config.vlm.confidence_threshold if applied_alt is None else applied_alt,
            describe=describe if client is not None else None,
            render=(
                replay.variant_renderer(settings, config.images.default_crop) if settings else None
            ),
        )
        outcomes = replay.run(replayer, cases, progress)
        summary = replay.summarise(outcomes, vlm)
        body: dict[str, Any] = replay.report(outcomes, summary, vlm)
        target = out or config.storage.data_dir / "replay" / time.strftime(
            "replay-%Y%m%dT%H%M%SZ.json", time.gmtime()
        )
        replay.write(target, body)
        replay.table(summary, sys.stdout)
        replay.say(f"{len(outcomes)} cases replayed; wrote {target}")
    finally:
        if client is not None:
            loop.run_until_complete(client.aclose())
        loop.run_until_complete(source.aclose())
        loop.close()
        if analyzer is not None:
            analyzer.close()
        store.close()
    return 0
