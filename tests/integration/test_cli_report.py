"""End to end: ``dataprops measure DATA --report r.html`` on PneumoniaMNIST, in a subprocess."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch

from tests.report.pages import decoded, position, read_page


@pytest.mark.slow
def test_measure_report_on_pneumoniamnist_from_the_command_line(
    pneumonia: tuple[torch.Tensor, torch.Tensor], tmp_path: Path
) -> None:
    import os
    import subprocess
    import sys

    from lightning_dataprops.functional import label_sharpness

    source = Path(__file__).resolve().parents[2].parent / "shared/data/medmnist/pneumoniamnist.npz"
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "lightning_dataprops",
            "measure",
            str(source),
            "--report",
            "r.html",
            "--class-names",
            "normal,pneumonia",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(root)},
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Label sharpness K_F" in done.stdout  # the text report is still printed
    assert [p.name for p in tmp_path.iterdir()] == ["r.html"]  # one file, nothing beside it
    path = tmp_path / "r.html"
    assert path.stat().st_size < 5 * 1024 * 1024
    page = read_page(path)
    assert page.external == []
    # The two reference charts, the pair gallery and the k-curve (issue 19: at least four).
    assert len(page.images) >= 4
    assert all(min(decoded(src).size) > 200 for src in page.images)
    text = " ".join(" ".join(page.text).split())
    assert position(page.words, "Sharp labels:") < 0.15  # the verdict leads
    assert "1 (pneumonia)" in text and "0 (normal)" in text
    x, y = pneumonia
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        top = label_sharpness(x, y, top_pairs=1).pairs[0]
    assert f"{min(top.i, top.j)} {max(top.i, top.j)}" in text or f"{top.i} {top.j}" in text
    for expected in ("MLE estimate against k", "TwoNN", "K_F at quantile 0.5", "check: SHARP"):
        assert expected in text
    assert "References" in text and "Duplicates" in text
    from tests.report.browser import CHROMIUM, render_in_browser

    if CHROMIUM is not None:  # CI has it: the page renders, verdict first, pictures decoded
        seen = render_in_browser(path, tmp_path)
        assert seen["errors"] == []
        assert 0 < seen["verdict"][1] <= seen["viewport"][1]
        assert all(width > 100 for _, width, _, _ in seen["images"])
