"""One self-contained HTML report of a dataset's properties (``dataprops measure --report``).

The file embeds its pictures as base64 PNG data URIs and its style inline: no network, no
external CSS or JavaScript; a browser shows it offline. It holds the data summary, ``d_data`` by
MLE and TwoNN with their intervals and the MLE estimate against k, ``K_F`` with the robust
sharpness statistics, the verdict and its references, the sharpest pairs and label conflicts as
images with labels, distances and dataset indices, and the duplicates. Without matplotlib the
report has the same tables and no pictures.

Example:
    >>> import tempfile, torch
    >>> from lightning_dataprops.functional import dataset_properties
    >>> g = torch.Generator().manual_seed(0)
    >>> x = torch.rand(200, 1, 4, 4, generator=g)
    >>> props = dataset_properties(x, (x.mean(dim=(1, 2, 3)) > 0.5).long(), k=10, top_pairs=3)
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = write_properties_report(f"{folder}/r.html", props, inputs=x,
    ...                                    description="uniform 4x4 images")
    ...     "<img" in path.read_text()
    True
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lightning_dataprops.findings import KCurveFinding, SharpPairsFinding
from lightning_dataprops.findings.format import format_number
from lightning_dataprops.findings.html_page import escape, figure_tag, number, page, table
from lightning_dataprops.findings.render import plots_available, render
from lightning_dataprops.functional.duplicates import DuplicateReport
from lightning_dataprops.functional.results import (
    DatasetProperties,
    IntrinsicDimensionResult,
    LabelSharpnessResult,
)

if TYPE_CHECKING:
    from torch import Tensor

__all__ = [
    "d_data_section",
    "duplicates_section",
    "pairs_section",
    "write_html_report",
    "write_properties_report",
]

_MAX_DUPLICATE_GROUPS = 20


def _image(finding: Any, alt: str, **options: Any) -> str:
    return figure_tag(render(finding, **options), alt)


def d_data_section(results: Sequence[IntrinsicDimensionResult], k_curve: Any) -> str:
    """The estimators' table and the MLE estimate against k (table and picture)."""
    rows = []
    for result in results:
        ci = (
            "n/a"
            if result.ci95 is None
            else f"[{number(result.ci95[0])}, {number(result.ci95[1])}]"
        )
        rows.append(
            [
                result.estimator.upper().replace("TWONN", "TwoNN"),
                result.variant,
                result.k,
                result.value,
                result.stderr,
                ci,
                result.n,
            ]
        )
    header = ["estimator", "variant", "k", "d_data", "stderr", "95% interval", "samples used"]
    parts = ["<h2>Intrinsic dimension d_data</h2>", table(header, rows)]
    if k_curve is not None:
        parts.append("<h3>MLE estimate against k</h3>")
        parts.append(table(["k", *k_curve.ks], [["d_data (MLE)", *k_curve.values]]))
        parts.append(_image(k_curve, "MLE estimate of d_data against k"))
    return "".join(parts)


def _sharpness_section(
    result: LabelSharpnessResult | None,
    stats: Mapping[str, Any] | None,
    verdict: str | None,
    references: Sequence[str],
) -> str:
    parts = ["<h2>Label sharpness K_F</h2>"]
    if result is None:
        return parts[0] + "<p>n/a: K_F needs labels of at least 2 classes.</p>"
    rows: list[list[Any]] = [
        ["K_F", result.value],
        ["samples", result.n],
        ["method", result.method],
        ["target type", result.target_type],
        ["classes", result.n_classes],
        ["label conflicts", len(result.conflicts)],
    ]
    rows.extend([name, value] for name, value in (stats or {}).items())
    parts.append(table(["quantity", "value"], rows))
    if verdict:
        parts.append(f'<p class="warning">{escape(verdict)}</p>')
    if references:
        items = "".join(f"<li>{escape(line)}</li>" for line in references)
        parts.append(f"<h3>References</h3><ul>{items}</ul>")
    return "".join(parts)


def pairs_section(pairs: SharpPairsFinding | None, *, with_picture: bool = True) -> str:
    """The sharpest pairs and label conflicts: their picture (``with_picture``) and table."""
    if pairs is None or not pairs.pairs:
        return ""
    parts = ["<h2>Sharpest pairs and label conflicts</h2>"]
    if pairs.n_conflicts:
        parts.append(
            f'<p class="warning">{pairs.n_conflicts} label conflict(s): identical inputs with '
            "different labels. Check them for labelling errors.</p>"
        )
    if with_picture:
        parts.append(_image(pairs, "sharpest pairs", max_rows=len(pairs.pairs)))
    rows = [
        [
            p.index_i,
            p.index_j,
            pairs.label_text(p.label_i),
            pairs.label_text(p.label_j),
            p.distance,
            p.sharpness,
            p.conflict,
        ]
        for p in pairs.pairs
    ]
    header = ["index i", "index j", "label i", "label j", "distance", "sharpness", "conflict"]
    parts.append(table(header, rows))
    parts.append('<p class="note">Indices refer to the source dataset.</p>')
    return "".join(parts)


