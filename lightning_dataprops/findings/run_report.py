"""The run report: one self-contained HTML page telling the story of a training run.

Written at fit end into each logger's folder (``<log_dir>/dataprops/run_report.html``; an MLflow
artifact; a W&B ``wandb.Html``), and rebuilt from a finished run's logs by
``dataprops report LOG_DIR``. Top to bottom:

1. a card: the data at fit start (N, d_data, label sharpness with its verdict), the run's
   epochs and last validation loss, the warnings raised, the overhead spent;
2. the pairs to look at (the fit-start picture);
3. ``d_repr`` per layer against epoch;
4. the robustness metrics against epoch;
5. the forecast against N with the observed validation loss, and the validation loss against
   epoch;
6. the warnings, in full; the overhead against epoch; the configuration.

Everything comes from a :class:`~lightning_dataprops.findings.run_record.RunRecord`, so a page
built during the fit and one rebuilt from its logs are the same page.

Example:
    >>> import tempfile
    >>> from lightning_dataprops.findings.run_record import RunRecord
    >>> record = RunRecord("CSV", "logs")
    >>> for epoch in range(3):
    ...     record.add_scalar("dataprops/d_repr/fc1", 9.0 - epoch, step=epoch, epoch=epoch)
    ...     record.add_scalar("val_loss", 1.0 / (epoch + 1), step=epoch, epoch=epoch)
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     text = write_run_report(f"{folder}/r.html", record).read_text()
    >>> "d_repr per layer" in text
    True
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

from lightning_dataprops import names
from lightning_dataprops.findings.charts import lines_chart
from lightning_dataprops.findings.format import format_number
from lightning_dataprops.findings.html_page import (
    Verdict,
    card,
    escape,
    figure_tag,
    page,
    png_tag,
    section,
    table,
)
from lightning_dataprops.findings.run_record import RunRecord

__all__ = ["render_run_report", "run_verdict", "write_run_report"]

_PICTURE_KEYS = ("sharpest_pairs", "d_repr_profile", "forecast")
_NOT_WARNINGS = {"hparams", "sharpest_pairs"}
_FORECAST = f"{names.PREFIX}/forecast/"
_D_REPR = f"{names.PREFIX}/d_repr/"
_VAL_LOSS_NAMES = ("val_loss", "val_loss_epoch", "val/loss", "validation_loss")


def _markdown(text: str) -> str:
    """A finding's markdown as simple HTML: headings, bold, tables kept as text blocks."""
    out = []
    for block in re.split(r"\n\s*\n", text.strip()):
        if block.startswith("## "):
            out.append(f"<h3>{escape(block[3:].strip())}</h3>")
        elif block.lstrip().startswith("|"):
            out.append(f'<pre style="white-space:pre-wrap">{escape(block)}</pre>')
        else:
            body = escape(block)
            body = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", body)
            out.append(f"<p>{body}</p>")
    return "".join(out)


def _warnings(record: RunRecord) -> dict[str, str]:
    """Texts that are warnings: every text finding but the pairs' table and the configuration,
    the sharp-label warning first (the one a user must act on)."""
    raised = {key: text for key, text in record.texts.items() if key not in _NOT_WARNINGS}
    return dict(sorted(raised.items(), key=lambda item: item[0] != "sharp_labels"))


def _val_loss_name(record: RunRecord) -> str | None:
    return next((name for name in _VAL_LOSS_NAMES if name in record.scalars), None)


def run_verdict(record: RunRecord) -> Verdict:
    """The card's verdict: the sharp-label warning when raised; otherwise the sharp-label
    check's outcome, with any other warnings (caveats such as disagreeing estimators) named
    after it rather than in its place."""
    from lightning_dataprops.references import reference_rule

    raised = _warnings(record)
    ratio = record.last(names.K_F_RATIO)
    factor = "" if ratio is None else f"{ratio:.2f}x the sharpest natural-image sample"
    titles = [_title(text) for text in raised.values()]
    if "sharp_labels" in raised or (titles and ratio is None):
        detail = f"Median label sharpness K_F(0.5) is {factor}. " if factor else ""
        detail += "What was found and what to do: see 'Warnings raised' below."
        headline = titles[0] + (f" (and {len(titles) - 1} more)" if len(titles) > 1 else "")
        return Verdict("warn", headline, detail)
    others = ""
    if titles:
        count = f"{len(titles)} warning{'s' if len(titles) > 1 else ''}"
        others = f"{count} raised: {'; '.join(titles)}. See 'Warnings raised' below."
    if ratio is None:
        return Verdict("info", "No warnings raised")
    if ratio > float(reference_rule()["tolerance"]):
        return Verdict("warn", f"Sharp labels: {factor}", others)
    headline = f"Labels no sharper than natural images ({factor})"
    return (
        Verdict("info", headline, others)
        if titles
        else Verdict("ok", headline, "No warnings raised.")
    )


