"""The admin API's writes about a source check it exists, is an image and has a known size
from its header: the models (faces, saliency, ...) never run for them."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.testclient import TestClient

from proxy.config import Config
from proxy.errors import LoupeError
from proxy.processing.validate import ValidationRules
from proxy.server import problems
from proxy.server.admin import AdminApi
from proxy.server.auth import AdminAuth
from proxy.server.meta import MetaService
from proxy.server.pool import ProcessingPool
from proxy.sources.local import LocalSource
from proxy.sources.paths import SourcePath
from proxy.stores import Store, open_store

TOKEN = "probe-secret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class NoAnalysis:
    """An analyzer that fails the test if anything asks it for an analysis."""

    calls = 0

    def analyse(self, *_args: Any, **_kwargs: Any) -> Any:
        NoAnalysis.calls += 1
        raise AssertionError("the admin PUT ran the models")


@pytest.fixture
def client(data_root: Path, tmp_path: Path) -> Iterator[tuple[TestClient, Store]]:
    root = tmp_path / "root"
    root.mkdir()
    shutil.copy(data_root / "kodak" / "kodim03.png", root / "a.png")  # 768x512
    (root / "notes.txt").write_text("not an image\n")
    config = Config()
    store = open_store(f"sqlite:///{tmp_path / 'loupe.db'}")
    pool = ProcessingPool(1, 4, 1)
    meta = MetaService(
        config,
        LocalSource(root),
        cast(Any, NoAnalysis()),
        pool,
        ValidationRules(config.limits),
    )
    purged: list[SourcePath] = []

    async def purge(path: SourcePath) -> int:
        purged.append(path)
        return 0

    api = AdminApi(AdminAuth(TOKEN, store), store, meta, purge, config=config)

    def on_error(request: Request, exc: Exception) -> Response:
        return problems.from_loupe_error(request, cast(LoupeError, exc), 0)

    app = Starlette(routes=api.routes(), exception_handlers={LoupeError: on_error})
    with TestClient(app) as test_client:
        yield test_client, store
    store.close()


def test_an_override_put_validates_the_source_without_the_models(
    client: tuple[TestClient, Store],
) -> None:
    http, store = client
    NoAnalysis.calls = 0
    body = {"aspect": "16:9", "rect": [0, 0, 160, 90], "reason": "faces"}
    response = http.put("/admin/api/overrides/a.png", json=body, headers=AUTH)
    assert response.status_code == 200, response.text
    assert response.json()["rect"] == [0, 0, 160, 90]
    assert len(store.overrides(SourcePath("a.png"))) == 1
    outside = {"rect": [700, 0, 100, 100]}  # the header gave the size: 768 wide
    response = http.put("/admin/api/overrides/a.png", json=outside, headers=AUTH)
    assert response.status_code == 400
    assert "inside the 768x512 source" in response.json()["detail"]
    assert NoAnalysis.calls == 0


@pytest.mark.parametrize(("path", "status"), [("missing.png", 404), ("notes.txt", 415)])
def test_a_missing_or_unreadable_source_is_refused_as_before(
    client: tuple[TestClient, Store], path: str, status: int
) -> None:
    http, store = client
    body = {"rect": [0, 0, 10, 10]}
    response = http.put(f"/admin/api/overrides/{path}", json=body, headers=AUTH)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert store.overrides(SourcePath(path)) == []
    alt = http.put(f"/admin/api/alt/{path}", json={"text": "x"}, headers=AUTH)
    assert alt.status_code == status, alt.text


def test_an_alt_put_runs_no_models_either(client: tuple[TestClient, Store]) -> None:
    http, _store = client
    NoAnalysis.calls = 0
    response = http.put("/admin/api/alt/a.png", json={"text": "a red door"}, headers=AUTH)
    assert response.status_code == 200, response.text
    assert NoAnalysis.calls == 0
