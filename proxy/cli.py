"""``loupe``: the command line. Flags override ``LOUPE_*`` variables, which override the
TOML file, which overrides the embedded defaults."""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from proxy.config import Config, load_config
from proxy.errors import ConfigError
from proxy.signing import sign_url


def _serve_overrides(args: argparse.Namespace) -> dict[str, Any]:
    flags: dict[str, dict[str, Any]] = {}

    def put(section: str, key: str, value: object) -> None:
        if value is not None:
            flags.setdefault(section, {})[key] = value

    put("sources", "root", args.root)
    put("server", "host", args.host)
    put("server", "port", args.port)
    put("storage", "data_dir", args.data_dir)
    put("storage", "models_dir", args.models_dir)
    if args.origin:
        put("sources", "origins", list(args.origin))
    if args.signing_key:
        put("signing", "keys", list(args.signing_key))
    return flags


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="loupe", description="Loupe image proxy")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the HTTP server (hypercorn)")
    serve.add_argument("--config", type=Path, help="TOML config file (also LOUPE_CONFIG)")
    serve.add_argument("--root", type=Path, help="local source folder")
    serve.add_argument("--host", help="address to bind")
    serve.add_argument("--port", type=int, help="port to bind (0 picks a free one)")
    serve.add_argument("--data-dir", type=Path, help="caches and the embedded store")
    serve.add_argument("--models-dir", type=Path, help="folder holding the model files")
    serve.add_argument(
        "--origin", action="append", metavar="NAME=URL", help="map /img/NAME/... to an HTTP origin"
    )
    serve.add_argument(
        "--signing-key",
        action="append",
        metavar="KEY",
        help="require signed URLs; repeat for rotation (the first signs, all verify)",
    )
    serve.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    sign = commands.add_parser("sign", help="sign an image URL (path and query)")
    sign.add_argument("url", help="e.g. /img/shop/shoe.jpg?w=600 or a full http(s) URL")
    sign.add_argument("--key", help="signing key (default: the config's first key)")
    sign.add_argument("--expires-in", type=int, metavar="SECONDS", help="add expires=now+SECONDS")
    sign.add_argument("--config", type=Path)
    metric = commands.add_parser("metric", help="print the SSIMULACRA2 score of DISTORTED vs REF")
    metric.add_argument("reference", type=Path)
    metric.add_argument("distorted", type=Path)
    check = commands.add_parser("config", help="print the effective configuration as JSON")
    check.add_argument("--config", type=Path)
    models = commands.add_parser("models", help="the model files of models/manifest.toml")
    models_commands = models.add_subparsers(dest="models_command", required=True)
    verify = models_commands.add_parser("check", help="verify every model file (size, sha256)")
    verify.add_argument("--models-dir", type=Path, help="folder holding the model files")
    verify.add_argument("--config", type=Path)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "metric":
        return _metric(args.reference, args.distorted)
    if args.command == "models" and args.models_dir is not None:
        return _models_check(args.models_dir)  # no configuration needed
    try:
        if args.command == "serve":
            config = load_config(file=args.config, overrides=_serve_overrides(args))
        else:
            config = load_config(file=args.config)
    except ConfigError as exc:
        print(f"loupe: {exc.detail}", file=sys.stderr)
        return 2
    if args.command == "config":
        print(config.model_dump_json(indent=2))
        return 0
    if args.command == "sign":
        return _sign(config, args.url, args.key, args.expires_in)
    if args.command == "models":
        return _models_check(config.storage.models_dir)
    return _serve(config, args.log_level)


def _serve(config: Config, log_level: str) -> int:
    from proxy.server.run import run  # heavy imports only when serving

    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("pyvips").setLevel(logging.WARNING)  # libvips chatters at INFO per render
    root = config.sources.root
    if not root.exists():
        root.mkdir(parents=True)
        logging.getLogger("loupe").warning("created an empty source folder at %s", root)
    if not root.is_dir():
        print(f"loupe: source root {root} is not a folder", file=sys.stderr)
        return 2
    logging.getLogger("loupe").info(
        "serving %s on http://%s:%d", config.sources.root, config.server.host, config.server.port
    )
    run(config)
    return 0


def _sign(config: Config, url: str, key: str | None, expires_in: int | None) -> int:
    key = key or (config.signing.keys[0] if config.signing.keys else None)
    if not key:
        print("loupe: no signing key: pass --key or configure signing.keys", file=sys.stderr)
        return 2
    parts = urlsplit(url)
    query = parts.query
    if expires_in is not None:
        expiry = f"expires={int(time.time()) + expires_in}"
        query = f"{query}&{expiry}" if query else expiry
    signed = sign_url(key, parts.path, query)
    print(f"{parts.scheme}://{parts.netloc}{signed}" if parts.netloc else signed)
    return 0


def _models_check(models_dir: Path) -> int:
    from proxy.manifest import ManifestError, check, format_table

    try:
        statuses = check(models_dir)
    except ManifestError as exc:
        print(f"loupe: {exc}", file=sys.stderr)
        return 1
    print(format_table(statuses))
    return 0 if statuses and all(status.ok for status in statuses) else 1


def _metric(reference: Path, distorted: Path) -> int:
    import pyvips

    from proxy.quality.ssimulacra2 import score_files

    try:
        print(f"{score_files(str(reference), str(distorted)):.4f}")
    except (ValueError, pyvips.Error) as exc:
        print(f"loupe: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 2
    return 0
