"""The typed config: defaults < TOML file < LOUPE_* environment < flags, validated once."""

from __future__ import annotations

from pathlib import Path

import pytest

from proxy.config import Config, env_overrides, load_config
from proxy.errors import ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "loupe.toml"
    path.write_text(text)
    return path


def test_defaults_validate() -> None:
    config = load_config(environ={})
    assert config == Config()
    assert config.server.port == 8080
    assert config.server.host == "127.0.0.1"
    assert config.images.default_crop == "smart"
    assert config.images.avif_effort is None
    assert config.cache.memory_max_item_bytes <= config.cache.memory_bytes
    assert Config.model_validate({}) == config


def test_toml_then_env_then_overrides(tmp_path: Path) -> None:
    file = write(
        tmp_path,
        '[server]\nport = 9000\nhost = "0.0.0.0"\nprocessing_threads = 3\n'
        '[images]\ndefault_crop = "entropy"\n',
    )
    from_file = load_config(file=file, environ={})
    assert from_file.server.port == 9000
    assert from_file.server.host == "0.0.0.0"
    assert from_file.images.default_crop == "entropy"
    assert from_file.server.queue_limit == 32  # untouched keys keep their defaults

    environ = {"LOUPE_SERVER_PORT": "9001", "LOUPE_SERVER_REQUEST_DEADLINE_S": "2.5"}
    from_env = load_config(file=file, environ=environ)
    assert from_env.server.port == 9001
    assert from_env.server.request_deadline_s == 2.5
    assert from_env.server.host == "0.0.0.0"  # the file still applies where env is silent
    assert from_env.server.processing_threads == 3

    flags = {"server": {"port": 9002}, "sources": {"root": tmp_path}}
    final = load_config(file=file, environ=environ, overrides=flags)
    assert final.server.port == 9002
    assert final.server.request_deadline_s == 2.5
    assert final.server.host == "0.0.0.0"
    assert final.sources.root == tmp_path
    assert final.images.default_crop == "entropy"


def test_loupe_config_names_the_file(tmp_path: Path) -> None:
    file = write(tmp_path, "[server]\nport = 7000\n")
    assert load_config(environ={"LOUPE_CONFIG": str(file)}).server.port == 7000
    # An explicit file beats LOUPE_CONFIG.
    explicit = tmp_path / "explicit.toml"
    explicit.write_text("[server]\nport = 7001\n")
    config = load_config(file=explicit, environ={"LOUPE_CONFIG": str(file)})
    assert config.server.port == 7001


def test_env_values_are_coerced_to_their_types() -> None:
    config = load_config(
        environ={
            "LOUPE_IMAGES_AVIF_EFFORT": "2",
            "LOUPE_IMAGES_ALLOW_SVG": "true",
            "LOUPE_STORAGE_DATA_DIR": "/tmp/loupe-data",
            "LOUPE_CACHE_MEMORY_BYTES": "1000000",
            "LOUPE_CACHE_MEMORY_MAX_ITEM_BYTES": "1000",
        }
    )
    assert config.images.avif_effort == 2
    assert config.images.allow_svg is True
    assert config.storage.data_dir == Path("/tmp/loupe-data")
    assert config.cache.memory_bytes == 1_000_000
    assert config.cache.memory_max_item_bytes == 1000


def test_env_overrides_split_section_and_key() -> None:
    assert env_overrides(
        {"LOUPE_SERVER_RETRY_AFTER_S": "5", "PATH": "/bin", "LOUPE_CONFIG": "x.toml"}
    ) == {"server": {"retry_after_s": "5"}}


@pytest.mark.parametrize(
    "name",
    ["LOUPE_BOGUS_X", "LOUPE_TEST_POSTGRES", "LOUPE_SHARED_DIR", "LOUPE_SERVERPORT", "LOUPE_"],
)
def test_variables_outside_the_known_sections_are_left_alone(name: str) -> None:
    assert env_overrides({name: "1", "LOUPE_SERVER_PORT": "9000"}) == {"server": {"port": "9000"}}
    assert load_config(environ={name: "1"}) == Config()


@pytest.mark.parametrize(
    ("name", "section"),
    [("LOUPE_SERVER_PROT", "SERVER"), ("LOUPE_SERVER", "SERVER"), ("LOUPE_VLM_URI", "VLM")],
)
def test_a_typo_inside_a_known_section_is_refused(name: str, section: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config(environ={name: "1"})
    assert f"unknown setting {name}" in raised.value.detail
    assert f"[{section.lower()}] has LOUPE_{section}_" in raised.value.detail  # the right keys


@pytest.mark.parametrize(
    ("environ", "fragment"),
    [
        ({"LOUPE_SERVER_PORT": "-1"}, "server.port"),
        ({"LOUPE_SERVER_PORT": "65536"}, "server.port"),
        ({"LOUPE_SERVER_PORT": "http"}, "server.port"),
        ({"LOUPE_SERVER_PROCESSING_THREADS": "0"}, "server.processing_threads"),
        ({"LOUPE_SERVER_REQUEST_DEADLINE_S": "0"}, "server.request_deadline_s"),
        ({"LOUPE_SERVER_BOGUS": "1"}, "LOUPE_SERVER_BOGUS"),
        ({"LOUPE_IMAGES_DEFAULT_CROP": "middle"}, "images.default_crop"),
        ({"LOUPE_IMAGES_AVIF_EFFORT": "10"}, "images.avif_effort"),
        ({"LOUPE_CACHE_MEMORY_BYTES": "1000"}, "memory_max_item_bytes exceeds"),
    ],
)
def test_bad_values_are_refused_with_their_location(environ: dict[str, str], fragment: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config(environ=environ)
    assert raised.value.detail.startswith("invalid configuration:")
    assert fragment in raised.value.detail


def test_bad_overrides_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"server\.port"):
        load_config(environ={}, overrides={"server": {"port": -1}})


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[server]\nprot = 1\n", "server.prot"),
        ("[server]\nport = -1\n", "server.port"),
        ("[bogus]\nx = 1\n", "bogus"),
        ('[server]\nport = "eighty"\n', "server.port"),
        ("[limits]\nmax_frames = 0\n", "limits.max_frames"),
    ],
)
def test_bad_toml_values_are_refused(tmp_path: Path, text: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config(file=write(tmp_path, text), environ={})
    assert raised.value.detail.startswith("invalid configuration:")
    assert fragment in raised.value.detail


def test_missing_or_broken_files_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(file=tmp_path / "nope.toml", environ={})
    with pytest.raises(ConfigError, match="is not valid TOML"):
        load_config(file=write(tmp_path, "[server\nport = 1\n"), environ={})


def test_config_is_frozen() -> None:
    config = load_config(environ={})
    with pytest.raises(ValueError, match="frozen"):
        config.server.port = 1  # type: ignore[misc]
