"""``GET /meta/{path}?w=&h=``: the source's facts and what the models made of it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from proxy.analysis.analyzer import Analyzer
from proxy.analysis.crops import ranked_crops as crops
from proxy.analysis.result import Analysis, box_dict
from proxy.config import Config
from proxy.detectors.content import known_class
from proxy.errors import BadParameter
from proxy.geometry import Box
from proxy.moderation import Moderator
from proxy.params import dimension, drop_ignored, split_query
from proxy.processing.plan import SourceInfo
from proxy.processing.validate import ValidationRules, validate
from proxy.server.images import raw_request_path, request_source_path
from proxy.server.pool import ProcessingPool
from proxy.signing import expiry, verify_request
from proxy.sources.base import Source, SourceRef
from proxy.sources.paths import SourcePath

META_PARAMS = frozenset({"w", "h", "s", "expires"})
META_MAX_AGE_S = 10  # decisions change when humans act: a CDN may keep this only briefly


def _content(content: tuple[str, float] | None) -> dict[str, Any] | None:
    """API.md's four classes only: an analysis cached with "unknown" shows no class."""
    if content is None or known_class(content[0]) is None:
        return None
    return {"class": content[0], "confidence": round(content[1], 4)}


def describe(info: SourceInfo, etag: str, analysis: Analysis) -> dict[str, Any]:
    saliency = analysis.saliency
    return {
        "source": {
            "width": info.width,
            "height": info.height,
            "format": info.format,
            "bytes": info.bytes,
            "etag": etag,
        },
        "phash": analysis.phash,
        "content": _content(analysis.content),
        "faces": [_box(face) for face in analysis.faces],
        "possible_faces": [_box(face) for face in analysis.possible_faces],
        "people": [_box(person) for person in analysis.people],
        "saliency": ({**_box(saliency.box), "mass": round(saliency.mass, 4)} if saliency else None),
        "text": {
            "coverage": round(analysis.text_coverage, 4),
            "regions": [_box(region) for region in analysis.text],
        },
        "unavailable": analysis.unavailable,
        # The models this analysis really came from (never where their files live).
        "models": [asdict(model) for model in analysis.models],
        "analysis_version": analysis.version,
    }


def _box(box: Box) -> dict[str, float]:
    return {key: round(value, 2) for key, value in box_dict(box).items()}


class MetaService:
    def __init__(
        self,
        config: Config,
        source: Source,
        analyzer: Analyzer,
        pool: ProcessingPool,
        rules: ValidationRules,
        decisions: Callable[[SourcePath, str], dict[str, Any]] | None = None,
        moderator: Moderator | None = None,
    ) -> None:
        self.moderator = moderator
        self.decisions = decisions  # alt, moderation, qa, duplicates from the store
        self.config = config
        self.source = source
        self.analyzer = analyzer
        self.pool = pool
        self.rules = rules

    async def handle(self, request: Request) -> Response:
        query, _ = drop_ignored(
            bytes(request.scope["query_string"]).decode("latin-1"),
            self.config.images.ignored_params,
        )
        signed = verify_request(
            self.config.signing.keys, raw_request_path(request), query.encode("latin-1")
        )
        expires = expiry(query) if signed else None
        path = request_source_path(request)
        raw = split_query(query)
        unknown = set(raw) - META_PARAMS
        if unknown:
            raise BadParameter(f"/meta takes w and h only; got {', '.join(sorted(unknown))}")
        width = dimension("w", raw["w"]) if "w" in raw else None
        height = dimension("h", raw["h"]) if "h" in raw else None
        ref = await self.source.locate(path)
        blob: bytes | None = None
        if self.moderator is not None and self.moderator.enabled:
            # the facts of a held or rejected picture are as withheld as its pixels
            deadline_s = self.config.server.request_deadline_s
            _status, blob = await self.moderator.screen(
                self.source,
                ref,
                self.config.limits.max_source_bytes,
                lambda work: self.pool.run(work, deadline_s),
            )
        info, analysis = await self._analyse(ref, blob)
        body = describe(info, f'"{ref.identity}"', analysis)
        if width is not None and height is not None:
            body["crops"] = crops(info, analysis, width, height)
        if self.decisions is not None:
            body.update(await asyncio.to_thread(self.decisions, path, analysis.phash))
        left = META_MAX_AGE_S if expires is None else max(0, expires - int(time.time()))
        max_age = min(META_MAX_AGE_S, left)
        return JSONResponse(body, headers={"Cache-Control": f"public, max-age={max_age}"})

    async def inspect(self, path: SourcePath) -> tuple[SourceRef, SourceInfo, Analysis]:
        """Locate, validate and analyse a source (the analysis is cached by phash)."""
        ref = await self.source.locate(path)
        info, analysis = await self._analyse(ref, None)
        return ref, info, analysis

    async def probe(self, path: SourcePath) -> SourceInfo:
        """Locate a source and validate its header (it exists, is an image, its size is
        known) without running the models: what a write about the source needs."""
        ref = await self.source.locate(path)
        read = await self.source.read(ref, self.config.limits.max_source_bytes)

        def work(_deadline: float) -> SourceInfo:
            return validate(read, self.rules)[0]

        return await self.pool.run(work, self.config.server.request_deadline_s)

    async def _analyse(self, ref: SourceRef, blob: bytes | None) -> tuple[SourceInfo, Analysis]:
        read = blob or await self.source.read(ref, self.config.limits.max_source_bytes)

        def work(_deadline: float) -> tuple[SourceInfo, Analysis]:
            info, _header = validate(read, self.rules)
            return info, self.analyzer.analyse(read, ref.path)

        return await self.pool.run(work, self.config.server.request_deadline_s)
