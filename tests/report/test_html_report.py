"""The HTML report: self-contained, parseable, its images decodable, under 5 MB."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
import torch

from lightning_dataprops.findings import KCurveFinding
from lightning_dataprops.findings.html_report import write_properties_report
from lightning_dataprops.functional import dataset_properties, intrinsic_dimension
from tests.report.pages import decoded, read_page


def test_report_on_pneumoniamnist_with_a_conflict_and_a_duplicate(
    pneumonia: tuple[torch.Tensor, torch.Tensor], tmp_path: Path
) -> None:
    x, y = pneumonia
    source = torch.arange(0, len(x), 6)[:600]  # a subsample: positions differ from indices
    inputs, targets = x[source].clone(), y[source].clone()
    inputs[10] = inputs[11]  # identical inputs ...
    targets[10], targets[11] = 0, 1  # ... with different labels: a label conflict
    inputs[20] = inputs[21]
    targets[20] = targets[21]  # a plain duplicate
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        props = dataset_properties(inputs, targets, k=20, top_pairs=6)
    ks = (10, 20, 30)
    curve = KCurveFinding(ks, tuple(intrinsic_dimension(inputs, k=k).value for k in ks), 20)
    path = write_properties_report(
        tmp_path / "report.html",
        props,
        inputs=inputs,
        description="PneumoniaMNIST train, every 6th image",
        index_map=source.tolist(),
        k_curve=curve,
        sharpness_stats={"K_F (reference protocol)": 0.52},
        verdict="K_F is above the natural-image band.",
        references=["Konz & Mazurowski, ICLR 2024"],
    )
    assert path.stat().st_size < 5 * 1024 * 1024
    page = read_page(path)
    assert page.external == []
    assert len(page.images) == 2  # the k-curve and the pairs
    sizes = [decoded(src).size for src in page.images]
    assert all(width > 200 and height > 200 for width, height in sizes)
    text = " ".join(page.text)
    conflict = f"{int(source[10])} {int(source[11])}"  # dataset indices, not positions
    assert "label conflict" in text and conflict in " ".join(text.split())
    assert str([int(source[20]), int(source[21])]) in text  # the duplicate group
    assert "K_F is above the natural-image band." in text
    assert f"{curve.values[1]:.4g}" in text


def test_report_of_feature_vectors_has_tables_but_no_pair_images(tmp_path: Path) -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(300, 6, generator=g)
    props = dataset_properties(x, (x[:, 0] > 0).long(), k=10, top_pairs=3)
    path = write_properties_report(tmp_path / "r.html", props, inputs=x, description="vectors")
    page = read_page(path)
    assert page.images == []
    pair = props.label_sharpness_result.pairs[0]  # type: ignore[union-attr]
    assert f"{pair.distance:.4g}" in " ".join(page.text)


def test_report_without_matplotlib_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    for name in [name for name in sys.modules if name.split(".")[0] == "matplotlib"]:
        monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    g = torch.Generator().manual_seed(1)
    x = torch.rand(100, 1, 4, 4, generator=g)
    props = dataset_properties(x, (x.mean(dim=(1, 2, 3)) > 0.5).long(), k=5, top_pairs=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        path = write_properties_report(tmp_path / "r.html", props, inputs=x, description="d")
    text = path.read_text()
    assert "<img" not in text and "install matplotlib" in text
