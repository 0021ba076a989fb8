"""Notebook cards: the ``_repr_html_`` of every result a user holds, through one card helper.

:func:`result_card` turns a :class:`~lightning_dataprops.functional.DatasetProperties`, a
:class:`~lightning_dataprops.references.SharpnessCheck`, an
:class:`~lightning_dataprops.functional.IntrinsicDimensionResult`, a
:class:`~lightning_dataprops.functional.LabelSharpnessResult` or a
:class:`~lightning_dataprops.functional.scaling_law.ScalingForecast` into the report's summary
card (:func:`~.html_page.card`): the key numbers and, where cheap, a small picture (the
sharp-label check on its reference band, the forecast curve); a
:class:`~lightning_dataprops.DatasetReport` shows the properties' card and the check's. Each
result's ``_repr_html_`` calls it, so Jupyter shows the card instead of the dataclass repr.

Example:
    >>> import torch
    >>> from lightning_dataprops.functional import intrinsic_dimension
    >>> g = torch.Generator().manual_seed(0)
    >>> result = intrinsic_dimension(torch.randn(300, 5, generator=g), k=10)
    >>> html = result._repr_html_()
    >>> "dataprops-card" in html and "d_data" in html
    True
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from lightning_dataprops.findings.format import format_label, format_number
from lightning_dataprops.findings.html_page import Verdict, card, figure_tag

__all__ = ["result_card"]

_WIDTH = 380


def _d(value: float | None) -> str:
    return format_number(value, 4)


def _id_rows(result: Any, index_map: Sequence[int] | None = None) -> list[tuple[str, str]]:
    name = "TwoNN" if result.estimator == "twonn" else "MLE"
    text = _d(result.value)
    if result.estimator != "twonn":
        text += f" (k = {result.k})"
    if result.ci95 is not None:
        text += f", 95% interval {_d(result.ci95[0])}-{_d(result.ci95[1])}"
    elif result.stderr is not None:
        text += f" ± {_d(result.stderr)}"
    rows = [(f"d_data ({name})", text)]
    duplicates = result.duplicates
    if duplicates.n_duplicates:
        if index_map is not None:
            groups = tuple(tuple(index_map[i] for i in group) for group in duplicates.groups)
            duplicates = replace(duplicates, groups=groups)
        rows.append(("duplicates", duplicates.summary(max_groups=2)))
    return rows


def _sharpness_rows(result: Any, index_map: Sequence[int] | None = None) -> list[tuple[str, str]]:
    rows = [("exact K_F (closest pair)", _d(result.value))]
    robust = getattr(result, "robust", None)
    if robust is not None:
        rows.append(("K_F(0.5) (median sharpness)", _d(robust.median)))
    if result.pairs:
        top = result.pairs[0]
        i, j = (top.i, top.j) if index_map is None else (index_map[top.i], index_map[top.j])
        rows.append(
            (
                "closest pair",
                f"samples {i} and {j} "
                f"(labels {format_label(top.label_i)} vs {format_label(top.label_j)}), "
                f"distance {_d(top.distance)}",
            )
        )
    if result.conflicts:
        rows.append(("label conflicts", f"{len(result.conflicts)} near-identical pair(s)"))
    return rows


def _shape(shape: Any) -> str:
    return "x".join(str(int(s)) for s in shape)


def _dataset_properties(props: Any, index_map: Sequence[int] | None = None) -> str:
    rows = [("samples", f"{props.n:,} of shape {_shape(props.input_shape)}")]
    rows += _id_rows(props.mle_result, index_map)
    rows += _id_rows(props.twonn_result)[:1]
    if props.label_sharpness_result is not None:
        rows += _sharpness_rows(props.label_sharpness_result, index_map)
    return card("Dataset properties", rows, anchor="dataprops-properties")


def _intrinsic_dimension(result: Any) -> str:
    used = f"{result.n:,} used of {result.n_input:,}, shape {_shape(result.input_shape)}"
    rows = [("samples", used)]
    return card("Intrinsic dimension", [*_id_rows(result), *rows], anchor="dataprops-id")


def _label_sharpness(result: Any) -> str:
    rows = [
        ("samples", f"{result.n:,} of shape {_shape(result.input_shape)}"),
        ("method", f"{result.method}, {result.target_type} targets"),
        *_sharpness_rows(result),
    ]
    verdict = None
    if result.conflicts:
        verdict = Verdict(
            "warn",
            f"{len(result.conflicts)} label conflict(s)",
            "Near-identical inputs carry different labels: often labelling errors.",
        )
    return card("Label sharpness", rows, verdict=verdict, anchor="dataprops-sharpness")


def _sharpness_check(check: Any) -> str:
    from lightning_dataprops.findings.charts import sharpness_chart
    from lightning_dataprops.references.report_values import medical_sharpness

    factor = f"{check.ratio:.2f}x the sharpest natural-image sample"
    if check.statistic_is_sharp:
        verdict = Verdict("warn", f"Sharp labels: {factor}", "Look at check.pairs for errors.")
    elif check.conflicts:
        verdict = Verdict("warn", f"{len(check.conflicts)} label conflict(s)", factor)
    else:
        verdict = Verdict("ok", f"Labels no sharper than natural images ({factor})")
    rows = [
        ("K_F(0.5)", f"{_d(check.value)} (warning above {_d(check.threshold)})"),
        (
            "natural images",
            f"{_d(check.band.minimum)}-{_d(check.band.maximum)} "
            f"({check.band.count} draws of N = {check.band.measured_n} images)",
        ),
        ("exact K_F", _d(check.K_F)),
        ("sample", f"{check.n:,} images, {check.n_classes} classes, {check.protocol} format"),
    ]
    medical = medical_sharpness(check.protocol, check.band.n_classes, check.n)
    picture = figure_tag(
        sharpness_chart(check.value, check.band, check.threshold, medical),
        "K_F(0.5)",
        width=_WIDTH,
    )
    return card(
        "Sharp-label check", rows, verdict=verdict, picture=picture, anchor="dataprops-check"
    )


def _dataset_report(report: Any) -> str:
    parts = [_dataset_properties(report.properties, report.indices)]  # dataset indices
    if report.check is not None:
        parts.append(_sharpness_check(report.check))
    elif report.raw_conflicts:
        verdict = Verdict(
            "warn",
            f"{len(report.raw_conflicts)} label conflict(s)",
            "Near-identical inputs carry different labels: often labelling errors.",
        )
        rows = [("not run", str(report.check_skipped))]
        parts.append(card("Sharp-label check", rows, verdict=verdict, anchor="dataprops-check"))
    else:
        rows = [("not run", str(report.check_skipped))]
        parts.append(card("Sharp-label check", rows, anchor="dataprops-check"))
    return "".join(parts)


def _forecast(prediction: Any) -> str:
    from lightning_dataprops.findings.curves import ForecastFinding

    rows = [
        ("training samples N", f"{prediction.n_train:,}"),
        ("d_data", _d(prediction.d_data)),
        ("K_F", _d(prediction.label_sharpness)),
        ("loss with 2x the data", f"{_d(prediction.loss_ratio_2x_data)} x today's"),
    ]
    if prediction.samples_for_target is not None:
        rows.append(("samples for the target loss", f"{prediction.samples_for_target:,.0f}"))
    if prediction.test_loss is not None and math.isfinite(prediction.test_loss):
        rows.append(("predicted test loss", _d(prediction.test_loss)))
    figure = ForecastFinding.from_forecast(prediction).figure()
    picture = figure_tag(figure, "forecast", width=_WIDTH)
    return card("Data-scaling forecast", rows, picture=picture, anchor="dataprops-forecast")


def result_card(result: Any) -> str:
    """The HTML card of a result (the result types above; a
    :class:`~lightning_dataprops.DatasetReport` shows its properties' card and its check's).

    Raises:
        TypeError: any other object.
    """
    from lightning_dataprops.dataset_report import DatasetReport
    from lightning_dataprops.functional.results import (
        DatasetProperties,
        IntrinsicDimensionResult,
        LabelSharpnessResult,
    )
    from lightning_dataprops.functional.scaling_law import ScalingForecast
    from lightning_dataprops.references import SharpnessCheck

    kinds: dict[type, Any] = {
        DatasetReport: _dataset_report,
        DatasetProperties: _dataset_properties,
        IntrinsicDimensionResult: _intrinsic_dimension,
        LabelSharpnessResult: _label_sharpness,
        SharpnessCheck: _sharpness_check,
        ScalingForecast: _forecast,
    }
    for kind, draw in kinds.items():
        if isinstance(result, kind):
            return str(draw(result))
    known = sorted(kind.__name__ for kind in kinds)
    raise TypeError(f"no card for {type(result).__name__}; cards exist for {known}")
