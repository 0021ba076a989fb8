"""Tests for the ``dataprops`` command line (lightning_dataprops.cli) and its text report."""

from __future__ import annotations

import importlib.util
import json
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from lightning_dataprops.cli import main
from lightning_dataprops.data import load_digits_data, load_npz, sample_dataset
from lightning_dataprops.findings.text_report import format_report
from lightning_dataprops.functional import (
    DatasetProperties,
    LabelConflictWarning,
    dataset_properties,
    intrinsic_dimension,
)
from lightning_dataprops.references import check_label_sharpness

REPO_ROOT = Path(__file__).resolve().parents[2]
DATA_DIR = REPO_ROOT.parent / "shared" / "data"
PNEUMONIA = DATA_DIR / "medmnist" / "pneumoniamnist.npz"


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _cli_command() -> list[str]:
    """The installed console script, or the module run by this interpreter."""
    script = shutil.which("dataprops")
    return [script] if script else [sys.executable, "-m", "lightning_dataprops.cli"]


def _float(pattern: str, text: str) -> float:
    match = re.search(pattern, text, flags=re.MULTILINE)
    assert match is not None, f"{pattern!r} not found in report:\n{text}"
    return float(match.group(1))


def _lookup(document: dict[str, Any], dotted: str) -> Any:
    value: Any = document
    for key in dotted.split("."):
        assert isinstance(value, dict) and key in value, f"missing key {dotted!r}"
        value = value[key]
    return value


def _check_json_document(document: dict[str, Any]) -> None:
    for key in (
        "n",
        "input_shape",
        "d_data",
        "d_data_twonn",
        "K_F",
        "mle_result.value",
        "label_sharpness_result.pairs",
        "source",
        "elapsed_s",
    ):
        _lookup(document, key)
    assert document["elapsed_s"] >= 0


