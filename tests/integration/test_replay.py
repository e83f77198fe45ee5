"""``loupe feedback replay`` against a known sequence of human decisions, made with the real
decision code on the real store: today's models (run, not read from a cache) agree or not
with each, per component; the table, the JSON, the filters, ``--vlm``, the QA catches, and
``bench/crops --replay`` taking the crop cases as an evaluation set."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from proxy.analysis.analyzer import Analyzer
from proxy.analysis.crops import ranked_crops
from proxy.commands.replay import iou
from proxy.curation.review import Decision, decide
from proxy.params import parse_params
from proxy.sources.paths import SourcePath
from proxy.stores import open_store
from proxy.stores.base import Feedback
from tests.support import REPO, shared_dir
from tests.vlm_server import VlmServer

PICTURES = {"people.png": "12", "hats.png": "03", "window.png": "08"}
VARIANT = parse_params("w=200&fm=jpeg").canonical_query("smart")


@pytest.fixture(scope="module")
def world(data_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A source root, and a store holding the known sequence of decisions."""
    root = tmp_path_factory.mktemp("replay-root")
    for name, number in PICTURES.items():
        shutil.copy(data_root / "kodak" / f"kodim{number}.png", root / name)
    data = tmp_path_factory.mktemp("replay-data")
    analyzer = Analyzer(shared_dir() / "models", None)
    try:
        today = {name: analyzer.analyse((root / name).read_bytes()) for name in PICTURES}
    finally:
        analyzer.close()
    store = open_store(f"sqlite:///{(data / 'loupe.db').resolve()}")
    n = 0

    def item(path: str, component: str, payload: dict[str, Any], subject: str = "") -> Any:
        nonlocal n
        n += 1
        opened = store.open_review(SourcePath(path), component, subject or f"{path}|{n}", payload)
        assert opened is not None
        return opened

    def decided(found: Any, action: str, value: Any = None, reason: str = "why") -> None:
        decide(store, found, Decision(action, value, reason, 2.0, "tester"))  # type: ignore[arg-type]

    try:
        square = ranked_crops(today["people.png"], today["people.png"], 400, 400)
        wide = ranked_crops(today["hats.png"], today["hats.png"], 640, 360)
        source = {"width": 768, "height": 512}
        # crop: people.png accepted (today's top: agrees); hats.png a far rect (disagrees);
        # window.png rejected (no pick: no case)
        crop = {"aspect": "1:1", "ctx": "hero", "w": 400, "h": 400, "source": source}
        decided(item("people.png", "crop", {**crop, "candidates": square}), "accept")
        far = [0, 0, 200, 112] if wide[0]["x"] > 200 else [560, 400, 200, 112]
        assert iou(far, [wide[0][k] for k in ("x", "y", "width", "height")]) < 0.8
        hats = {**crop, "aspect": "16:9", "w": 640, "h": 360, "candidates": wide}
        decided(item("hats.png", "crop", hats), "edit", {"rect": far})
        decided(item("window.png", "crop", {**crop, "candidates": square}), "reject")
        # a user's own override of window.png: today's top for 1:1 at 1000x1000
        top = ranked_crops(today["window.png"], today["window.png"], 1000, 1000)[0]
        picked = [top[k] for k in ("x", "y", "width", "height")]
        store.add_feedback(
            Feedback(
                review_id=None,
                path=SourcePath("window.png"),
                component="crop",
                action="override",
                ai_output={},
                correction={"aspect": "1:1", "ctx": "", "rect": picked},
                reason="",
                reviewer="user",
                seconds=None,
                context={},
            )
        )  # fmt: skip
        # moderation: people.png approved (clear today: agrees), hats.png rejected (disagrees)
        decided(item("people.png", "moderation", {"score": 0.5, "digest": "a" * 64}), "accept")
        decided(item("hats.png", "moderation", {"score": 0.5, "digest": "b" * 64}), "reject")
        # content: QA samples accepted with today's class (agrees) and a wrong one (disagrees)
        label = today["people.png"].content[0]
        other = "screenshot" if today["hats.png"].content[0] != "screenshot" else "photo"
        decided(item("people.png", "sample", {"stratum": f"-|{label}|q=auto/jpeg"}), "accept")
        decided(item("hats.png", "sample", {"stratum": f"-|{other}|q=auto/jpeg"}), "accept")
        decided(item("window.png", "sample", {"stratum": f"-|{label}|q=auto/jpeg"}), "reject")
        # alt: kept, rewritten, rejected
        alt = {"reason": "low-confidence", "confidence": 0.5}
        reply = VlmServer(mode="logprobs").reply
        decided(item("people.png", "alt", {**alt, "draft": reply}), "accept", reason="")
        decided(item("hats.png", "alt", {**alt, "draft": "A boot."}), "edit", {"text": "Hats."})
        decided(item("window.png", "alt", {**alt, "draft": "A door."}), "reject")
        # QA catches: one that renders fine today, one whose source is gone
        item("people.png", "qa", {"result": "quarantined"}, f"people.png|{VARIANT}")
        item("gone.png", "qa", {"result": "quarantined"}, f"gone.png|{VARIANT}")
    finally:
        store.close()
    return {"root": root, "data": data, "label": label}


