"""End-to-end test of examples/reproduce_paper: the --quick configuration, real data, real fits.

It trains with Lightning and measures with the product's callbacks (DatasetPropertiesMonitor,
RepresentationIDMonitor, RobustnessMonitor), on grayscale digits, RGB photos (CIFAR-10) and a
medical dataset, so it is also the largest end-to-end test of those callbacks. Values are checked
against independent paths: brute-force distances computed here, and the model's own validation
loop.
"""

from __future__ import annotations

import csv
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from lightning_dataprops import sample_dataset
from lightning_dataprops.references import to_reference_protocol

pytestmark = pytest.mark.slow  # one quick paper reproduction for the whole module

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGE = REPO_ROOT / "examples" / "reproduce_paper"
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"
NEEDED = ("mnist5k.npz", "cifar10/cifar10.npz", "medmnist/breastmnist.npz")

HEADINGS = (
    "## Run",
    "## Summary",
    "### Where the claims hold once natural RGB photos are included",
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
    "kf_protocol",
    "kf_median_protocol",
    "d_repr",
    "fgsm_clean_loss",
    "fgsm_loss_increase",
}
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
Rows = list[dict[str, str]]


def _env() -> dict[str, str]:
    """This checkout's package first, whichever copy is installed."""
    path = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path}


def _reproduce(*args: str, timeout: int = 150) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "examples.reproduce_paper", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO_ROOT,
        env=_env(),
    )


def _rows(out: Path) -> Rows:
    with open(out / "figures" / "reproduction_runs.csv", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Rows]:
    missing = [name for name in NEEDED if not (SHARED_DATA / name).exists()]
    if missing:
        pytest.skip(
            f"real data {', '.join(missing)} absent from {SHARED_DATA} (it lives beside the "
            "repository in ../shared/data)"
        )
    out = tmp_path_factory.mktemp("reproduction")
    completed = _reproduce("--quick", "--out", str(out))
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    return out, _rows(out)


def test_report_has_sections_numbers_and_the_photos(quick_run: tuple[Path, Rows]) -> None:
    out, _ = quick_run
    text = (out / "reproduction.md").read_text()
    for heading in HEADINGS:
        assert heading in text, heading
    assert "--quick" in text  # marked as a smoke run
    assert "MNIST 3v8" in text and "BreastMNIST" in text
    assert "CIFAR-10 0v2 (airplane/bird)" in text and "32x32 RGB" in text
    assert "| 28x28 grayscale tasks only | with the CIFAR-10 RGB photos |" in text
    assert re.search(r"\*\*C = \d+(\.\d+)?(e[-+]?\d+)?\*\*", text)
    assert re.search(r"Pearson r between exact K_F .*= \*\*-?\d", text)
    assert re.search(r"\| K_F\(0\.5\), 28x28 grayscale \| all tasks \(12\) \| -?\d", text)
    assert "0.70" in text  # the paper's number, for comparison
    assert re.search(r"\| MNIST 3v8 \| natural \| 28x28 grayscale \| 100, 200 \| 4 \| -?\d", text)
    assert "DataPropsMonitor" not in text  # retired: the snippet uses the callbacks
    assert "default_callbacks(scaling_constant=" in text
    for figure in FIGURES:
        assert f"figures/{figure}" in text


def test_figures_are_png(quick_run: tuple[Path, Rows]) -> None:
    out, _ = quick_run
    for figure in FIGURES:
        data = (out / "figures" / figure).read_bytes()
        assert data.startswith(PNG_SIGNATURE), figure
        assert len(data) > 5000, figure


def test_csv_rows_hold_the_callbacks_measurements(quick_run: tuple[Path, Rows]) -> None:
    out, rows = quick_run
    with open(out / "figures" / "reproduction_runs.csv", newline="") as handle:
        assert set(csv.DictReader(handle).fieldnames or []) >= COLUMNS
    assert len(rows) == 12  # 3 tasks x 2 sizes x 2 seeds
    assert {row["task"] for row in rows} == {"mnist-3v8", "cifar-0v2", "breast"}
    for row in rows:
        values = {key: float(row[key]) for key in COLUMNS - {"task", "dataset", "domain"}}
        assert values["test_loss"] > 0 and values["d_data"] > 0 and values["d_repr"] > 0
        # Two independent paths to the clean test loss: the model's validation loop and
        # RobustnessMonitor's clean pass over the same test set, after the same last step.
        assert values["test_loss"] == pytest.approx(values["fgsm_clean_loss"], rel=1e-5)
        assert values["fgsm_loss_increase"] > 0  # FGSM raises the loss
        # The median sharpness is at most the maximum (1/median distance <= 1/min distance).
        assert 0 < values["kf_median_protocol"] <= values["kf_protocol"]
        # d_repr (RepresentationIDMonitor) and d_data (DatasetPropertiesMonitor) are measured
        # on the same training images: the paper's d_repr <= d_data holds in every run here.
        assert values["d_repr"] < values["d_data"]
        if row["task"] == "mnist-3v8":
            # Digits span [0, 1] in every subset, so the common preprocessing leaves them as
            # they are: the callback's K_F equals the functional value on the protocol images.
            assert values["label_sharpness"] == pytest.approx(values["kf_protocol"], rel=1e-5)


