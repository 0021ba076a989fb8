"""The pieces every HTML view is made of: the page shell, the summary card, tables, pictures.

One style for the dataset report (``dataprops measure --report``), the run report (written at
fit end, ``dataprops report LOG_DIR``) and the notebook cards (``_repr_html_``). Everything is
inline: pictures as base64 PNG data URIs, style in the page's ``<style>`` (the card carries its
own inline style too, since a notebook shows it without the page's). Nothing is fetched.

Example:
    >>> html = card("Dataset", [("samples", "3,882"), ("d_data", "15.2")],
    ...             verdict=Verdict("warn", "Sharp labels", "1.23x the natural maximum."))
    >>> "Sharp labels" in html and html.startswith("<div")
    True
    >>> page("t", [html]).startswith("<!DOCTYPE html>")
    True
"""

from __future__ import annotations

import base64
import html
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lightning_dataprops.findings.format import format_number

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "Verdict",
    "card",
    "escape",
    "figure_tag",
    "number",
    "page",
    "png_tag",
    "section",
    "table",
]

_COLOURS = {
    "warn": ("#b3261e", "#fdecea"),
    "ok": ("#1e6b34", "#e8f5ec"),
    "info": ("#3b4a5c", "#eef2f7"),
}

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 66em;
       margin: 1.5em auto; padding: 0 1em; color: #1f2328; line-height: 1.45; }
h1 { font-size: 1.5em; margin: 0 0 0.6em; }
h2 { font-size: 1.2em; margin: 1.8em 0 0.4em; border-bottom: 1px solid #d8dee4;
     padding-bottom: 0.2em; }
h3 { font-size: 1.02em; margin: 1.2em 0 0.3em; }
table { border-collapse: collapse; margin: 0.4em 0 1em; font-size: 0.92em; }
td, th { border: 1px solid #d8dee4; padding: 0.25em 0.6em; text-align: left;
         vertical-align: top; }
th { background: #f6f8fa; }
.note { color: #57606a; font-size: 0.9em; }
.warning { background: #fff4e5; border-left: 4px solid #c05600; padding: 0.5em 1em; }
.figures { display: flex; flex-wrap: wrap; gap: 1em; align-items: flex-start; }
.figures figure { margin: 0; flex: 1 1 28em; }
figcaption { color: #57606a; font-size: 0.88em; margin-top: 0.2em; }
img { max-width: 100%; height: auto; }
dl.terms dt { font-weight: 600; margin-top: 0.4em; }
dl.terms dd { margin: 0.1em 0 0.3em 1.2em; }
details { margin: 0.6em 0; }
summary { cursor: pointer; color: #0b5cad; }
"""


@dataclass(frozen=True)
class Verdict:
    """The answer a card leads with.

    Attributes:
        level: ``"warn"`` (red), ``"ok"`` (green) or ``"info"`` (grey).
        headline: a few words, e.g. ``"Sharp labels"``.
        detail: one or two plain sentences: the factor against the references, what to do.
    """

    level: str
    headline: str
    detail: str = ""


def escape(value: Any) -> str:
    """``value`` as HTML text."""
    return html.escape(str(value))


def number(value: Any, digits: int = 4) -> str:
    """A value for a table cell: numbers through the one formatter, the rest by ``str``."""
    if value is None or (isinstance(value, float) and not isinstance(value, bool)):
        return format_number(value, digits)
    return str(value)


def table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """An HTML table; cells are escaped (numbers formatted)."""
    head = "".join(f"<th>{escape(cell)}</th>" for cell in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(number(cell))}</td>" for cell in row) + "</tr>"
        for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def png_tag(png: bytes, alt: str, *, width: int | None = None, cls: str = "") -> str:
    """An ``<img>`` holding ``png`` as a data URI (``width``: CSS pixels to show it at)."""
    data = base64.b64encode(png).decode("ascii")
    size = f' width="{width}"' if width else ""
    klass = f' class="{cls}"' if cls else ""
    return f'<img alt="{escape(alt)}"{klass}{size} src="data:image/png;base64,{data}">'


def figure_tag(figure: Figure | None, alt: str, *, dpi: int = 100, width: int | None = None) -> str:
    """The figure as an embedded PNG ``<img>`` (``""`` for no figure)."""
    if figure is None:
        return ""
    from lightning_dataprops.findings.render import figure_to_png

    return png_tag(figure_to_png(figure, dpi=dpi), alt, width=width)


def section(title: str, *parts: str, anchor: str = "") -> str:
    """A titled section (``""`` when every part is empty)."""
    if not any(parts):
        return ""
    name = f' id="{escape(anchor)}"' if anchor else ""
    return f"<section{name}><h2>{escape(title)}</h2>{''.join(parts)}</section>"


def card(
    title: str,
    rows: Sequence[tuple[str, str]],
    *,
    verdict: Verdict | None = None,
    picture: str = "",
    note: str = "",
    anchor: str = "summary",
) -> str:
    """The summary card: a title, the verdict in colour, key numbers as label/value rows, an
    optional small picture beside them and a note. Inline style, so it looks the same in a
    report and in a notebook. Row values are plain text (escaped); ``picture`` is HTML.

    Example:
        >>> "d_data" in card("Result", [("d_data", "9.5 [9.1, 9.9]")])
        True
    """
    parts = [
        f'<div id="{escape(anchor)}" class="dataprops-card" style="border:1px solid #d0d7de;'
        "border-radius:10px;padding:14px 18px;margin:8px 0 18px;background:#fff;"
        'box-shadow:0 1px 3px rgba(0,0,0,.08);font-family:system-ui,sans-serif;max-width:62em">',
        f'<div style="font-size:1.15em;font-weight:600;margin-bottom:6px">{escape(title)}</div>',
    ]
    if verdict is not None:
        ink, paper = _COLOURS.get(verdict.level, _COLOURS["info"])
        parts.append(
            f'<div class="dataprops-verdict" style="background:{paper};border-left:5px solid '
            f'{ink};padding:8px 12px;margin:6px 0 10px;border-radius:4px">'
            f'<div style="color:{ink};font-weight:700;font-size:1.1em">'
            f"{escape(verdict.headline)}</div>"
            + (
                f'<div style="margin-top:3px">{escape(verdict.detail)}</div>'
                if verdict.detail
                else ""
            )
            + "</div>"
        )
    cells = "".join(
        f'<tr><td style="color:#57606a;padding:2px 14px 2px 0;border:none;vertical-align:top;'
        f'white-space:nowrap">{escape(label)}</td><td style="padding:2px 0;border:none">'
        f"{escape(value)}</td></tr>"
        for label, value in rows
    )
    grid = f'<table style="border-collapse:collapse;margin:0">{cells}</table>'
    if picture:
        grid = (
            '<div style="display:flex;gap:18px;flex-wrap:wrap;align-items:flex-start">'
            f"<div>{grid}</div><div>{picture}</div></div>"
        )
    parts.append(grid)
    if note:
        parts.append(
            f'<div style="color:#57606a;font-size:.88em;margin-top:8px">{escape(note)}</div>'
        )
    parts.append("</div>")
    return "".join(parts)


def page(title: str, parts: Sequence[str], *, lead: str = "") -> str:
    """A complete, self-contained HTML document."""
    intro = f'<p class="note">{escape(lead)}</p>' if lead else ""
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><h1>{escape(title)}</h1>{intro}{''.join(parts)}</body></html>\n"
    )
