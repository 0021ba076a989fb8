"""The sharpest differently-labelled pairs and the label conflicts, with both inputs."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from torch import Tensor

from lightning_dataprops.findings._jsonable import to_jsonable
from lightning_dataprops.findings.format import format_label, format_number, markdown_cell
from lightning_dataprops.functional.results import Label, LabelSharpnessResult, SharpPair

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["PairExample", "SharpPairsFinding"]


@dataclass(frozen=True)
class PairExample:
    """One differently-labelled pair: dataset indices, labels, distance and both inputs.

    Attributes:
        index_i: index of the first input in the dataset (not in the sample).
        index_j: index of the second input in the dataset.
        label_i: label of the first input (a vector target's values as a tuple).
        label_j: label of the second input.
        distance: Euclidean distance ``||x_i - x_j||_2`` of the inputs as measured.
        sharpness: ``|y_i - y_j| / distance`` (``inf`` for a label conflict).
        conflict: the inputs are identical (distance 0) but the labels differ.
        input_i: the first input as measured (``None`` when not kept).
        input_j: the second input as measured.
    """

    index_i: int
    index_j: int
    label_i: Label
    label_j: Label
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
        class_names: the name of each class id (``class_names[y]``), shown beside the labels;
            ``None``: the ids alone.
        key: file and tag name.
        title: a heading for people.
    """

    pairs: tuple[PairExample, ...]
    K_F: float | None = None
    n: int | None = None
    n_conflicts: int = 0
    class_names: tuple[str, ...] | None = None
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
        class_names: Sequence[str] | None = None,
    ) -> SharpPairsFinding:
        """The finding of a :func:`~lightning_dataprops.functional.label_sharpness` result.

        Args:
            result: the detailed ``K_F`` result (its pairs index ``inputs``).
            inputs: ``(n, ...)`` the measured sample, to keep each pair's two inputs.
            index_map: dataset index of every sample position (``Sample.indices``); without it
                the positions are the indices.
            max_pairs: most pairs kept (conflicts first).
            class_names: the name of each class id, shown beside the labels.

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
            class_names=None if class_names is None else tuple(str(c) for c in class_names),
        )

    def label_text(self, label: Label) -> str:
        """A label for people: ``"1 (pneumonia)"`` with class names, else the id.

        Example:
            >>> SharpPairsFinding((), class_names=("normal", "pneumonia")).label_text(1)
            '1 (pneumonia)'
        """
        text = format_label(label)
        names = self.class_names
        if names is not None and isinstance(label, int) and 0 <= label < len(names):
            return f"{text} ({names[label]})"
        return text

    @property
    def conflicts(self) -> tuple[PairExample, ...]:
        """The label conflicts among :attr:`pairs`."""
        return tuple(pair for pair in self.pairs if pair.conflict)

    def figure(self, *, max_rows: int = 8, columns: int | None = 1) -> Figure | None:
        """The pairs as an image grid (:func:`~.render.render_sharp_pairs`)."""
        from lightning_dataprops.findings.render import render_sharp_pairs

        return render_sharp_pairs(self, max_rows=max_rows, columns=columns)

    def to_markdown(self) -> str:
        """``K_F``, ``n`` and the pairs as a markdown table (dataset indices).

        Example:
            >>> pair = PairExample(3, 7, 0, 1, 0.5, 2.0)
            >>> print(SharpPairsFinding((pair,), K_F=2.0, n=10).to_markdown().splitlines()[-1])
            | 3 | 7 | 0 | 1 | 0.5 | 2 |  |
        """
        head = f"## {self.title}\n\nK_F = {self.K_F}, n = {self.n}"
        if self.n_conflicts:
            head += f", **{self.n_conflicts} label conflict(s)** (identical inputs)"
        rows = [
            f"| {p.index_i} | {p.index_j} | {markdown_cell(self.label_text(p.label_i))} "
            f"| {markdown_cell(self.label_text(p.label_j))} | {format_number(p.distance, 6)} "
            f"| {format_number(p.sharpness, 6)} | {'yes' if p.conflict else ''} |"
            for p in self.pairs
        ]
        table = [
            "| index i | index j | label i | label j | distance | sharpness | conflict |",
            "|---|---|---|---|---|---|---|",
            *rows,
        ]
        return "\n".join([head, "", *table])

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return to_jsonable(
            {
                "key": self.key,
                "title": self.title,
                "K_F": self.K_F,
                "n": self.n,
                "n_conflicts": self.n_conflicts,
                "class_names": None if self.class_names is None else list(self.class_names),
                "pairs": [pair.to_dict() for pair in self.pairs],
            }
        )
