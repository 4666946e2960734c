"""Reports of fits and comparisons: a rich display in notebooks, one self-contained HTML file and
a Markdown version on disk. This package formats what the fits and the comparison computed; it
estimates nothing itself.

- `fit_report(fit, path=None, comparison=None)`: a `BayesFit` (or a `RemlFit`) with, when a
  comparison (`hb.compare(bayes, reml)`) is given, the comparison with the REML/ML/Laplace fit.
- `comparison_report(cmp, path=None)`: the comparison alone.
- `fit_html(fit)` / `comparison_html(cmp)`: the HTML fragment for ``_repr_html_``.

With a `path`, the report is written as ``report.html`` (everything inline: CSS, plots as base64
PNG; no script, no network) and ``report.md`` beside it, whose plots are PNG files in
``report_files/``. `path` is a folder, or the HTML file's name (the Markdown then takes the same
stem). Without a path the returned `Report` displays itself in a notebook.

Intervals are 95 % equal-tailed by default (`ci_prob`), stated on every table. Every report of a
posterior carries its sampler diagnostics; when a check failed, the header says so first
(`hierbayes.report.checks`). Headings, captions and legends name the frequentist method the fit
used (REML, ML or Laplace).
"""

from __future__ import annotations

from pathlib import Path

from .. import __version__, atomic
from ..tidy import CI_PROB
from . import html, markdown
from .checks import sampler_alert
from .comparison import comparison_sections
from .document import Document, Section
from .figures import comparison_figures, fit_figures
from .sections import (
    fixed_section,
    groups_section,
    intervals_note,
    is_bayes,
    model_section,
    reml_section,
    sampling_section,
    variance_section,
)

__all__ = [
    "Report",
    "comparison_document",
    "comparison_html",
    "comparison_report",
    "fit_document",
    "fit_html",
    "fit_report",
]



class Report:
    """A rendered report: `html` (the standalone page), `markdown()`, `save(path)`."""

    def __init__(self, document: Document):
        self.document = document
        self.html_path: Path | None = None
        self.markdown_path: Path | None = None

    @property
    def html(self) -> str:
        return html.page(self.document)

    def markdown(self, figure_dir: str | None = None) -> str:
        return markdown.render(self.document, figure_dir)

    def save(self, path) -> Report:
        """Write the HTML file and the Markdown version (plus its PNG folder)."""
        path = Path(path)
        html_path = path if path.suffix.lower() in (".html", ".htm") else path / "report.html"
        html_path.parent.mkdir(parents=True, exist_ok=True)
        # Each file (and the PNG folder as a whole) is complete or absent (`hierbayes.atomic`).
        atomic.write_text(html_path, self.html)
        md_path = html_path.with_suffix(".md")
        figure_dir = f"{md_path.stem}_files"
        figures = self.document.figures()
        if figures:
            def fill(folder: Path) -> None:
                for fig in figures:
                    (folder / f"{fig.name}.png").write_bytes(fig.png)

            atomic.replace_dir(md_path.parent / figure_dir, fill)
        atomic.write_text(md_path, self.markdown(figure_dir))
        self.html_path, self.markdown_path = html_path, md_path
        return self

    def _repr_html_(self) -> str:
        return html.fragment(self.document)

    def __repr__(self) -> str:
        where = f", written to {self.html_path}" if self.html_path else ""
        return f"<Report {self.document.title!r}: {len(self.document.sections)} sections{where}>"


def fit_document(fit, comparison=None, *, ci_prob: float = CI_PROB, title=None,
                 description: str = "", plots: bool = True) -> Document:
    bayes = is_bayes(fit)
    model = model_section(fit, description)
    sections = [Section(model.title, (intervals_note(ci_prob, bayes), *model.blocks))]
    diagnostics = _diagnostics(fit, comparison)
    sections.append(sampling_section(fit, diagnostics) if bayes else reml_section(fit))
    sections += [fixed_section(fit, ci_prob), variance_section(fit, ci_prob),
                 groups_section(fit, ci_prob)]
    if plots and bayes:
        sections.append(Section("Plots", tuple(fit_figures(fit, ci_prob))))
    if comparison is not None:
        sections += comparison_sections(comparison)
        if plots:
            sections.append(Section(f"Plots: Bayes vs {comparison.method}",
                                    tuple(comparison_figures(comparison))))
    kind = "Bayesian (NUTS)" if bayes else fit.method
    what = "estimates" if comparison is None else "estimates or the comparison"
    return Document(title or f"hierbayes report: {fit.design.formula}",
                    f"{kind} fit of {fit.design.formula} — {_version()}", tuple(sections),
                    alert=sampler_alert(diagnostics, what))


def _diagnostics(fit, comparison):
    """The posterior's checks: those the comparison kept, else the fit's own (None for a
    frequentist fit)."""
    if comparison is not None and comparison.diagnostics is not None:
        return comparison.diagnostics
    return fit.diagnostics() if is_bayes(fit) else None


def comparison_document(cmp, *, title=None, description: str = "",
                        plots: bool = True) -> Document:
    model = model_section(cmp.bayes, description)
    sections = [Section(model.title, (intervals_note(cmp.ci_prob, True), *model.blocks))]
    diagnostics = _diagnostics(cmp.bayes, cmp)
    sections.append(sampling_section(cmp.bayes, diagnostics))
    sections += comparison_sections(cmp)
    if plots:
        sections.append(Section(f"Plots: Bayes vs {cmp.method}",
                                tuple(comparison_figures(cmp))))
    formula = cmp.design.formula
    return Document(title or f"hierbayes comparison: {formula}",
                    f"Posterior (NUTS) vs {cmp.method} fit of {formula} — {_version()}",
                    tuple(sections), alert=sampler_alert(diagnostics, "comparison"))


def fit_report(fit, path=None, comparison=None, **kwargs) -> Report:
    """Report of `fit`, with `comparison` (`hb.compare(bayes, reml)`) when given; written to
    `path` (a folder or an .html file name) when given."""
    report = Report(fit_document(fit, comparison, **kwargs))
    return report.save(path) if path is not None else report


def comparison_report(cmp, path=None, **kwargs) -> Report:
    """Report of a `Comparison`; written to `path` when given."""
    report = Report(comparison_document(cmp, **kwargs))
    return report.save(path) if path is not None else report


def fit_html(fit, plots: bool = False, **kwargs) -> str:
    """HTML fragment for a notebook's display of a fit. Without plots by default: displaying a
    fit should be instant; `fit.report()` has them."""
    return html.fragment(fit_document(fit, plots=plots, **kwargs))


def comparison_html(cmp, plots: bool = True, **kwargs) -> str:
    """HTML fragment for a notebook's display of a comparison (its plots are quick to draw)."""
    return html.fragment(comparison_document(cmp, plots=plots, **kwargs))


def _version() -> str:
    return f"hierbayes {__version__}"
