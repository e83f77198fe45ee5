"""kill -9 in the middle of writing loses nothing that was acknowledged."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from proxy.geometry import Rect
from proxy.stores import Store, open_store
from tests.support import REPO

WRITER = """
import sys
from proxy.stores import open_store
from proxy.cropping.overrides import CropOverride
from proxy.geometry import Rect
from proxy.stores.base import AltText
store = open_store(sys.argv[1])
n = 0
while True:
    store.put_alt(AltText(path=f"p{n}.jpg", text=f"text {n}", status="user"))
    rect = Rect(0, 0, n + 1, n + 1)
    store.put_override(CropOverride(path=f"p{n}.jpg", aspect="1:1", rect=rect))
    print(n, flush=True)  # acknowledged: both writes committed
    n += 1
"""


def test_kill_9_mid_write_loses_nothing_acknowledged(store: Store, store_url: str) -> None:
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, store_url],
        stdout=subprocess.PIPE,
        cwd=REPO,
        text=True,
    )
    assert writer.stdout is not None
    acknowledged = -1
    deadline = time.monotonic() + 30
    while acknowledged < 40 and time.monotonic() < deadline:
        line = writer.stdout.readline()
        if not line:
            break
        acknowledged = int(line)
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait()
    assert acknowledged >= 40, "the writer never got going"
    reopened = open_store(store_url)
    try:
        for n in range(acknowledged + 1):
            alt = reopened.alt(f"p{n}.jpg")
            assert alt is not None and alt.text == f"text {n}", n
            assert reopened.overrides(f"p{n}.jpg")[0].rect == Rect(0, 0, n + 1, n + 1), n
    finally:
        reopened.close()
