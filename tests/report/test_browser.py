"""Both reports in a real browser (headless Chromium): they load without errors, the verdict
card is on the first screen, and every picture decodes."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch

from lightning_dataprops import names
from lightning_dataprops.data import load_source, sample_dataset
from lightning_dataprops.dataset_report import measure_dataset
from lightning_dataprops.findings import ForecastFinding, KCurveFinding, SharpPairsFinding
from lightning_dataprops.findings.dataset_page import write_dataset_report
from lightning_dataprops.findings.render import figure_to_png
from lightning_dataprops.findings.run_record import RunRecord
from lightning_dataprops.findings.run_report import write_run_report
from lightning_dataprops.functional import label_sharpness
from lightning_dataprops.functional.intrinsic_dimension import mle_k_curve
from tests.report.browser import CHROMIUM, HEIGHT, render_in_browser

pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no Chromium: apt-get install -y chromium (CI installs it)"
)


def _check(seen: dict[str, object], pictures: int) -> None:
    assert seen["errors"] == [], seen["errors"]
    _, screen = seen["viewport"]  # type: ignore[misc]
    assert 500 < screen <= HEIGHT
    top, bottom, _ = seen["verdict"]  # type: ignore[misc]
    assert 0 < top < bottom <= screen, "the verdict must be on the first screen"
    images = seen["images"]
    assert len(images) >= pictures  # type: ignore[arg-type]
    for alt, width, height, complete in images:  # type: ignore[union-attr]
        assert complete and width > 100 and height > 100, alt


@pytest.mark.slow
def test_dataset_report_in_chromium(tmp_path: Path) -> None:
    data = load_source(None)  # the digits: always there
    sample = sample_dataset(data.inputs, data.targets, max_samples=500, seed=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = measure_dataset(sample, k=10)
    curve = KCurveFinding(*mle_k_curve(sample.inputs, (5, 10, 20)), k_default=10)
    path = write_dataset_report(
        tmp_path / "dataset.html", report, sample, description="digits", k_curve=curve
    )
    seen = render_in_browser(path, tmp_path)
    _check(seen, pictures=4)
    assert "natural images" in seen["verdict"][2]  # type: ignore[index]


def test_run_report_in_chromium(tmp_path: Path) -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(60, 1, 8, 8, generator=g)
    y = torch.arange(60) % 2
    pairs = SharpPairsFinding.from_label_sharpness(label_sharpness(x, y, top_pairs=3), x)
    record = RunRecord("CSV", "synthetic")
    record.images["sharpest_pairs"] = figure_to_png(pairs.figure())  # type: ignore[arg-type]
    forecast = ForecastFinding(n_train=60, d_data=9.0, observed=((60, 0.5),))
    record.images["forecast"] = figure_to_png(forecast.figure())  # type: ignore[arg-type]
    record.texts["sharp_labels"] = "## Sharp labels in the training set\n\nK_F(0.5) is high."
    record.add_scalar(names.K_F_RATIO, 1.3, step=0, epoch=0)
    for epoch in range(3):
        record.add_scalar(names.d_repr("fc"), 9.0 - epoch, step=epoch, epoch=epoch)
        record.add_scalar(
            names.adversarial("fgsm", "loss_increase"), 0.1 * epoch, step=epoch, epoch=epoch
        )
        record.add_scalar(names.OVERHEAD_SECONDS, 1.0 + epoch, step=epoch, epoch=epoch)
        record.add_scalar("val_loss", 1.0 / (1 + epoch), step=epoch, epoch=epoch)
    path = write_run_report(tmp_path / "run.html", record)
    seen = render_in_browser(path, tmp_path)
    _check(seen, pictures=5)
    assert "Sharp labels in the training set" in seen["verdict"][2]  # type: ignore[index]
