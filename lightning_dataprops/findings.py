"""Logger-neutral descriptions of what the product finds, drawn once and handed to every logger.

A finding is plain data: no logger, no figure. :mod:`lightning_dataprops.render` draws it with
matplotlib and :func:`lightning_dataprops.integrations.publish.publish` hands it to each attached
logger through its native call. Every finding has a ``key`` (its file and tag name, e.g.
``dataprops/sharpest_pairs.png``), a ``title`` and a JSON-safe ``to_dict()`` (``inf`` and ``nan``
spelled as strings; input tensors left out).

Findings:

* :class:`SharpPairsFinding`: the sharpest differently-labelled pairs and the label conflicts
  (identical inputs, different labels), with dataset indices, labels, distances and both inputs;
* :class:`ReprProfileFinding`: ``d_repr`` per layer and epoch;
* :class:`ForecastFinding`: the data-scaling forecast, predicted loss against N;
* :class:`KCurveFinding`: the MLE estimate of ``d_data`` against the neighbour count k;
* :class:`TextFinding`: a titled markdown text (a warning and its explanation);
* :class:`HyperparametersFinding`: the callbacks' configuration as flat plain values.

Example:
    >>> profile = ReprProfileFinding.from_rows(
    ...     [{"epoch": 0, "layer": "fc1", "depth": 0, "d_repr": 9.5},
    ...      {"epoch": 0, "layer": "fc2", "depth": 1, "d_repr": 4.0}])
    >>> profile.layers, profile.epochs
    (('fc1', 'fc2'), (0,))
    >>> TextFinding("Sharp labels", "K_F = **inf**").to_dict()["key"]
    'text'
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from lightning_dataprops.functional.results import LabelSharpnessResult, SharpPair
from lightning_dataprops.functional.results import _json_float as json_float  # -> _json.json_float
from lightning_dataprops.functional.scaling_law import loss_ratio, scaling_bound

__all__ = [
    "Finding",
    "ForecastFinding",
    "HyperparametersFinding",
    "KCurveFinding",
    "PairExample",
    "ReprProfileFinding",
    "ReprProfileRow",
    "SharpPairsFinding",
    "TextFinding",
    "fingerprint",
    "to_jsonable",
]

PlainValue = str | int | float | bool | None


def to_jsonable(value: Any) -> Any:
    """``value`` with floats made JSON-safe (``"inf"``, ``"-inf"``, ``"nan"``) and containers
    turned into dicts and lists; tensors and numpy scalars become Python numbers or lists.

    Example:
        >>> to_jsonable({"a": (1.0, float("inf")), "b": None})
        {'a': [1.0, 'inf'], 'b': None}
    """
    if isinstance(value, bool) or value is None or isinstance(value, str | int):
        return value
    if isinstance(value, float):
        return json_float(value)
    if isinstance(value, Tensor):
        return to_jsonable(value.detach().cpu().tolist())
    if isinstance(value, Mapping):
        return {str(key): to_jsonable(item) for key, item in value.items()}
    if isinstance(value, Sequence):
        return [to_jsonable(item) for item in value]
    if hasattr(value, "item"):  # numpy scalars
        return to_jsonable(value.item())
    return str(value)


@dataclass(frozen=True)
class PairExample:
    """One differently-labelled pair: dataset indices, labels, distance and both inputs.

    Attributes:
        index_i: index of the first input in the dataset (not in the sample).
        index_j: index of the second input in the dataset.
        label_i: label of the first input.
        label_j: label of the second input.
        distance: Euclidean distance ``||x_i - x_j||_2`` of the inputs as measured.
        sharpness: ``|y_i - y_j| / distance`` (``inf`` for a label conflict).
        conflict: the inputs are identical (distance 0) but the labels differ.
        input_i: the first input as measured (``None`` when not kept).
        input_j: the second input as measured.
    """

    index_i: int
    index_j: int
    label_i: float | int
    label_j: float | int
    distance: float
    sharpness: float
    conflict: bool = False
    input_i: Tensor | None = field(default=None, repr=False, compare=False)
    input_j: Tensor | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary (the inputs are left out; their shape is kept)."""
        shape = None if self.input_i is None else list(self.input_i.shape)
        return to_jsonable(
            {
                "index_i": self.index_i,
                "index_j": self.index_j,
                "label_i": self.label_i,
                "label_j": self.label_j,
                "distance": self.distance,
                "sharpness": self.sharpness,
                "conflict": self.conflict,
                "input_shape": shape,
            }
        )