def _write_npz_with_conflict(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Random 6x6 uint8 images in two classes; images 0 and 1 are identical with other labels."""
    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, size=(120, 6, 6), dtype=np.uint8)
    images[1] = images[0]
    labels = np.arange(120) % 2
    np.savez(path, images=images, labels=labels)
    return images, labels


# ---------------------------------------------------------------------------- usage


def test_no_command_prints_help_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys)
    assert code == 2
    assert "usage: dataprops" in out + err and "measure" in out + err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    from importlib.metadata import version

    code, out, _ = _run(capsys, "--version")
    assert code == 0
    assert out.strip() == f"dataprops {version('lightning-dataprops')}"


def test_bad_option_value_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _run(capsys, "measure", "--k", "0")
    assert code == 2 and out == ""
    assert "--k" in err and "Traceback" not in err


# ---------------------------------------------------------------------------- text report


@pytest.fixture(scope="module")
def digits_props() -> DatasetProperties:
    data = load_digits_data()
    return dataset_properties(data.inputs, data.targets, k=20, top_pairs=5)


def test_measure_digits_report_matches_functional(
    capsys: pytest.CaptureFixture[str], digits_props: DatasetProperties
) -> None:
    code, out, err = _run(capsys, "measure", "--no-progress")
    assert code == 0, err
    assert err == ""  # no progress bar, no warnings
    assert "scikit-learn digits" in out
    assert re.search(r"^\s*samples \(n\)\s+1797$", out, flags=re.MULTILINE)
    assert re.search(r"^\s*input shape\s+\(1, 8, 8\)$", out, flags=re.MULTILINE)
    assert re.search(r"^\s*value range\s+\[0, 1\]$", out, flags=re.MULTILINE)
    props = digits_props
    mle = _float(r"^\s*MLE \(\w+\)\s+([\d.]+)", out)
    twonn = _float(r"^\s*TwoNN \(\w+\)\s+([\d.]+) ±", out)
    twonn_se = _float(r"^\s*TwoNN .* ± ([\d.]+) \(asymptotic stderr\)", out)
    k_f = _float(r"K_F = ([\d.]+)", out)
    assert mle == pytest.approx(props.d_data, abs=6e-4)
    assert twonn == pytest.approx(props.d_data_twonn, abs=6e-4)
    assert props.twonn_result.stderr is not None
    assert twonn_se == pytest.approx(props.twonn_result.stderr, abs=6e-4)
    assert props.K_F is not None
    assert k_f == pytest.approx(props.K_F, abs=6e-5)
    # The sharpest pairs, in order: rank, i, j, label_i, label_j, distance, sharpness.
    assert props.label_sharpness_result is not None
    row_pattern = r"^\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s+([\d.]+)\s+([\d.]+)$"
    rows = re.findall(row_pattern, out, flags=re.MULTILINE)
    assert len(rows) == 5
    for row, pair in zip(rows, props.label_sharpness_result.pairs, strict=True):
        assert (int(row[1]), int(row[2]), int(row[3]), int(row[4])) == (
            pair.i,
            pair.j,
            pair.label_i,
            pair.label_j,
        )
        assert float(row[5]) == pytest.approx(pair.distance, abs=6e-5)
    assert "Duplicates: none" in out and "Label conflicts: none" in out
    assert re.search(r"^Time: [\d.]+ s$", out, flags=re.MULTILINE)


def test_measure_subsample_bootstrap_reports_source_indices(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = _run(
        capsys,
        *("measure", "digits", "--max-samples", "400", "--seed", "1", "--bootstrap", "3"),
        *("--k", "10", "--top-pairs", "2", "--no-progress"),
    )
    assert code == 0, err
    data = load_digits_data()
    sample = sample_dataset(data.inputs, data.targets, max_samples=400, seed=1)
    props = dataset_properties(
        sample.inputs, sample.targets, k=10, top_pairs=2, n_bootstrap=3, seed=1
    )
    assert re.search(r"^\s*samples \(n\)\s+400$", out, flags=re.MULTILINE)
    assert "stratified sample of 400 (seed 1)" in out
    assert out.count("(bootstrap stderr, B=3)") == 2
    mle_se = _float(r"^\s*MLE .* ± ([\d.]+) \(bootstrap", out)
    assert props.mle_result.stderr is not None
    assert mle_se == pytest.approx(props.mle_result.stderr, abs=6e-4)
    assert props.label_sharpness_result is not None
    top = props.label_sharpness_result.pairs[0]
    source_i, source_j = int(sample.indices[top.i]), int(sample.indices[top.j])
    assert (source_i, source_j) != (top.i, top.j)  # the mapping is visible
    assert re.search(rf"^\s+1\s+{source_i}\s+{source_j}\s", out, flags=re.MULTILINE)
    # Those really are the source images at the reported distance.
    distance = torch.dist(data.inputs[source_i].double(), data.inputs[source_j].double())
    assert float(distance) == pytest.approx(top.distance, rel=1e-5)


def test_report_shows_label_conflicts(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "conflict.npz"
    _write_npz_with_conflict(path)
    code, out, err = _run(capsys, "measure", str(path), "--k", "5", "--no-progress")
    assert code == 0, err
    assert "LabelConflictWarning" not in err  # shown in the report instead
    assert "K_F = inf (label conflict" in out
    assert "Label conflicts: 1 pair(s)" in out and "0 (label 0) vs 1 (label 1)" in out
    assert re.search(r"^Duplicates: 1 duplicate sample\(s\) in 1 group\(s\).*\[0, 1\]$", out, re.M)


def test_format_report_without_labels() -> None:
    x = torch.rand(100, 4, generator=torch.Generator().manual_seed(0))
    text = format_report(dataset_properties(x, k=5), description="cube", elapsed=0.5)
    assert "K_F: n/a (it needs labels of at least 2 classes)" in text and "Time: 0.50 s" in text
    assert "value range" not in text and "Label conflicts" not in text


def test_a_value_without_stderr_names_the_option_that_gives_one() -> None:
    x = torch.rand(100, 4, generator=torch.Generator().manual_seed(0))
    text = format_report(dataset_properties(x, k=5), description="cube", elapsed=0.5)
    mle_line = next(line for line in text.splitlines() if line.lstrip().startswith("MLE"))
    assert "no stderr" in mle_line and "--bootstrap N" in mle_line


def test_progress_bar_on_a_tty_only(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    code, _, err = _run(capsys, "measure", "--max-samples", "300")
    assert code == 0 and "neighbours" in err
    code, _, err = _run(capsys, "measure", "--max-samples", "300", "--no-progress")
    assert code == 0 and err == ""
    code, _, err = _run(capsys, "measure", "--max-samples", "300", "--json")
    assert code == 0 and err == ""


# ---------------------------------------------------------------------------- JSON


def test_json_on_npz_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "conflict.npz"
    images, labels = _write_npz_with_conflict(path)
    code, out, err = _run(capsys, "measure", str(path), "--json", "--k", "5", "--top-pairs", "3")
    assert code == 0, err
    document = json.loads(out)  # the whole of stdout is one JSON document
    _check_json_document(document)
    assert document["n"] == 120 and document["input_shape"] == [1, 6, 6]
    assert document["source"] == str(path)
    x = torch.from_numpy(images.astype(np.float32) / 255.0)
    with pytest.warns(LabelConflictWarning):
        props = dataset_properties(x, torch.from_numpy(labels), k=5, top_pairs=3)
    assert document["d_data"] == pytest.approx(props.d_data, rel=1e-9)
    assert document["d_data_twonn"] == pytest.approx(props.d_data_twonn, rel=1e-9)
    sharpness = document["label_sharpness_result"]
    assert sharpness["value"] == "inf" and len(sharpness["pairs"]) == 3
    assert [(c["i"], c["j"]) for c in sharpness["conflicts"]] == [(0, 1)]
    assert document["duplicates"]["n_duplicates"] == 1


@pytest.mark.slow
def test_json_on_pneumoniamnist(capsys: pytest.CaptureFixture[str]) -> None:
    if not PNEUMONIA.exists():
        pytest.skip(f"real data {PNEUMONIA} is absent (it lives beside the repository)")
    code, out, err = _run(capsys, "measure", str(PNEUMONIA), "--json")
    assert code == 0, err
    document = json.loads(out)
    _check_json_document(document)
    assert document["n"] == 3882 and document["input_shape"] == [1, 28, 28]
    assert document["sample"]["indices"] is None
    data = load_npz(PNEUMONIA)
    props = dataset_properties(data.inputs, data.targets, k=20, top_pairs=5)
    assert document["d_data"] == pytest.approx(props.d_data, rel=1e-9)
    assert document["d_data_twonn"] == pytest.approx(props.d_data_twonn, rel=1e-9)
    assert props.K_F is not None
    assert document["K_F"] == pytest.approx(props.K_F, rel=1e-9)
    # Medical images are sharp: K_F around 0.5 at 28x28 in [0, 1] (DESIGN.md).
    assert 0.3 < document["K_F"] < 1.0
    assert len(document["label_sharpness_result"]["pairs"]) == 5
    assert document["duplicates"]["n_duplicates"] == props.duplicates.n_duplicates > 0
    # The k-curve: the MLE at each k, the same as intrinsic_dimension at that k.
    curve = document["k_curve"]
    assert curve["ks"] == [5, 10, 15, 20, 30, 40] and curve["k_default"] == 20
    assert curve["values"][3] == pytest.approx(props.d_data, rel=1e-9)
    mle_10 = intrinsic_dimension(data.inputs, k=10).value
    assert curve["values"][1] == pytest.approx(mle_10, rel=1e-9)
    # The same verdict as the fit-start callback, and as check_label_sharpness on the whole
    # data: the check on the seeded, stratified 1000-item subsample.
    check = check_label_sharpness(data.inputs, data.targets)
    verdict = document["sharp_label_check"]
    assert verdict["is_sharp"] is True and check.is_sharp
    assert verdict["value"] == pytest.approx(check.value, rel=1e-9)
    assert verdict["explanation"] == check.explain()
    assert check.n == 1000 and check.n_given == 3882 and "subsample of the 3882" in check.explain()
    sample = sample_dataset(data.inputs, data.targets, max_samples=1000, seed=0)
    assert sample.targets is not None and check.positions == tuple(sample.indices.tolist())
    drawn = check_label_sharpness(sample.inputs, sample.targets)
    assert drawn.value == pytest.approx(check.value, rel=1e-9) and drawn.positions is None
    everything = check_label_sharpness(data.inputs, data.targets, max_samples=None)
    assert everything.n == 3882 and everything.value != pytest.approx(check.value, rel=1e-3)


def test_report_prints_the_sharp_label_verdict(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _run(capsys, "measure", "--no-progress")
    assert code == 0, err
    flat = " ".join(out.split())  # paragraphs are wrapped at 100 columns for a terminal
    paragraph = out[out.index("Sharp-label check") :].splitlines()
    assert len(paragraph) > 3 and max(len(line) for line in paragraph) <= 100
    assert "Sharp-label check, at the references' sample size and image format (the gray28" in flat
    assert ": not sharp. Median label sharpness K_F(0.5) =" in flat
    assert (
        "measured on 1000 samples (a seeded class-stratified subsample of the 1797 given)" in flat
    )
    generator = np.random.default_rng(0)
    ages = tmp_path / "ages.npz"
    np.savez(ages, images=generator.random((120, 12, 12)), labels=generator.random(120) * 60)
    code, out, err = _run(capsys, "measure", str(ages), "--no-progress", "--targets", "regression")
    assert code == 0, err
    assert "Sharp-label check: skipped (regression targets" in out


@pytest.mark.slow
def test_console_script_json() -> None:
    result = subprocess.run(
        [*_cli_command(), "measure", "--json", "--max-samples", "300"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    _check_json_document(document)
    assert document["n"] == 300 and document["input_shape"] == [1, 8, 8]
    assert document["sample"]["n_source"] == 1797 and len(document["sample"]["indices"]) == 300
    assert math.isfinite(document["K_F"])


@pytest.mark.skipif(
    importlib.util.find_spec("lightning_dataprops.__main__") is None,
    reason="lightning_dataprops/__main__.py is not there yet",
)
@pytest.mark.slow
def test_python_dash_m_version() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "lightning_dataprops", "--version"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("dataprops ")


# ---------------------------------------------------------------------------- user errors


def _bad_sources(tmp_path: Path) -> dict[str, tuple[Path, str]]:
    text = tmp_path / "text.npz"
    text.write_text("this is not an archive\n")
    wrong = tmp_path / "wrong_keys.npz"
    np.savez(wrong, foo=np.zeros((3, 4, 4)), bar=np.arange(3))
    empty = tmp_path / "empty.npz"
    empty.write_bytes(b"")
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"PK\x03\x04 not really a zip")
    unsupported = tmp_path / "data.csv"
    unsupported.write_text("1,2,3\n")
    return {
        "missing": (tmp_path / "nope" / "missing.npz", "not found"),
        "text_as_npz": (text, "not a valid .npz"),
        "wrong_keys": (wrong, "keys found: foo"),
        "empty": (empty, "not a valid .npz"),
        "corrupt": (corrupt, "not a valid .npz"),
        "unsupported": (unsupported, "Unsupported"),
    }


@pytest.mark.parametrize(
    "case", ["missing", "text_as_npz", "wrong_keys", "empty", "corrupt", "unsupported"]
)
def test_bad_source_is_one_line_error(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path, fragment = _bad_sources(tmp_path)[case]
    code, out, err = _run(capsys, "measure", str(path), "--no-progress")
    assert code == 2 and out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("dataprops: error: ") and fragment in lines[0]
    assert "Traceback" not in err


def test_bad_input_errors_in_process(capsys: pytest.CaptureFixture[str]) -> None:
    # A split the source lacks, k above the sample size, and CUDA where there is none.
    cases = [
        ["measure", "--split", "test"],
        ["measure", "--max-samples", "50", "--k", "60"],
    ]
    if not torch.cuda.is_available():
        cases.append(["measure", "--device", "cuda"])
    for argv in cases:
        code, out, err = _run(capsys, *argv)
        assert code == 2 and out == "", argv
        assert len(err.splitlines()) == 1 and err.startswith("dataprops: error: "), err


@pytest.mark.slow
def test_bad_source_subprocess_has_no_traceback(tmp_path: Path) -> None:
    text = tmp_path / "text.npz"
    text.write_text("not an npz\n")
    result = subprocess.run(
        [*_cli_command(), "measure", str(text)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith("dataprops: error: ") and len(result.stderr.splitlines()) == 1
    assert "Traceback" not in result.stderr


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu(capsys: pytest.CaptureFixture[str]) -> None:
    results = []
    for device in ("cpu", "cuda"):
        code, out, err = _run(capsys, "measure", "--json", "--device", device)
        assert code == 0, err
        results.append(json.loads(out))
    cpu, cuda = results
    assert cuda["n"] == cpu["n"] == 1797
    for key in ("d_data", "d_data_twonn", "K_F"):
        assert cuda[key] == pytest.approx(cpu[key], rel=1e-4)
