"""The construction layer: what every Loupe process builds from its one ``Config`` before it
does anything, built here once for ``loupe serve`` (:mod:`proxy.server.app`), ``loupe
worker`` and ``loupe ingest`` (:mod:`proxy.commands.lane`); ``loupe feedback replay`` takes
the parts it needs, and the benches the process settings.

- :func:`configure_process`: the process-wide settings (libvips, BLAS);
- :func:`build_sources`: the local folder and the HTTP origins;
- :func:`build_analyzer`: the models behind crops and facts, with their cost meter;
- :class:`Runtime`: those with the store, the render settings (the quality predictor among
  them, :mod:`proxy.rendering`) and the lane, closed in reverse.

It sits above the domain packages (it imports them all) and below the HTTP edge and the
commands: nothing here knows about HTTP, and nothing below imports it.
"""

from __future__ import annotations

import contextlib

import httpx
import pyvips
from threadpoolctl import threadpool_limits

from proxy.alt.client import VlmClient
from proxy.analysis.analyzer import Analyzer
from proxy.cache.shared import SharedKV
from proxy.config import Config
from proxy.detectors.base import OnnxComponent
from proxy.feedback.costs import CostMeter
from proxy.fingerprint import PhashMemo
from proxy.lane.lane import Lane, assemble
from proxy.lane.tasks.verify import Publish
from proxy.moderation import Moderator
from proxy.processing.validate import Scanner
from proxy.rendering import Rendering, build_rendering
from proxy.sources.gate import FetchGate
from proxy.sources.http import HttpSource, OriginPolicy
from proxy.sources.local import LocalSource
from proxy.sources.router import SourceRouter
from proxy.stores import Store, open_store


def configure_process(*, allow_svg: bool = False, vips_concurrency: int | None = None) -> None:
    """Process-wide settings, for a server, a worker or a bench alike.

    libvips: no risky loaders, no operation cache (we cache results). It counts its SVG
    loader (librsvg) as untrusted, so ``images.allow_svg`` must lift that one block
    explicitly, or allowed SVGs could never load.

    ``vips_concurrency``: libvips's threads per image, when decided (``server.workers``
    sets 1 for several workers); None leaves libvips's default (``VIPS_CONCURRENCY``).

    BLAS: one thread. SSIMULACRA2's blurs are matrix products, and OpenBLAS's second
    thread busy-waits between them: per score of an 800x533 pair it took 65 ms of wall
    and 130 ms of CPU, against 59 ms and 61 ms on one thread. Requests are the parallelism.
    """
    pyvips.block_untrusted_set(True)
    pyvips.operation_block_set("VipsForeignLoadSvg", not allow_svg)
    pyvips.cache_set_max(0)
    if vips_concurrency is not None:
        pyvips.concurrency_set(vips_concurrency)
    forward_only_libvips_warnings()
    threadpool_limits(1, user_api="blas")


def forward_only_libvips_warnings() -> None:
    """pyvips forwards every libvips log level to Python logging, so each ``g_info`` (a
    few per render: "input size is ...") takes the GIL to build a record that the
    logging config then drops. Re-register its handler for warnings and above only."""
    lib = getattr(pyvips, "glib_lib", None)
    handler_id = getattr(pyvips, "_log_handler_id", None)
    callback = getattr(pyvips, "_log_handler_cb", None)
    if lib is None or not handler_id or callback is None:
        return  # a pyvips without these internals: keep its default
    domain = b"VIPS"
    lib.g_log_remove_handler(domain, handler_id)
    levels = pyvips.GLogLevelFlags
    pyvips._log_handler_id = lib.g_log_set_handler(
        domain,
        levels.LEVEL_WARNING
        | levels.LEVEL_CRITICAL
        | levels.LEVEL_ERROR
        | levels.FLAG_FATAL
        | levels.FLAG_RECURSION,
        callback,
        pyvips.ffi.NULL,
    )


