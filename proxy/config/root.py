"""The one configuration object: every section, and the checks that span sections."""

from __future__ import annotations

from pydantic import model_validator

from proxy.config.ai import (
    AnalysisConfig,
    CalibrationConfig,
    CostsConfig,
    ModerationConfig,
    VlmConfig,
)
from proxy.config.base import Section
from proxy.config.cdn import CdnConfig
from proxy.config.images import CacheConfig, ImagesConfig, LimitsConfig
from proxy.config.lane import LaneConfig, QAConfig, QualityConfig
from proxy.config.server import AdminConfig, LogConfig, SecurityConfig, ServerConfig, SigningConfig
from proxy.config.sources import SourcesConfig
from proxy.config.store import RedisConfig, StorageConfig, StoreConfig


class Config(Section):
    server: ServerConfig = ServerConfig()
    sources: SourcesConfig = SourcesConfig()
    signing: SigningConfig = SigningConfig()
    security: SecurityConfig = SecurityConfig()
    storage: StorageConfig = StorageConfig()
    analysis: AnalysisConfig = AnalysisConfig()
    limits: LimitsConfig = LimitsConfig()
    cache: CacheConfig = CacheConfig()
    images: ImagesConfig = ImagesConfig()
    store: StoreConfig = StoreConfig()
    redis: RedisConfig = RedisConfig()
    admin: AdminConfig = AdminConfig()
    vlm: VlmConfig = VlmConfig()
    lane: LaneConfig = LaneConfig()
    qa: QAConfig = QAConfig()
    quality: QualityConfig = QualityConfig()
    moderation: ModerationConfig = ModerationConfig()
    cdn: CdnConfig = CdnConfig()
    costs: CostsConfig = CostsConfig()
    calibration: CalibrationConfig = CalibrationConfig()
    log: LogConfig = LogConfig()

    @model_validator(mode="after")
    def _memory_item_fits(self) -> Config:
        if self.cache.memory_max_item_bytes > self.cache.memory_bytes > 0:
            raise ValueError("cache.memory_max_item_bytes exceeds cache.memory_bytes")
        if self.moderation.review_threshold > self.moderation.unsafe_threshold:
            raise ValueError("moderation.review_threshold exceeds moderation.unsafe_threshold")
        return self

    def store_url(self) -> str:
        """The configured store, or the embedded SQLite file in the data folder."""
        return self.store.url or f"sqlite:///{(self.storage.data_dir / 'loupe.db').resolve()}"


SECTIONS = tuple(Config.model_fields)
