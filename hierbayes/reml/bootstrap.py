"""Parametric bootstrap of a fit (lme4's bootMer with its default, `use.u = FALSE`).

Each replicate draws new group effects b ~ N(0, Σ̂) for every level, a new response from the
fitted family given η = Xβ̂ + Zb (Gaussian: noise σ̂/√w_i, or the known SDs), and refits the
same model to it by the same criterion (REML, ML or Laplace / quadrature), starting at θ̂. The
replicates' fixed effects, SDs, correlations and σ give bootstrap standard errors and
percentile intervals. Draws come from one `numpy.random.default_rng(seed)`, so a seed gives the
same replicates every time. A replicate whose refit fails or does not converge is kept in
`replicates` with `converged` False and left out of the summaries.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from .. import naming
from ..blas import one_blas_thread
from ..errors import HierbayesError
from ..tidy import check_ci_prob, fixef_frame, varcorr_frame
from .agq import AGQDeviance
from .deviance import Deviance
from .glmm_optimize import optimize_laplace
from .laplace import LaplaceDeviance, Lme4LaplaceDeviance
from .negbin import optimize_negative_binomial
from .optimize import optimize_theta
from .pls import sigma2
from .sdcor import components, sds_and_correlations


@dataclass(frozen=True)
class Bootstrap:
    """`replicates`: one row per replicate (fixed effects by term, then the variance
    components by `naming.row_name`, then `converged`); `estimate`: the fit's own values."""

    replicates: pd.DataFrame
    estimate: pd.Series
    rows: tuple[dict, ...]  # (group, term1, term2) of each variance component
    fixed_names: tuple[str, ...]
    seed: int | None

    @property
    def n_converged(self) -> int:
        return int(self.replicates["converged"].sum())

    def _summary(self, columns, ci_prob: float):
        ci_prob = check_ci_prob(ci_prob)
        good = self.replicates.loc[self.replicates["converged"], columns].to_numpy(float)
        if good.shape[0] < 2:
            raise HierbayesError(
                f"Only {good.shape[0]} bootstrap replicate(s) converged: too few for standard "
                "errors or intervals. Draw more (n=...) or check the model."
            )
        tail = (1 - ci_prob) / 2
        lower, upper = np.nanquantile(good, [tail, 1 - tail], axis=0)
        label = (f"{100 * ci_prob:g}% parametric bootstrap percentile interval "
                 f"({good.shape[0]} converged replicates)")
        return np.nanstd(good, axis=0, ddof=1), lower, upper, label

    def fixef(self, ci_prob: float = 0.95) -> pd.DataFrame:
        se, lower, upper, label = self._summary(list(self.fixed_names), ci_prob)
        est = self.estimate[list(self.fixed_names)].to_numpy(float)
        return fixef_frame(self.fixed_names, est, se, lower, upper, label)

    def varcorr(self, ci_prob: float = 0.95) -> pd.DataFrame:
        names = [naming.row_name(row) for row in self.rows]
        se, lower, upper, label = self._summary(names, ci_prob)
        out = [dict(row, estimate=self.estimate[name], std_error=s, lower=lo, upper=hi)
               for row, name, s, lo, hi in zip(self.rows, names, se, lower, upper, strict=True)]
        return varcorr_frame(out, label)


