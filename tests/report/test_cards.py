"""Notebook cards: every result a user holds shows its key numbers as HTML, through one helper,
and gives plain values for pandas."""

from __future__ import annotations

import json
import math
import warnings

import pytest
import torch

from lightning_dataprops import (
    check_label_sharpness,
    dataset_properties,
    measure_dataset,
    sample_dataset,
)
from lightning_dataprops.findings.cards import result_card
from lightning_dataprops.findings.format import format_number
from lightning_dataprops.functional import forecast, intrinsic_dimension, label_sharpness
from tests.report.pages import Page, decoded


def _page(html: str) -> Page:
    page = Page()
    page.feed(html)
    return page


@pytest.fixture(scope="module")
def images() -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.rand(300, 1, 8, 8, generator=g)
    y = (x.mean(dim=(1, 2, 3)) > 0.5).long()
    x[1], y[0], y[1] = x[0], 0, 1  # one label conflict
    return x, y


def test_each_result_shows_its_key_numbers(images: tuple[torch.Tensor, torch.Tensor]) -> None:
    x, y = images
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        props = dataset_properties(x, y, k=10)
        check = check_label_sharpness(x, y)
        sharpness = label_sharpness(x, y)
    twonn = intrinsic_dimension(x, "twonn")
    prediction = forecast(0.5, 300, props.d_data)
    expected: list[tuple[object, list[str]]] = [
        (props, [format_number(props.d_data), format_number(props.d_data_twonn), "inf"]),
        (check, [format_number(check.value), "label conflict"]),
        (twonn, [format_number(twonn.value), format_number(twonn.ci95[0])]),  # type: ignore[index]
        (sharpness, ["inf", "1 label conflict(s)"]),
        (prediction, [format_number(prediction.loss_ratio_2x_data)]),
    ]
    for result, numbers in expected:
        html = result._repr_html_()  # type: ignore[attr-defined]
        assert html == result_card(result)  # one helper
        text = _page(html).words
        for number in numbers:
            assert number in text, (type(result).__name__, number)
    # Small pictures where they are cheap: the check on its band, the forecast curve.
    for result in (check, prediction):
        sources = _page(result._repr_html_()).images  # type: ignore[attr-defined]
        assert len(sources) == 1 and min(decoded(sources[0]).size) > 100


def test_to_dict_gives_plain_values(images: tuple[torch.Tensor, torch.Tensor]) -> None:
    x, y = images
    prediction = forecast(0.5, 300, 12.0, constant=2.0)
    row = prediction.to_dict()
    assert row["n_train"] == 300 and row["test_loss"] == pytest.approx(2.0 * 0.5 * 300 ** (-1 / 12))
    assert json.loads(json.dumps(row)) == row
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check = check_label_sharpness(x, y)
    document = json.loads(json.dumps(check.to_dict(), allow_nan=False))
    assert document["value"] == pytest.approx(check.value)
    assert not math.isfinite(check.K_F) and document["K_F"] == "inf"


def test_other_objects_have_no_card() -> None:
    with pytest.raises(TypeError, match="no card for int"):
        result_card(3)


def test_measure_dataset_report_shows_properties_and_check_cards(
    pneumonia: tuple[torch.Tensor, torch.Tensor],
) -> None:
    """``measure_dataset(...)``'s report, the object the README hands a notebook user, shows
    the properties' card and the sharp-label check's (PneumoniaMNIST: sharp), not a repr."""
    x, y = pneumonia
    report = measure_dataset(sample_dataset(x, y, max_samples=1000, seed=0), k=10)
    html = report._repr_html_()
    assert html == result_card(report)
    page = _page(html)
    assert report.check is not None and report.check.is_sharp
    for number in (format_number(report.properties.d_data), format_number(report.check.value)):
        assert number in page.words
    assert "Sharp labels" in page.words
    assert len(page.images) == 1  # the check on its reference band
    # Samples are named by their dataset index, as in the text and JSON reports.
    top = report.properties.label_sharpness_result.pairs[0]  # type: ignore[union-attr]
    i, j = report.indices[top.i], report.indices[top.j]
    assert (i, j) != (top.i, top.j)
    assert f"samples {i} and {j}" in page.words
    groups = report.properties.duplicates.groups
    assert groups, "PneumoniaMNIST holds exact duplicates"
    assert str([report.indices[k] for k in groups[0]]) in page.words


def test_report_without_a_check_says_why() -> None:
    """Vectors, not images: no reference protocol, and the card says so instead of hiding it."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 6, generator=g)
    y = torch.arange(200) % 2
    x[11] = x[10]  # the same input with the other label
    report = measure_dataset(sample_dataset(x, y, max_samples=200), k=5)
    assert report.check is None and report.check_skipped is not None
    words = _page(report._repr_html_()).words
    assert "not images" in words and "1 label conflict(s)" in words
