"""The dataset report that leads with its answer (``dataprops measure SOURCE --report r.html``).

Top to bottom, one self-contained HTML page (pictures embedded, nothing fetched):

1. a summary card in plain words: what was measured (N, shape, classes), ``d_data`` with its
   interval, and the sharp-label verdict with its factor against natural images and what to do;
2. where the dataset stands: its median sharpness ``K_F(0.5)`` on the natural-image band beside
   the medical datasets, and its ``d_data`` beside MNIST, Fashion-MNIST and CIFAR-10 at about the
   same N (:mod:`.charts`, values in :mod:`lightning_dataprops.references`);
3. the pairs to look at, with class names;
4. the two label-sharpness numbers, defined;
5. the details: the estimators, the MLE estimate against k, the sharpness statistics per class
   pair, the references, the duplicates.

Example:
    >>> import tempfile, torch
    >>> from lightning_dataprops.data import sample_dataset
    >>> from lightning_dataprops.dataset_report import measure_dataset
    >>> g = torch.Generator().manual_seed(0)
    >>> x = torch.rand(300, 1, 8, 8, generator=g)
    >>> sample = sample_dataset(x, torch.arange(300) % 2)
    >>> report = measure_dataset(sample, k=10)
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     text = write_dataset_report(f"{folder}/r.html", report, sample,
    ...                                 description="noise", class_names=["a", "b"]).read_text()
    >>> "Labels no sharper than natural images" in text
    True
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lightning_dataprops.findings import KCurveFinding, SharpPairsFinding
from lightning_dataprops.findings.charts import d_data_chart, sharpness_chart
from lightning_dataprops.findings.format import format_number
from lightning_dataprops.findings.html_page import (
    Verdict,
    card,
    escape,
    figure_tag,
    page,
    section,
    table,
)
from lightning_dataprops.findings.html_report import (
    d_data_section,
    duplicates_section,
    pairs_section,
)
from lightning_dataprops.findings.render import plots_available, render
from lightning_dataprops.references.report_values import d_data_references, medical_sharpness

if TYPE_CHECKING:
    from lightning_dataprops.data import Sample
    from lightning_dataprops.dataset_report import DatasetReport
    from lightning_dataprops.functional.results import EstimatorSpread

__all__ = ["K_F_TERMS", "dataset_verdict", "write_dataset_report"]

K_F_TERMS = (
    (
        "exact K_F (the paper's label sharpness)",
        "1 / the distance between the two closest images that carry different labels, in the "
        "data's own units. The scaling law of Konz & Mazurowski (ICLR 2024) uses it: test loss "
        "grows like K_F x N^(-1/d_data). It is set by a single pair, so one coincidence (two "
        "near-identical photos of different classes) decides it, and it grows with N.",
    ),
    (
        "K_F(0.5) (the sharp-label check's statistic)",
        "1 / the median, over all images, of the distance from an image to its nearest "
        "differently-labelled image, after bringing the images to a common format (28x28 "
        "grayscale or 32x32 colour, pixels scaled to [0, 1]). A typical value rather than the "
        "extreme one: it is what the check compares with natural images measured the same way, "
        "at the same number of classes and images.",
    ),
)
_ADVICE = (
    "What to do: look at the closest pairs below for labelling errors or duplicated images, and "
    "plan for more training data (or augmentation) than a natural-image task of the same size "
    "would need."
)


def _class_names(count: int, names: Sequence[str] | None) -> list[str]:
    return [
        f"{i} ({names[i]})" if names is not None and i < len(names) else str(i)
        for i in range(count)
    ]


def _classes_text(sample: Sample, names: Sequence[str] | None) -> str:
    targets = sample.targets
    if targets is None:
        return "no labels"
    if targets.is_floating_point():
        return "regression targets"
    counts = targets.long().flatten().bincount().tolist()
    shown = [
        f"{i if names is None or i >= len(names) else names[i]} ({count:,})"
        for i, count in enumerate(counts)
        if count
    ]
    return f"{len(shown)} class{'es' if len(shown) != 1 else ''}: " + ", ".join(shown)


def _spread_text(spread: EstimatorSpread) -> str:
    """The estimators' spread in plain words: their values, and whether they agree."""
    values = ", ".join(f"{format_number(v, 3)} ({name})" for name, v in spread.values.items())
    if spread.disagree:
        verdict = (
            f"they disagree ({format_number(100 * (spread.high / spread.low - 1), 2)}% apart, "
            "beyond their uncertainty): read d_data as uncertain across that range"
        )
    else:
        verdict = "they agree within their uncertainty or 25%"
    return f"{values}; {verdict}"


