"""Where state lives: the data folder, the durable store, the shared Redis tier."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from proxy.config.base import Section


class StorageConfig(Section):
    data_dir: Path = Path("./data")
    models_dir: Path = Path("./models")


class StoreConfig(Section):
    url: str | None = Field(
        None,
        description="sqlite:///path or postgresql://...; unset = sqlite in data_dir/loupe.db",
    )

    @field_validator("url")
    @classmethod
    def _known_scheme(cls, value: str | None) -> str | None:
        if value is not None and urlsplit(value).scheme not in (
            "sqlite",
            "postgresql",
            "postgres",
        ):
            raise ValueError(f"store URL must be sqlite:///... or postgresql://..., got {value!r}")
        return value


class RedisConfig(Section):
    url: str | None = Field(
        None, description="redis://host:6379/0: shared cache tier across nodes; unset = none"
    )
    prefix: str = Field("loupe:", description="key and channel prefix (several deployments)")
    result_ttl_s: int = Field(7 * 86_400, ge=1, description="shared results expire after")
    max_item_bytes: int = Field(8 * 1024 * 1024, ge=0, description="larger results stay local")
    lock_ttl_s: float = Field(30.0, gt=0, description="a node computing a result holds it")

    @field_validator("url")
    @classmethod
    def _redis_scheme(cls, value: str | None) -> str | None:
        if value is not None and urlsplit(value).scheme not in ("redis", "rediss", "unix"):
            raise ValueError(f"redis URL must be redis://, rediss:// or unix://, got {value!r}")
        return value