def _title(markdown: str) -> str:
    first = markdown.strip().splitlines()[0] if markdown.strip() else "Warning"
    return first.lstrip("# ").strip()


def _card(record: RunRecord) -> str:
    rows = []
    epochs = record.epochs
    if epochs:
        rows.append(("Epochs", f"{len(epochs)} ({epochs[0]}-{epochs[-1]})"))
    n_train, n_samples = record.last(names.N_TRAIN), record.last(names.N_SAMPLES)
    if n_train is not None or n_samples is not None:
        parts = []
        if n_train is not None:
            parts.append(f"{int(n_train):,} training samples")
        if n_samples is not None:
            parts.append(f"measured on {int(n_samples):,}")
        rows.append(("Data", ", ".join(parts)))
    d_data, twonn = record.last(names.D_DATA), record.last(names.D_DATA_TWONN)
    if d_data is not None:
        text = f"{format_number(d_data, 3)} by MLE"
        if twonn is not None:
            text += f"; {format_number(twonn, 3)} by TwoNN"
        rows.append(("Intrinsic dimension d_data", text))
    median, ratio = record.last(names.K_F_MEDIAN), record.last(names.K_F_RATIO)
    if median is not None:
        text = format_number(median, 3)
        if ratio is not None:
            text += f" ({ratio:.2f}x the sharpest natural-image sample)"
        rows.append(("Label sharpness K_F(0.5)", text))
    exact = record.last(names.K_F)
    if exact is not None:
        rows.append(("Exact K_F (closest pair)", format_number(exact, 3)))
    loss = _val_loss_name(record)
    if loss is not None:
        rows.append(("Last validation loss", format_number(record.last(loss), 4)))
    spent, fraction = record.last(names.OVERHEAD_SECONDS), record.last(names.OVERHEAD_FRACTION)
    if spent is not None:
        text = f"{spent:.1f} s"
        if fraction is not None:
            text += f" ({100 * fraction:.1f}% of the fit's time)"
        rows.append(("dataprops overhead", text))
    return card(
        "Summary",
        rows,
        verdict=run_verdict(record),
        note="K_F(0.5): 1 / the median distance from an image to its nearest differently-labelled "
        "image, compared with natural images; exact K_F: 1 / the distance of the closest such "
        "pair (the paper's).",
    )


def _figure(chart_html: str, caption: str, *, style: str = "") -> str:
    if not chart_html:
        return ""
    styled = f' style="{style}"' if style else ""
    return f"<figure{styled}>{chart_html}<figcaption>{escape(caption)}</figcaption></figure>"


def _chart(
    record: RunRecord, series_names: Sequence[str], strip: str, *, ylabel: str, title: str
) -> str:
    series = {name.removeprefix(strip): record.series(name) for name in series_names}
    return figure_tag(lines_chart(series, ylabel=ylabel, title=title), title)


def _d_repr(record: RunRecord) -> str:
    layers = record.names(_D_REPR)
    if layers:
        chart = _chart(
            record, layers, _D_REPR, ylabel="d_repr (MLE)", title="d_repr per layer against epoch"
        )
        caption = "Intrinsic dimension of each monitored layer's outputs, per epoch."
    else:
        profile = record.images.get("d_repr_profile")
        chart = png_tag(profile, "d_repr profile") if profile else ""
        caption = "The logged d_repr profile."
    return section(
        "d_repr per layer",
        '<div class="figures">',
        _figure(chart, caption),
        "</div>",
        anchor="d_repr",
    )


