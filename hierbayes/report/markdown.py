"""`Document` -> Markdown (CommonMark with GitHub tables).

Plots are written as PNG files in a folder beside the Markdown file (``report.md`` ->
``report_files/<name>.png``) and linked relatively, so the Markdown stays small and readable in any
viewer; the HTML report embeds the same plots. Collapsed tables use GitHub's ``<details>``.
"""

from __future__ import annotations

import re

from .document import Bullets, Code, Details, Document, Figure, Subheading, Table, Text
from .format import text_frame

# CommonMark lets any ASCII punctuation be backslash-escaped; these can open markup anywhere in
# running text or a table cell (| ends a cell, < and & start HTML); the others only matter at the
# start of a line (a heading, list or quote), handled there.
_SPECIAL = re.compile(r"([\\`*_\[\]<>|~&])")
_LINE_START = re.compile(r"^(\d*)([#+\-=>.)])")
_PREFIX = {"warn": "**Warning:** ", "ok": "**OK:** ", "note": ""}


def escape_md(text: str, line_start: bool = True) -> str:
    """`text` shown literally; `line_start`: it may begin a line (not inside a table cell)."""
    text = _SPECIAL.sub(r"\\\1", str(text)).replace("\n", " ")
    return _LINE_START.sub(r"\1\\\2", text) if line_start else text


def render(document: Document, figure_dir: str | None) -> str:
    """Markdown text; figures link to ``<figure_dir>/<name>.png`` (omitted when None)."""
    parts = [f"# {escape_md(document.title)}"]
    if document.subtitle:
        parts.append(f"*{escape_md(document.subtitle)}*")
    if document.alert:
        parts.append(f"{_PREFIX['warn']}{escape_md(document.alert)}")
    for sec in document.sections:
        parts.append(f"## {escape_md(sec.title)}")
        parts += [block(b, figure_dir) for b in sec.blocks]
    return "\n\n".join(p for p in parts if p) + "\n"


def block(item, figure_dir: str | None) -> str:
    if isinstance(item, Text):
        prefix = _PREFIX.get(item.style, "")
        text = escape_md(item.text)
        return f"{prefix}{text}" if item.style != "note" else f"*{text}*"
    if isinstance(item, Subheading):
        return f"### {escape_md(item.text)}"
    if isinstance(item, Code):
        return "```\n" + item.text.replace("```", "` ` `") + "\n```"
    if isinstance(item, Bullets):
        return "\n".join(f"- {escape_md(i)}" for i in item.items)
    if isinstance(item, Table):
        return table(item)
    if isinstance(item, Figure):
        if figure_dir is None:
            return ""
        return f"![{escape_md(item.caption or item.name)}]({figure_dir}/{item.name}.png)"
    if isinstance(item, Details):
        inner = "\n\n".join(block(b, figure_dir) for b in item.blocks)
        # Blank lines around the content let GitHub render the Markdown inside <details>.
        summary = escape_md(item.summary)
        return f"<details>\n<summary>{summary}</summary>\n\n{inner}\n\n</details>"
    raise TypeError(f"Unknown report block {type(item).__name__}.")


def table(item: Table) -> str:
    header, rows = text_frame(item.frame, index=item.index)
    lines = [
        "| " + " | ".join(escape_md(h, False) for h in header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
    ]
    lines += ["| " + " | ".join(escape_md(v, False) for v in row) + " |" for row in rows]
    if item.caption:
        lines += ["", f"*{escape_md(item.caption)}*"]
    return "\n".join(lines)
