"""Confidence thresholds from human decisions: what each confidence means, and (with
``calibration.apply``) the thresholds that reach the target precision, applied and logged."""

from __future__ import annotations

from typing import Any

from proxy.config import Config
from proxy.feedback.calibration import SETTINGS, calibrate, from_setting, to_setting
from proxy.sources.paths import EVERY_SOURCE, SourcePath
from proxy.stores import Store
from proxy.stores.base import Feedback


def _configured(config: Config, component: str) -> float:
    if component == "alt":
        return config.vlm.confidence_threshold
    return config.moderation.review_threshold


def calibrate_thresholds(store: Store, config: Config) -> dict[str, Any]:
    """The calibration report (``proxy.feedback.calibration.calibrate``) over the store's
    decisions; with ``calibration.apply`` each proposed threshold that differs from the
    current one replaces it and is logged as a decision. Blocking."""
    settings = {name: store.threshold(name) for name in SETTINGS}
    current: dict[str, float | None] = {"crop": None}
    for name in SETTINGS:
        value = settings[name]
        current[name] = from_setting(name, _configured(config, name) if value is None else value)
    population = {
        "alt": store.alt_confidences(),
        "moderation": [1.0 - score for score in store.nsfw_scores()],
    }
    events = store.feedback()
    report = calibrate(events, config.calibration, population, current)
    report["applied"] = []
    for name, entry in report["components"].items():
        entry["setting"] = SETTINGS.get(name)
        proposed = entry["threshold"]
        if not config.calibration.apply or name not in SETTINGS or proposed is None:
            continue
        if proposed == current[name]:
            continue
        before, after = to_setting(name, current[name] or 0.0), to_setting(name, proposed)
        reason = (
            f"{entry['precision']:.1%} of {entry['decisions_above']} human decisions at "
            f"confidence >= {proposed} kept the AI's output (target "
            f"{config.calibration.target_precision:.0%})"
        )
        log_entry = Feedback(
            review_id=None,
            path=SourcePath(EVERY_SOURCE),
            component="calibration",
            action="threshold",
            ai_output={"component": name, "setting": SETTINGS[name], "value": before},
            correction={"value": after},
            reason=reason,
            reviewer="calibration",
            seconds=None,
            context={"precision": entry["precision"], "decisions": entry["decisions_above"]},
        )
        store.set_threshold(name, after, _configured(config, name), log_entry)
        entry["current_threshold"] = proposed
        entry["current_auto_accept_rate"] = entry["auto_accept_rate"]
        report["applied"].append(
            {"component": name, "setting": SETTINGS[name], "from": before, "to": after}
        )
    return report
