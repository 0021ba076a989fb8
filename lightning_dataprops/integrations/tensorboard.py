"""Findings to a ``TensorBoardLogger``: images, text and hyperparameters.

Imported only when a ``TensorBoardLogger`` is attached (so tensorboard is installed). Where the
findings appear in TensorBoard:

* IMAGES: ``dataprops/sharpest_pairs``, ``dataprops/d_repr_profile``, ``dataprops/forecast``
  (``SummaryWriter.add_image``, one image per step at which the finding changed);
* TEXT: ``dataprops/<key>`` for warnings, the sharpest pairs as a table, and the configuration
  (``add_text``);
* HPARAMS: the configuration under ``dataprops/...`` beside the run's own hyperparameters, and in
  ``hparams.yaml`` (``TensorBoardLogger.log_hyperparams``).

TensorBoard's HParams view keeps the *first* hparams record of a run (its reader ignores later
ones), and Lightning writes the module's hyperparameters just after ``on_fit_start``. So publish
the configuration in ``on_fit_start``: it is written together with the module's and the
datamodule's ``hparams_initial`` (what Lightning would write), and both show.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from lightning_dataprops.findings import Finding, HyperparametersFinding
from lightning_dataprops.findings.render import figure_to_array
from lightning_dataprops.integrations._common import is_artifact, markdown, nested, tag

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["log_finding"]


def _run_hyperparameters(trainer: Any) -> dict[str, Any]:
    """The datamodule's and the module's ``hparams_initial``, as Lightning logs them."""
    merged: dict[str, Any] = {}
    for holder in (
        getattr(trainer, "datamodule", None),
        getattr(trainer, "lightning_module", None),
    ):
        hparams = getattr(holder, "hparams_initial", None)
        if isinstance(hparams, Mapping):
            merged.update(hparams)
    return merged


def _log_hyperparameters(logger: Any, finding: HyperparametersFinding, trainer: Any) -> None:
    own = logger.hparams if isinstance(logger.hparams, Mapping) else {}
    logger.log_hyperparams({**_run_hyperparameters(trainer), **own, **nested(dict(finding.params))})


def log_finding(
    logger: Any,
    finding: Finding,
    figure: Figure | None,
    *,
    step: int,
    trainer: Any = None,
    **context: Any,
) -> list[str]:
    """Write one finding to a ``TensorBoardLogger``; returns the tags written.

    Args:
        logger: a ``lightning.pytorch.loggers.TensorBoardLogger``.
        finding: any finding.
        figure: its rendered figure, or ``None``.
        step: the trainer's ``global_step``.
        trainer: the trainer, whose module's hyperparameters go with the configuration.
        context: what :func:`~.publish.publish` gives every writer (unused here).
    """
    del context
    if not is_artifact(finding):
        return []
    writer = logger.experiment
    written = []
    if figure is not None:
        writer.add_image(tag(finding), figure_to_array(figure), step, dataformats="HWC")
        written.append(f"image {tag(finding)}")
    text = markdown(finding)
    if text is not None:
        writer.add_text(tag(finding), text, step)
        written.append(f"text {tag(finding)}")
    if isinstance(finding, HyperparametersFinding):
        _log_hyperparameters(logger, finding, trainer)
        written.append("hparams")
    writer.flush()
    return written
