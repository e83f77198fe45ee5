"""The local root's watcher: file-system notifications, and the periodic rescan that stands
in where there are none. New files are remembered, replaced and deleted ones reported."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import pytest

from proxy.sources.watch import Change, SourceWatcher


async def watch_while(
    root: Path, act: list[tuple[str, bytes | None]], *, notify: bool, rescan_s: float
) -> list[Change]:
    seen: list[Change] = []

    async def record(changes: list[Change]) -> None:
        seen.extend(changes)

    watcher = SourceWatcher(root, record, notify=notify, rescan_s=rescan_s)
    stop = asyncio.Event()
    task = asyncio.create_task(watcher.run(stop))
    while not watcher.known:  # the first scan
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.3)  # the notifications are set up
    for name, content in act:
        target = root / name
        if content is None:
            target.unlink()
        else:
            temporary = target.with_name("." + target.name + ".tmp")
            temporary.write_bytes(content)
            os.replace(temporary, target)  # an atomic replace, as deploy tools do
    deadline = time.monotonic() + 5
    wanted = {name for name, _ in act}
    while time.monotonic() < deadline and not wanted <= {path for path, _ in seen}:
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.2)
    stop.set()
    await task
    return seen


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "shop").mkdir()
    (tmp_path / "shop" / "a.jpg").write_bytes(b"one")
    (tmp_path / "b.jpg").write_bytes(b"two")
    (tmp_path / "c.jpg").write_bytes(b"three")
    return tmp_path


@pytest.mark.parametrize(("notify", "rescan_s"), [(True, 0.0), (False, 0.2)])
def test_replaced_and_deleted_files_are_reported_new_ones_are_not(
    root: Path, notify: bool, rescan_s: float
) -> None:
    act: list[tuple[str, bytes | None]] = [("shop/a.jpg", b"ONE!"), ("b.jpg", None)]
    seen = asyncio.run(watch_while(root, act, notify=notify, rescan_s=rescan_s))
    by_path = dict(seen)
    assert set(by_path) == {"shop/a.jpg", "b.jpg"}
    assert by_path["b.jpg"] is None
    assert by_path["shop/a.jpg"] is not None
    assert "c.jpg" not in by_path


def test_a_new_file_is_only_remembered(root: Path) -> None:
    async def run() -> list[Change]:
        seen: list[Change] = []

        async def record(changes: list[Change]) -> None:
            seen.extend(changes)

        watcher = SourceWatcher(root, record, notify=False, rescan_s=0.1)
        stop = asyncio.Event()
        task = asyncio.create_task(watcher.run(stop))
        await asyncio.sleep(0.2)
        (root / "fresh.jpg").write_bytes(b"f")
        await asyncio.sleep(0.3)
        assert "fresh.jpg" in watcher.known
        stop.set()
        await task
        return seen

    assert asyncio.run(run()) == []
