"""The admin API shows what the store holds even when a stored content class is no class:
"unknown" (written when the classifier could not answer) or a label an older model had.
The closed response models must not turn such a row into a 500."""

from __future__ import annotations

from pathlib import Path

import httpx

from proxy.sources.paths import SourcePath
from proxy.stores.base import SourceRecord
from proxy.stores.open import open_store
from tests.support import LoupeServer

TOKEN = "classes"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def test_a_stored_class_that_is_no_class_is_shown_as_none(tmp_path: Path) -> None:
    root, data = tmp_path / "root", tmp_path / "data"
    root.mkdir()
    url = f"sqlite:///{tmp_path / 'loupe.db'}"
    store = open_store(url)
    rows = {"old.png": "unknown", "older.png": "clipart", "photo.png": "photo"}
    for path, label in rows.items():
        store.record_source(SourceRecord(SourcePath(path), content_class=label))
    store.close()

    server = LoupeServer(root, data, args=("--admin-token", TOKEN, "--store", url))
    try:
        shown = {}
        for path in rows:
            response = httpx.get(
                f"{server.url}/admin/api/decisions/{path}", headers=AUTH, timeout=10
            )
            assert response.status_code == 200, response.text
            shown[path] = response.json()["class"]
        assert shown == {"old.png": None, "older.png": None, "photo.png": "photo"}

        response = httpx.get(f"{server.url}/admin/api/search", headers=AUTH, timeout=10)
        assert response.status_code == 200, response.text
        found = {hit["path"]: hit["class"] for hit in response.json()["results"]}
        assert found == {"old.png": None, "older.png": None, "photo.png": "photo"}
    finally:
        server.stop()
