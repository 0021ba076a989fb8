"""Findings read as text: a titled warning, the callbacks' configuration."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from torch import Tensor

from lightning_dataprops.findings._jsonable import PlainValue, to_jsonable
from lightning_dataprops.findings.format import markdown_cell

__all__ = ["HyperparametersFinding", "TextFinding"]


@dataclass(frozen=True)
class TextFinding:
    """A titled markdown text, e.g. a warning and its explanation.

    Attributes:
        title: one line.
        body: markdown.
        key: file and tag name (give each distinct text its own key).
        level: ``"info"`` or ``"warning"``. Loggers that notify people (W&B) turn a warning
            into an alert.
        alert_wait_s: at most one alert of this ``key`` per run within this many seconds
            (a notification setting: not part of the finding's content or JSON).
    """

    title: str
    body: str
    key: str = "text"
    level: str = "info"
    alert_wait_s: float = field(default=3600.0, compare=False)

    @property
    def markdown(self) -> str:
        """The title as a heading above the body."""
        return f"## {self.title}\n\n{self.body}\n"

    def to_markdown(self) -> str:
        """:attr:`markdown`."""
        return self.markdown

    def figure(self, **options: Any) -> None:
        """A text has no figure."""
        del options

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

    def to_markdown(self) -> str:
        """The parameters as a two-column markdown table.

        Example:
            >>> print(HyperparametersFinding({"dataprops/k": 20}).to_markdown().splitlines()[-1])
            | dataprops/k | 20 |
        """
        rows = [
            f"| {markdown_cell(name)} | {markdown_cell(value)} |"
            for name, value in self.params.items()
        ]
        return "\n".join([f"## {self.title}", "", "| name | value |", "|---|---|", *rows])

    def figure(self, **options: Any) -> None:
        """Hyperparameters have no figure."""
        del options

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary."""
        return to_jsonable({"key": self.key, "title": self.title, "params": dict(self.params)})
