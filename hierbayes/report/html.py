"""`Document` -> one self-contained HTML page: inline CSS, plots as base64 PNG, no script, no
network. Every piece of text goes through `html.escape` (formulas contain `<`, `>` and `&` as
often as data labels do)."""

from __future__ import annotations

import base64
from html import escape

from .document import Bullets, Code, Details, Document, Figure, Section, Subheading, Table, Text
from .format import text_frame

# Scoped under .hb-report so that, inlined in a notebook, it styles nothing else on the page.
CSS = """
.hb-report { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif;
  color: #1d2433; line-height: 1.45; max-width: 72rem; margin: 0 auto; padding: 0 1rem; }
.hb-report h1 { font-size: 1.6rem; margin: 1rem 0 0.2rem; }
.hb-report h2 { font-size: 1.25rem; border-bottom: 2px solid #d0d7e2; padding-bottom: 0.2rem;
  margin-top: 2rem; }
.hb-report h3 { font-size: 1.02rem; margin: 1.2rem 0 0.3rem; }
.hb-report .subtitle { color: #4a5568; margin: 0 0 1rem; }
.hb-report nav ol { columns: 2; margin: 0.5rem 0 1rem; }
.hb-report code { font-family: ui-monospace, Menlo, Consolas, monospace; background: #f2f4f8;
  padding: 0.1rem 0.3rem; border-radius: 3px; }
.hb-report table { border-collapse: collapse; font-size: 0.88rem; }
.hb-report figure.table { margin: 0.5rem 0 1rem; }
.hb-report th, .hb-report td { border: 1px solid #d0d7e2; padding: 0.2rem 0.5rem; }
.hb-report th { background: #eef2f7; text-align: left; }
.hb-report td.num { text-align: right; font-variant-numeric: tabular-nums; }
.hb-report tr.warn td { background: #fdecea; }
.hb-report tr.ok td { background: #f1f8f2; }
.hb-report .table-wrap { overflow-x: auto; }
.hb-report p.note { color: #4a5568; font-size: 0.9rem; }
.hb-report p.warn { background: #fdecea; border-left: 4px solid #c0392b; padding: 0.3rem 0.6rem; }
.hb-report p.ok { background: #f1f8f2; border-left: 4px solid #2e7d32; padding: 0.3rem 0.6rem; }
.hb-report figure { margin: 1rem 0; }
.hb-report figure img { max-width: 100%; height: auto; }
.hb-report figcaption { color: #4a5568; font-size: 0.82rem; padding-top: 0.2rem; }
.hb-report details { margin: 0.5rem 0; }
.hb-report summary { cursor: pointer; color: #2b4c7e; }
.hb-report.hb-compact h1 { font-size: 1.1rem; margin: 0.4rem 0 0.2rem; }
.hb-report.hb-compact h2 { font-size: 0.95rem; margin: 0.8rem 0 0.3rem; border-bottom-width: 1px; }
.hb-report.hb-compact p { margin: 0.3rem 0; }
"""


def page(document: Document) -> str:
    """The standalone HTML file."""
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        f"<title>{escape(document.title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        f"{body(document)}\n</body>\n</html>\n"
    )


def fragment(document: Document, compact: bool = False) -> str:
    """For notebooks (`_repr_html_`): the same content with its style inlined; `compact` (a
    fit's own display) with small headings and no table of contents."""
    inner = body(document, wrap=False, navigation=not compact)
    cls = "hb-report hb-compact" if compact else "hb-report"
    return f"<div class=\"{cls}\"><style>{CSS}</style>{inner}</div>"


def body(document: Document, wrap: bool = True, navigation: bool = True) -> str:
    parts = [f"<h1>{escape(document.title)}</h1>"]
    if document.subtitle:
        parts.append(f"<p class=\"subtitle\">{escape(document.subtitle)}</p>")
    if document.alert:
        parts.append(f"<p class=\"warn\" role=\"alert\">{escape(document.alert)}</p>")
    if navigation and len(document.sections) > 2:
        items = "".join(
            f"<li><a href=\"#{s.anchor}\">{escape(s.title)}</a></li>" for s in document.sections
        )
        parts.append(f"<nav><ol>{items}</ol></nav>")
    parts += [section(s) for s in document.sections]
    inner = "\n".join(parts)
    return f"<div class=\"hb-report\">\n{inner}\n</div>" if wrap else inner


def section(sec: Section) -> str:
    inner = "\n".join(block(b) for b in sec.blocks)
    return f"<section id=\"{sec.anchor}\">\n<h2>{escape(sec.title)}</h2>\n{inner}\n</section>"


def block(item) -> str:
    if isinstance(item, Text):
        style = f" class=\"{item.style}\"" if item.style else ""
        return f"<p{style}>{escape(item.text)}</p>"
    if isinstance(item, Subheading):
        return f"<h3>{escape(item.text)}</h3>"
    if isinstance(item, Code):
        return f"<p><code>{escape(item.text)}</code></p>"
    if isinstance(item, Bullets):
        return "<ul>" + "".join(f"<li>{escape(i)}</li>" for i in item.items) + "</ul>"
    if isinstance(item, Table):
        return table(item)
    if isinstance(item, Figure):
        return figure(item)
    if isinstance(item, Details):
        inner = "\n".join(block(b) for b in item.blocks)
        return f"<details>\n<summary>{escape(item.summary)}</summary>\n{inner}\n</details>"
    raise TypeError(f"Unknown report block {type(item).__name__}.")


def table(item: Table) -> str:
    header, rows = text_frame(item.frame, index=item.index)
    numeric = _numeric_columns(item)
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    lines = []
    for i, row in enumerate(rows):
        style = item.row_styles[i] if i < len(item.row_styles) else ""
        cls = f" class=\"{style}\"" if style else ""
        cells = "".join(
            f"<td class=\"num\">{escape(v)}</td>" if numeric[j] else f"<td>{escape(v)}</td>"
            for j, v in enumerate(row)
        )
        lines.append(f"<tr{cls}>{cells}</tr>")
    # The caption sits outside the scrolling wrapper so that it wraps at the page's width, not
    # at the width of a wide table.
    caption = f"<figcaption>{escape(item.caption)}</figcaption>" if item.caption else ""
    return (
        f"<figure class=\"table\"><div class=\"table-wrap\"><table><thead><tr>{head}</tr>"
        f"</thead><tbody>{''.join(lines)}</tbody></table></div>{caption}</figure>"
    )


def _numeric_columns(item: Table) -> list[bool]:
    kinds = [str(item.frame[c].dtype) for c in item.frame.columns]
    flags = [k.startswith(("int", "uint", "float", "Int", "Float")) for k in kinds]
    return ([False] if item.index else []) + flags


def figure(item: Figure) -> str:
    data = base64.b64encode(item.png).decode("ascii")
    caption = f"<figcaption>{escape(item.caption)}</figcaption>" if item.caption else ""
    alt = escape(item.caption or item.name)
    return f"<figure><img src=\"data:image/png;base64,{data}\" alt=\"{alt}\">{caption}</figure>"
