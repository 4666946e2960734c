"""`hb.within_between`: the within- and between-group slopes of every predictor that varies at
both levels, and whether they differ (the random-effects assumption; the test and its columns
are described in `hierbayes.mundlak`).

>>> hb.within_between("y ~ x + (1 | g)", data)                 # REML
>>> hb.within_between(reml_fit)                                # the fit's own method
>>> hb.within_between(bayes_fit)                               # a NUTS refit: the posterior of D

When a term is flagged, the split model estimates both slopes:
``hb.fit_reml("y ~ within(x, g) + between(x, g) + (1 | g)", data)``.
"""

from __future__ import annotations

import pandas as pd

from . import mundlak
from .design import Design
from .errors import HierbayesError
from .reml import fit_reml
from .reml.api import refit_like


def within_between(model, data: pd.DataFrame | None = None, family: str = "gaussian", *,
                   alpha: float = mundlak.ALPHA, **fit_options) -> pd.DataFrame:
    """One row per predictor × grouping factor where the predictor varies within and between
    the groups (of a factor with a varying intercept):

    - `within` W, `between` B: the two slopes (the split model's coefficients);
    - `difference` D = B − W, `std_error` its SE (posterior SD for a `BayesFit`),
      `statistic` D / SE, `p_value` (Wald, or the posterior tail probability), `flagged`
      (p < `alpha`, default 0.01);
    - `estimate`: the model's own single slope (a mix of W and B), `within_std_error`.

    `model`: a formula (with `data` and `family`; `fit_options` go to `fit_reml`), a `RemlFit`
    (refit by its own method) or a `BayesFit` (refit by NUTS with the same priors and sampler
    settings). The frame is empty when no predictor varies at both levels; ``attrs`` hold
    `alpha` and the `method`.
    """
    if isinstance(alpha, bool) or not (isinstance(alpha, float | int) and 0 < alpha < 1):
        raise HierbayesError(f"alpha must be a probability between 0 and 1, got {alpha!r}.")
    if isinstance(model, str | Design):
        fit = fit_reml(model, data, family=family, check_within=False, **fit_options)
        return mundlak.table(fit, lambda design: refit_like(fit, design), alpha)
    method = getattr(model, "method", None)
    if method == "NUTS":
        return mundlak.table(model, lambda design: _bayes_refit(model, design), alpha)
    if method in ("REML", "ML", "Laplace"):
        return mundlak.table(model, lambda design: refit_like(model, design), alpha)
    raise HierbayesError(
        f"within_between takes a formula (with data), a RemlFit or a BayesFit; got "
        f"{type(model).__name__}."
    )


def _bayes_refit(fit, design: Design):
    """NUTS on `design` with `fit`'s prior overrides (defaults for the added columns) and its
    sampler settings."""
    from .bayes import sample
    from .bayes.model import model_from_design

    spec = model_from_design(design, fit.priors.overrides, fit.link)
    keep = ("draws", "tune", "chains", "random_seed", "sampler", "target_accept")
    settings = {k: fit.settings[k] for k in keep if k in fit.settings}
    return sample(spec, progressbar=False, marginalize=fit.settings.get("marginalize"),
                  **settings)
