"""Reading the HTML pages back in tests: their pictures, their text, what they would fetch."""

from __future__ import annotations

import base64
import io
from html.parser import HTMLParser
from pathlib import Path

from PIL import Image


class Page(HTMLParser):
    """An HTML page's ``<img>`` sources and alt texts, visible text and external references."""

    def __init__(self) -> None:
        super().__init__()
        self.images: list[str] = []
        self.alts: list[str] = []
        self.external: list[str] = []
        self.text: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "img":
            self.images.append(values.get("src") or "")
            self.alts.append(values.get("alt") or "")
        if tag in ("script", "link", "iframe"):
            self.external.append(tag)
        if tag in ("style", "title"):
            self._skip += 1
        for value in values.values():
            if value and value.startswith(("http:", "https:", "//")):
                self.external.append(value)

    def handle_endtag(self, tag: str) -> None:
        if tag in ("style", "title"):
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.text.append(data)

    @property
    def words(self) -> str:
        """The visible text, whitespace collapsed."""
        return " ".join(" ".join(self.text).split())


def read_page(path: Path) -> Page:
    page = Page()
    page.feed(path.read_text(encoding="utf-8"))
    return page


def decoded(src: str) -> Image.Image:
    """The PNG of a data URI, decoded (fails on anything else)."""
    prefix = "data:image/png;base64,"
    assert src.startswith(prefix)
    image = Image.open(io.BytesIO(base64.b64decode(src[len(prefix) :])))
    image.load()
    return image


def position(words: str, needle: str) -> float:
    """Where ``needle`` first stands in the text, as a fraction of the text's length."""
    at = words.find(needle)
    assert at >= 0, f"{needle!r} is not in the page"
    return at / len(words)
