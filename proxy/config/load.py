"""Assembling the configuration from its layers, and printing it without its secrets."""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast
from urllib.parse import urlsplit

from pydantic import BaseModel, ValidationError

from proxy.config.base import REDACTED
from proxy.config.root import SECTIONS, Config
from proxy.errors import ConfigError


def _deep_merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def env_overrides(environ: Mapping[str, str]) -> dict[str, Any]:
    """``LOUPE_SECTION_KEY=value`` -> ``{section: {key: value}}``; pydantic coerces the strings.

    Only variables of a known section are settings: others (``LOUPE_TEST_*``,
    ``LOUPE_SHARED_DIR``, another tool's) are left alone. A key a known section lacks is a
    typo, and an error that names the variable and the section's keys."""
    found: dict[str, dict[str, str]] = {}
    for name, value in environ.items():
        if not name.startswith("LOUPE_") or name == "LOUPE_CONFIG":
            continue
        section, _, key = name[len("LOUPE_") :].lower().partition("_")
        if section not in SECTIONS:
            continue
        annotation = Config.model_fields[section].annotation
        assert isinstance(annotation, type) and issubclass(annotation, BaseModel)
        keys = annotation.model_fields
        if key not in keys:  # a typo inside a known section (or no key at all)
            raise ConfigError(
                f"invalid configuration: unknown setting {name}: [{section}] has "
                + ", ".join(f"LOUPE_{section.upper()}_{known.upper()}" for known in keys)
            )
        found.setdefault(section, {})[key] = value
    return dict(found)


def _redact_url(value: str) -> str:
    """``postgresql://user:secret@host/db`` -> ``postgresql://user:***@host/db``."""
    parts = urlsplit(value)
    if not parts.password:
        return value
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"{user}:{REDACTED}@{host}").geturl()


def _redact(model: BaseModel) -> dict[str, Any]:
    dumped: dict[str, Any] = {}
    for name, field in type(model).model_fields.items():
        value = getattr(model, name)
        extra = field.json_schema_extra
        if isinstance(value, BaseModel):
            dumped[name] = _redact(value)
        elif isinstance(value, dict):
            dumped[name] = {
                k: _redact(v) if isinstance(v, BaseModel) else v for k, v in value.items()
            }
        elif isinstance(extra, dict) and extra.get("secret") and value:
            dumped[name] = [REDACTED] * len(value) if isinstance(value, tuple) else REDACTED
        elif isinstance(value, str) and "://" in value:
            dumped[name] = _redact_url(value)
        else:
            dumped[name] = value
    return dumped


def redacted(config: Config) -> dict[str, Any]:
    """The configuration as JSON-able data with every secret (``SECRET`` fields, passwords in
    URLs) replaced by ``***``: what ``loupe config`` prints."""
    return cast(dict[str, Any], json.loads(json.dumps(_redact(config), default=str)))


def read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError as exc:
        raise ConfigError(f"config file not found: {path}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc


def _describe(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        where = ".".join(str(part) for part in err["loc"]) or "config"
        lines.append(f"  {where}: {err['msg']}")
    return "invalid configuration:\n" + "\n".join(lines)


def load_config(
    *,
    file: Path | None = None,
    environ: Mapping[str, str] | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Config:
    """Build the config: embedded defaults < TOML file < environment < flags."""
    environ = os.environ if environ is None else environ
    if file is None and environ.get("LOUPE_CONFIG"):
        file = Path(environ["LOUPE_CONFIG"])
    layers: dict[str, Any] = {}
    if file is not None:
        layers = _deep_merge(layers, read_toml(file))
    layers = _deep_merge(layers, env_overrides(environ))
    if overrides:
        layers = _deep_merge(layers, overrides)
    try:
        return Config.model_validate(layers)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from exc
