"""The run report at fit end: one HTML page per attached logger, in the logger's own place.

:func:`write_run_reports` (called once per fit by the dataprops callbacks, after every
``on_fit_end`` and before the loggers are finalized) reads each logger's run back with
:func:`~lightning_dataprops.integrations.readers.record_for_logger`, the reader that
``dataprops report LOG_DIR`` uses, so the page written now and the page rebuilt later are the
same. Where it goes:

* CSV, TensorBoard and any logger the files writer serves: ``<log_dir>/dataprops/run_report.html``;
* MLflow: the run's artifact ``dataprops/run_report.html``;
* W&B: logged to the run as ``wandb.Html`` under ``dataprops/run_report``, and written to the
  run's folder (``run.dir``). The record is another attached logger's when there is one, else
  the findings published during the fit and the last logged values.

A logger that fails gets one :class:`~.publish.FindingNotLoggedWarning`; the others still get
their page.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lightning_dataprops.findings import ReprProfileFinding
from lightning_dataprops.findings.render import figure_to_png, render
from lightning_dataprops.findings.run_record import REPORT_NAME, RunRecord
from lightning_dataprops.findings.run_report import render_run_report, write_run_report
from lightning_dataprops.integrations._common import FOLDER, markdown
from lightning_dataprops.integrations.publish import published_findings, warn_not_logged
from lightning_dataprops.integrations.readers import logger_kind, record_for_logger

__all__ = ["record_from_trainer", "write_run_reports"]

REPORT_KEY = "run_report"


def record_from_trainer(trainer: Any, source: str = "this fit's findings") -> RunRecord:
    """A record of the findings published to ``trainer`` and its last logged values (for loggers
    without a local record): pictures drawn again, ``d_repr`` per epoch from its profile."""
    record = RunRecord(source, "kept in memory during the fit")
    epoch = max(int(getattr(trainer, "current_epoch", 1)) - 1, 0)  # the last completed one
    step = int(getattr(trainer, "global_step", 0))
    for name, value in getattr(trainer, "callback_metrics", {}).items():
        try:
            record.add_scalar(name, float(value), step=step, epoch=epoch)
        except (TypeError, ValueError):
            continue
    for key, finding in published_findings(trainer).items():
        if isinstance(finding, ReprProfileFinding):
            for name in [n for n in record.scalars if n.startswith(f"{FOLDER}/d_repr/")]:
                del record.scalars[name]
            for row in finding.rows:
                record.add_scalar(
                    f"{FOLDER}/d_repr/{row.layer}", row.d_repr, step=row.epoch, epoch=row.epoch
                )
        figure = render(finding)
        if figure is not None:
            record.images[key] = figure_to_png(figure)
        text = markdown(finding) if getattr(finding, "artifact", True) else None
        if text is not None:
            record.texts[key] = text
    return record


def _write_wandb(logger: Any, html: str, step: int) -> str:
    import wandb

    # Through the logger, so the row carries trainer/global_step like every other dataprops row;
    # not injected with W&B's remote stylesheet, so the page stays self-contained.
    logger.log_metrics({f"{FOLDER}/{REPORT_KEY}": wandb.Html(html, inject=False)}, step=step)
    folder = getattr(logger.experiment, "dir", None)
    if folder:
        Path(folder, f"{FOLDER}_{REPORT_NAME}").write_text(html, encoding="utf-8")
    return f"wandb.Html {FOLDER}/{REPORT_KEY}"


def _write_mlflow(logger: Any, html: str) -> str:
    logger.experiment.log_text(logger.run_id, html, f"{FOLDER}/{REPORT_NAME}")
    return f"artifact {FOLDER}/{REPORT_NAME}"


def write_run_reports(trainer: Any) -> dict[str, str]:
    """Write the run report for every logger of ``trainer`` (rank zero only).

    Returns:
        ``{logger class name: where the page went}``.
    """
    if not getattr(trainer, "is_global_zero", True):
        return {}
    root = trainer.default_root_dir
    records: dict[int, RunRecord] = {}
    for logger in trainer.loggers:
        try:
            record = record_for_logger(logger, root)
        except Exception as error:
            warn_not_logged(logger, trainer, REPORT_KEY, error)
            continue
        if record is not None:
            records[id(logger)] = record
    shared = next(iter(records.values()), None)
    done: dict[str, str] = {}
    for logger in trainer.loggers:
        name = type(logger).__name__
        try:
            record = records.get(id(logger))
            kind = logger_kind(logger)
            if kind == "WandbLogger":
                html = render_run_report(shared or record_from_trainer(trainer))
                done[name] = _write_wandb(logger, html, int(trainer.global_step))
            elif kind == "MLFlowLogger" and record is not None:
                done[name] = _write_mlflow(logger, render_run_report(record))
            elif record is not None:
                folder = record.report_path().parent
                folder.mkdir(parents=True, exist_ok=True)
                done[name] = str(write_run_report(record.report_path(), record))
        except Exception as error:
            warn_not_logged(logger, trainer, REPORT_KEY, error)
    return done
