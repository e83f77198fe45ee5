"""Notices a replaced or deleted file below the local root without any request for it:
file-system notifications (``watchfiles``: inotify, FSEvents, ReadDirectoryChangesW) and, as
the fallback for file systems that send none (NFS, some container mounts), a periodic rescan.

Both compare each file's identity (the one ``LocalSource`` keys caches on) with the last one
seen; a file that is new is only remembered (nothing can hold a copy of it yet), one whose
identity changed or that is gone is reported."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path

import watchfiles

from proxy.errors import LoupeError
from proxy.sources.local import _identity
from proxy.sources.paths import SourcePath, canonical_path

log = logging.getLogger(__name__)
Change = tuple[SourcePath, str | None]  # the path, and its new identity (None: deleted)
OnChange = Callable[[list[Change]], Awaitable[None]]


def _servable(relative: str) -> SourcePath | None:
    """The source path a URL reaches this file by; None for hidden files (editors' and
    atomic writers' temporary names) and names no URL can spell."""
    if any(part.startswith(".") for part in relative.split("/")):
        return None
    try:
        path = canonical_path(relative)
    except LoupeError:
        return None
    return path if path == relative else None


def _identity_of(file: Path) -> str | None:
    try:
        info = file.stat()
    except OSError:
        return None
    return _identity(info) if os.path.isfile(file) else None


def scan(root: Path) -> dict[SourcePath, str]:
    """Every servable file below ``root`` with its identity (blocking)."""
    found: dict[SourcePath, str] = {}
    for folder, dirs, files in os.walk(root):
        dirs[:] = [name for name in dirs if not name.startswith(".")]
        for name in files:
            file = Path(folder, name)
            path = _servable(file.relative_to(root).as_posix())
            identity = _identity_of(file) if path is not None else None
            if path is not None and identity is not None:
                found[path] = identity
    return found


class SourceWatcher:
    def __init__(self, root: Path, on_change: OnChange, *, notify: bool, rescan_s: float):
        self.root = root.resolve()
        self.on_change = on_change
        self.notify = notify
        self.rescan_s = rescan_s
        self.known: dict[SourcePath, str] = {}

    def _compare(self, current: dict[SourcePath, str | None]) -> list[Change]:
        """Update ``known`` from ``current`` (None: gone); what changed or went away."""
        changed: list[Change] = []
        for path, identity in current.items():
            before = self.known.get(path)
            if identity is None:
                if self.known.pop(path, None) is not None:
                    changed.append((path, None))
                continue
            self.known[path] = identity
            if before is not None and before != identity:
                changed.append((path, identity))
        return changed

    def _look(self, files: Iterable[str]) -> dict[SourcePath, str | None]:
        """The identity of each notified file now (blocking)."""
        current: dict[SourcePath, str | None] = {}
        for name in files:
            try:
                relative = Path(name).relative_to(self.root).as_posix()
            except ValueError:
                continue
            path = _servable(relative)
            if path is not None:
                current[path] = _identity_of(self.root / relative)
            if not (self.root / relative).is_file():  # a folder moved or removed whole
                below = relative + "/"
                for known in [k for k in self.known if k.startswith(below)]:
                    current[known] = _identity_of(self.root / known)
        return current

    async def _report(self, changed: list[Change]) -> None:
        if not changed:
            return
        log.info("sources changed under %s: %s", self.root, ", ".join(p for p, _ in changed[:10]))
        try:
            await self.on_change(changed)
        except Exception:  # the next rescan does not repeat it: log loudly
            log.exception("acting on changed sources failed")

    async def rescan(self) -> None:
        current: dict[SourcePath, str | None] = dict(await asyncio.to_thread(scan, self.root))
        for path in self.known.keys() - current.keys():
            current[path] = None
        await self._report(self._compare(current))

    async def _watch(self, stop: asyncio.Event) -> None:
        try:
            async for events in watchfiles.awatch(
                self.root, stop_event=stop, debounce=300, step=50, recursive=True
            ):
                files = {name for _kind, name in events}
                current = await asyncio.to_thread(self._look, files)
                await self._report(self._compare(current))
        except Exception as exc:  # no notifications here (limits, file system): rescan only
            log.warning("watching %s failed (%s); the periodic rescan goes on", self.root, exc)

    async def run(self, stop: asyncio.Event) -> None:
        if not self.root.is_dir():
            return
        self.known = await asyncio.to_thread(scan, self.root)
        watcher = asyncio.create_task(self._watch(stop)) if self.notify else None
        try:
            while not stop.is_set():
                if self.rescan_s <= 0:
                    await stop.wait()
                    break
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=self.rescan_s)
                if not stop.is_set():
                    await self.rescan()
        finally:
            if watcher is not None:
                watcher.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watcher
