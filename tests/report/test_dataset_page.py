"""The dataset report leads with its answer: verdict card first, the reference charts, the pair
gallery with class names, the two K_F numbers defined, no API names in its text."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch

from lightning_dataprops.data import sample_dataset
from lightning_dataprops.dataset_report import measure_dataset
from lightning_dataprops.findings.dataset_page import K_F_TERMS, write_dataset_report
from tests.report.pages import decoded, position, read_page

API_NAMES = ("SharpnessCheck", ".pairs", ".conflicts", "W&B table", "check_label_sharpness")


def _report(x: torch.Tensor, y: torch.Tensor, n: int, tmp_path: Path, **options: object) -> Path:
    sample = sample_dataset(x, y, max_samples=n, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = measure_dataset(sample, k=20, top_pairs=6)
    return write_dataset_report(tmp_path / "r.html", report, sample, **options)  # type: ignore[arg-type]


def test_pneumonia_report_leads_with_the_sharp_verdict_and_shows_where_it_stands(
    pneumonia: tuple[torch.Tensor, torch.Tensor], tmp_path: Path
) -> None:
    from lightning_dataprops.findings import KCurveFinding
    from lightning_dataprops.functional.intrinsic_dimension import mle_k_curve

    x, y = pneumonia
    sample = sample_dataset(x, y, max_samples=1000, seed=0)
    curve = KCurveFinding(*mle_k_curve(sample.inputs, (10, 20, 30)), k_default=20)
    path = _report(
        x,
        y,
        1000,
        tmp_path,
        description="PneumoniaMNIST",
        class_names=("normal", "pneumonia"),
        k_curve=curve,
    )
    page = read_page(path)
    words = page.words
    assert page.external == []
    # The verdict, with its factor against the natural maximum, in the first 15% of the text.
    assert position(words, "Sharp labels:") < 0.15
    assert position(words, "x the sharpest natural-image sample") < 0.15
    assert position(words, "What to do") < 0.15
    # At least four decodable pictures, the reference charts among them.
    assert len(page.images) >= 4
    assert all(min(decoded(src).size) > 150 for src in page.images)
    assert "K_F(0.5) against the natural-image references" in page.alts
    assert "d_data against known datasets" in page.alts
    # Class names, class counts and the two K_F numbers named and defined.
    assert "normal" in words and "pneumonia" in words
    counts = torch.bincount(sample.targets).tolist()
    assert f"normal ({counts[0]:,})" in words and f"pneumonia ({counts[1]:,})" in words
    for term, definition in K_F_TERMS:
        assert term in words and " ".join(definition.split()) in words
    for name in API_NAMES:
        assert name not in words, f"the page tells a command-line user about {name}"


def test_natural_digits_report_says_not_sharp(
    mnist: tuple[torch.Tensor, torch.Tensor], tmp_path: Path
) -> None:
    x, y = mnist
    keep = (y == 3) | (y == 8)  # one of the reference tasks: it must not warn
    path = _report(x[keep], (y[keep] == 8).long(), 500, tmp_path, description="MNIST 3 vs 8")
    words = read_page(path).words
    assert position(words, "Labels no sharper than natural images") < 0.15
    assert "Sharp labels:" not in words


def test_report_without_labels_skips_the_check_and_says_why(tmp_path: Path) -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(200, 1, 6, 6, generator=g)
    sample = sample_dataset(x, None)
    report = measure_dataset(sample, k=10)
    path = write_dataset_report(tmp_path / "r.html", report, sample, description="no labels")
    page = read_page(path)
    assert "Sharp-label check not run" in page.words and "no labels" in page.words
    assert "d_data against known datasets" in page.alts  # d_data still placed


@pytest.mark.parametrize("key", ["class_names", "label_names", "classes"])
def test_npz_class_names_reach_the_loaded_data(tmp_path: Path, key: str) -> None:
    import numpy as np

    from lightning_dataprops.data import load_source

    path = tmp_path / "d.npz"
    np.savez(
        path, images=np.zeros((4, 5, 5), np.uint8), labels=np.arange(4) % 2, **{key: ["a", "b"]}
    )
    assert load_source(path).class_names == ("a", "b")


def test_class_names_that_do_not_cover_the_labels_are_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from lightning_dataprops.cli import main

    code = main(["measure", "--class-names", "zero,one", "--report", str(tmp_path / "r.html")])
    assert code == 2
    error = capsys.readouterr().err
    assert "2 class name(s)" in error and "0..9" in error
    assert not (tmp_path / "r.html").exists()
