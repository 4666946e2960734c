"""The report's plots as PNG `Figure` blocks.

A plot that cannot be drawn (an unusual posterior, a plotting-library change) becomes a note in
the report and a warning, not a failed report: the tables are the report's substance.
"""

from __future__ import annotations

import warnings

from .. import naming
from ..errors import HierbayesWarning
from .document import Figure, Text, png_of
from .format import percent

MAX_RANK_PANELS = 12  # more makes the rank plot too small to read
MAX_FOREST_LEVELS = 40  # beyond this, show the extremes only
MAX_SHRINKAGE_PLOTS = 4
MAX_FORESTS = 4


def drawn(name: str, caption: str, draw) -> Figure | Text:
    """`draw()` -> Figure block, or a note saying why the plot is missing."""
    try:
        return Figure(name, png_of(draw()), caption)
    except Exception as err:  # a missing plot must not lose the whole report
        what = caption.split(":")[0].lower()
        message = f"The {what} could not be drawn: {type(err).__name__}: {err}"
        warnings.warn(message, HierbayesWarning, stacklevel=2)
        return Text(message, "note")


def rank_variables(posterior, design) -> list[str]:
    """Hyperparameters first (where sampling problems show), then fixed effects, within a
    panel budget. Correlation matrices are left out: their diagonal is constant."""
    names = [naming.sd(b) for b in design.blocks]
    names += [n for n in naming.FAMILY_PARAMETERS if n in posterior]
    names.append(naming.BETA)
    chosen, panels = [], 0
    for name in names:
        if name not in posterior:
            continue
        size = int(posterior[name].isel(chain=0, draw=0).size)
        if chosen and panels + size > MAX_RANK_PANELS:
            continue
        chosen.append(name)
        panels += size
    return chosen


def rank_plot(idata, var_names: list[str]):
    """ArviZ's rank plot with one-line panel titles (stacked titles ran into the panel above)
    and without its multi-chain test's p-value, a different test from the R-hat and ESS checks
    whose verdict the report states (a p of 0.00 beside "all checks pass" only confuses)."""
    import arviz_plots as azp
    from arviz_base.labels import BaseLabeller

    class OneLine(BaseLabeller):
        def make_label_vert(self, var_name, sel, isel):
            return self.make_label_flat(var_name, sel, isel)

    panels = sum(int(idata["posterior"][v].isel(chain=0, draw=0).size) for v in var_names)
    rows = -(-panels // 3)
    figure = azp.plot_rank(idata, var_names=var_names, labeller=OneLine(), col_wrap=3,
                           visuals={"title": {"size": 9}},
                           figure_kwargs={"figsize": (10, 2.3 * rows)}).get_viz("figure")
    # arviz_plots draws the p-values as plain text and does not accept turning them off
    # (its visuals validation omits the key it reads), so they are removed here.
    for ax in figure.axes:
        for text in list(ax.texts):
            if text.get_text().startswith("p="):
                text.remove()
    figure.tight_layout()
    return figure


def fit_figures(fit, ci_prob: float) -> list:
    import arviz_plots as azp

    idata, design = fit.idata, fit.design
    posterior = idata["posterior"]
    out = [drawn("rank", "Rank plot: fractional ranks of each chain (Δ-ECDF); chains that "
                 "explore the same posterior stay close to zero, and suspicious stretches are "
                 "marked. The verdict on convergence is the sampling diagnostics table",
                 lambda: rank_plot(idata, rank_variables(posterior, design)))]
    forests = [(b, t) for b in design.blocks if naming.r(b) in posterior for t in b.terms]
    for block, term in forests[:MAX_FORESTS]:
        out.append(drawn(
            f"forest-{_stem(block.name)}-{_stem(term)}",
            f"Forest plot: {term} by {block.group}, deviations from the fixed effect "
            f"(posterior median, 50% and {percent(ci_prob)} equal-tailed intervals)"
            + _levels_note(block),
            lambda b=block, t=term: azp.plot_forest(
                idata, var_names=[naming.r(b)], coords=_forest_coords(fit, b, t),
                combined=True, ci_kind="eti", ci_probs=(0.5, ci_prob)),
        ))
    if "posterior_predictive" in idata.children:
        out.append(ppc_figure(idata, design.family.response, ci_prob))
    else:
        out.append(Text("No posterior predictive check: call fit.sample_posterior_predictive() "
                        "before rendering the report to include one.", "note"))
    return out


def ppc_figure(idata, response: str, ci_prob: float):
    """A density overlay for continuous responses; counts get a rootogram and binary responses a
    PAVA calibration plot, since densities of discrete data mislead (ArviZ warns about them)."""
    import arviz_plots as azp

    if response == "binary":
        return drawn("ppc", "Posterior predictive check: PAVA calibration of the predicted "
                     "probabilities against the observed 0/1 outcomes",
                     lambda: azp.plot_ppc_pava(idata))
    if response in ("binomial", "count"):
        return drawn("ppc", "Posterior predictive check: rootogram of observed counts against "
                     f"the posterior predictive ({percent(ci_prob)} intervals)",
                     lambda: azp.plot_ppc_rootogram(idata, ci_prob=ci_prob))
    return drawn("ppc", "Posterior predictive check: observed response against replicated "
                 "data sets drawn from the posterior", lambda: azp.plot_ppc_dist(idata,
                                                                                 num_samples=50))


def _levels_note(block) -> str:
    if block.n_levels <= MAX_FOREST_LEVELS:
        return ""
    half = MAX_FOREST_LEVELS // 2
    return f"; the {half} lowest and {half} highest of {block.n_levels} levels"


def _forest_coords(fit, block, term: str) -> dict:
    """One term (terms have different scales); all levels when few, else the most extreme."""
    coords = {block.term_dim: [term]}
    if block.n_levels <= MAX_FOREST_LEVELS:
        return coords
    table = fit.ranef()
    part = table[(table["group"] == block.group) & (table["term"] == term)]
    part = part.sort_values("estimate")
    half = MAX_FOREST_LEVELS // 2
    coords[block.level_dim] = list(part["level"].head(half)) + list(part["level"].tail(half))
    return coords


def comparison_figures(cmp) -> list:
    method = cmp.method
    out = [drawn("compare-forest", "Forest plot: posterior intervals of the fixed effects, SDs "
                 f"and correlations (one shared axis per class), with the {method} estimates",
                 cmp.plot_forest),
           drawn("compare-variance", "Variance components: posterior densities (boundary-"
                 f"corrected KDE) with their intervals, priors and the {method} estimates",
                 cmp.plot_variance)]
    pairs = cmp.groups[["group", "term"]].drop_duplicates().itertuples(index=False)
    for i, (group, term) in enumerate(pairs):
        if i >= MAX_SHRINKAGE_PLOTS:
            break
        out.append(drawn(
            f"shrinkage-{_stem(group)}-{_stem(term)}",
            f"Shrinkage plot: {term} by {group}: no pooling, {method} and posterior mean (with "
            "its interval) against group size",
            lambda g=group, t=term: cmp.plot_shrinkage(group=g, term=t),
        ))
    return out


def _stem(text: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in str(text)).strip("-").lower() or "x"
