"""Hand a finding to every attached logger through its native call: the one findings path.

:func:`publish` draws the finding once (its ``figure()``) and gives it to each logger of the
trainer through the writer registered for the logger's type (:func:`register_writer`; the most
specific registered class of the logger's MRO wins):

* ``WandbLogger``: tables, plots, alerts, run summary and config (:mod:`.wandb`);
* ``TensorBoardLogger``: images, text, hparams (:mod:`.tensorboard`);
* ``MLFlowLogger``: figure, JSON and text artifacts, params (:mod:`.mlflow`);
* ``CSVLogger`` and any other logger (registered for ``object``): PNG, markdown and JSON files
  in its ``log_dir``, else the trainer's ``default_root_dir`` (:mod:`.files`).

A writer is a function ``log_finding(logger, finding, figure, *, step, **context) -> list[str]``
(``context``: ``trainer``, ``default_root_dir`` and ``fit``, an object that stays the same for
one logger within one fit, for writers that keep per-fit state), or a module defining one. A
new logger's writer is a module of its own plus one :func:`register_writer` line (below, or in
user code). Writers given by module name are imported on first use, so their logger libraries
(wandb, mlflow, tensorboard) stay optional.

A finding is written to a logger only when its content changed since it was last written there
in the same fit (a content hash per logger and finding key, started afresh when a fit starts,
:func:`start_fit`, or another trainer publishes to the logger), so calling :func:`publish` every
epoch re-logs the d_repr profile when it has a new epoch and nothing else, and a logger shared by
several fits gets each fit's findings. Only the global-zero rank writes. A logger that fails
gets one :class:`FindingNotLoggedWarning` per finding key, logger and fit (whatever failed
before in the process); the others still receive the finding, and training goes on.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from lightning_dataprops._warnings import warn_each_time
from lightning_dataprops.findings import Finding, fingerprint
from lightning_dataprops.findings.render import render

__all__ = [
    "FindingNotLoggedWarning",
    "Writer",
    "publish",
    "published_findings",
    "register_writer",
    "start_fit",
    "warn_not_logged",
    "writer_for",
]

Writer = Callable[..., list[str]]
"""``log_finding(logger, finding, figure, *, step, **context) -> [what was written]``."""


class FindingNotLoggedWarning(UserWarning):
    """A logger refused a finding; the others received it and training goes on."""


@dataclass
class _Record:
    """What one logger received in one fit: finding key -> content hash, and the failures
    already said for it."""

    fit: weakref.ref[Any] | None
    content: dict[str, str] = field(default_factory=dict)
    warned: set[tuple[str, str]] = field(default_factory=set)


_published: weakref.WeakKeyDictionary[Any, dict[str, Finding]] = weakref.WeakKeyDictionary()


def published_findings(trainer: Any) -> dict[str, Finding]:
    """The latest finding of each key published to ``trainer`` in its current fit (what the run
    report draws when no logger keeps a local record, e.g. W&B alone)."""
    return dict(_published.get(trainer, {}))


_records: weakref.WeakKeyDictionary[Any, _Record] = weakref.WeakKeyDictionary()


def _record(logger: Any, trainer: Any) -> _Record:
    """The record of ``logger`` in ``trainer``'s fit: another trainer starts a fresh one, so a
    logger shared by several fits gets (and is warned about) each fit's findings. A logger that
    cannot be weakly referenced gets a fresh record each time (nothing is skipped)."""
    try:
        record = _records.get(logger)
    except TypeError:
        record = None
    if record is not None and (
        trainer is None or (record.fit is not None and record.fit() is trainer)
    ):
        return record
    try:
        fit = None if trainer is None else weakref.ref(trainer)
    except TypeError:
        fit = None
    record = _Record(fit)
    with contextlib.suppress(TypeError):
        _records[logger] = record
    return record


def start_fit(trainer: Any) -> None:
    """A fit starts on ``trainer``: what its loggers received in an earlier fit no longer counts,
    so each fit writes its findings (and W&B alerts) again, even on a trainer fitted twice.
    Called by the dataprops callbacks in ``setup``.

    Example:
        >>> from lightning.pytorch import Trainer
        >>> start_fit(Trainer(logger=False))
    """
    with contextlib.suppress(TypeError):
        _published.pop(trainer, None)
    for logger in getattr(trainer, "loggers", []):
        with contextlib.suppress(TypeError):
            _records.pop(logger, None)


def warn_not_logged(logger: Any, trainer: Any, key: str, error: Exception) -> None:
    """Say (once per logger and fit) that ``logger`` could not take ``key``; training goes on."""
    _warn_once([_record(logger, trainer)], type(logger).__name__, key, error)


def _warn_once(records: list[_Record], where: str, key: str, error: Exception) -> None:
    """Say that ``where`` could not take ``key``, unless this fit said so for every logger."""
    fresh = not records or any((where, key) not in record.warned for record in records)
    for record in records:
        record.warned.add((where, key))
    if fresh:
        warn_each_time(
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


@dataclass
class _Entry:
    writer: Writer | ModuleType | str
    needs_figure: bool


_WRITERS: dict[type | str, _Entry] = {}


def register_writer(
    logger_type: type | str, writer: Writer | ModuleType | str, *, needs_figure: bool = True
) -> None:
    """Serve loggers of ``logger_type`` (and its subclasses) with ``writer``.

    Args:
        logger_type: a logger class, or its dotted name (``"package.module.Class"``, matched
            against ``cls.__module__ + "." + cls.__qualname__`` along the logger's MRO) so the
            class need not be imported to register it. ``object`` is the fallback for loggers no
            other writer serves.
        writer: a ``log_finding`` function, a module defining one, or a module's dotted name
            (imported when a logger of that type first receives a finding).
        needs_figure: whether the writer uses the drawn figure (``False``: it receives
            ``None``, and no figure is drawn for it; W&B draws its own plots).

    Example:
        >>> class MyLogger:
        ...     def __init__(self):
        ...         self.got = []
        >>> def log_finding(logger, finding, figure, *, step, **context):
        ...     logger.got.append((finding.key, step))
        ...     return [finding.key]
        >>> register_writer(MyLogger, log_finding)
        >>> from lightning_dataprops.findings import TextFinding
        >>> mine = MyLogger()
        >>> publish(mine, TextFinding("Hi", "there", key="hello"), step=3), mine.got
        ({'MyLogger': ['hello']}, [('hello', 3)])
    """
    _WRITERS[logger_type] = _Entry(writer, needs_figure)


def _entry_for(logger: Any) -> tuple[Writer, bool] | None:
    for cls in type(logger).__mro__:
        for key in (cls, f"{cls.__module__}.{cls.__qualname__}"):
            entry = _WRITERS.get(key)
            if entry is None:
                continue
            writer = entry.writer
            if isinstance(writer, str):
                writer = importlib.import_module(writer)
            if isinstance(writer, ModuleType):
                writer = writer.log_finding
            entry.writer = writer  # imported once
            return writer, entry.needs_figure
    return None


def writer_for(logger: Any) -> Writer | None:
    """The writer serving ``logger``: the one registered for the first class of its MRO that has
    one (by class or by dotted name); ``None`` when none is registered.

    Example:
        >>> from lightning.pytorch.loggers import CSVLogger
        >>> writer_for(CSVLogger("logs")).__module__
        'lightning_dataprops.integrations.files'
    """
    entry = _entry_for(logger)
    return None if entry is None else entry[0]


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
        other than zero, for unchanged findings and for loggers whose writer wrote nothing of
        this finding).

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
    if trainer is not None:
        _published.setdefault(trainer, {})[finding.key] = finding
    try:
        content = fingerprint(finding)
    except Exception as error:  # e.g. a value JSON cannot hold: say so, never end the run
        _warn_once([_record(lg, trainer) for lg in loggers], "any logger", finding.key, error)
        return {}
    pending = []
    for logger in loggers:
        try:
            entry = _entry_for(logger)
        except Exception as error:  # e.g. a writer's module cannot be imported
            warn_not_logged(logger, trainer, finding.key, error)
            continue
        if entry is None:
            continue
        record = _record(logger, trainer)
        if not force and record.content.get(finding.key) == content:
            continue
        pending.append((entry, logger, record))
    if not pending:
        return {}
    figure = None
    if any(needs_figure for (_, needs_figure), _, _ in pending):
        try:
            figure = render(finding)
        except Exception as error:  # a picture must never cost the run its texts and JSON
            drawn_for = [record for (_, needs_figure), _, record in pending if needs_figure]
            _warn_once(drawn_for, "matplotlib", finding.key, error)
    done: dict[str, list[str]] = {}
    for (writer, needs_figure), logger, record in pending:
        name = type(logger).__name__
        try:
            written = writer(
                logger,
                finding,
                figure if needs_figure else None,
                step=step,
                trainer=trainer,
                default_root_dir=root,
                fit=record,
            )
        except Exception as error:
            _warn_once([record], name, finding.key, error)
            continue
        if written:
            done.setdefault(name, []).extend(written)
        record.content[finding.key] = content
    return done


register_writer(
    "lightning.pytorch.loggers.wandb.WandbLogger",
    "lightning_dataprops.integrations.wandb",
    needs_figure=False,
)
register_writer(
    "lightning.pytorch.loggers.tensorboard.TensorBoardLogger",
    "lightning_dataprops.integrations.tensorboard",
)
register_writer(
    "lightning.pytorch.loggers.mlflow.MLFlowLogger", "lightning_dataprops.integrations.mlflow"
)
register_writer(object, "lightning_dataprops.integrations.files")
