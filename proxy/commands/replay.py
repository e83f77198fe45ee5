"""``loupe feedback replay``: today's models and settings on every source a human decided
about, and how often they now agree with the human.

- ``crop``: today's top candidate for the reviewed box against the human's pick (the
  candidate they kept or picked, the rect they drew, a user's override): agrees at IoU >= 0.8.
- ``moderation``: today's verdict (the NSFW model and the thresholds in force) against the
  human's: an approved picture must come out clear, a rejected one not.
- ``content``: today's content class against the one of a QA sample the human accepted.
- ``alt``: whether the human kept the AI's text unchanged (no model call); with ``--vlm``,
  whether today's VLM text equals the text the human kept or wrote (a rejected text: whether
  today's falls below the threshold, to review).
- ``qa``: the outputs QA caught (quarantined), rendered and checked again: a regression that
  makes them fail again is a number here.

User corrections become an evaluation set: the JSON this writes lists every case, and
``bench/crops/run.py --replay FILE`` scores ``crop=smart`` on its crop cases.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

import pyvips
from tqdm import tqdm

from proxy.analysis.analyzer import Analyzer
from proxy.analysis.crops import ranked_crops
from proxy.config import Config
from proxy.errors import LoupeError
from proxy.negotiate import parse_accept
from proxy.params import parse_params
from proxy.qa.checks import QALimits, check_output
from proxy.qa.gate import expectation
from proxy.qa.sampling import SEPARATOR
from proxy.sources.paths import canonical_path
from proxy.stores.base import Feedback, ReviewItem

REPLAYED: tuple[str, ...] = ("crop", "moderation", "content", "alt", "qa")
IOU_AGREES = 0.8
NOT_A_CLASS = "-"


@dataclass(frozen=True)
class Case:
    """One human decision to replay: ``human`` is what they decided (per component)."""

    component: str
    path: str
    human: dict[str, Any]
    review_id: int | None = None
    feedback_id: int | None = None
    decided: float = 0.0


@dataclass
class Outcome:
    case: Case
    agrees: bool | None  # None: could not be replayed (the source is gone, ...)
    today: dict[str, Any] = field(default_factory=dict)
    error: str | None = None


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two [x, y, w, h] rects."""
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    w = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    h = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    inter = w * h
    union = aw * ah + bw * bh - inter
    return inter / union if union > 0 else 0.0


def _rect(candidate: dict[str, Any]) -> list[int]:
    return [int(candidate[k]) for k in ("x", "y", "width", "height")]


def _box_of_aspect(aspect: str) -> tuple[int, int] | None:
    """A w x h for an override's aspect (``16:9``): the box candidates are ranked for."""
    found = re.fullmatch(r"(\d+):(\d+)", aspect)
    if not found:
        return None
    w, h = int(found.group(1)), int(found.group(2))
    scale = 1000 / max(w, h)
    return max(1, round(w * scale)), max(1, round(h * scale))


def _crop_case(event: Feedback) -> Case | None:
    output = event.ai_output or {}
    correction = event.correction or {}
    if event.action == "override":  # a user's own crop through the admin API
        box = _box_of_aspect(str(correction.get("aspect", "")))
        rect = correction.get("rect")
        if box is None or not isinstance(rect, list):
            return None
        return Case("crop", event.path, {"box": list(box), "rect": rect, "by": "user"})
    candidates = output.get("candidates") or []
    if event.review_id is None or not candidates or "w" not in output:
        return None
    if event.action == "accept":
        rect = _rect(candidates[0])
    elif event.action == "edit" and isinstance(correction.get("rect"), list):
        rect = [int(v) for v in correction["rect"]]
    else:
        return None  # rejected: no pick to compare with
    reviewed = [int(output["w"]), int(output["h"])]
    return Case("crop", event.path, {"box": reviewed, "rect": rect, "by": "review"})


def _class_of(stratum: str) -> str | None:
    parts = stratum.split(SEPARATOR)
    if len(parts) != 3:
        return None
    label = parts[1].replace("%7C", "|").replace("%25", "%")
    return None if label == NOT_A_CLASS else label


def case_of(event: Feedback) -> Case | None:
    """The replayable case a decision makes, or None."""
    output = event.ai_output or {}
    correction = event.correction or {}
    found: Case | None = None
    if event.component == "crop":
        found = _crop_case(event)
    elif event.component == "moderation" and event.review_id is not None:
        if event.action in ("accept", "reject"):
            verdict = "approved" if event.action == "accept" else "rejected"
            found = Case("moderation", event.path, {"verdict": verdict})
    elif event.component == "sample" and event.action == "accept":
        label = _class_of(str(output.get("stratum", "")))
        if label is not None:
            found = Case("content", event.path, {"class": label})
    elif event.component == "alt":
        draft = output.get("draft") if event.review_id is not None else output.get("text")
        machine = event.review_id is not None or output.get("machine_generated")
        if isinstance(draft, str) and draft and machine:
            kept = event.action == "accept"
            text = draft if kept else str(correction.get("text") or "")
            found = Case("alt", event.path, {"kept": kept, "ai_text": draft, "text": text})
    if found is None:
        return None
    return Case(
        found.component,
        found.path,
        found.human,
        review_id=event.review_id,
        feedback_id=event.id or None,
        decided=event.created,
    )


