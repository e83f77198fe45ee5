"""Human QA sampling through the lane: a share of sources per stratum (source folder, content
class, processing path) reaches the review queue, and every stratum is represented."""

from __future__ import annotations

import shutil
from pathlib import Path

import httpx

from tests.support import FAST_LANE, LoupeServer, wait_for

TOKEN = "sampler"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def test_sampling_is_stratified_and_shares_one_tally(data_root: Path, tmp_path: Path) -> None:
    root = tmp_path / "root"
    for folder in ("shop", "blog"):
        (root / folder).mkdir(parents=True)
    for number in ("01", "02", "03", "06"):
        shutil.copy(data_root / "kodak" / f"kodim{number}.png", root / "shop" / f"{number}.png")
    shutil.copy(data_root / "kodak" / "kodim07.png", root / "blog" / "07.png")
    env = {**FAST_LANE, "LOUPE_QA_SAMPLE_RATE": "0.5"}
    server = LoupeServer(root, tmp_path / "data", env=env, args=("--admin-token", TOKEN))
    try:
        for path in ("shop/01.png", "shop/02.png", "shop/03.png", "shop/06.png", "blog/07.png"):
            response = httpx.get(f"{server.url}/img/{path}?w=100&fm=webp", timeout=60)
            assert response.status_code == 200

        def sampled() -> list[dict[str, object]]:
            jobs = httpx.get(f"{server.url}/admin/api/metrics", headers=AUTH).json()["jobs"]
            # fingerprint, alt, sample and the q=auto verification, for 5 sources
            if jobs.get("done", 0) < 20:
                return []
            return list(
                httpx.get(
                    f"{server.url}/admin/api/review",
                    params={"component": "sample"},
                    headers=AUTH,
                ).json()["items"]
            )

        items = wait_for(sampled, timeout=60, what="the lane to finish")
        by_stratum: dict[str, int] = {}
        for item in items:
            stratum = str(item["payload"]["stratum"])  # type: ignore[index]
            by_stratum[stratum.split("|")[0]] = by_stratum.get(stratum.split("|")[0], 0) + 1
        assert by_stratum == {"shop": 2, "blog": 1}  # half of shop, and blog is not starved
        assert all("webp" in str(i["payload"]["stratum"]) for i in items)  # type: ignore[index]
    finally:
        server.stop()