def dataset_verdict(report: DatasetReport) -> Verdict:
    """The sharp-label verdict in plain words: headline, factor, what it means, what to do."""
    check = report.check
    if check is None:
        if report.raw_conflicts:
            return Verdict(
                "warn",
                f"Label conflicts: {len(report.raw_conflicts)} pair(s) of near-identical "
                "samples carry different labels",
                "These are often labelling errors or duplicated samples: check the pairs below.",
            )
        return Verdict("info", "Sharp-label check not run", f"Reason: {report.check_skipped}.")
    factor = f"{check.ratio:.2f}x"
    conflicts = len(check.conflicts)
    if check.statistic_is_sharp:
        headline = f"Sharp labels: {factor} the sharpest natural-image sample"
        detail = (
            f"Images of different classes lie closer together here than in any of "
            f"{check.band.count} samples of MNIST, Fashion-MNIST and CIFAR-10 measured the same "
            f"way (median sharpness K_F(0.5) = {check.value:.3f}; warning above "
            f"{check.threshold:.3f}). Expect a higher test loss at every training-set size and "
            "a model more fragile under small input perturbations. " + _ADVICE
        )
        if conflicts:
            detail += f" {conflicts} pair(s) are near-identical images with different labels."
        return Verdict("warn", headline, detail)
    if conflicts:
        return Verdict(
            "warn",
            f"Label conflicts: {conflicts} pair(s) of near-identical images carry different labels",
            f"The labels as a whole are not sharper than natural images ({factor} the sharpest "
            "natural-image sample), but these pairs often are labelling errors or duplicated "
            "images: check them below.",
        )
    return Verdict(
        "ok",
        f"Labels no sharper than natural images ({factor} the sharpest natural-image sample)",
        f"Median sharpness K_F(0.5) = {check.value:.3f}, below the warning threshold "
        f"{check.threshold:.3f} set by MNIST, Fashion-MNIST and CIFAR-10 measured the same way.",
    )


def _card(
    report: DatasetReport,
    sample: Sample,
    description: str,
    class_names: Sequence[str] | None,
    elapsed: float | None,
) -> str:
    props = report.properties
    shape = "x".join(str(s) for s in props.input_shape)
    rows = [
        ("Data", description),
        ("Measured", f"{props.n:,} samples of shape {shape}"),
        ("Labels", _classes_text(sample, class_names)),
    ]
    mle, twonn = props.mle_result, props.twonn_result
    d_text = f"{format_number(mle.value, 3)} by MLE (k = {mle.k})"
    if mle.ci95 is not None:
        d_text += f", 95% interval {format_number(mle.ci95[0], 3)}-{format_number(mle.ci95[1], 3)}"
    d_text += f"; {format_number(twonn.value, 3)} by TwoNN"
    if twonn.ci95 is not None:
        low, high = (format_number(v, 3) for v in twonn.ci95)
        d_text += f", 95% interval {low}-{high}"
    rows.append(("Intrinsic dimension d_data", d_text))
    spread = props.spread
    if spread is not None:
        rows.append(("Estimators' spread", _spread_text(spread)))
    check = report.check
    if check is not None:
        rows.append(
            (
                "Label sharpness K_F(0.5)",
                f"{check.value:.3f} vs natural-image maximum {check.band.maximum:.3f} "
                f"({check.n:,} images, {check.n_classes} classes)",
            )
        )
    if props.K_F is not None:
        rows.append(("Exact K_F (closest pair)", format_number(props.K_F, 3)))
    if elapsed is not None:
        rows.append(("Time", f"{elapsed:.1f} s"))
    return card(
        "Summary",
        rows,
        verdict=dataset_verdict(report),
        note="K_F(0.5) and exact K_F are defined under 'The two label-sharpness numbers' below.",
    )


def _charts(report: DatasetReport) -> str:
    props = report.properties
    figures = []
    check = report.check
    if check is not None:
        medical = medical_sharpness(check.protocol, check.band.n_classes, check.n)
        chart = sharpness_chart(check.value, check.band, check.threshold, medical)
        caption = (
            f"Median label sharpness K_F(0.5) of this dataset (black) beside the medical datasets "
            f"(red) and the band of {check.band.describe()}, all measured the same way. Right of "
            "the dashed line, the check warns."
        )
        figures.append((chart, "K_F(0.5) against the natural-image references", caption))
    mle = props.mle_result
    chart = d_data_chart(
        mle.value, mle.ci95, d_data_references(props.n), n=props.n, twonn=props.d_data_twonn
    )
    caption = (
        "d_data (MLE, k = 20) of this dataset beside the product's own measurements of known "
        "datasets at the nearest measured N (median and range over three seeds); the hollow "
        "diamond is this dataset's TwoNN estimate."
        + ("" if mle.ci95 is None else " The bar on this dataset is its 95% interval.")
    )
    figures.append((chart, "d_data against known datasets", caption))
    parts = [
        f"<figure>{figure_tag(chart, alt)}<figcaption>{escape(caption)}</figcaption></figure>"
        for chart, alt, caption in figures
        if chart is not None
    ]
    if not parts:
        return ""
    return section("Where this dataset stands", '<div class="figures">' + "".join(parts) + "</div>")