def test_grayscale_scans_rescaled_by_their_subsets_range(quick_run: tuple[Path, Rows]) -> None:
    # The common preprocessing min-max scales each subset: for 28x28 grayscale images it only
    # divides every distance by (max - min), so K_F(common) = K_F(as trained) * (max - min).
    _, rows = quick_run
    with np.load(SHARED_DATA / "medmnist" / "breastmnist.npz") as archive:
        x = torch.from_numpy(archive["train_images"]).float()[:, None] / 255
        y = torch.from_numpy(archive["train_labels"].ravel().astype(np.int64))
    spans = []
    for row in rows:
        if row["task"] != "breast":
            continue
        sample = sample_dataset(x, y, max_samples=int(row["n_train"]), seed=int(row["seed"]))
        span = float(sample.inputs.max() - sample.inputs.min())
        spans.append(span)
        expected = float(row["label_sharpness"]) * span
        assert float(row["kf_protocol"]) == pytest.approx(expected, rel=1e-5)
    assert len(spans) == 4 and min(spans) < 1  # some BreastMNIST subsets do not span [0, 1]


def _nearest_other(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Brute force: each point's distance to its nearest differently-labelled point (float64)."""
    flat = x.reshape(len(x), -1).double()
    distances = torch.cdist(flat, flat)
    distances[y[:, None] == y[None, :]] = float("inf")
    return distances.min(dim=1).values


def test_rgb_photo_sharpness_against_brute_force(quick_run: tuple[Path, Rows]) -> None:
    _, rows = quick_run
    with np.load(SHARED_DATA / "cifar10" / "cifar10.npz") as archive:
        images, labels = archive["train_images"], archive["train_labels"].ravel()
    keep = (labels == 0) | (labels == 2)  # airplane vs bird
    x = torch.from_numpy(images[keep]).permute(0, 3, 1, 2).float() / 255
    y = torch.from_numpy((labels[keep] == 2).astype(np.int64))
    for row in rows:
        if row["task"] != "cifar-0v2":
            continue
        sample = sample_dataset(x, y, max_samples=int(row["n_train"]), seed=int(row["seed"]))
        assert sample.targets is not None
        # Exact K_F of the RGB inputs the model was trained on, measured by the callback.
        nearest = _nearest_other(sample.inputs, sample.targets)
        assert float(row["label_sharpness"]) == pytest.approx(1 / float(nearest.min()), rel=1e-4)
        # The median sharpness under the common 28x28 grayscale preprocessing.
        common = _nearest_other(to_reference_protocol(sample.inputs, "gray28"), sample.targets)
        median = float(np.median(common.numpy()))
        assert float(row["kf_median_protocol"]) == pytest.approx(1 / median, rel=1e-4)
        assert float(row["kf_protocol"]) == pytest.approx(1 / float(common.min()), rel=1e-4)


def test_report_rebuilt_from_the_csv_states_the_same_numbers(
    quick_run: tuple[Path, Rows], tmp_path: Path
) -> None:
    out, _ = quick_run
    csv_path = out / "figures" / "reproduction_runs.csv"
    completed = _reproduce("--quick", "--from-csv", str(csv_path), "--out", str(tmp_path))
    assert completed.returncode == 0, completed.stderr[-3000:]
    original, rebuilt = (out / "reproduction.md").read_text(), (tmp_path / "reproduction.md")
    text = rebuilt.read_text()
    assert "rebuilt from the runs' CSV" in text
    section = original.index("## Summary")
    assert text[text.index("## Summary") :] == original[section:]


def test_a_task_without_its_data_is_left_out_with_a_message(tmp_path: Path) -> None:
    mnist = SHARED_DATA / "mnist5k.npz"
    if not mnist.exists():
        pytest.skip(f"real data {mnist} absent (it lives beside the repository)")
    data = tmp_path / "data"
    data.mkdir()
    (data / "mnist5k.npz").symlink_to(mnist)
    completed = _reproduce(
        *("--tasks", "mnist-3v8", "cifar-0v2", "--sizes", "40", "--seeds", "0", "--steps", "5"),
        *("--data-dir", str(data), "--out", str(tmp_path / "out")),
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "left out: task cifar-0v2" in completed.stderr
    assert "cifar10.npz not found" in completed.stderr
    text = (tmp_path / "out" / "reproduction.md").read_text()
    assert "Left out, data absent: task cifar-0v2" in text
    assert [row["task"] for row in _rows(tmp_path / "out")] == ["mnist-3v8"]


@pytest.mark.slow
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
