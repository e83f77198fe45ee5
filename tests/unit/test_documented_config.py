"""``config/loupe.toml`` documents the embedded defaults; it must not drift from them."""

from __future__ import annotations

from proxy.config import Config, load_config
from tests.support import REPO


def test_documented_config_equals_the_embedded_defaults() -> None:
    assert load_config(file=REPO / "config" / "loupe.toml", environ={}) == Config()


def test_documented_config_names_every_setting() -> None:
    text = (REPO / "config" / "loupe.toml").read_text()
    for section, model in Config.model_fields.items():
        assert f"[{section}]" in text
        assert model.annotation is not None
        for key in model.annotation.model_fields:
            assert f"{key} =" in text, f"config/loupe.toml does not document {section}.{key}"