def bootstrap(fit, n: int = 200, seed: int | None = None) -> Bootstrap:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise HierbayesError(f"n (the number of bootstrap replicates) must be a positive "
                             f"integer; got {n!r}.")
    rows, comps = _rows(fit)
    rng = np.random.default_rng(seed)
    records = []
    with one_blas_thread(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(int(n)):
            y = simulate(fit, rng)
            try:
                records.append(_refit(fit, replace(fit.design, y=y), rows, comps))
            except (HierbayesError, np.linalg.LinAlgError, FloatingPointError, ValueError):
                records.append({"converged": False})
    columns = [*fit.design.fixed_names, *(naming.row_name(r) for r in rows), "converged"]
    table = pd.DataFrame.from_records(records, columns=columns)
    table["converged"] = table["converged"].astype(bool)
    estimate = pd.Series(_values(fit.design, fit.beta, fit.covariance, fit.sigma, rows, comps))
    return Bootstrap(table, estimate, tuple(rows), tuple(fit.design.fixed_names), seed)


def simulate(fit, rng: np.random.Generator) -> np.ndarray:
    """One response drawn from the fitted model (new group effects, new noise)."""
    design = fit.design
    eta = design.X @ fit.beta + (0.0 if design.offset is None else design.offset)
    for block, T in zip(design.blocks, fit.deviance.thetas.templates(fit.theta), strict=True):
        b = fit.sd_scale * rng.standard_normal((block.n_levels, T.shape[0])) @ T.T
        eta = eta + np.einsum("ik,ik->i", block.Z, b[block.index])
    if fit.method != "Laplace" or design.family.name == "gaussian":
        if fit.method == "Laplace":  # a Gaussian GLMM (non-identity link): σ is its dispersion
            mu = design.family.link(fit.link).terms(eta).mu
            return mu + fit.dispersion * rng.standard_normal(eta.size)
        if design.known_sigma is not None:
            scale = design.known_sigma
        else:
            w = fit.deviance.weights
            scale = fit.sigma / (1.0 if w is None else np.sqrt(w))
        return eta + scale * rng.standard_normal(eta.size)
    mu = design.family.link(fit.link).terms(eta).mu
    trials = None if design.trials is None else np.rint(design.trials).astype(np.int64)
    return design.family.draw(mu, rng, trials=trials, alpha=fit.dispersion)


def _refit(fit, design, rows, comps) -> dict:
    if fit.method != "Laplace":
        dev = Deviance(design, fit.method, fit.deviance.weights)
        opt = optimize_theta(dev, start=fit.theta)
        state = dev.state(opt.theta)
        s2 = sigma2(state, dev.layout.n, dev.layout.p, dev.method)
        beta = dev.layout.beta_ols + state.beta
        scale = np.sqrt(s2)
        sigma = None if fit.sigma is None else scale
    else:
        dev = _laplace_like(fit, design)
        start = fit.theta
        opt = (optimize_negative_binomial(dev, start) if fit.dispersion is not None
               else optimize_laplace(dev, start=start))
        beta, scale, sigma = opt.beta, 1.0, None
    cov = {b.name: scale ** 2 * T @ T.T for b, T in
           zip(design.blocks, dev.thetas.templates(opt.theta), strict=True)}
    out = _values(design, beta, cov, sigma, rows, comps)
    out["converged"] = bool(opt.converged)
    return out


def _laplace_like(fit, design):
    weights = fit.deviance.weights
    if fit.nagq > 1:
        return AGQDeviance(design, fit.link, fit.nagq, weights)
    kind = Lme4LaplaceDeviance if fit.laplace == "lme4" else LaplaceDeviance
    return kind(design, fit.link, weights)


def _rows(fit) -> tuple[list[dict], list]:
    """The varcorr rows (group, term1, term2) and their sdcor components, in varcorr's order."""
    rows, comps = [], components(fit.design, fit.sigma is not None)
    for c in comps:
        if c.kind == "sigma":
            rows.append({"group": naming.RESIDUAL, "term1": None, "term2": None})
            continue
        block = fit.design.blocks[c.block]
        rows.append({"group": block.group, "term1": block.terms[c.i],
                     "term2": block.terms[c.l] if c.kind == "corr" else None})
    return rows, comps


def _values(design, beta, covariance, sigma, rows, comps) -> dict:
    out = dict(zip(design.fixed_names, np.asarray(beta, float), strict=True))
    for row, c in zip(rows, comps, strict=True):
        if c.kind == "sigma":
            value = np.nan if sigma is None else sigma
        else:
            sd, corr = sds_and_correlations(covariance[design.blocks[c.block].name])
            value = sd[c.i] if c.kind == "sd" else corr[c.i, c.l]
        out[naming.row_name(row)] = float(value)
    return out
