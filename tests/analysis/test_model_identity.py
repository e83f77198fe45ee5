"""AI results are keyed by what produced them: the analysis cache by the code version and
every model's sha256, remembered q=auto decisions by the predictor's sha256."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from proxy.analysis.analyzer import Analyzer
from proxy.detectors.faces import FaceDetector
from proxy.fingerprint import PhashMemo
from proxy.manifest import load
from proxy.quality.decisions import QualityDecisions


def _without(tmp_path: Path, *names: str) -> Analyzer:
    """An analyzer whose manifest sends ``names`` to a file that does not exist."""
    entries = load()
    manifest = {
        name: replace(entry, file=f"absent-{entry.file}") if name in names else entry
        for name, entry in entries.items()
    }
    analyzer = Analyzer(tmp_path / "models", tmp_path / "analysis", PhashMemo())
    analyzer.faces = FaceDetector(tmp_path / "models", manifest=manifest)
    return analyzer


def test_an_analysis_made_without_a_model_is_redone_once_it_is_there(
    tmp_path: Path, data_root: Path
) -> None:
    blob = (data_root / "kodak" / "kodim18.png").read_bytes()  # one face
    blind = _without(tmp_path, "yunet")
    first = blind.analyse(blob)
    blind.close()
    assert first.faces == () and "faces" in first.unavailable
    assert "yunet" not in {model.name for model in first.models}

    seeing = Analyzer(tmp_path / "models", tmp_path / "analysis", PhashMemo())  # same cache
    assert seeing.identity != blind.identity
    second = seeing.analyse(blob)
    seeing.close()
    assert len(second.faces) == 1 and second.unavailable == {}
    used = {model.name: model.sha256 for model in second.models}
    assert used["yunet"] == load()["yunet"].sha256 and "u2netp" in used


def test_the_same_models_reuse_the_cached_analysis(tmp_path: Path, data_root: Path) -> None:
    blob = (data_root / "kodak" / "kodim18.png").read_bytes()
    first = Analyzer(tmp_path / "models", tmp_path / "analysis", PhashMemo())
    found = first.analyse(blob)
    first.close()
    again = Analyzer(tmp_path / "models", tmp_path / "analysis", PhashMemo())
    assert again.identity == first.identity
    assert again.cached(found.phash) == found
    again.close()


def test_reasons_never_carry_paths(tmp_path: Path, data_root: Path) -> None:
    blind = _without(tmp_path, "yunet")
    found = blind.analyse((data_root / "kodak" / "kodim18.png").read_bytes())
    blind.close()
    assert found.unavailable == {"faces": "model yunet missing"}
    assert "/" not in str(found.to_dict()["unavailable"])


def test_remembered_decisions_depend_on_the_predictor() -> None:
    one = QualityDecisions.key("abcd", "jpeg", 240_000, "general", "a" * 64)
    other = QualityDecisions.key("abcd", "jpeg", 240_000, "general", "b" * 64)
    none = QualityDecisions.key("abcd", "jpeg", 240_000, "general")
    assert len({one, other, none}) == 3
