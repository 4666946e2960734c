"""Fits on rescaled data, reported on the data's own scale: REML over the whole float range.

The engine squares the data (XᵀX, Zᵀy, r²): a response of 1e200 overflows, one of 1e-200
underflows to zero variances, a predictor of 1e155 overflows XᵀX. And θ is relative to the units
of the group-level columns: lme4's start θ = 1 is far from the optimum of a slope in odd units.
The LMM optimiser reaches it from there all the same (sleepstudy with Days × 1e5 unscaled:
tests/test_reml_optimum.py), but in ~100 evaluations instead of 6; a GLMM's β is optimised
together with θ and is less forgiving (a Poisson (x | g) with x × 1e6 fitted unscaled stops 2.6
above the optimum, and PIRLS once failed outright there). So before the fit, a column is divided
by the power of two nearest its RMS when that RMS lies outside

- [2⁻²⁰, 2²⁰] (≈ 1e-6 to 1e6) for the response c (gaussian only: counts are not rescaled) and an
  LMM's fixed-effect columns d_j, which only squares can harm (θ does not depend on their units);
- [2⁻³, 2³] (rounded: RMS 0.09 to 11) for the group-level columns e_j and a GLMM's fixed-effect
  columns d_j,

and the fit is transformed back exactly (powers of two lose no digits):

    β = c·β'/d,  Cov(β) = c²·Cov(β')/(d dᵀ),  σ = c·σ',  Σ_b = c²·Σ'_b/(e eᵀ),  modes = c·b'/e,
    θ_ij = θ'_ij / e_i,  criterion = criterion' + 2·dof·log c  (+ 2·Σ log d_j for REML),

dof = n − p (REML) or n (ML; the Laplace deviance has no scale of its own: c = 1). That is the
log-Jacobian of the change of units: REML and ML criteria are densities of y (and REML's also of
the fixed-effect parametrisation). No centring is needed: the engine already replaces y by its
OLS residual before squaring it (`layout`). Data inside the band are fitted as they are, so
ordinary fits are unchanged bit for bit.

Equivariance is then exact up to the optimiser's tolerance over the whole float range, except
where float64 cannot hold the answer itself (a response of 1e200 has a variance of 1e400):
`unscaled_fit` refuses that with a `HierbayesError` naming the column, instead of returning inf or
0. `fit.singular` is lme4's rule on the rescaled θ (relative SDs in units of the rescaled
columns), so it does not change with the units either. `fit.deviance`, `fit.state` and
`fit.optim` of a rescaled fit belong to the rescaled data.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from ..design import Design
from ..errors import HierbayesError
from ..tidy import CI_PROB, check_ci_prob
from .results import RemlFit
from .theta import theta_layout

# Columns whose RMS rounds to 2^k with |k| <= BAND are fitted as they are. The response and an
# LMM's fixed-effect columns leave θ alone (only squares can overflow); group-level columns set
# θ's units, and a GLMM's fixed-effect columns β's, which its optimiser moves together with θ:
# those are reliable from lme4's start within a factor ~10 of unit RMS.
BAND = 20
Z_BAND = 3
_HIGH = np.log10(np.finfo(float).max)  # 308.25
_LOW = np.log10(np.finfo(float).tiny)  # -307.65


def _factor(column: np.ndarray, band: int = BAND) -> float:
    """The power of two nearest the RMS of `column`, or 1 inside the band (or for zeros)."""
    peak = np.max(np.abs(column)) if column.size else 0.0
    if not np.isfinite(peak) or peak == 0:
        return 1.0
    return _power(peak * np.sqrt(np.mean((column / peak) ** 2)), band)  # no overflow


def _power(rms: float, band: int) -> float:
    if not np.isfinite(rms) or rms <= 0:
        return 1.0
    power = int(np.round(np.log2(rms)))
    return 1.0 if abs(power) <= band else float(np.ldexp(1.0, power))


@dataclass(frozen=True)
class Scales:
    """What each column of a design was divided by (1 = untouched)."""

    y: float
    x: np.ndarray  # (p,)
    z: tuple[np.ndarray, ...]  # per block, (k,)

    @classmethod
    def of(cls, design: Design, link: str | None = None) -> Scales:
        # Only a linear model's response rescales linearly (counts and a log link do not).
        gaussian = design.family.response == "real" and link in (None, "identity")
        if design.moments is not None:  # from a Dask frame: its sums give the RMS
            return moment_scales(cls, design, gaussian)
        y = _factor(design.y) if gaussian else 1.0
        # A GLMM's β is optimised with θ (Laplace), not profiled out: it needs the narrow band.
        band = BAND if gaussian else Z_BAND
        x = np.array([_factor(design.X[:, j], band) for j in range(design.X.shape[1])])
        z = tuple(np.array([_factor(b.Z[:, j], Z_BAND) for j in range(b.n_terms)])
                  for b in design.blocks)
        return cls(y, x, z)

    @property
    def identity(self) -> bool:
        return self.y == 1 and bool(np.all(self.x == 1)) and all(np.all(e == 1) for e in self.z)

    def scaled(self, design: Design) -> Design:
        """The design in rescaled units (the same object when nothing is rescaled)."""
        if self.identity:
            return design
        if design.moments is not None:
            from ..bigdata.scaled import scaled_design

            return scaled_design(design, self.y, self.x, self.z)
        blocks = tuple(replace(b, Z=b.Z / e) for b, e in zip(design.blocks, self.z, strict=True))
        known = None if design.known_sigma is None else design.known_sigma / self.y
        offset = None if design.offset is None else design.offset / self.y
        return replace(design, y=design.y / self.y, X=design.X / self.x, blocks=blocks,
                       known_sigma=known, offset=offset)

    def theta_factors(self, design: Design) -> np.ndarray:
        """e_i of each θ_ij (row i of its block's template)."""
        layout = theta_layout(design)
        return np.array([self.z[b][i] for b, i in zip(layout.block_of, layout.rows, strict=True)])

    def scaled_start(self, start, design: Design):
        """A θ start given in the data's units, in the rescaled units."""
        if start is None or self.identity:
            return start
        return np.asarray(start, float).reshape(-1) * self.theta_factors(design)


def moment_scales(cls, design: Design, gaussian: bool) -> Scales:
    """`Scales.of` for a design from a Dask frame: the same rule on the RMS that its sums give."""
    summary = design.moments.column_summary()
    sums = design.moments.sums
    y_rms = float(np.sqrt(summary["y_sd"] ** 2 + summary["y_mean"] ** 2))
    x_rms = np.sqrt(np.diag(sums.XtX) / sums.n)
    band = BAND if gaussian else Z_BAND
    return cls(_power(y_rms, BAND) if gaussian else 1.0,
               np.array([_power(v, band) for v in x_rms]),
               tuple(np.array([_power(v, Z_BAND) for v in rms]) for rms in summary["z_rms"]))


def unscaled_fit(fit: RemlFit, design: Design, scales: Scales) -> RemlFit:
    """`fit` (of `scales.scaled(design)`) as a fit of `design`: see the module docstring."""
    if scales.identity:
        return fit
    out = RescaledFit.__new__(RescaledFit)
    out.__dict__.update(fit.__dict__)
    out._scales = scales
    _check_representable(out, fit, design)
    _unscale(out, fit, design, scales)
    return out


def _unscale(out: RemlFit, fit: RemlFit, design: Design, scales: Scales) -> None:
    c, d = np.float64(scales.y), scales.x
    est = fit.estimates
    out.design = design
    out.theta = fit.theta / scales.theta_factors(design)
    out.estimates = replace(
        est,
        beta=c * est.beta / d,
        vcov=_scale_square(est.vcov, c, d),
        sigma=None if est.sigma is None else float(c * est.sigma),
        covariance={k: _scale_square(v, c, e) for k, v, e in _by_block(est.covariance, design,
                                                                       scales)},
        modes={k: c * v / e for k, v, e in _by_block(est.modes, design, scales)},
        condcov={k: _scale_square(v, c, e) for k, v, e in _by_block(est.condcov, design,
                                                                    scales)},
        group_condcov={g: _scale_square(v, c, _group_factors(g, design, scales))
                       for g, v in est.group_condcov.items()},
    )
    out.vcov_rx = _scale_square(fit.vcov_rx, c, d)
    out.sd_scale = float(c * fit.sd_scale)
    out.criterion = fit.criterion + _log_jacobian(fit, design, scales)
    out._inner, out._scales, out._profiles = fit, scales, {}
    out.__dict__.pop("_text", None)


def _by_block(values: dict, design: Design, scales: Scales):
    for block, e in zip(design.blocks, scales.z, strict=True):
        yield block.name, values[block.name], e


def _group_factors(group: str, design: Design, scales: Scales) -> np.ndarray:
    """The e of a grouping factor's columns: its blocks' in design order (`layout.Group`)."""
    return np.concatenate([e for b, e in zip(design.blocks, scales.z, strict=True)
                           if b.group == group])


def _scale_square(v: np.ndarray, c: float, e: np.ndarray) -> np.ndarray:
    """c²·v/(e eᵀ) over the last two axes (c/e first: c² alone may overflow)."""
    ratio = c / np.asarray(e, float)
    return v * np.outer(ratio, ratio)


def _log_jacobian(fit: RemlFit, design: Design, scales: Scales) -> float:
    if fit.method == "Laplace":
        return 0.0
    n, p = design.n_obs, design.X.shape[1]
    dof = n - p if fit.method == "REML" else n
    shift = 2.0 * dof * np.log(scales.y)
    if fit.method == "REML":
        shift += 2.0 * float(np.sum(np.log(scales.x)))
    return shift


class RescaledFit(RemlFit):
    """A `RemlFit` computed on rescaled data (`hierbayes.reml.scaling`) and reported on the
    data's scale. Everything reads as any `RemlFit`; `varcorr`'s profile intervals are those of
    the rescaled fit, transformed back."""

    def varcorr(self, ci_prob: float = CI_PROB) -> pd.DataFrame:
        frame = self._inner.varcorr(check_ci_prob(ci_prob)).copy()
        c = np.float64(self._scales.y)
        factors, cov = [], []
        for row in frame.itertuples(index=False):
            if row.group == "Residual":
                factors.append(c)
                cov.append(np.nan)
                continue
            b = next(i for i, blk in enumerate(self.design.blocks) if blk.name == row.block)
            block, e = self.design.blocks[b], self._scales.z[b]
            i = block.terms.index(row.term1)
            if isinstance(row.term2, str) and row.term2 != "nan":
                factors.append(1.0)
                cov.append((c / e[i]) * (c / e[block.terms.index(row.term2)]))
            else:
                factors.append(c / e[i])
                cov.append(np.nan)
        factors = np.array(factors)
        with np.errstate(over="ignore", under="ignore"):
            for column in ("estimate", "std_error", "lower", "upper"):
                frame[column] = frame[column].to_numpy() * factors
            if "variance" in frame:
                frame["variance"] = frame["variance"].to_numpy() * factors * factors
            if "covariance" in frame:
                frame["covariance"] = frame["covariance"].to_numpy() * np.array(cov)
        return frame


def _check_representable(out: RemlFit, inner: RemlFit, design: Design) -> None:
    """Refuse results float64 cannot hold (they would read inf, or 0 for a nonzero value)."""
    scales = out._scales
    c = scales.y
    rows = []  # (what, value on the rescaled scale, log10 of its factor back, columns)
    for j, name in enumerate(design.fixed_names):
        ratio = np.log10(c / scales.x[j])
        own = (name,) if scales.x[j] != 1 else ()
        rows.append((f"the fixed effect {name!r}", inner.beta[j], ratio, own))
        rows.append((f"the variance of the fixed effect {name!r}", inner.vcov[j, j], 2 * ratio,
                     own))
    if inner.sigma is not None:
        rows.append(("the residual variance", inner.sigma**2, 2 * np.log10(c), ()))
    for block, e in zip(design.blocks, scales.z, strict=True):
        variances = np.diag(inner.covariance[block.name])
        for i, term in enumerate(block.terms):
            rows.append((f"the variance of {term!r} over {block.group!r}", variances[i],
                         2 * np.log10(c / e[i]), (term,) if e[i] != 1 else ()))
    for what, value, factor, columns in rows:
        if value == 0 or not np.isfinite(value):
            continue
        magnitude = np.log10(abs(value)) + factor
        if _LOW < magnitude < _HIGH:
            continue
        culprits = ([f"the response {design.response!r}"] if c != 1 else []) + [
            f"the column {n!r}" for n in columns]
        raise HierbayesError(
            f"float64 cannot hold {what} on the scale of these data: it is about "
            f"1e{magnitude:+.0f}, outside float64's range (1e-308 to 1e+308), because of the "
            f"magnitude of {' and '.join(culprits) or 'the data'}. Rescale it (e.g. divide by a "
            "power of ten) and scale the estimates back."
        )
