"""Liveness, readiness and Prometheus exposition."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from proxy.errors import Overloaded
from proxy.server.pool import ProcessingPool
from proxy.telemetry import Telemetry


class Operations:
    def __init__(
        self,
        telemetry: Telemetry,
        pool: ProcessingPool,
        root: Path,
        data_dir: Path,
        models: Sequence[Mapping[str, str | None]] = (),
        worker: tuple[int, int] = (0, 1),
    ) -> None:
        self.worker = worker  # (index, count) among the node's serving processes
        self.models = [dict(model) for model in models]  # each: model, sha256, provider, state
        self.telemetry = telemetry
        self.pool = pool
        self.root = root
        self.data_dir = data_dir

    async def healthz(self, request: Request) -> Response:
        return JSONResponse({"status": "ok"}, headers={"Cache-Control": "no-store"})

    async def readyz(self, request: Request) -> Response:
        checks = {
            "source_root": self.root.is_dir(),
            "data_dir_writable": os.access(self.data_dir, os.W_OK),
            "pool_has_room": self.pool.in_flight < self.pool.capacity,
        }
        if not all(checks.values()):
            failed = ", ".join(name for name, ok in checks.items() if not ok)
            raise Overloaded(f"not ready: {failed}", retry_after_s=self.pool.retry_after_s)
        return JSONResponse(
            {
                "status": "ready",
                "checks": checks,
                "models": self.models,
                "worker": {"index": self.worker[0], "of": self.worker[1], "pid": os.getpid()},
            },
            headers={"Cache-Control": "no-store"},
        )

    async def metrics(self, request: Request) -> Response:
        self.telemetry.in_flight.set(self.pool.in_flight)
        body = await asyncio.to_thread(self.telemetry.exposition)  # collectors read the store
        return Response(
            body,
            media_type=CONTENT_TYPE_LATEST,
            headers={"Cache-Control": "no-store"},
        )
