"""Hand a finding to every attached logger through its native call.

:func:`publish` draws the finding once (:func:`lightning_dataprops.render.render`) and gives it to
each logger of the trainer:

* ``TensorBoardLogger``: images, text, hparams (:mod:`.tensorboard`);
* ``MLFlowLogger``: figure, JSON and text artifacts, params (:mod:`.mlflow`);
* ``WandbLogger``: skipped here (its tables and plots come from :mod:`.wandb`);
* ``CSVLogger`` and any other logger: PNG, markdown and JSON files in its ``log_dir``, else the
  trainer's ``default_root_dir`` (:mod:`.files`).

A finding is written to a logger only when its content changed since it was last written there
(a content hash per logger and finding key), so calling :func:`publish` every epoch re-logs the
d_repr profile when it has a new epoch and nothing else. Only the global-zero rank writes. A
logger that fails gets one :class:`FindingNotLoggedWarning` per finding key and logger type; the
others still receive the finding, and training goes on.
"""

from __future__ import annotations

import os
import warnings
import weakref
from collections.abc import Iterable
from typing import Any

from lightning_dataprops.findings import Finding, fingerprint
from lightning_dataprops.render import render

__all__ = ["FindingNotLoggedWarning", "publish"]


class FindingNotLoggedWarning(UserWarning):
    """A logger refused a finding; the others received it and training goes on."""


_written: weakref.WeakKeyDictionary[Any, dict[str, str]] = weakref.WeakKeyDictionary()
_warned: set[tuple[str, str]] = set()


def _warn_once(where: str, key: str, error: Exception) -> None:
    if (where, key) in _warned:
        return
    _warned.add((where, key))
    warnings.warn(
        f"dataprops could not log {key!r} to {where}: {type(error).__name__}: {error}. The "
        "other loggers received what they could; training goes on.",
        FindingNotLoggedWarning,
        stacklevel=3,
    )


def _loggers_and_root(
    trainer_or_loggers: Any, root_dir: str | os.PathLike[str] | None
) -> tuple[list[Any], str | os.PathLike[str], bool]:
    """(loggers, folder for loggers without a log_dir, whether this process writes)."""
    from lightning.pytorch.utilities import rank_zero_only

    loggers = getattr(trainer_or_loggers, "loggers", None)
    if loggers is not None:  # a Trainer
        root = root_dir or trainer_or_loggers.default_root_dir
        return list(loggers), root, bool(trainer_or_loggers.is_global_zero)
    if isinstance(trainer_or_loggers, Iterable):
        loggers = list(trainer_or_loggers)
    else:
        loggers = [trainer_or_loggers]
    return loggers, root_dir or os.getcwd(), getattr(rank_zero_only, "rank", 0) == 0


def _writer(logger: Any) -> str | None:
    """Which writer serves this logger (``None``: not ours to write)."""
    from lightning.pytorch import loggers as pl_loggers

    if isinstance(logger, pl_loggers.WandbLogger):
        return None
    if isinstance(logger, pl_loggers.TensorBoardLogger):
        return "tensorboard"
    if isinstance(logger, pl_loggers.MLFlowLogger):
        return "mlflow"
    return "files"


def _write(
    kind: str, logger: Any, finding: Finding, figure: Any, step: int, root: Any, trainer: Any
) -> list[str]:
    if kind == "tensorboard":
        from lightning_dataprops.integrations import tensorboard

        return tensorboard.log_finding(logger, finding, figure, step=step, trainer=trainer)
    if kind == "mlflow":
        from lightning_dataprops.integrations import mlflow

        return mlflow.log_finding(logger, finding, figure, step=step)
    from lightning_dataprops.integrations import files

    return files.log_finding(logger, finding, figure, step=step, default_root_dir=root)


def publish(
    trainer_or_loggers: Any,
    finding: Finding,
    *,
    step: int,
    root_dir: str | os.PathLike[str] | None = None,
    force: bool = False,
) -> dict[str, list[str]]:
    """Give ``finding`` to every attached logger through its native call.

    Args:
        trainer_or_loggers: a ``Trainer`` (its ``loggers``), one logger or a list of loggers.
        finding: any finding of :mod:`lightning_dataprops.findings`.
        step: the trainer's ``global_step`` (TensorBoard's step; recorded in the JSON).
        root_dir: folder for loggers without a ``log_dir`` (default: the trainer's
            ``default_root_dir``, or the working directory when only loggers are given).
        force: write even when the content was already written to that logger.

    Returns:
        ``{logger class name: [what was written]}`` for the loggers written to (empty on ranks
        other than zero, for unchanged findings and for W&B).

    Example:
        >>> import tempfile
        >>> from pathlib import Path
        >>> from lightning.pytorch.loggers import CSVLogger
        >>> from lightning_dataprops.findings import TextFinding
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     logger = CSVLogger(folder)
        ...     note = TextFinding("Sharp labels", "K_F is high.", key="warning")
        ...     first = publish(logger, note, step=0)
        ...     again = publish(logger, note, step=5)
        >>> sorted(Path(p).name for p in first["CSVLogger"]), again
        (['findings.json', 'warning.md'], {})
    """
    loggers, root, writes = _loggers_and_root(trainer_or_loggers, root_dir)
    trainer = trainer_or_loggers if hasattr(trainer_or_loggers, "loggers") else None
    if not writes:
        return {}
    try:
        content = fingerprint(finding)
    except Exception as error:  # e.g. a value JSON cannot hold: say so, never end the run
        _warn_once("any logger", finding.key, error)
        return {}
    pending = []
    for logger in loggers:
        kind = _writer(logger)
        if kind is None:
            continue
        if not force and _written.get(logger, {}).get(finding.key) == content:
            continue
        pending.append((kind, logger))
    if not pending:
        return {}
    try:
        figure = render(finding)
    except Exception as error:  # a picture must never cost the run its texts and JSON
        _warn_once("matplotlib", finding.key, error)
        figure = None
    done: dict[str, list[str]] = {}
    for kind, logger in pending:
        name = type(logger).__name__
        try:
            written = _write(kind, logger, finding, figure, step, root, trainer)
        except Exception as error:
            _warn_once(name, finding.key, error)
            continue
        done.setdefault(name, []).extend(written)
        _written.setdefault(logger, {})[finding.key] = content
    return done