def qa_case(item: ReviewItem) -> Case | None:
    """A QA catch (an output quarantined): its path and the variant to render again."""
    _path, _, variant = item.subject.partition("|")
    if not variant:
        return None
    return Case("qa", item.path, {"variant": variant}, review_id=item.id, decided=item.created)


def collect(
    events: Iterable[Feedback],
    catches: Iterable[ReviewItem],
    *,
    component: str | None = None,
    since: float = 0.0,
) -> list[Case]:
    """Every replayable case, the latest decision per component, source and box."""
    latest: dict[tuple[str, str, str], Case] = {}
    for event in events:
        found = case_of(event)
        if found is None or found.decided < since:
            continue
        key = (found.component, found.path, json.dumps(found.human.get("box")))
        latest[key] = found
    for item in catches:
        found = qa_case(item)
        if found is not None and found.decided >= since:
            latest[("qa", found.path, found.human["variant"])] = found
    chosen = [case for case in latest.values() if component in (None, case.component)]
    return sorted(chosen, key=lambda case: (REPLAYED.index(case.component), case.decided))


def _same_text(a: str, b: str) -> bool:
    def norm(text: str) -> str:
        return " ".join(text.casefold().split()).rstrip(".")

    return norm(a) == norm(b)


class Replayer:
    """Today's models and settings, as the server has them; one method per component."""

    def __init__(
        self,
        config: Config,
        read: Callable[[str], bytes],
        analyzer: Analyzer | None,
        *,
        nsfw: Callable[[pyvips.Image], float] | None,
        review_threshold: float,
        alt_threshold: float,
        describe: Callable[[str, bytes], tuple[str, float]] | None = None,
        render: Callable[[bytes, str], tuple[bytes, Any]] | None = None,
    ) -> None:
        self.config = config
        self.read = read
        self.analyzer = analyzer
        self.nsfw = nsfw
        self.review_threshold = review_threshold
        self.alt_threshold = alt_threshold
        self.describe = describe
        self.render = render

    def replay(self, case: Case) -> Outcome:
        try:
            method = getattr(self, f"_{case.component}")
            return method(case)  # type: ignore[no-any-return]
        except (LoupeError, pyvips.Error, OSError, ValueError) as exc:
            detail = getattr(exc, "detail", None) or str(exc)
            return Outcome(case, None, error=f"{type(exc).__name__}: {detail}"[:300])

    def _crop(self, case: Case) -> Outcome:
        if self.analyzer is None:
            return Outcome(case, None, error="no analyzer")
        blob = self.read(case.path)
        analysis = self.analyzer.analyse(blob, case.path)  # sizes as oriented, like the rects
        width, height = case.human["box"]
        candidates = ranked_crops(analysis, analysis, width, height)
        if not candidates:
            return Outcome(case, None, error="no candidates for that box today")
        top = _rect(candidates[0])
        overlap = iou(top, case.human["rect"])
        today = {"rect": top, "iou": round(overlap, 4), "strategy": candidates[0]["strategy"]}
        return Outcome(case, overlap >= IOU_AGREES, today)

    def _moderation(self, case: Case) -> Outcome:
        if self.nsfw is None:
            return Outcome(case, None, error="no NSFW model")
        blob = self.read(case.path)
        thumb = pyvips.Image.thumbnail_buffer(blob, 256, height=256)
        score = float(self.nsfw(thumb))
        moderation = self.config.moderation
        if score >= moderation.unsafe_threshold:
            verdict = "held"
        elif score >= self.review_threshold:
            verdict = "review"
        else:
            verdict = "clear"
        wanted_clear = case.human["verdict"] == "approved"
        today = {"score": round(score, 4), "verdict": verdict}
        return Outcome(case, (verdict == "clear") == wanted_clear, today)

    def _content(self, case: Case) -> Outcome:
        if self.analyzer is None:
            return Outcome(case, None, error="no analyzer")
        analysis = self.analyzer.analyse(self.read(case.path), case.path)
        label = analysis.content[0] if analysis.content else None
        return Outcome(case, label == case.human["class"], {"class": label})

    def _alt(self, case: Case) -> Outcome:
        human = case.human
        if self.describe is None:  # judged on what the human did: no model call
            return Outcome(case, bool(human["kept"]), {"vlm": False})
        text, confidence = self.describe(case.path, self.read(case.path))
        today = {"text": text, "confidence": round(confidence, 4), "vlm": True}
        if not human["text"]:  # the human rejected the text: today's must go to review
            return Outcome(case, confidence < self.alt_threshold, today)
        return Outcome(case, _same_text(text, human["text"]), today)

    def _qa(self, case: Case) -> Outcome:
        if self.render is None:
            return Outcome(case, None, error="no renderer")
        body, rendered = self.render(self.read(case.path), case.human["variant"])
        report = check_output(
            body,
            expectation(rendered, 15.0),
            QALimits.from_config(self.config.qa),
        )
        failed = [check.name for check in report.failures]
        return Outcome(case, report.passed, {"passed": report.passed, "failed": failed})


