"""Likelihood-ratio tests of nested fits: `hb.anova(fit_small, fit_big, ...)`, lme4's anova.merMod.

REML criteria of models with different fixed effects are not comparable (the REML likelihood is
that of residual contrasts, which differ with X), so, as lme4 does, every REML fit is refitted
by ML first (`refit=True`, the default); the table says so in `attrs["refit"]`. The models are
ordered by their number of parameters and each is tested against the one before it:
Chisq = the drop in deviance (−2 logLik), Df = the rise in parameters, Pr(>Chisq) its χ²
upper tail. Like lme4, nothing checks that the models really are nested; that is the caller's
claim (the p-value means nothing otherwise).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import chi2

from ..errors import HierbayesError
from .refit import ml_refit
from .results import RemlFit, warn_status

COLUMNS = ["npar", "AIC", "BIC", "logLik", "deviance", "Chisq", "Df", "Pr(>Chisq)"]


def anova(*fits: RemlFit, refit: bool = True, names=None) -> pd.DataFrame:
    """The likelihood-ratio table of two or more fits of the same response and data (lme4's
    columns: npar, AIC, BIC, logLik, deviance, Chisq, Df, Pr(>Chisq)), one row per model in
    order of npar. `names` labels the rows (default "model1", "model2", ... in argument order);
    `formula` and `method` columns say what was compared. With `refit=False` REML fits are
    compared as they are, which is only allowed when they share their fixed effects."""
    _check(fits)
    names = [f"model{k + 1}" for k in range(len(fits))] if names is None else list(names)
    if len(names) != len(fits) or len(set(names)) != len(names):
        raise HierbayesError(f"names must give {len(fits)} distinct labels, got {names!r}.")
    refitted = [fit.method == "REML" for fit in fits]
    if any(refitted) and refit:
        fits = tuple(refit_ml(fit) if r else fit for fit, r in zip(fits, refitted, strict=True))
    elif any(refitted):
        _check_same_fixed_effects(fits)
    order = sorted(range(len(fits)), key=lambda k: fits[k].n_params)  # stable: ties keep order
    rows = [_row(fits[k]) for k in order]
    table = pd.DataFrame(rows, index=pd.Index([names[k] for k in order], name="model"))
    deviance, npar = table["deviance"].to_numpy(), table["npar"].to_numpy()
    chisq = np.concatenate([[np.nan], np.maximum(0.0, -np.diff(deviance))])
    df = np.concatenate([[np.nan], np.diff(npar).astype(float)])
    with np.errstate(invalid="ignore"):
        p = np.where(df > 0, chi2.sf(chisq, np.where(df > 0, df, 1)), np.nan)
    table["Chisq"], table["Df"], table["Pr(>Chisq)"] = chisq, df, p
    table = table[[*COLUMNS, "formula", "method"]]
    table.attrs["refit"] = bool(any(refitted) and refit)
    table.attrs["note"] = ("REML fits refitted by ML (as lme4's anova)" if table.attrs["refit"]
                           else "fits compared as given")
    return table


def refit_ml(fit: RemlFit) -> RemlFit:
    """The same model and data fitted by ML (lme4's refitML), from the fit's own θ; warns as
    fit_reml does when that fit does not converge or is singular."""
    if fit.method != "REML":
        return fit
    ml = ml_refit(fit)
    warn_status(ml, ml.optim.message, ml.optim.gradient, ml.deviance.thetas, ml.theta,
                stacklevel=4)
    return ml


def _row(fit: RemlFit) -> dict:
    return {"npar": fit.n_params, "AIC": fit.aic, "BIC": fit.bic, "logLik": fit.loglik,
            "deviance": fit.criterion, "formula": fit.design.formula, "method": fit.method}


def _check(fits) -> None:
    if len(fits) < 2 or not all(isinstance(f, RemlFit) for f in fits):
        kinds = ", ".join(type(f).__name__ for f in fits)
        raise HierbayesError(
            f"anova compares two or more fit_reml fits of nested models; got {len(fits)} "
            f"argument(s) ({kinds}). Pass the fits themselves: hb.anova(small, big)."
        )
    first = fits[0]
    for fit in fits[1:]:
        same_rows = _same_rows(fit.design, first.design)
        if not same_rows:
            raise HierbayesError(
                f"anova needs every model fitted to the same response on the same rows; "
                f"{first.design.formula!r} ({first.design.n_obs} rows) and "
                f"{fit.design.formula!r} ({fit.design.n_obs} rows) differ. Refit them on one "
                "data frame with the rows any model drops (missing values) removed first."
            )
        if (fit.family, fit.method == "Laplace") != (first.family, first.method == "Laplace"):
            raise HierbayesError(
                f"anova compares fits of one family; got {first.family} and {fit.family}."
            )


def _check_same_fixed_effects(fits) -> None:
    first = fits[0].design
    for fit in fits[1:]:
        if fit.design.fixed_names != first.fixed_names or not _same_fixed(fit.design, first):
            raise HierbayesError(
                "REML criteria of models with different fixed effects are not comparable: "
                f"{first.formula!r} and {fit.design.formula!r}. Use refit=True (refit by ML, "
                "as lme4 does) or fit them with method='ML'."
            )


def _same_rows(a, b) -> bool:
    if a.moments is not None or b.moments is not None:  # from Dask frames: their sums
        from ..bigdata.summaries import same_response

        return same_response(a, b)
    return (a.n_obs == b.n_obs and a.row_labels.equals(b.row_labels)
            and np.array_equal(a.y, b.y))


def _same_fixed(a, b) -> bool:
    if a.moments is not None:
        from ..bigdata.summaries import same_fixed

        return same_fixed(a, b)
    return np.allclose(a.X, b.X)
