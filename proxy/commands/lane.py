"""``loupe worker`` and ``loupe ingest``: the lane outside the server, on the same store."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from pathlib import Path

from tqdm import tqdm

from proxy.config import Config
from proxy.errors import LoupeError
from proxy.formats import source_suffixes
from proxy.lane.worker import Worker
from proxy.runtime import Runtime, configure_process
from proxy.sources.paths import SourcePath, canonical_path
from proxy.stores import StoreError

log = logging.getLogger("proxy.lane.commands")  # the name its lines have always had
IMAGE_SUFFIXES = source_suffixes(svg=False)


def _open(config: Config) -> Runtime:
    """The store, sources, analyzer and lane for a command; closed in reverse on exit."""
    configure_process(allow_svg=config.images.allow_svg)
    return Runtime(config)


def worker(config: Config, concurrency: int) -> int:
    """Run workers until SIGINT/SIGTERM; several processes may share one store."""

    async def main() -> None:
        async with _open(config) as runtime:
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            workers = [
                Worker(runtime.store, runtime.lane.handlers, config.lane)
                for _ in range(max(1, concurrency))
            ]
            log.info("%d workers on %s", len(workers), runtime.store.url)
            purges = runtime.lane.purges
            await asyncio.gather(
                *(w.run(stop) for w in workers), *([purges.run(stop)] if purges else [])
            )

    try:
        asyncio.run(main())
    except StoreError as exc:
        print(f"loupe: {exc.detail}", file=sys.stderr)
        return 1
    return 0


def images_under(directory: Path) -> list[Path]:
    return sorted(
        path
        for path in directory.rglob("*")
        if path.is_file()
        and path.suffix.lower() in IMAGE_SUFFIXES
        and not path.name.startswith(".")
    )


def ingest_folder(directory: Path, root: Path, cwd: Path) -> Path | str:
    """The folder ``loupe ingest DIR`` means: DIR as given (relative to ``cwd``) when that is
    a folder inside ``root``, else DIR relative to ``root`` (``loupe ingest shop`` from
    anywhere). Returns the folder, or the reason there is none."""
    root = root.resolve()
    tried: list[Path] = []
    for candidate in (cwd / directory, root / directory):
        folder = candidate.resolve()
        if folder in tried:
            continue
        tried.append(folder)
        if (folder == root or root in folder.parents) and folder.is_dir():
            return folder
    where = ", ".join(str(folder) for folder in tried)
    return f"{directory} is not a folder, or not inside the source root {root} (tried {where})"


def ingest(
    config: Config,
    directory: Path,
    *,
    caption: str | None,
    again: bool,
    process: bool,
    progress: bool | None = None,
) -> int:
    """``progress``: None shows bars on a terminal only; True forces them (logs, CI)."""
    bars = None if progress is None else not progress
    root = config.sources.root.resolve()
    folder = ingest_folder(directory, root, Path.cwd())
    if isinstance(folder, str):
        print(f"loupe: {folder}", file=sys.stderr)
        return 2
    found = images_under(folder)

    async def main() -> tuple[int, dict[str, int]]:
        async with _open(config) as runtime:
            payload = {"caption": caption} if caption else {}
            queued = 0
            for path in tqdm(found, desc="queueing", unit="image", disable=bars):
                source = _source_path(path.relative_to(root).as_posix())
                if source is not None:
                    queued += await asyncio.to_thread(
                        runtime.lane.enqueue_source, source, payload, again=again
                    )
            if process:
                await _drain(runtime, bars)
            return queued, await asyncio.to_thread(runtime.store.job_counts)

    try:
        queued, counts = asyncio.run(main())
    except StoreError as exc:
        print(f"loupe: {exc.detail}", file=sys.stderr)
        return 1
    summary = ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
    print(f"loupe: {len(found)} images, {queued} jobs queued; jobs now: {summary}")
    return 0


def _source_path(relative: str) -> SourcePath | None:
    """The canonical path of a file below the root; None (and a warning) for a name no URL
    can reach, such as one ending in a dot or not in NFC."""
    try:
        path = canonical_path(relative)
    except LoupeError as exc:
        print(f"loupe: skipping {relative!r}: {exc.detail}", file=sys.stderr)
        return None
    if path != relative:
        print(f"loupe: skipping {relative!r}: its canonical path is {path!r}", file=sys.stderr)
        return None
    return path


async def _drain(runtime: Runtime, bars: bool | None) -> None:
    """Run the queue here until nothing is ready, with a progress bar over the jobs."""
    counts = await asyncio.to_thread(runtime.store.job_counts)
    total = counts.get("queued", 0) + counts.get("running", 0)
    workers = [Worker(runtime.store, runtime.lane.handlers, runtime.config.lane) for _ in range(2)]
    with tqdm(total=total, desc="processing", unit="job", disable=bars) as bar:

        async def run(worker: Worker) -> None:
            while await worker.run_once():
                bar.update(1)

        await asyncio.gather(*(run(w) for w in workers))
