"""Serve the app with hypercorn until SIGINT/SIGTERM."""

from __future__ import annotations

import asyncio
import signal

from hypercorn.asyncio import serve
from hypercorn.config import Config as HypercornConfig

from proxy.config import Config
from proxy.server.app import create_app


def hypercorn_config(config: Config) -> HypercornConfig:
    server = HypercornConfig()
    host = config.server.host
    server.bind = [
        f"[{host}]:{config.server.port}" if ":" in host else f"{host}:{config.server.port}"
    ]
    server.accesslog = None
    server.keep_alive_timeout = 75  # longer than typical CDN idle timeouts
    server.graceful_timeout = 10
    return server


async def _serve(config: Config) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    app = create_app(config)
    await serve(app, hypercorn_config(config), shutdown_trigger=stop.wait)  # type: ignore[arg-type]


def run(config: Config) -> None:
    asyncio.run(_serve(config))
