"""Findings to an ``MLFlowLogger``: figure, JSON and text artifacts, and params.

Imported only when an ``MLFlowLogger`` is attached (so mlflow is installed). Every call goes
through the logger's client (``logger.experiment``, an ``MlflowClient``) and its ``run_id``. In
the run's artifacts, folder ``dataprops/``:

* ``<key>.png``: the figure (``MlflowClient.log_figure``), replaced when the finding changes;
* ``<key>.json``: the finding's data (``log_dict``);
* ``<key>.md``: warnings, the sharpest pairs as a table, the configuration (``log_text``);

and the configuration as params ``dataprops/...`` (``MLFlowLogger.log_hyperparams``, which
batches ``log_batch`` calls and truncates long values).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lightning_dataprops.findings import Finding, HyperparametersFinding
from lightning_dataprops.integrations._common import is_artifact, markdown, tag

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["log_finding"]


def log_finding(
    logger: Any, finding: Finding, figure: Figure | None, *, step: int, **context: Any
) -> list[str]:
    """Write one finding to an ``MLFlowLogger``'s run; returns the artifacts written.

    Args:
        logger: a ``lightning.pytorch.loggers.MLFlowLogger``.
        finding: any finding.
        figure: its rendered figure, or ``None``.
        step: the trainer's ``global_step`` (artifacts are replaced, not versioned by step).
        context: what :func:`~.publish.publish` gives every writer (unused here).
    """
    del context
    if not is_artifact(finding):
        return []
    client, run_id = logger.experiment, logger.run_id
    written = []
    if figure is not None:
        client.log_figure(run_id, figure, f"{tag(finding)}.png")
        written.append(f"{tag(finding)}.png")
    client.log_dict(run_id, {"step": step, **finding.to_dict()}, f"{tag(finding)}.json")
    written.append(f"{tag(finding)}.json")
    text = markdown(finding)
    if text is not None:
        client.log_text(run_id, text, f"{tag(finding)}.md")
        written.append(f"{tag(finding)}.md")
    if isinstance(finding, HyperparametersFinding):
        logger.log_hyperparams(dict(finding.params))
        written.append("params")
    return written