def _example(
    pair: SharpPair, inputs: Tensor | None, index_map: Sequence[int] | None
) -> PairExample:
    def source(position: int) -> int:
        return position if index_map is None else int(index_map[position])

    def item(position: int) -> Tensor | None:
        return None if inputs is None else inputs[position].detach().cpu().clone()

    return PairExample(
        index_i=source(pair.i),
        index_j=source(pair.j),
        label_i=pair.label_i,
        label_j=pair.label_j,
        distance=float(pair.distance),
        sharpness=float(pair.sharpness),
        conflict=float(pair.distance) == 0.0,
        input_i=item(pair.i),
        input_j=item(pair.j),
    )


@dataclass(frozen=True)
class SharpPairsFinding:
    """The sharpest differently-labelled pairs of a sample, label conflicts first.

    Attributes:
        pairs: the pairs, label conflicts (``conflict=True``) first, then by falling sharpness.
        K_F: the sample's label sharpness (``inf`` with a label conflict), if known.
        n: the sample size the pairs were found in.
        n_conflicts: how many label conflicts exist (``pairs`` may hold fewer).
        key: file and tag name.
        title: a heading for people.
    """

    pairs: tuple[PairExample, ...]
    K_F: float | None = None
    n: int | None = None
    n_conflicts: int = 0
    key: str = "sharpest_pairs"
    title: str = "Sharpest differently-labelled pairs"

    @classmethod
    def from_label_sharpness(
        cls,
        result: LabelSharpnessResult,
        inputs: Tensor | None = None,
        *,
        index_map: Sequence[int] | None = None,
        max_pairs: int = 16,
    ) -> SharpPairsFinding:
        """The finding of a :func:`~lightning_dataprops.functional.label_sharpness` result.

        Args:
            result: the detailed ``K_F`` result (its pairs index ``inputs``).
            inputs: ``(n, ...)`` the measured sample, to keep each pair's two inputs.
            index_map: dataset index of every sample position (``Sample.indices``); without it
                the positions are the indices.
            max_pairs: most pairs kept (conflicts first).

        Example:
            >>> import torch
            >>> from lightning_dataprops.functional import label_sharpness
            >>> x = torch.tensor([[0.0], [1.0], [1.5], [5.0]])
            >>> y = torch.tensor([0, 0, 1, 1])
            >>> finding = SharpPairsFinding.from_label_sharpness(
            ...     label_sharpness(x, y), x, index_map=[10, 11, 12, 13])
            >>> p = finding.pairs[0]
            >>> (p.index_i, p.index_j, p.distance, p.conflict)
            (11, 12, 0.5, False)
        """
        seen: set[tuple[int, int]] = set()
        ordered: list[PairExample] = []
        for pair in (*result.conflicts, *result.pairs):
            ends = (min(pair.i, pair.j), max(pair.i, pair.j))
            if ends in seen or len(ordered) >= max_pairs:
                continue
            seen.add(ends)
            ordered.append(_example(pair, inputs, index_map))
        return cls(
            pairs=tuple(ordered),
            K_F=float(result.value),
            n=int(result.n),
            n_conflicts=len(result.conflicts),
        )

    @property
    def conflicts(self) -> tuple[PairExample, ...]:
        """The label conflicts among :attr:`pairs`."""
        return tuple(pair for pair in self.pairs if pair.conflict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return to_jsonable(
            {
                "key": self.key,
                "title": self.title,
                "K_F": self.K_F,
                "n": self.n,
                "n_conflicts": self.n_conflicts,
                "pairs": [pair.to_dict() for pair in self.pairs],
            }
        )


@dataclass(frozen=True)
class ReprProfileRow:
    """``d_repr`` of one layer at one epoch (``depth``: the layer's position, 0 = first)."""

    epoch: int
    layer: str
    depth: int
    d_repr: float


@dataclass(frozen=True)
class ReprProfileFinding:
    """The representation intrinsic dimension ``d_repr`` per layer and epoch.

    Attributes:
        rows: one row per (epoch, layer).
        key: file and tag name.
        title: a heading for people.
    """

    rows: tuple[ReprProfileRow, ...]
    key: str = "d_repr_profile"
    title: str = "Representation intrinsic dimension d_repr"

    @classmethod
    def from_rows(cls, rows: Iterable[Mapping[str, Any] | ReprProfileRow]) -> ReprProfileFinding:
        """From rows or dicts with ``epoch``, ``layer``, ``depth`` and ``d_repr``."""
        parsed = []
        for row in rows:
            if isinstance(row, ReprProfileRow):
                parsed.append(row)
                continue
            missing = {"epoch", "layer", "depth", "d_repr"} - set(row)
            if missing:
                raise ValueError(
                    f"a d_repr profile row needs epoch, layer, depth and d_repr; {dict(row)} "
                    f"lacks {sorted(missing)}"
                )
            parsed.append(
                ReprProfileRow(
                    int(row["epoch"]), str(row["layer"]), int(row["depth"]), float(row["d_repr"])
                )
            )
        return cls(rows=tuple(parsed))

    @property
    def layers(self) -> tuple[str, ...]:
        """Layer names, shallowest first."""
        depth = {row.layer: row.depth for row in self.rows}
        return tuple(sorted(depth, key=lambda layer: (depth[layer], layer)))

    @property
    def epochs(self) -> tuple[int, ...]:
        """Epochs with a value, in order."""
        return tuple(sorted({row.epoch for row in self.rows}))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return to_jsonable(
            {
                "key": self.key,
                "title": self.title,
                "rows": [dataclasses.asdict(row) for row in self.rows],
            }
        )


@dataclass(frozen=True)
class ForecastCurve:
    """A forecast curve: ``y`` at each training-set size ``n``; ``kind`` says what ``y`` is.

    ``kind`` is ``"predicted_loss"`` (``C K_F N^(-1/d_data)``, needs a constant) or
    ``"loss_ratio"`` (``L(N) / L(N0) = (N / N0)^(-1/d_data)``, parameter-free).
    """

    n: tuple[float, ...]
    y: tuple[float, ...]
    kind: str
    label: str


@dataclass(frozen=True)
class ForecastFinding:
    """The data-scaling forecast ``L(N) <~ C K_F N^(-1/d_data)`` of a run.

    Attributes:
        n_train: the run's training-set size ``N0``.
        d_data: intrinsic dimension of the data (the law's exponent is ``-1/d_data``).
        K_F: label sharpness, if known and finite (a predicted loss needs it).
        constant: the calibrated ``C``, if any; ``constant_source`` says where it came from.
        observed: observed validation losses as ``(N, loss)`` pairs (e.g. the current one at
            ``N0``).
        key: file and tag name.
        title: a heading for people.
    """

    n_train: int
    d_data: float
    K_F: float | None = None
    constant: float | None = None
    constant_source: str | None = None
    observed: tuple[tuple[int, float], ...] = ()
    key: str = "forecast"
    title: str = "Data-scaling forecast"

    @property
    def calibrated(self) -> bool:
        """Whether a predicted loss can be drawn (a constant and a finite ``K_F``)."""
        return (
            self.constant is not None
            and self.K_F is not None
            and math.isfinite(self.K_F)
            and self.K_F > 0
        )

    def curve(self, sizes: Sequence[float] | None = None) -> ForecastCurve:
        """The curve at ``sizes`` (default: ``N0 * 2^p`` for ``p = -3 .. 4``).

        Example:
            >>> f = ForecastFinding(n_train=1000, d_data=10.0)
            >>> c = f.curve([1000, 2000])
            >>> c.kind, [round(v, 4) for v in c.y]
            ('loss_ratio', [1.0, 0.933])
        """
        if sizes is None:
            sizes = [self.n_train * 2.0**power for power in range(-3, 5)]
        n = tuple(float(size) for size in sizes)
        if self.calibrated:
            assert self.constant is not None and self.K_F is not None
            y = tuple(self.constant * scaling_bound(self.K_F, size, self.d_data) for size in n)
            source = f", {self.constant_source}" if self.constant_source else ""
            label = f"predicted loss C K_F N^(-1/d) (C = {self.constant:.3g}{source})"
            return ForecastCurve(n, y, "predicted_loss", label)
        y = tuple(loss_ratio(self.d_data, size / self.n_train) for size in n)
        return ForecastCurve(n, y, "loss_ratio", f"L(N) / L({self.n_train}) = (N/N0)^(-1/d)")

    def observed_on_curve_scale(self) -> tuple[tuple[int, float], ...]:
        """The observed losses on the curve's scale: as they are for a predicted loss, divided
        by the observed loss at ``N0`` for the ratio curve (none without one at ``N0``)."""
        if self.calibrated:
            return self.observed
        at_n0 = [loss for size, loss in self.observed if size == self.n_train and loss > 0]
        if not at_n0:
            return ()
        return tuple((size, loss / at_n0[-1]) for size, loss in self.observed)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary, with the curve."""
        curve = self.curve()
        return to_jsonable(
            {
                "key": self.key,
                "title": self.title,
                "n_train": self.n_train,
                "d_data": self.d_data,
                "K_F": self.K_F,
                "constant": self.constant,
                "constant_source": self.constant_source,
                "observed": [list(point) for point in self.observed],
                "curve": {"kind": curve.kind, "label": curve.label, "n": curve.n, "y": curve.y},
            }
        )


@dataclass(frozen=True)
class KCurveFinding:
    """The MLE estimate of ``d_data`` against the number of neighbours ``k``.

    Attributes:
        ks: neighbour counts, increasing.
        values: the MLE estimate at each ``k``.
        k_default: the ``k`` the reported value uses (marked on the plot), if any.
    """

    ks: tuple[int, ...]
    values: tuple[float, ...]
    k_default: int | None = None
    key: str = "d_data_k_curve"
    title: str = "MLE estimate of d_data against k"

    def __post_init__(self) -> None:
        if len(self.ks) != len(self.values):
            raise ValueError(
                f"ks and values must have the same length, got {len(self.ks)} and "
                f"{len(self.values)}"
            )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return to_jsonable(
            {
                "key": self.key,
                "title": self.title,
                "ks": self.ks,
                "values": self.values,
                "k_default": self.k_default,
            }
        )


@dataclass(frozen=True)
class TextFinding:
    """A titled markdown text, e.g. a warning and its explanation.

    Attributes:
        title: one line.
        body: markdown.
        key: file and tag name (give each distinct text its own key).
        level: ``"info"`` or ``"warning"``.
    """

    title: str
    body: str
    key: str = "text"
    level: str = "info"

    @property
    def markdown(self) -> str:
        """The title as a heading above the body."""
        return f"## {self.title}\n\n{self.body}\n"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return {"key": self.key, "title": self.title, "body": self.body, "level": self.level}


def _plain(value: Any) -> PlainValue:
    if value is None or isinstance(value, str | bool | int | float):
        return value
    if isinstance(value, Tensor) and value.numel() == 1:
        return value.item()
    if callable(value):
        return getattr(value, "__qualname__", None) or type(value).__qualname__
    return str(value)


@dataclass(frozen=True)
class HyperparametersFinding:
    """The callbacks' configuration as a flat ``{name: plain value}`` dict.

    Attributes:
        params: names (``/``-separated paths) to ``str``/``int``/``float``/``bool``/``None``.
        key: file and tag name.
    """

    params: Mapping[str, PlainValue]
    key: str = "hparams"
    title: str = "dataprops configuration"

    @classmethod
    def from_mapping(cls, nested: Mapping[str, Any], *, prefix: str = "") -> HyperparametersFinding:
        """Flatten nested mappings and dataclasses into ``a/b/c`` names; other values become
        plain (callables by their qualified name, everything else by ``str``).

        Example:
            >>> HyperparametersFinding.from_mapping(
            ...     {"seed": 0, "layers": ("fc1", "fc2"), "probe": {"eps": 2 / 255}},
            ...     prefix="dataprops").params["dataprops/probe/eps"]
            0.00784313725490196
        """
        flat: dict[str, PlainValue] = {}

        def walk(value: Any, path: str) -> None:
            if dataclasses.is_dataclass(value) and not isinstance(value, type):
                value = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
            if isinstance(value, Mapping):
                for name, item in value.items():
                    walk(item, f"{path}/{name}" if path else str(name))
            else:
                flat[path] = _plain(value)

        walk(nested, prefix)
        return cls(params=flat)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return to_jsonable({"key": self.key, "title": self.title, "params": dict(self.params)})


Finding = (
    SharpPairsFinding
    | ReprProfileFinding
    | ForecastFinding
    | KCurveFinding
    | TextFinding
    | HyperparametersFinding
)
"""Any finding."""


def fingerprint(finding: Finding) -> str:
    """A content hash of a finding (its JSON and, for pairs, the input bytes)."""
    digest = hashlib.sha256(json.dumps(finding.to_dict(), sort_keys=True, allow_nan=False).encode())
    if isinstance(finding, SharpPairsFinding):
        for pair in finding.pairs:
            for tensor in (pair.input_i, pair.input_j):
                if tensor is not None:
                    digest.update(tensor.to(torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()
