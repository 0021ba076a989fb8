"""Smoke test of examples/reproduce_paper: the --quick configuration end to end.

It trains with Lightning and measures through callbacks, so it is also an end-to-end test of
measuring during a real (tiny, CPU) fit.
"""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGE = REPO_ROOT / "examples" / "reproduce_paper"
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
NEEDED = ("mnist5k.npz", "medmnist/breastmnist.npz")

HEADINGS = (
    "## Run",
    "## Summary",
    "## 1. Scaling of the test loss with N",
    "## 2. Label sharpness by domain",
    "## 3. Label sharpness and adversarial fragility",
    "## 4. Representation ID versus data ID",
    "## 5. The scaling constant C",
)
FIGURES = (
    "reproduction_loss_vs_n.png",
    "reproduction_label_sharpness.png",
    "reproduction_kf_vs_fgsm.png",
    "reproduction_repr_vs_data_id.png",
    "reproduction_calibration.png",
)
COLUMNS = {
    "task",
    "dataset",
    "domain",
    "n_train",
    "seed",
    "test_loss",
    "test_acc",
    "d_data",
    "label_sharpness",
    "d_repr",
    "fgsm_loss_increase",
}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _env() -> dict[str, str]:
    """This checkout's package first, whichever copy is installed."""
    path = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path}


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    missing = [name for name in NEEDED if not (SHARED_DATA / name).exists()]
    if missing:
        pytest.skip(
            f"real data {', '.join(missing)} absent from {SHARED_DATA} (it lives beside the "
            "repository in ../shared/data)"
        )
    out = tmp_path_factory.mktemp("reproduction")
    completed = subprocess.run(
        [sys.executable, "-m", "examples.reproduce_paper", "--quick", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO_ROOT,
        env=_env(),
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    return out, completed.stdout


def test_report_has_sections_and_numbers(quick_run: tuple[Path, str]) -> None:
    out, _ = quick_run
    text = (out / "reproduction.md").read_text()
    for heading in HEADINGS:
        assert heading in text, heading
    assert "--quick" in text  # marked as a smoke run
    assert "MNIST 3v8" in text and "BreastMNIST" in text
    assert re.search(r"\*\*C = \d+(\.\d+)?(e[-+]?\d+)?\*\*", text)
    assert re.search(r"Pearson r between K_F .*= \*\*-?\d", text)
    assert "0.70" in text  # the paper's number, for comparison
    assert re.search(r"\| MNIST 3v8 \| natural \| 100, 200 \| 4 \| -?\d", text)
    for figure in FIGURES:
        assert f"figures/{figure}" in text


def test_figures_are_png(quick_run: tuple[Path, str]) -> None:
    out, _ = quick_run
    for figure in FIGURES:
        data = (out / "figures" / figure).read_bytes()
        assert data.startswith(PNG_SIGNATURE), figure
        assert len(data) > 5000, figure


def test_csv_columns_and_rows(quick_run: tuple[Path, str]) -> None:
    out, _ = quick_run
    with open(out / "figures" / "reproduction_runs.csv", newline="") as handle:
        reader = csv.DictReader(handle)
        assert set(reader.fieldnames or []) >= COLUMNS
        rows = list(reader)
    assert len(rows) == 8  # 2 tasks x 2 sizes x 2 seeds
    assert {row["domain"] for row in rows} == {"natural", "medical"}
    for row in rows:
        assert float(row["test_loss"]) > 0
        assert float(row["label_sharpness"]) > 0
        assert float(row["d_data"]) > 0 and float(row["d_repr"]) > 0
        # Two independent paths to the clean test loss: the model's validation loop and the
        # robustness measurement's clean pass.
        assert float(row["test_loss"]) == pytest.approx(float(row["fgsm_clean_loss"]), rel=1e-5)


def test_missing_data_dir_fails_clearly(tmp_path: Path) -> None:
    # Run as a folder (`python examples/reproduce_paper`), the other documented form.
    completed = subprocess.run(
        [
            sys.executable,
            str(PACKAGE),
            "--quick",
            "--out",
            str(tmp_path),
            "--data-dir",
            str(tmp_path / "absent"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=_env(),
    )
    assert completed.returncode != 0
    assert "--data-dir" in completed.stderr
