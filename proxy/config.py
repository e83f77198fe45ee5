"""One typed configuration object, assembled from defaults, a TOML file, ``LOUPE_*`` variables
and command-line flags (later wins), and validated once at start-up.

Nothing reads the environment after this: the resulting ``Config`` is passed explicitly.
"""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, cast
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from proxy.errors import ConfigError
from proxy.params import KNOWN, Crop, PolicyName
from proxy.providers import provider_name

CropName = Crop  # the URL's crop names (params)


def comma_list(value: object) -> object:
    """``a, b,c`` (environment, flags) -> ``("a", "b", "c")``; other values pass to pydantic."""
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    return value


# A tuple of names that the environment and flags may give as one "a,b,c" string.
CommaList = Annotated[tuple[str, ...], BeforeValidator(comma_list)]


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


# Marks a setting whose value must never be printed (``loupe config``, logs).
SECRET: dict[str, Any] = {"secret": True}
REDACTED = "***"


class ServerConfig(_Section):
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    workers: int | None = Field(
        None,
        ge=1,
        le=256,
        description="serving processes on one port; unset: the cores, capped by memory",
    )
    processing_threads: int | None = Field(
        None,
        ge=1,
        le=256,
        description="image threads off the event loop, per worker; unset: max(2, cores/workers)",
    )
    vips_concurrency: int | None = Field(
        None,
        ge=1,
        le=256,
        description="libvips threads per image; unset: 1 with several workers, else libvips's",
    )
    queue_limit: int = Field(32, ge=0, description="waiting renders beyond the workers before 503")
    request_deadline_s: float = Field(20.0, gt=0, description="per-request processing deadline")
    retry_after_s: int = Field(2, ge=1)
    h2c: bool = Field(
        False, description="cleartext HTTP/2 (Upgrade: h2c, prior knowledge); off = HTTP/1.1"
    )

    @property
    def render_threads(self) -> int:
        """``processing_threads`` as settled for this machine (``proxy.server.workers``), or
        2 where nothing settled it (an app built directly, in tests)."""
        return self.processing_threads or 2


class OriginConfig(_Section):
    url: str
    allow_hosts: tuple[str, ...] = Field(
        (), description="hosts this origin may fetch from, redirects included; empty = any public"
    )

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parsed = urlsplit(value)
        if parsed.scheme not in ("http", "https") or not parsed.hostname:
            raise ValueError(f"origin URL must be http(s)://host/..., got {value!r}")
        return value if value.endswith("/") else value + "/"


class SourcesConfig(_Section):
    root: Path = Path("./images")
    origins: dict[str, OriginConfig] = Field(
        default_factory=dict, description="/img/NAME/... -> an HTTP origin"
    )
    allow_private_networks: bool = Field(
        False, description="let origins reach loopback/private addresses (link-local never)"
    )
    connect_timeout_s: float = Field(3.0, gt=0)
    read_timeout_s: float = Field(10.0, gt=0)
    max_redirects: int = Field(3, ge=0, le=10)
    revalidate_after_s: float = Field(60.0, ge=0, description="reuse an origin's ETag this long")
    max_concurrent_fetches: int = Field(
        4, ge=1, description="origin downloads at once (server.queue_limit more wait; then 503)"
    )
    watch: bool = Field(
        True, description="notice replaced or deleted files under root (file-system events)"
    )
    rescan_s: float = Field(
        15.0, ge=0, description="full rescan of root this often, the watch's fallback; 0 = none"
    )

    @field_validator("origins", mode="before")
    @classmethod
    def _origins_from_text(cls, value: object) -> object:
        """``NAME=URL,NAME=URL`` (environment, flags) or a mapping (TOML)."""
        if isinstance(value, str):
            value = [part for part in value.split(",") if part.strip()]
        if isinstance(value, list | tuple):
            pairs = {}
            for item in value:
                name, sep, url = str(item).partition("=")
                if not sep or not name.strip():
                    raise ValueError(f"origin must be NAME=URL, got {item!r}")
                pairs[name.strip()] = {"url": url.strip()}
            return pairs
        if isinstance(value, dict):
            return {k: {"url": v} if isinstance(v, str) else v for k, v in value.items()}
        return value

    @field_validator("origins")
    @classmethod
    def _origin_names(cls, value: dict[str, OriginConfig]) -> dict[str, OriginConfig]:
        for name in value:
            if not name or "/" in name or name in (".", ".."):
                raise ValueError(f"origin name {name!r} must be one path segment")
        return value


