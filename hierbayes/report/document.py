"""A report as a small tree of blocks, rendered to HTML (`html`) or Markdown (`markdown`).

Section builders produce these blocks from the fits' tables; renderers only lay them out. Keeping
one tree for both outputs is what keeps the HTML and the Markdown reports saying the same thing.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field

import pandas as pd


@dataclass(frozen=True)
class Text:
    """A paragraph of plain text (escaped by the renderer)."""

    text: str
    style: str = ""  # "", "note" (an aside), "warn" (a failed check) or "ok"


@dataclass(frozen=True)
class Subheading:
    text: str


@dataclass(frozen=True)
class Code:
    """Literal text such as a formula."""

    text: str


@dataclass(frozen=True)
class Bullets:
    items: tuple[str, ...]


@dataclass(frozen=True)
class Table:
    """A DataFrame shown as is (numbers formatted by the renderer), with a caption saying what it
    is and which interval it shows."""

    frame: pd.DataFrame
    caption: str = ""
    index: bool = False  # show the index as the first column
    row_styles: tuple[str, ...] = ()  # per row: "", "warn" or "ok"


@dataclass(frozen=True)
class Figure:
    name: str  # file-name stem for the Markdown version
    png: bytes
    caption: str = ""


@dataclass(frozen=True)
class Details:
    """Collapsed by default (HTML <details>): long tables that most readers skip."""

    summary: str
    blocks: tuple = ()


@dataclass(frozen=True)
class Section:
    title: str
    blocks: tuple = ()

    @property
    def anchor(self) -> str:
        return slug(self.title)


@dataclass(frozen=True)
class Document:
    title: str
    subtitle: str = ""
    sections: tuple[Section, ...] = field(default_factory=tuple)
    alert: str = ""  # shown under the title before anything else (a failed sampler check)

    def figures(self) -> list[Figure]:
        return [b for b in walk(self) if isinstance(b, Figure)]


def walk(document: Document):
    """Every block of the document, depth first."""
    stack = [b for s in reversed(document.sections) for b in reversed(s.blocks)]
    while stack:
        block = stack.pop()
        yield block
        if isinstance(block, Details):
            stack.extend(reversed(block.blocks))


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "section"


def png_of(figure, dpi: int = 96) -> bytes:
    """PNG bytes of a matplotlib Figure (or an arviz_plots PlotCollection); closes it so that a
    notebook does not display it a second time."""
    import matplotlib.pyplot as plt

    if hasattr(figure, "get_viz"):  # arviz_plots.PlotCollection
        figure = figure.get_viz("figure")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()
