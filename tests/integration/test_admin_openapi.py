"""The admin API's published OpenAPI document against the live server: every route is
documented, and schemathesis finds no 500 and no response that strays from the document."""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from starlette.routing import Route

from proxy.server.admin import AdminApi
from proxy.server.auth import AdminAuth
from tests.support import FAST_LANE, LoupeServer, shared_dir, wait_for

TOKEN = "openapi-secret"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
DOC = "/admin/api/openapi.json"
# What {path} may be in the fuzzing run: real images (one below a folder, so the slash is
# exercised), a file that is no image (415) and a missing one (404).
SOURCES = ["a.png", "sub/b.png", "notes.txt", "missing.png"]
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
    ignored_auth,  # resends a 2xx request without (and with a wrong) token: 401/403 expected
]
EXAMPLES = int(os.environ.get("LOUPE_OPENAPI_EXAMPLES", "25"))  # per operation; raise it locally


@pytest.fixture(scope="module")
def admin_server(
    data_root: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LoupeServer]:
    root = tmp_path_factory.mktemp("openapi-root")
    (root / "sub").mkdir()
    shutil.copy(data_root / "kodak" / "kodim03.png", root / "a.png")
    shutil.copy(data_root / "kodak" / "kodim12.png", root / "sub" / "b.png")
    (root / "notes.txt").write_text("not an image\n")
    running = LoupeServer(
        root,
        tmp_path_factory.mktemp("openapi-data"),
        env=FAST_LANE,
        args=("--admin-token", TOKEN, "--models-dir", str(shared_dir() / "models")),
    )
    yield running
    running.stop()


@pytest.fixture(scope="module")
def review_ids(admin_server: LoupeServer) -> list[int]:
    """Hero crops queue review items, so POST /admin/api/review/{id} meets real ones."""
    for path in ("a.png", "sub/b.png"):
        for width, height in ((400, 400), (320, 180)):
            params = {"w": width, "h": height, "fit": "crop", "ctx": "hero"}
            response = httpx.get(f"{admin_server.url}/img/{path}", params=params, timeout=60)
            assert response.status_code == 200, response.text

    def queued() -> list[int]:
        listed = httpx.get(f"{admin_server.url}/admin/api/review", headers=AUTH, timeout=10)
        ids = [int(item["id"]) for item in listed.json()["items"]]
        return ids if len(ids) >= 4 else []

    return cast(list[int], wait_for(queued, what="four crop review items"))


def admin_routes() -> list[Route]:
    """``AdminApi.routes()``; the handlers are never called, so no collaborators are needed."""
    api = AdminApi(
        AdminAuth(TOKEN, cast(Any, None)), cast(Any, None), cast(Any, None), cast(Any, None)
    )
    return [route for route in api.routes() if isinstance(route, Route)]


def test_the_document_covers_every_admin_route(admin_server: LoupeServer) -> None:
    response = httpx.get(admin_server.url + DOC, timeout=10)  # public: no token
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    document = response.json()
    assert document["openapi"].startswith("3.1")
    served = {
        (re.sub(r"\{(\w+)(:\w+)?\}", r"{\1}", route.path), method.lower())
        for route in admin_routes()
        for method in route.methods or ()
        if method != "HEAD"  # Starlette answers HEAD wherever GET is
    }
    documented = {
        (path, method)
        for path, item in document["paths"].items()
        for method in item
        if method in ("get", "put", "post", "delete", "patch", "head", "options")
    }
    assert served - documented == set(), "routes without docs"
    assert documented - served == set(), "docs without routes"
    assert "bearerAuth" in document["components"]["securitySchemes"]
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if path != DOC:
                assert "401" in operation["responses"], (method, path)
    # schemathesis must accept the document as served (it leaves out the document's own URL)
    loaded = schemathesis.openapi.from_url(admin_server.url + DOC)
    labels = {result.ok().label for result in loaded.get_all_operations()}
    assert labels == {f"{method.upper()} {path}" for path, method in served if path != DOC}


def test_every_other_route_still_needs_the_token(admin_server: LoupeServer) -> None:
    response = httpx.get(admin_server.url + "/admin/api/metrics", timeout=10)
    assert response.status_code == 401
    assert response.headers["content-type"] == "application/problem+json"


EDIT = {"action": "edit", "reason": "r"}


@pytest.mark.parametrize(
    ("method", "url", "body", "status"),
    [
        ("DELETE", "/overrides/a.png?aspect=sixteen", None, 400),
        ("DELETE", "/overrides/a.png?aspect=1e308", None, 400),
        ("PUT", "/overrides/a.png", {"aspect": "1e308", "rect": [0, 0, 10, 10]}, 400),
        ("PUT", "/alt/a.png", {"text": "\ud800"}, 400),  # json.dumps sends it escaped
        ("GET", f"/review?after={2**63}", None, 200),  # past every id: an empty page
        ("GET", f"/review/{2**63}", None, 404),
        ("POST", "/review/{id}", {"action": {}}, 400),
        ("POST", "/review/{id}", {**EDIT, "value": {"rect": [0, 0, 2**70, 5]}}, 400),
        ("POST", "/review/{id}", {**EDIT, "value": {"rect": [5000, 0, 10, 10]}}, 400),
    ],
)
def test_what_fuzzing_found_is_no_500(
    admin_server: LoupeServer,
    review_ids: list[int],
    method: str,
    url: str,
    body: object,
    status: int,
) -> None:
    """Each of these was a 500 (or, for a rect outside the source, a useless override)."""
    response = httpx.request(
        method,
        admin_server.url + "/admin/api" + url.replace("{id}", str(review_ids[0])),
        content=None if body is None else json.dumps(body),
        headers={**AUTH, "Content-Type": "application/json"},
        timeout=30,
    )
    assert response.status_code == status, response.text
    if status >= 400:
        assert response.headers["content-type"] == "application/problem+json"


@pytest.fixture(scope="module")
def fuzzed_schema(admin_server: LoupeServer, review_ids: list[int]) -> Any:
    """The served document, with ``{path}`` and ``{item_id}`` narrowed to things that exist (and
    one that does not), so the run exercises real behaviour rather than 404s only."""
    config = schemathesis.Config.from_dict(
        {
            "base-url": admin_server.url,
            "generation": {"max-examples": EXAMPLES, "with-security-parameters": False},
        }
    )
    served = schemathesis.openapi.from_url(admin_server.url + DOC, config=config)
    raw = copy.deepcopy(served.raw_schema)
    raw["components"]["parameters"]["SourcePath"]["schema"] = {"enum": SOURCES}
    ids = [*review_ids, max(review_ids) + 1000]
    for item in raw["paths"].values():
        for operation in item.values():
            for parameter in operation.get("parameters", ()):
                if parameter.get("in") == "path" and parameter.get("name") == "item_id":
                    parameter["schema"] = {"enum": ids}
    return schemathesis.openapi.from_dict(raw, config=config)


schema = schemathesis.pytest.from_fixture("fuzzed_schema")


@pytest.mark.slow
@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
def test_the_server_keeps_to_its_document(case: Any) -> None:
    case.call_and_validate(headers=AUTH, checks=CHECKS, timeout=30)