def _terms() -> str:
    items = "".join(f"<dt>{escape(term)}</dt><dd>{escape(text)}</dd>" for term, text in K_F_TERMS)
    return section("The two label-sharpness numbers", f'<dl class="terms">{items}</dl>')


def _data_units(report: DatasetReport) -> str:
    """Exact K_F and its quantiles in the data's own units (no common format)."""
    sharpness = report.properties.label_sharpness_result
    if sharpness is None:
        return ""
    rows: list[list[Any]] = [["exact K_F", sharpness.value], ["images", sharpness.n]]
    if sharpness.n_unlabelled:
        rows.append(["unlabelled images (negative class id) left out", sharpness.n_unlabelled])
    robust = sharpness.robust
    if robust is not None:
        rows += [
            [
                f"K_F at quantile {q:g} (1 / that quantile of the distance to the nearest other "
                "label)",
                value,
            ]
            for q, value in sorted(robust.quantiles.items())
        ]
        rows.append(["near-identical label conflicts", len(robust.conflicts)])
    return "<h3>In the data's own units</h3>" + table(["quantity", "value"], rows)


def _check_details(report: DatasetReport, class_names: Sequence[str] | None) -> str:
    check = report.check
    if check is None:
        return ""
    rows: list[list[Any]] = [
        ["K_F(0.5), this dataset", check.value],
        ["warning threshold", check.threshold],
        ["ratio to the sharpest natural-image sample", check.ratio],
        ["exact K_F in the common format", check.K_F],
        ["near-identical label conflicts", len(check.conflicts)],
        ["images compared", check.n],
        ["common format", check.protocol],
    ]
    labels = _class_names(check.n_classes, class_names)
    for (a, b), (value, count) in sorted(check.per_class_pair.items()):
        name_a = labels[a] if a < len(labels) else str(a)
        name_b = labels[b] if b < len(labels) else str(b)
        rows.append([f"K_F(0.5) where {name_a} meets {name_b} ({count} images)", value])
    verdict = "SHARP" if check.is_sharp else "not sharp"
    paragraph = f"Sharp-label check: {verdict}. {check.explain(report.check_index_map)}"
    references = (
        f"Natural-image references: {check.band.describe()} (docs/reference_values.md). "
        "Konz & Mazurowski, The Effect of Intrinsic Dataset Properties on Generalization, "
        "ICLR 2024: test loss scales like K_F N^(-1/d_data)."
    )
    return (
        "<h3>The sharp-label check</h3>"
        + table(["quantity", "value"], rows)
        + f'<p class="note">{escape(paragraph)}</p>'
        + f"<h3>References</h3><p>{escape(references)}</p>"
    )


def write_dataset_report(
    path: str | os.PathLike[str],
    report: DatasetReport,
    sample: Sample,
    *,
    description: str,
    class_names: Sequence[str] | None = None,
    k_curve: KCurveFinding | None = None,
    elapsed: float | None = None,
    max_pairs: int = 8,
    title: str = "Dataset properties",
) -> Path:
    """Write the dataset report of a :func:`~lightning_dataprops.measure_dataset` result.

    Args:
        path: the ``.html`` file to write (its folder must exist).
        report: the measurement.
        sample: the sample it was measured on (the pairs' images and the class counts).
        description: one line naming the data.
        class_names: the name of each class id, shown with the labels.
        k_curve: the MLE estimate against k, drawn in the details.
        elapsed: seconds the measurement took.
        max_pairs: most pairs shown (label conflicts first).
        title: the page's heading.

    Returns:
        ``Path(path)``.
    """
    props = report.properties
    sharpness = props.label_sharpness_result
    pairs = None
    if sharpness is not None:
        pairs = SharpPairsFinding.from_label_sharpness(
            sharpness,
            sample.inputs,
            index_map=list(report.indices),
            max_pairs=max_pairs,
            class_names=class_names,
        )
    gallery = ""
    if pairs is not None and pairs.pairs:
        picture = figure_tag(
            render(pairs, max_rows=len(pairs.pairs), columns=None), "the closest pairs"
        )
        gallery = section(
            "Pairs to look at",
            '<p class="note">The closest images that carry different labels, label conflicts '
            "first; # is the image's index in the dataset.</p>",
            picture,
            anchor="pairs",
        )
    details = [
        d_data_section((props.mle_result, props.twonn_result), k_curve),
        section(
            "Label sharpness in detail",
            _data_units(report),
            _check_details(report, class_names),
        ),
        pairs_section(pairs, with_picture=False),
        duplicates_section(props.duplicates, list(report.indices)),
    ]
    body = [
        _card(report, sample, description, class_names, elapsed),
        _charts(report),
        gallery,
        _terms(),
        '<h2 style="margin-top:2.2em">Details</h2>',
        *details,
    ]
    if not plots_available():
        body.append('<p class="note">No pictures: install matplotlib (the plots extra).</p>')
    path = Path(path)
    path.write_text(page(title, body), encoding="utf-8")
    return path