def replay(world: dict[str, Any], *args: str, env: dict[str, str] | None = None) -> Any:
    out = world["data"] / f"replay-{time.monotonic_ns()}.json"
    result = subprocess.run(
        [
            sys.executable, "-m", "proxy", "feedback", "replay",
            "--root", str(world["root"]), "--data-dir", str(world["data"]),
            "--models-dir", str(shared_dir() / "models"), "--out", str(out), *args,
        ],
        cwd=REPO, capture_output=True, text=True, timeout=120,
        env={k: v for k, v in os.environ.items() if not k.startswith("LOUPE_")} | (env or {}),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return result, json.loads(out.read_text()), out


def row(summary: dict[str, Any], name: str) -> tuple[int, int, int]:
    found = summary[name]
    return found["cases"], found["replayed"], found["agree"]


def test_replay_reports_agreement_per_component(world: dict[str, Any]) -> None:
    result, body, out = replay(world)
    world["everything"] = out  # the bench test below takes its crop cases
    summary = body["summary"]
    assert row(summary, "crop") == (3, 3, 2) and summary["crop"]["agreement"] == round(2 / 3, 4)
    assert row(summary, "moderation") == (2, 2, 1)
    assert row(summary, "content") == (2, 2, 1)
    assert row(summary, "alt") == (3, 3, 1)  # without --vlm: kept unchanged or not
    assert row(summary, "qa") == (2, 1, 1) and summary["qa"]["fail_again"] == 0
    assert summary["qa"]["errors"] == 1
    cases = body["cases"]
    by = {(c["component"], c["path"]): c for c in cases}
    assert by[("crop", "people.png")]["today"]["iou"] == 1.0
    assert by[("crop", "hats.png")]["today"]["iou"] < 0.8
    assert by[("crop", "window.png")]["human"]["by"] == "user"
    assert by[("moderation", "people.png")]["today"]["verdict"] == "clear"
    assert by[("content", "people.png")]["today"]["class"] == world["label"]
    assert (
        by[("qa", "gone.png")]["agrees"] is None and "gone.png" in by[("qa", "gone.png")]["error"]
    )
    assert by[("qa", "people.png")]["today"] == {"passed": True, "failed": []}
    lines = result.stdout.splitlines()
    assert lines[0].split()[:5] == ["component", "cases", "replayed", "agree", "share"]
    assert lines[1].split()[:5] == ["crop", "3", "3", "2", "66.7%"]
    assert lines[5].split()[:5] == ["qa", "2", "1", "1", "100.0%"]
    assert "12 cases replayed" in result.stderr


def test_replay_filters_by_component_and_time(world: dict[str, Any]) -> None:
    _result, body, _out = replay(world, "--component", "moderation")
    assert {c["component"] for c in body["cases"]} == {"moderation"}
    tomorrow = time.strftime("%Y-%m-%d", time.gmtime(time.time() + 86400))
    _result, body, _out = replay(world, "--since", tomorrow)
    assert body["cases"] == [] and body["summary"]["crop"]["agreement"] is None
    bad = subprocess.run(
        [sys.executable, "-m", "proxy", "feedback", "replay", "--since", "soon",
         "--data-dir", str(world["data"])],
        cwd=REPO, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert bad.returncode == 2 and "--since" in bad.stderr


@pytest.fixture(scope="module")
def vlm() -> Iterator[VlmServer]:
    with VlmServer(mode="logprobs") as server:
        yield server


def test_replay_with_the_vlm_describes_again(world: dict[str, Any], vlm: VlmServer) -> None:
    """Today's VLM text: the same as the kept one (agrees), not the rewritten one, and
    confident where the human rejected the text (disagrees)."""
    calls = len(vlm.requests)
    _result, body, _out = replay(world, "--component", "alt", "--vlm", "--vlm-url", vlm.url)
    assert row(body["summary"], "alt") == (3, 3, 1) and body["vlm"] is True
    assert len(vlm.requests) - calls == 3
    kept = next(c for c in body["cases"] if c["path"] == "people.png")
    assert kept["agrees"] is True and kept["today"]["text"] == vlm.reply


def test_bench_crops_takes_the_replayed_crops(world: dict[str, Any]) -> None:
    out = world.get("everything") or replay(world, "--component", "crop")[2]
    bench = subprocess.run(
        [sys.executable, "bench/crops/run.py", "--replay", str(out), "--root", str(world["root"]),
         "--models", str(shared_dir() / "models")],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert bench.returncode == 0, bench.stderr
    assert "replayed human crops:" in bench.stdout and "/3 within IoU 0.8" in bench.stdout
