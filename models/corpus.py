"""What both training scripts (quality/, content/) need from the shared image corpus:
where it is, which files show the same picture (for leak-free splits), and a progress bar.
"""

from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]

# Copies made from another corpus image: they must land on the same side of a split.
DERIVED = {"generated/large_6000x4000_flower_upscaled.jpg": "icinfo/flower_foveon"}
_KODIM = re.compile(r"kodim\d\d")


def shared_data_dir() -> Path:
    root = os.environ.get("LOUPE_SHARED_DIR")
    return (Path(root) if root else REPO.parent / "shared") / "data"


def group_of(relative: str) -> str:
    """The picture an image shows: derived copies share their original's group."""
    if relative in DERIVED:
        return DERIVED[relative]
    stem = relative.rsplit(".", 1)[0]
    kodim = _KODIM.search(stem)
    if kodim and not stem.startswith("kodak/"):
        return f"kodak/{kodim.group(0)}"
    return stem


def progress(
    items: Iterable[Any], total: int, desc: str, unit: str = "task", lines: int = 20
) -> Iterator[Any]:
    """tqdm when installed, else about ``lines`` plain progress lines."""
    try:
        from tqdm import tqdm
    except ImportError:
        started = time.monotonic()
        step = max(1, total // lines)
        for done, item in enumerate(items, 1):
            if done == total or done % step == 0:
                print(f"  {desc}: {done}/{total} ({time.monotonic() - started:.0f} s)", flush=True)
            yield item
        return
    yield from tqdm(items, total=total, desc=desc, unit=unit, file=sys.stderr)
