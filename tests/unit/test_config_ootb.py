"""Configuration that guards secrets and forgives the environment: ``loupe config`` output
has no secret in it, ignored parameters cannot swallow a real one, and ``loupe ingest DIR``
finds DIR relative to the root as well as to the current folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from proxy.commands.lane import ingest_folder
from proxy.config import REDACTED, load_config, redacted
from proxy.errors import ConfigError

SECRETS = {
    "LOUPE_ADMIN_TOKEN": "admin-s3cret",
    "LOUPE_VLM_API_KEY": "sk-vlm-s3cret",
    "LOUPE_SIGNING_KEYS": "sign-one-s3cret,sign-two-s3cret",
    "LOUPE_STORE_URL": "postgresql://loupe:db-s3cret@db:5432/loupe",
    "LOUPE_REDIS_URL": "redis://:redis-s3cret@cache:6379/0",
    "LOUPE_SOURCES_ORIGINS": "shop=https://user:origin-s3cret@cdn.example.com/",
}


def test_redacted_config_shows_no_secret_but_says_they_are_set() -> None:
    config = load_config(environ=SECRETS)
    text = json.dumps(redacted(config))
    assert "s3cret" not in text
    shown = redacted(config)
    assert shown["admin"]["token"] == REDACTED and shown["vlm"]["api_key"] == REDACTED
    assert shown["signing"]["keys"] == [REDACTED, REDACTED]
    assert shown["store"]["url"] == f"postgresql://loupe:{REDACTED}@db:5432/loupe"
    assert shown["redis"]["url"] == f"redis://:{REDACTED}@cache:6379/0"
    assert shown["sources"]["origins"]["shop"]["url"].startswith("https://user:***@cdn")
    assert shown["server"]["port"] == 8080  # everything else as it is


def test_unset_secrets_stay_visible_as_unset() -> None:
    shown = redacted(load_config(environ={}))
    assert shown["admin"]["token"] is None and shown["signing"]["keys"] == []


@pytest.mark.parametrize("name", ["w", "W", "fm", "f*", "F*", "s", "*", ""])
def test_ignored_params_cannot_swallow_a_loupe_parameter(name: str) -> None:
    with pytest.raises(ConfigError, match="cannot be ignored"):
        load_config(environ={}, overrides={"images": {"ignored_params": ["fbclid", name]}})


def test_ignored_params_from_the_environment() -> None:
    config = load_config(environ={"LOUPE_IMAGES_IGNORED_PARAMS": "fbclid, mc_*"})
    assert config.images.ignored_params == ("fbclid", "mc_*")


def test_ingest_dir_relative_to_the_root_or_to_the_current_folder(tmp_path: Path) -> None:
    root = tmp_path / "images"
    (root / "shop").mkdir(parents=True)
    elsewhere = tmp_path / "home"
    (elsewhere / "shop").mkdir(parents=True)  # same name, outside the root
    assert ingest_folder(Path("shop"), root, elsewhere) == (root / "shop").resolve()
    assert ingest_folder(Path("images/shop"), root, tmp_path) == (root / "shop").resolve()
    assert ingest_folder(Path("."), root, root / "shop") == (root / "shop").resolve()
    assert ingest_folder(root / "shop", root, elsewhere) == (root / "shop").resolve()
    refused = ingest_folder(Path("nope"), root, elsewhere)
    assert isinstance(refused, str) and "not inside the source root" in refused
    assert isinstance(ingest_folder(elsewhere / "shop", root, tmp_path), str)