def summarise(outcomes: Sequence[Outcome], vlm: bool) -> dict[str, Any]:
    """Agreement per component (of the cases that could be replayed)."""
    notes = {
        "crop": f"today's top candidate within IoU {IOU_AGREES} of the human's pick",
        "moderation": "today's verdict is the human's (approved: clear)",
        "content": "today's class is the one of a QA sample the human accepted",
        "alt": "today's VLM text is the human's"
        if vlm
        else "the human kept the AI's text unchanged (no VLM call; --vlm re-describes)",
        "qa": "QA catches that pass today (the rest fail again)",
    }
    summary: dict[str, Any] = {}
    for name in REPLAYED:
        mine = [o for o in outcomes if o.case.component == name]
        judged = [o for o in mine if o.agrees is not None]
        agree = sum(bool(o.agrees) for o in judged)
        summary[name] = {
            "cases": len(mine),
            "replayed": len(judged),
            "agree": agree,
            "agreement": round(agree / len(judged), 4) if judged else None,
            "errors": len(mine) - len(judged),
            "means": notes[name],
        }
        if name == "qa":
            summary[name]["fail_again"] = len(judged) - agree
    return summary


def table(summary: dict[str, Any], out: TextIO) -> None:
    out.write(f"{'component':<12}{'cases':>7}{'replayed':>10}{'agree':>7}{'share':>9}  means\n")
    for name, row in summary.items():
        share = "n/a" if row["agreement"] is None else f"{row['agreement']:.1%}"
        out.write(
            f"{name:<12}{row['cases']:>7}{row['replayed']:>10}{row['agree']:>7}{share:>9}  "
            f"{row['means']}\n"
        )


def run(replayer: Replayer, cases: Sequence[Case], progress: bool | None) -> list[Outcome]:
    """Each case in turn, with a progress bar on a terminal (``progress=None``)."""
    bar = tqdm(
        cases, desc="replay", unit="case", disable=None if progress is None else not progress
    )
    return [replayer.replay(case) for case in bar]


def report(outcomes: Sequence[Outcome], summary: dict[str, Any], vlm: bool) -> dict[str, Any]:
    return {
        "created": time.time(),
        "vlm": vlm,
        "summary": summary,
        "cases": [
            {**asdict(o.case), "agrees": o.agrees, "today": o.today, "error": o.error}
            for o in outcomes
        ],
    }


def write(path: Path | None, body: dict[str, Any]) -> Path | None:
    text = json.dumps(body, indent=1, sort_keys=True)
    if path is None:
        return None
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + "\n", encoding="utf-8")
    return path


def sync_reader(source: Any, max_bytes: int) -> Callable[[str], bytes]:
    """A blocking reader over the (async) sources, for the replay's one thread."""
    loop = asyncio.new_event_loop()

    def read(path: str) -> bytes:
        async def fetch() -> bytes:
            ref = await source.locate(canonical_path(path))
            return bytes(await source.read(ref, max_bytes))

        return loop.run_until_complete(fetch())

    read.loop = loop  # type: ignore[attr-defined]
    return read


def variant_renderer(settings: Any, default_crop: str) -> Callable[[bytes, str], tuple[bytes, Any]]:
    """Render a QA variant (``canonical query`` or ``query|accept key``) as the server did."""
    from proxy.processing.pipeline import render

    def draw(blob: bytes, variant: str) -> tuple[bytes, Any]:
        query, _, key = variant.partition("|")
        accept = parse_accept(",".join(f"image/{fmt}" for fmt in key.split(",") if fmt))
        params = parse_params(query, default_crop=default_crop)  # type: ignore[arg-type]
        deadline = time.monotonic() + 60
        rendered = render(blob, params, accept, settings, deadline=deadline)
        return rendered.body, rendered

    return draw


def say(text: str) -> None:
    print(f"loupe: {text}", file=sys.stderr)
