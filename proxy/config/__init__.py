"""One typed configuration object, assembled from defaults, a TOML file, ``LOUPE_*`` variables
and command-line flags (later wins), and validated once at start-up.

Nothing reads the environment after this: the resulting ``Config`` is passed explicitly.
Each section is defined beside its neighbours (``server``, ``sources``, ``images``,
``store``, ``ai``, ``lane``, ``cdn``), the object that holds them in ``root`` and the
layering in ``load``; every name is imported from here, as before.
"""

from __future__ import annotations

from proxy.config.ai import (
    AnalysisConfig,
    CalibrationConfig,
    CostsConfig,
    ModerationConfig,
    VlmConfig,
)
from proxy.config.base import REDACTED, SECRET, CommaList, CropName, PolicyName, Section, comma_list
from proxy.config.cdn import CdnConfig
from proxy.config.images import CacheConfig, ImagesConfig, LimitsConfig
from proxy.config.lane import LaneConfig, QAConfig, QualityConfig
from proxy.config.load import env_overrides, load_config, read_toml, redacted
from proxy.config.root import SECTIONS, Config
from proxy.config.server import (
    AdminConfig,
    LogConfig,
    LogFormat,
    LogLevel,
    SecurityConfig,
    ServerConfig,
    SigningConfig,
)
from proxy.config.sources import OriginConfig, SourcesConfig
from proxy.config.store import RedisConfig, StorageConfig, StoreConfig

__all__ = [
    "REDACTED",
    "SECRET",
    "SECTIONS",
    "AdminConfig",
    "AnalysisConfig",
    "CacheConfig",
    "CalibrationConfig",
    "CdnConfig",
    "CommaList",
    "Config",
    "CostsConfig",
    "CropName",
    "ImagesConfig",
    "LaneConfig",
    "LimitsConfig",
    "LogConfig",
    "LogFormat",
    "LogLevel",
    "ModerationConfig",
    "OriginConfig",
    "PolicyName",
    "QAConfig",
    "QualityConfig",
    "RedisConfig",
    "Section",
    "SecurityConfig",
    "ServerConfig",
    "SigningConfig",
    "SourcesConfig",
    "StorageConfig",
    "StoreConfig",
    "VlmConfig",
    "comma_list",
    "env_overrides",
    "load_config",
    "read_toml",
    "redacted",
]