def build_sources(config: Config) -> SourceRouter:
    """The local folder plus one HTTP source per configured origin, sharing one client."""
    sources = config.sources
    client = httpx.AsyncClient(
        timeout=httpx.Timeout(sources.read_timeout_s, connect=sources.connect_timeout_s),
        limits=httpx.Limits(max_connections=64, max_keepalive_connections=16),
        follow_redirects=False,  # each hop is checked by the SSRF guard instead
        trust_env=False,  # never route origin fetches through an environment proxy
    )
    gate = FetchGate(
        sources.max_concurrent_fetches, config.server.queue_limit, config.server.retry_after_s
    )
    origins = {
        name: HttpSource(
            name,
            origin.url,
            OriginPolicy(
                allow_hosts=origin.allow_hosts,
                allow_private=sources.allow_private_networks,
                max_redirects=sources.max_redirects,
                revalidate_after_s=sources.revalidate_after_s,
                max_bytes=config.limits.max_source_bytes,
                fetch_deadline_s=config.server.request_deadline_s,
            ),
            client,
            gate=gate,
        )
        for name, origin in sources.origins.items()
    }
    return SourceRouter(LocalSource(sources.root), origins, client)


def build_analyzer(
    config: Config, fingerprint: PhashMemo, meter: CostMeter | None = None, *, cached: bool = True
) -> Analyzer:
    """The analysis models. ``cached``: behind this node's disk cache and (with Redis) the
    shared one, as the server and the lane run them; a one-off look at today's models (the
    replay) runs them uncached."""
    if not cached:
        return Analyzer(
            config.storage.models_dir,
            None,
            fingerprint,
            providers=config.analysis.providers,
            meter=meter,
        )
    return Analyzer(
        config.storage.models_dir,
        config.storage.data_dir / "ai" / "analysis",
        fingerprint,
        shared=SharedKV(config.redis, "ai") if config.redis.url else None,
        providers=config.analysis.providers,
        meter=meter,
    )


class Runtime(contextlib.AbstractAsyncContextManager["Runtime"]):
    """The store, the sources, the analyzer and its cost meter, the render settings and the
    lane, built once from ``config`` (call :func:`configure_process` first).

    ``scan``: the malware scanner renders run (the server's). ``meter_quality``: count the
    quality search's encodes in the cost meter (the server does; ``loupe worker`` and
    ``ingest`` have not). ``publish`` and ``announce`` go to the lane
    (:func:`proxy.lane.lane.assemble`).

    As a context manager (the commands): the lane's purge sender, the VLM client and the
    sources are closed on exit, then :meth:`close`. The server closes them itself, in
    between its own parts, and calls :meth:`close` last."""

    def __init__(
        self,
        config: Config,
        *,
        scan: Scanner | None = None,
        meter_quality: bool = False,
        publish: Publish | None = None,
        announce: bool = True,
    ) -> None:
        self.config = config
        self.fingerprint = PhashMemo()
        self.store: Store = open_store(config.store_url())
        self.meter = CostMeter(self.store, config.costs.flush_s)  # what each AI part costs
        self.analyzer = build_analyzer(config, self.fingerprint, self.meter)
        self.source = build_sources(config)
        self.rendering: Rendering = build_rendering(
            config,
            self.analyzer,
            self.fingerprint,
            self.store,
            scan,
            meter=self.meter if meter_quality else None,
        )
        self.lane: Lane
        self.moderator: Moderator
        self.vlm: VlmClient
        self.lane, self.moderator, self.vlm = assemble(
            config, self.store, self.source, self.analyzer, self.fingerprint,
            rendering=self.rendering, publish=publish, announce=announce,
        )  # fmt: skip

    def models(self) -> list[dict[str, str | None]]:
        """Every model this process loaded, as ``/readyz`` and the start-up lines show them."""
        models = [part.describe() for _, part in self.analyzer.components]
        models.append(self.rendering.predictor.describe())
        if isinstance(self.moderator.scorer, OnnxComponent):
            models.append(self.moderator.scorer.describe())
        return models

    def close(self) -> None:
        """The synchronous parts, last: the quality decisions' cache, the analyzer, the
        meter's last tallies and then the store."""
        self.rendering.decisions.close()
        self.analyzer.close()
        self.meter.flush()  # the last tallies, before the store closes
        self.store.close()

    async def __aexit__(self, *exc: object) -> None:
        if self.lane.purges is not None:
            await self.lane.purges.aclose()
        await self.vlm.aclose()
        await self.source.aclose()
        self.close()