class SigningConfig(_Section):
    keys: tuple[str, ...] = Field(
        (),
        description="HMAC keys; the first signs, all verify (rotation). Empty = unsigned",
        json_schema_extra=SECRET,
    )

    @field_validator("keys", mode="before")
    @classmethod
    def _keys_from_text(cls, value: object) -> object:
        return comma_list(value)


class SecurityConfig(_Section):
    clamd: str | None = Field(
        None, description="clamd socket path or tcp://host:port; set = scan every source"
    )
    clamd_timeout_s: float = Field(10.0, gt=0)


class AnalysisConfig(_Section):
    providers: CommaList = Field(
        ("cuda", "cpu"),
        description="onnxruntime execution providers, best first (cuda, rocm, coreml, "
        "directml, openvino, tensorrt or a full name); those this onnxruntime build lacks "
        "are skipped, CPU is always the last resort. CUDA needs the gpu extra",
    )

    @field_validator("providers")
    @classmethod
    def _known_providers(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            provider_name(name)  # raises ValueError naming the known ones
        return value


class StorageConfig(_Section):
    data_dir: Path = Path("./data")
    models_dir: Path = Path("./models")


class LimitsConfig(_Section):
    max_source_bytes: int = Field(64 * 1024 * 1024, ge=1)
    max_source_pixels: int = Field(100_000_000, ge=1, description="header-read, before decoding")
    max_output_pixels: int = Field(40_000_000, ge=1)
    max_frames: int = Field(256, ge=1)
    max_animation_pixels: int = Field(64_000_000, ge=1, description="frames x output pixels")
    max_encoder_bytes: int = Field(
        768 << 20,
        ge=1,
        description="memory an output's encoder may need (planned from its size): "
        "fm=auto falls back to a leaner format, else 400",
    )
    max_animation_canvas_pixels: int = Field(
        64_000_000,
        ge=1,
        description="frames x source canvas pixels an animated output decodes (header-read)",
    )


class CacheConfig(_Section):
    memory_bytes: int = Field(64 * 1024 * 1024, ge=0)
    memory_max_item_bytes: int = Field(4 * 1024 * 1024, ge=0)
    disk_bytes: int = Field(2 * 1024 * 1024 * 1024, ge=0)
    max_age_s: int = Field(31_536_000, ge=0, description="Cache-Control max-age of images")
    stale_while_revalidate_s: int = Field(86_400, ge=0)
    error_max_age_s: int = Field(60, ge=0)


class ImagesConfig(_Section):
    default_crop: CropName = "smart"
    default_policy: PolicyName = "general"
    source_policies: dict[str, PolicyName] = Field(
        default_factory=dict,
        description="path prefix -> policy for sources under it; policy= in the URL wins",
    )
    avif_time_budget_s: float = Field(
        0.6, gt=0, description="AVIF effort is the highest that encodes 1 MP within this"
    )
    avif_effort: int | None = Field(
        None, ge=0, le=9, description="fixed AVIF effort; unset = calibrate to the budget"
    )
    avif_first_answer_s: float = Field(
        0.05,
        ge=0,
        description="fm=auto: a first (unverified) answer is AVIF only when its encode is "
        "expected within this (avif_time_budget_s per MP); otherwise after verification",
    )
    provisional_max_age_s: int = Field(
        300, ge=0, description="Cache-Control max-age of a predicted, not yet verified answer"
    )
    fixed_quality_above_pixels: int = Field(
        4_000_000,
        ge=0,
        description="first answers of larger outputs: the policy's fixed quality, one pass, "
        "and JPEG rather than WebP/AVIF for fm=auto (planned to fit the deadline)",
    )
    webp_effort: int = Field(4, ge=0, le=6)
    webp_first_answer_effort: int = Field(
        1,
        ge=0,
        le=6,
        description="libwebp effort of provisional q=auto answers (their verification and "
        "final answers use webp_effort): about 0.4x the encode time, ~10% more bytes for "
        "the few minutes they live, the same scores on average",
    )
    webp_smart_subsample: bool = Field(
        False, description="sharp YUV for every WebP: doubles encode time, rarely pays"
    )
    jpeg_progressive: bool = Field(False, description="progressive JPEG: ~1% smaller, 2x encode")
    png_compression: int = Field(6, ge=0, le=9)
    allow_svg: bool = False
    policies_file: Path | None = None
    ignored_params: CommaList = Field(
        (),
        description="query parameters dropped before the signature check and the cache key, "
        "besides ixlib and utm_*; a trailing * matches a prefix",
    )

    @field_validator("ignored_params")
    @classmethod
    def _not_a_contract_parameter(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for name in value:
            prefix = name.lower().removesuffix("*")  # ignoring compares without case
            hits = [k for k in KNOWN if k.startswith(prefix)] if name.endswith("*") else [prefix]
            if not prefix or set(hits) & KNOWN:
                raise ValueError(f"{name!r} cannot be ignored: it is empty or names a parameter")
        return value

    @field_validator("source_policies", mode="before")
    @classmethod
    def _source_policies_from_text(cls, value: object) -> object:
        """``prefix=policy,prefix=policy`` (environment) or a mapping (TOML)."""
        if isinstance(value, str):
            pairs = {}
            for item in (part for part in value.split(",") if part.strip()):
                prefix, sep, policy = item.partition("=")
                if not sep or not prefix.strip():
                    raise ValueError(f"source policy must be PREFIX=POLICY, got {item!r}")
                pairs[prefix.strip()] = policy.strip()
            return pairs
        return value


class StoreConfig(_Section):
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


class RedisConfig(_Section):
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


class AdminConfig(_Section):
    token: str | None = Field(
        None,
        description="bearer token for /admin/*; unset = admin closed",
        json_schema_extra=SECRET,
    )
    secure_cookies: bool = Field(
        False, description="session cookie always Secure (behind a TLS-terminating proxy)"
    )
    login_attempts_per_minute: int = Field(
        10, ge=1, description="wrong admin tokens (form or bearer) per client per minute; 429 past"
    )
    reviews_per_client_per_minute: int = Field(
        10, ge=1, description="crop reviews (ctx=hero...) one client's requests may open a minute"
    )
    reviews_per_minute: int = Field(
        120, ge=1, description="crop reviews all anonymous requests together may open a minute"
    )


class VlmConfig(_Section):
    url: str | None = Field(
        None, description="OpenAI-compatible base URL (…/v1); unset = alt text off"
    )
    model: str = "llava"
    api_key: str | None = Field(None, json_schema_extra=SECRET)
    timeout_s: float = Field(30.0, gt=0)
    max_tokens: int = Field(200, ge=16, le=4096)
    confidence_threshold: float = Field(
        0.7, ge=0, le=1, description="below: kept as a draft and sent to review"
    )
    max_image_side: int = Field(768, ge=64, le=4096, description="the image sent is this small")


class LaneConfig(_Section):
    workers: int = Field(1, ge=0, le=64, description="in-process background workers (0 = none)")
    max_attempts: int = Field(5, ge=1, description="failures before a job is dead-lettered")
    backoff_s: float = Field(2.0, gt=0, description="first retry delay; doubles per attempt")
    lease_s: float = Field(120.0, gt=0, description="a claimed job returns to the queue after")
    poll_s: float = Field(0.5, gt=0, description="idle workers look for jobs this often")


class QualityConfig(_Section):
    verify_deadline_s: float = Field(
        120.0, gt=0, description="the lane's verify job: time for one picture's search"
    )
    retrain_every: int = Field(
        0, ge=0, description="retrain the quality predictor every N verified pairs (0 = off)"
    )


class QAConfig(_Section):
    sample_rate: float = Field(
        0.01, ge=0, le=1, description="share of new sources sent to human review"
    )
    max_bytes_per_pixel: float = Field(
        4.0, gt=0, description="a lossy output larger than this per pixel is suspect"
    )
    min_bytes: int = Field(64, ge=0, description="smaller outputs (beyond 64x64 px) are suspect")
    duplicate_distance: int = Field(
        6, ge=0, le=16, description="phash Hamming distance counted as a near-duplicate"
    )


class ModerationConfig(_Section):
    enabled: bool = Field(False, description="scan every source; unscanned is never served")
    unsafe_threshold: float = Field(
        0.8, ge=0, le=1, description="NSFW score at or above: held (451) until approved"
    )
    review_threshold: float = Field(
        0.4, ge=0, le=1, description="NSFW score at or above: served, but a human looks"
    )
    review_max_age_s: int = Field(
        60, ge=0, description="Cache-Control max-age of an image a human has yet to review"
    )


class CdnConfig(_Section):
    """Tags on image responses and purges sent to the CDN in front (operator-configured
    endpoints: never subject to the origins' SSRF guard)."""

    deployment: str = Field(
        "loupe",
        max_length=200,
        description="names this deployment in CDN tags (hashed; several share one CDN)",
    )
    surrogate_max_age_s: int = Field(
        31_536_000,
        ge=0,
        description="Surrogate-Control max-age once a purge adapter is configured",
    )
    webhook_url: str | None = Field(
        None, description='POST {"tags", "paths", "reason"} here on every purge'
    )
    webhook_secret: str | None = Field(
        None,
        description="HMAC-SHA256 key of the webhook body (X-Loupe-Signature: sha256=<hex>)",
        json_schema_extra=SECRET,
    )
    fastly_service_id: str | None = Field(None, description="purge by surrogate key")
    fastly_token: str | None = Field(None, json_schema_extra=SECRET)
    fastly_api_url: str = "https://api.fastly.com"
    cloudflare_zone_id: str | None = Field(None, description="purge by cache tag")
    cloudflare_token: str | None = Field(None, json_schema_extra=SECRET)
    cloudflare_api_url: str = "https://api.cloudflare.com/client/v4"
    varnish_url: str | None = Field(
        None, description="an HTTP PURGE/BAN endpoint (Varnish with xkey, or similar)"
    )
    varnish_method: Literal["PURGE", "BAN"] = "PURGE"
    varnish_header: str = Field("xkey", description="header carrying the space-separated tags")
    timeout_s: float = Field(10.0, gt=0, description="per purge request")
    backoff_s: float = Field(2.0, gt=0, description="first retry delay; doubles per failure")
    max_backoff_s: float = Field(300.0, gt=0)
    dead_after_s: float = Field(
        86_400.0, gt=0, description="a purge still failing this long is dead-lettered"
    )
    repeat_after_s: float = Field(
        5.0,
        ge=0,
        description="each purge is sent once more this much later: an edge request in flight "
        "at the first (or answered within a node's 2 s decision memo) stores the old answer "
        "after it; 0 = once",
    )
    batch: int = Field(30, ge=1, le=256, description="tags per purge request")
    poll_s: float = Field(0.5, gt=0, description="the sender looks for purges this often")

    @field_validator(
        "webhook_url", "varnish_url", "fastly_api_url", "cloudflare_api_url", mode="after"
    )
    @classmethod
    def _http(cls, value: str | None) -> str | None:
        if value is not None and (
            urlsplit(value).scheme not in ("http", "https") or not urlsplit(value).hostname
        ):
            raise ValueError(f"must be an http(s) URL, got {value!r}")
        return value

    @property
    def purges(self) -> bool:
        """Whether any adapter is configured: purges then reach a CDN."""
        return bool(
            self.webhook_url
            or (self.fastly_service_id and self.fastly_token)
            or (self.cloudflare_zone_id and self.cloudflare_token)
            or self.varnish_url
        )


class CostsConfig(_Section):
    """Prices for the cost estimate of each AI component (any currency, 0 = not priced)."""

    faces_per_1k: float = Field(0.0, ge=0, description="per 1000 face detections")
    saliency_per_1k: float = Field(0.0, ge=0, description="per 1000 saliency maps")
    text_per_1k: float = Field(0.0, ge=0, description="per 1000 text searches")
    content_per_1k: float = Field(0.0, ge=0, description="per 1000 content classifications")
    nsfw_per_1k: float = Field(0.0, ge=0, description="per 1000 NSFW scores")
    quality_per_1k: float = Field(0.0, ge=0, description="per 1000 q=auto searches")
    vlm_per_1k: float = Field(0.0, ge=0, description="per 1000 VLM calls (on top of tokens)")
    vlm_per_token_in: float = Field(0.0, ge=0, description="per prompt token sent to the VLM")
    vlm_per_token_out: float = Field(0.0, ge=0, description="per token the VLM answered")
    flush_s: float = Field(2.0, gt=0, description="each process adds its tallies this often")

    def per_1k(self, component: str) -> float:
        return float(getattr(self, f"{component}_per_1k"))


class CalibrationConfig(_Section):
    target_precision: float = Field(
        0.95, gt=0, le=1, description="share accepted as is that an auto-accept must reach"
    )
    bins: int = Field(10, ge=2, le=100, description="confidence bins of the reliability diagram")
    min_decisions: int = Field(
        20, ge=1, description="human decisions above a threshold before it may be proposed"
    )
    apply: bool = Field(False, description="let the proposed thresholds replace the configured")
    sample_rate: float = Field(
        0.02, ge=0, le=1, description="share of auto-accepted outputs sent for a human look"
    )


LogLevel = Literal["debug", "info", "warning", "error"]
LogFormat = Literal["text", "json"]


class LogConfig(_Section):
    level: LogLevel = "info"
    access: bool = Field(True, description="one line per request: method, path, status, ...")
    format: LogFormat = Field("text", description="json: one object per line")


class Config(_Section):
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