def _robustness(record: RunRecord) -> str:
    adv = record.names(f"{names.PREFIX}/adv/")
    if not adv:
        return ""
    prefix = f"{names.PREFIX}/adv/"
    increase = [n for n in adv if n.endswith("/loss_increase")]
    accuracy = [n for n in adv if n.endswith(("/clean_acc", "/robust_acc"))]
    charts = [
        _figure(
            _chart(
                record,
                increase,
                prefix,
                ylabel="attacked - clean loss",
                title="Loss increase under attack (the paper's measure)",
            ),
            "Loss increase under each attack, per epoch where it was measured.",
        ),
        _figure(
            _chart(record, accuracy, prefix, ylabel="accuracy", title="Clean and robust accuracy"),
            "Accuracy on clean and attacked inputs.",
        ),
    ]
    return section("Robustness", '<div class="figures">', *charts, "</div>", anchor="robustness")


def _forecast(record: RunRecord) -> str:
    picture = record.images.get("forecast")
    loss = _val_loss_name(record)
    observed = names.forecast("observed_val_loss")
    chart = ""
    if loss is not None:
        chart = _chart(
            record,
            [loss],
            "",
            ylabel="validation loss",
            title="Observed validation loss against epoch",
        )
    rows = [
        [name.removeprefix(_FORECAST), record.last(name)]
        for name in record.names(_FORECAST)
        if name != observed
    ]
    if not (picture or chart or rows):
        return ""
    parts = [
        '<div class="figures">',
        _figure(
            png_tag(picture, "forecast") if picture else "",
            "The scaling law's forecast against training-set size N, with the observed "
            "validation loss marked.",
        ),
        _figure(chart, "The validation loss the forecast is compared with."),
        "</div>",
    ]
    if rows:
        parts.append("<h3>Last forecast values</h3>" + table(["quantity", "value"], rows))
    return section("Forecast", *parts, anchor="forecast")


def _overhead(record: RunRecord) -> str:
    times = list(record.names(f"{names.PREFIX}/time/"))
    postponed = record.names(f"{names.PREFIX}/postponed/")
    if not times and not postponed:
        return ""
    seconds = [n for n in times if n != names.OVERHEAD_FRACTION]
    chart = _chart(
        record,
        seconds,
        f"{names.PREFIX}/time/",
        ylabel="seconds",
        title="Seconds spent by dataprops",
    )
    rows = [
        [name.removeprefix(f"{names.PREFIX}/"), record.last(name)] for name in times + postponed
    ]
    return section(
        "Overhead",
        '<div class="figures">',
        _figure(chart, "What each measurement cost, cumulative where logged as a total."),
        "</div>",
        table(["logged value", "last"], rows),
        anchor="overhead",
    )


def render_run_report(record: RunRecord, *, title: str = "Training run report") -> str:
    """The run report of ``record`` as one HTML document."""
    pairs = record.images.get("sharpest_pairs")
    warnings = _warnings(record)
    texts = "".join(f'<div class="warning">{_markdown(text)}</div>' for text in warnings.values())
    fit_start = section(
        "Fit start: warnings and the pairs to look at",
        '<div class="figures">',
        f'<div style="flex:2 1 24em">{texts or "<p>No warnings raised.</p>"}</div>',
        _figure(
            png_tag(pairs, "the closest pairs", width=320) if pairs else "",
            "The closest training images that carry different labels; # is the image's "
            "index in the dataset.",
            style="flex:0 0 330px",
        ),
        "</div>",
        anchor="warnings",
    )
    config = record.texts.get("hparams")
    config_section = (
        section(
            "Configuration",
            f"<details><summary>dataprops settings</summary>{_markdown(config)}</details>",
        )
        if config
        else ""
    )
    body = [
        _card(record),
        fit_start,
        _d_repr(record),
        _robustness(record),
        _forecast(record),
        _overhead(record),
        config_section,
    ]
    return page(title, body, lead=f"From {record.source}: {record.location}.")


def write_run_report(path: str | os.PathLike[str], record: RunRecord) -> Path:
    """Write :func:`render_run_report` of ``record`` to ``path`` (atomically) and return it."""
    path = Path(path)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(render_run_report(record), encoding="utf-8")
    os.replace(partial, path)
    return path
