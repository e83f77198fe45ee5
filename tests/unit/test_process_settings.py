"""Process-wide settings every Loupe process applies at start (server, worker, benches)."""

from __future__ import annotations

import pyvips
from threadpoolctl import threadpool_info

from proxy.runtime import configure_process


def test_blas_runs_on_one_thread_and_libvips_keeps_no_operation_cache() -> None:
    configure_process()
    blas = [pool for pool in threadpool_info() if pool["user_api"] == "blas"]
    assert blas, "numpy's BLAS not found by threadpoolctl"
    assert all(pool["num_threads"] == 1 for pool in blas), blas
    assert pyvips.cache_get_max() == 0