def duplicates_section(report: DuplicateReport | None, index_map: Sequence[int] | None) -> str:
    """The duplicate groups found (dataset indices)."""
    parts = ["<h2>Duplicates</h2>"]
    if report is None or not report.groups:
        return parts[0] + "<p>None found.</p>"
    parts.append(
        f"<p>{report.n_duplicates} duplicate sample(s) in {report.n_groups} group(s) (distance "
        f"&le; {number(report.threshold)}; {report.n_exact_pairs} exact pair(s)). Each group's "
        "first index is kept for d_data.</p>"
    )
    groups = [
        [i if index_map is None else int(index_map[i]) for i in group]
        for group in report.groups[:_MAX_DUPLICATE_GROUPS]
    ]
    parts.append(table(["group", "indices"], [[n, str(g)] for n, g in enumerate(groups, 1)]))
    if report.n_groups > _MAX_DUPLICATE_GROUPS:
        parts.append(f"<p>... and {report.n_groups - _MAX_DUPLICATE_GROUPS} more groups.</p>")
    return "".join(parts)


def write_html_report(
    path: str | os.PathLike[str],
    *,
    summary: Mapping[str, Any],
    d_data: Sequence[IntrinsicDimensionResult],
    k_curve: KCurveFinding | None = None,
    K_F: LabelSharpnessResult | None = None,
    sharpness_stats: Mapping[str, Any] | None = None,
    verdict: str | None = None,
    references: Sequence[str] = (),
    pairs: SharpPairsFinding | None = None,
    duplicates: DuplicateReport | None = None,
    index_map: Sequence[int] | None = None,
    title: str = "Dataset properties",
) -> Path:
    """Write one self-contained HTML report and return its path.

    Args:
        path: the ``.html`` file to write (its folder must exist).
        summary: rows of the data summary, ``{name: value}`` (source, samples, shape, range).
        d_data: the intrinsic-dimension results to tabulate (MLE, TwoNN).
        k_curve: the MLE estimate against k, drawn and tabulated.
        K_F: the detailed label-sharpness result, or ``None`` without labels.
        sharpness_stats: further sharpness statistics, ``{name: value}`` (e.g. the protocol
            ``K_F``, robust quantiles, the ratio to the natural-image band).
        verdict: one paragraph saying what the numbers mean (shown highlighted).
        references: lines naming the reference values and papers the verdict rests on.
        pairs: the sharpest pairs and label conflicts, with their inputs for the image grid.
        duplicates: the duplicates found.
        index_map: dataset index of every sample position, for the duplicate groups.
        title: the page's heading.

    Returns:
        ``Path(path)``.
    """
    body = [
        table(["", ""], [[name, value] for name, value in summary.items()]),
        d_data_section(d_data, k_curve),
        _sharpness_section(K_F, sharpness_stats, verdict, references),
        pairs_section(pairs),
        duplicates_section(duplicates, index_map),
    ]
    if not plots_available():
        body.append('<p class="note">No pictures: install matplotlib (the plots extra).</p>')
    path = Path(path)
    path.write_text(page(title, body), encoding="utf-8")
    return path


def write_properties_report(
    path: str | os.PathLike[str],
    props: DatasetProperties,
    *,
    inputs: Tensor | None,
    description: str,
    index_map: Sequence[int] | None = None,
    elapsed: float | None = None,
    value_range: tuple[float, float] | None = None,
    k_curve: KCurveFinding | None = None,
    sharpness_stats: Mapping[str, Any] | None = None,
    verdict: str | None = None,
    references: Sequence[str] = (),
    max_pairs: int = 16,
) -> Path:
    """:func:`write_html_report` of a :func:`~lightning_dataprops.functional.dataset_properties`
    result: what ``dataprops measure SOURCE --report report.html`` writes.

    Args:
        path: the ``.html`` file to write.
        props: the measured properties.
        inputs: ``(n, ...)`` the measured sample (the pairs' images come from it).
        description: one line saying what was measured.
        index_map: dataset index of every sample position (``None``: positions are indices).
        elapsed: seconds the measurement took.
        value_range: ``(min, max)`` of the inputs.
        k_curve, sharpness_stats, verdict, references: as in :func:`write_html_report`.
        max_pairs: most pairs shown (label conflicts first).
    """
    mle, twonn, sharpness = props.mle_result, props.twonn_result, props.label_sharpness_result
    summary: dict[str, Any] = {
        "source": description,
        "samples (n)": props.n,
        "input shape": tuple(props.input_shape),
    }
    if value_range is not None:
        summary["value range"] = (
            f"[{format_number(value_range[0])}, {format_number(value_range[1])}]"
        )
    if elapsed is not None:
        summary["time"] = f"{format_number(elapsed, 2, fixed=True)} s"
    pairs = None
    if sharpness is not None:
        pairs = SharpPairsFinding.from_label_sharpness(
            sharpness, inputs, index_map=index_map, max_pairs=max_pairs
        )
    return write_html_report(
        path,
        summary=summary,
        d_data=(mle, twonn),
        k_curve=k_curve,
        K_F=sharpness,
        sharpness_stats=sharpness_stats,
        verdict=verdict,
        references=references,
        pairs=pairs,
        duplicates=props.duplicates,
        index_map=index_map,
    )
