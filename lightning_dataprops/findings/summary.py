"""A run's headline values, for loggers that keep a run summary (W&B's summary and config)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from lightning_dataprops.findings._jsonable import to_jsonable

__all__ = ["RunSummaryFinding"]


@dataclass(frozen=True)
class RunSummaryFinding:
    """Headline values of a run (e.g. the fit-start ``d_data``, ``K_F``, ``N``) and what they
    were measured on, for the run's summary.

    The values already reach every logger as metrics; this finding is what a logger with a run
    summary puts there (W&B: ``run.summary`` and ``run.config["dataprops"]``). It is not an
    artifact (:attr:`artifact` is ``False``): the file, TensorBoard and MLflow writers skip it.

    Attributes:
        values: ``{logged name: value}``.
        context: what the values were measured on (sample size, input shape, k, seed).
        key: the finding's name.
        title: a heading for people.

    Example:
        >>> summary = RunSummaryFinding({"dataprops/K_F": float("inf")}, {"n": 600})
        >>> summary.summary(), summary.config()
        ({'dataprops/K_F': 'inf'}, {'n': 600, 'dataprops/K_F': 'inf'})
    """

    values: Mapping[str, float]
    context: Mapping[str, Any] = field(default_factory=dict)
    key: str = "fit_start"
    title: str = "dataprops fit-start values"
    artifact: ClassVar[bool] = False
    """Not written as files, text or JSON (the values are metrics already)."""

    def summary(self) -> dict[str, Any]:
        """The values, non-finite ones spelled as strings (``"inf"``, ``"nan"``)."""
        return {
            name: (float(value) if math.isfinite(float(value)) else str(float(value)))
            for name, value in self.values.items()
        }

    def config(self) -> dict[str, Any]:
        """The context and the values, as one flat mapping."""
        return {**dict(self.context), **self.summary()}

    def figure(self, **options: Any) -> None:
        """A summary has no figure."""
        del options

    def to_markdown(self) -> None:
        """A summary has no text of its own."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return to_jsonable(
            {
                "key": self.key,
                "title": self.title,
                "values": dict(self.values),
                "context": dict(self.context),
            }
        )
