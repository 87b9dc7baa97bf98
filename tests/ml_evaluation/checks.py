"""Independent checks used by the evaluation tests: PNG decoding and HTML parsing."""

from __future__ import annotations

import io
from html.parser import HTMLParser

import numpy as np


def assert_png(data: bytes) -> tuple[int, int]:
    """A decodable PNG that is not blank (its pixels vary); returns (width, height)."""
    from PIL import Image

    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    image = Image.open(io.BytesIO(data))
    image.load()
    assert image.format == "PNG"
    pixels = np.asarray(image.convert("L"), dtype=float)
    assert pixels.size > 0
    assert pixels.std() > 5, "the image is blank"
    return image.size


class ParsedHTML(HTMLParser):
    """Tags with their attributes and all text, as a browser would see them."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def all_text(self) -> str:
        return " ".join(self.text)

    def find(self, tag: str) -> list[dict[str, str | None]]:
        return [attrs for name, attrs in self.tags if name == tag]
