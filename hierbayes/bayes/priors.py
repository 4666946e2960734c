"""Priors of the Bayesian model: data-scaled, weakly informative defaults, overridable by name.

Every default lives in this module. They follow rstanarm and bambi in spirit: scaled to the data so
that a model of ``y`` and one of ``1000 * y`` say the same thing, wide enough to let the data speak,
narrow enough to keep NUTS away from absurd regions.

Notation: ``s_y`` is the scale of the linear predictor and ``m_y`` the location of the intercept;
``sd(x_j)`` is the standard deviation of fixed-effect column ``j``, ``mean(x_j)`` its mean, and
``sd(z_j)`` that of the block column ``j`` (taken as 1 for a constant, intercept-like column).

- identity link (gaussian, student_t): ``s_y = sd(y)``, ``m_y = mean(y)``;
- other links the priors live on the link scale, with fixed unit scale ``s_y = 1`` and
  ``m_y = 0``, except the log link, which centres the intercept at ``log(mean(y))`` so that the
  prior does not pull the overall rate of a count model towards 1.

Defaults (parameter names in brackets; these are the names to override):

======================  =====================================================================
``[Intercept]``         ``Normal(m_y, 2.5 s_y sqrt(1 + Σ_j (mean(x_j) / sd(x_j))²))`` — the prior
                        that rstanarm's ``Normal(m_y, 2.5 s_y)`` on the *centred* intercept and
                        the slope priors below imply for the uncentred intercept we estimate
                        (kept uncentred so that estimates read like lme4's).
``[<term>]``            each other fixed effect: ``Normal(0, 2.5 s_y / sd(x_j))``; a constant
                        column is treated like the intercept.
``[sd_<block>]``        the SDs of a block's effects: ``HalfNormal(s_y / sd(z_j))`` per term.
                        Half-normal rather than half-Cauchy / Student-t: its light tail keeps
                        NUTS out of the long funnel tails when a factor has few levels, while the
                        scale (the whole SD of y, a group SD can hardly exceed it) leaves ample
                        mass for any plausible value, and its mode at 0 lets a component vanish.
``[corr_<block>]``      correlations of a correlated block (``(1 + x | g)``): ``LKJ(eta=2)``,
                        which mildly favours smaller correlations and keeps the posterior off the
                        ±1 boundary, where few levels make sampling hard (eta=1 is uniform).
``[sigma]``             residual SD (gaussian, student_t scale): ``Exponential(1 / sd(y))``.
``[nu]``                student_t degrees of freedom: ``Gamma(alpha=2, beta=0.1)`` (Juárez and
                        Steel 2010: mean 20, mass on both heavy and near-normal tails).
``[alpha]``             negative-binomial shape (variance ``mu + mu² / alpha``):
                        ``InverseGamma(0.5, 0.5)``, which is exactly a ``HalfNormal(1)`` prior
                        on ``1 / sqrt(alpha)``: it shrinks towards the Poisson model (alpha → ∞)
                        yet allows strong overdispersion.
======================  =====================================================================

Override any of them by name: ``priors={"sd_Subject": Prior("HalfNormal", sigma=10),
"Days": Prior("Normal", mu=0, sigma=5)}``. The parameters of an ``sd_<block>`` prior may be
scalars or one value per term of the block, in term order. An unknown name raises `PriorError`
listing the valid names.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pymc as pm

from .. import naming
from ..bigdata import design_for
from ..design import Design
from ..errors import PriorError
from ..families import check_link
from .prior_checks import fmt, plain, validate

INTERCEPT_SCALE = 2.5
SLOPE_SCALE = 2.5
LKJ_ETA = 2.0
SCALE_PARAMS = naming.FAMILY_PARAMETERS  # names of the family's own parameters


class Prior:
    """A PyMC distribution by name with its parameters, e.g. ``Prior("HalfNormal", sigma=10)``.

    `distribution` is the name of a PyMC distribution class (``"Normal"``, ``"StudentT"``,
    ``"HalfNormal"``, ``"Exponential"``...), or ``"LKJ"`` for a correlation prior (``eta=``).
    """

    __slots__ = ("distribution", "params")

    def __init__(self, distribution: str, **params):
        if not isinstance(distribution, str):
            raise PriorError(f"A prior's distribution is named by a string, got {distribution!r}.")
        self.distribution = distribution
        self.params = {k: plain(v) for k, v in params.items()}

    def __eq__(self, other) -> bool:
        return (
            isinstance(other, Prior)
            and self.distribution == other.distribution
            and self.params == other.params
        )

    def __hash__(self) -> int:
        return hash((self.distribution, repr(self.params)))

    def __repr__(self) -> str:
        args = "".join(f", {k}={v!r}" for k, v in self.params.items())
        return f"Prior({self.distribution!r}{args})"

    def describe(self) -> str:
        """Parameters as text, e.g. ``"mu=0, sigma=5"``."""
        return ", ".join(f"{k}={fmt(v)}" for k, v in self.params.items())

    def to_dict(self) -> dict:
        return {"distribution": self.distribution, "params": dict(self.params)}

    @classmethod
    def from_dict(cls, spec: dict) -> Prior:
        return cls(spec["distribution"], **spec["params"])

    def pymc_class(self):
        cls = getattr(pm, self.distribution, None)
        if not (isinstance(cls, type) and issubclass(cls, pm.Distribution)):
            raise PriorError(
                f"{self.distribution!r} is not a PyMC distribution; use a class name of pymc, "
                "e.g. 'Normal', 'StudentT', 'HalfNormal', 'Exponential'."
            )
        return cls


@dataclass(frozen=True)
class PriorEntry:
    """One row of the prior table."""

    name: str  # what users override, and (mostly) the posterior variable name
    prior: Prior
    kind: str  # "fixed", "sd", "corr", "sigma", "nu" or "alpha"
    applies_to: str  # plain words
    source: str  # "default" or "user"
    size: int = 1  # number of values the prior covers (terms of a block for "sd")


class Priors(Mapping):
    """The priors of one model: name -> `Prior`, readable as a table with `to_frame()`."""

    def __init__(self, entries: list[PriorEntry]):
        self._entries = {entry.name: entry for entry in entries}

    def __getitem__(self, name: str) -> Prior:
        return self.entry(name).prior

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, name) -> bool:
        return name in self._entries

    def get(self, name, default=None):
        return self._entries[name].prior if name in self._entries else default

    def entry(self, name: str) -> PriorEntry:
        try:
            return self._entries[name]
        except KeyError:
            raise PriorError(
                f"No prior named {name!r}; valid names: {', '.join(self._entries)}."
            ) from None

    @property
    def entries(self) -> list[PriorEntry]:
        return list(self._entries.values())

    @property
    def overrides(self) -> dict[str, Prior]:
        """The priors the user set (what `save` stores to rebuild the model)."""
        return {e.name: e.prior for e in self.entries if e.source == "user"}

    def to_frame(self) -> pd.DataFrame:
        """One row per prior: name, distribution, parameters, applies_to, kind, source."""
        return pd.DataFrame(
            [
                {
                    "name": e.name,
                    "distribution": e.prior.distribution,
                    "parameters": e.prior.describe(),
                    "applies_to": e.applies_to,
                    "kind": e.kind,
                    "source": e.source,
                }
                for e in self.entries
            ]
        )

    def __repr__(self) -> str:
        return "Priors:\n" + self.to_frame().to_string(index=False)

    def _repr_html_(self) -> str:
        return self.to_frame().to_html(index=False)


def default_priors(formula: str, data: pd.DataFrame, family="gaussian", link=None) -> Priors:
    """The prior table that `fit_bayes` would use for this model with no overrides."""
    return make_priors(design_for(formula, data, family), None, link)


def make_priors(design: Design, overrides=None, link: str | None = None) -> Priors:
    """Default priors for `design`, with `overrides` (name -> `Prior`) replacing defaults."""
    link = check_link(design.family, link)
    entries = {e.name: e for e in _defaults(design, link)}
    for name, prior in _check_overrides(overrides, entries).items():
        entry = entries[name]
        validate(prior, entry)
        entries[name] = PriorEntry(name, prior, entry.kind, entry.applies_to, "user", entry.size)
    return Priors(list(entries.values()))


# --- defaults -------------------------------------------------------------------------------


def link_scale(design: Design, link: str) -> tuple[float, float]:
    """(m_y, s_y): location of the intercept prior and scale of the linear predictor."""
    if design.moments is not None:  # from a Dask frame (gaussian): its sums
        summary = design.moments.column_summary()
        return float(summary["y_mean"]), summary["y_sd"] if summary["y_sd"] > 0 else 1.0
    y = design.y
    if link == "identity":
        sd = float(np.std(y, ddof=1)) if len(y) > 1 else 0.0
        return float(np.mean(y)), sd if sd > 0 else 1.0  # constant y: any unit will do
    if link == "log":
        rate = float(np.mean(y))
        return (float(np.log(rate)) if rate > 0 else 0.0), 1.0
    return 0.0, 1.0


def _defaults(design: Design, link: str) -> list[PriorEntry]:
    m_y, s_y = link_scale(design, link)
    entries = _fixed_defaults(design, m_y, s_y)
    z_sds = _z_sds(design)
    for block, z_sd in zip(design.blocks, z_sds, strict=True):
        sds = [s_y / float(sd) for sd in z_sd]
        entries.append(
            PriorEntry(
                naming.sd(block),
                Prior("HalfNormal", sigma=sds if len(sds) > 1 else sds[0]),
                "sd",
                f"SD of {', '.join(block.terms)} across levels of {block.group}",
                "default",
                block.n_terms,
            )
        )
        if block.correlated and block.n_terms > 1:
            entries.append(
                PriorEntry(
                    naming.corr(block),
                    Prior("LKJ", eta=LKJ_ETA),
                    "corr",
                    f"correlations of {', '.join(block.terms)} across levels of {block.group}",
                    "default",
                )
            )
    return entries + _family_defaults(design, s_y)


def _fixed_defaults(design: Design, m_y: float, s_y: float) -> list[PriorEntry]:
    means, sds = _x_summary(design)
    slopes = sds > 0
    # Spread of the uncentred intercept implied by independent priors on the centred intercept
    # and the slopes (see the module docstring).
    shift = np.sum((means[slopes] / sds[slopes]) ** 2)
    intercept_sd = INTERCEPT_SCALE * s_y * float(np.sqrt(1.0 + shift))
    entries = []
    for j, name in enumerate(design.fixed_names):
        if slopes[j]:
            prior = Prior("Normal", mu=0.0, sigma=SLOPE_SCALE * s_y / sds[j])
            what = f"fixed effect of {name}"
        else:
            prior = Prior("Normal", mu=m_y, sigma=intercept_sd)
            what = f"fixed effect {name} (intercept-like, constant column)"
        entries.append(PriorEntry(name, prior, "fixed", what, "default"))
    return entries


def _family_defaults(design: Design, s_y: float) -> list[PriorEntry]:
    name = design.family.name
    entries = []
    # Known residual SDs (meta-analysis) leave no residual SD to put a prior on.
    if name in ("gaussian", "student_t") and design.known_sigma is None:
        # The residual SD is on the data scale whatever the link.
        if design.moments is not None:
            sd_y = design.moments.column_summary()["y_sd"]
        else:
            sd_y = float(np.std(design.y, ddof=1)) if design.n_obs > 1 else 0.0
        lam = 1.0 / (sd_y if sd_y > 0 else s_y)
        what = "residual SD" if name == "gaussian" else "residual scale of the Student-t"
        prior = Prior("Exponential", lam=lam)
        entries.append(PriorEntry(naming.SIGMA, prior, "sigma", what, "default"))
    if name == "student_t":
        entries.append(
            PriorEntry(
                "nu",
                Prior("Gamma", alpha=2.0, beta=0.1),
                "nu",
                "Student-t degrees of freedom",
                "default",
            )
        )
    if name == "negative_binomial":
        entries.append(
            PriorEntry(
                "alpha",
                Prior("InverseGamma", alpha=0.5, beta=0.5),
                "alpha",
                "negative-binomial shape (variance mu + mu^2/alpha)",
                "default",
            )
        )
    if name == "gamma":
        entries.append(
            PriorEntry(
                "alpha",
                Prior("Gamma", alpha=0.01, beta=0.01),  # brms's default for the Gamma shape
                "alpha",
                "Gamma shape (variance mu^2/alpha)",
                "default",
            )
        )
    return entries


def _x_summary(design: Design) -> tuple[np.ndarray, np.ndarray]:
    """Means and SDs (0 for a constant column) of the fixed-effect columns."""
    if design.moments is not None:
        summary = design.moments.column_summary()
        return summary["x_mean"], summary["x_sd"]
    X = design.X
    return X.mean(axis=0), np.array([_column_sd(X[:, j], zero=0.0) for j in range(X.shape[1])])


def _z_sds(design: Design) -> list[np.ndarray]:
    """Per block, the SDs of its Z columns (1 for a constant column, e.g. an intercept)."""
    if design.moments is not None:
        summary = design.moments.column_summary()
        return [np.where(sd > 1e-12 * rms, sd, 1.0)
                for sd, rms in zip(summary["z_sd"], summary["z_rms"], strict=True)]
    return [np.array([_column_sd(b.Z[:, j]) for j in range(b.n_terms)]) for b in design.blocks]


def _column_sd(column: np.ndarray, zero: float = 1.0) -> float:
    """SD of a column; `zero` for a constant column (an intercept)."""
    sd = float(np.std(column))
    return sd if sd > 1e-12 * float(np.max(np.abs(column))) else zero  # relative: units-free


# --- validation -----------------------------------------------------------------------------


def _check_overrides(overrides, entries: dict[str, PriorEntry]) -> dict[str, Prior]:
    if overrides is None:
        return {}
    if isinstance(overrides, Priors):
        overrides = overrides.overrides
    if not isinstance(overrides, Mapping):
        raise PriorError(
            f"priors must be a dict of name -> hb.Prior, got {type(overrides).__name__}."
        )
    unknown = [name for name in overrides if name not in entries]
    if unknown:
        raise PriorError(
            f"Unknown prior name(s) {', '.join(map(repr, unknown))}; valid names for this model: "
            f"{', '.join(entries)}."
        )
    for name, prior in overrides.items():
        if not isinstance(prior, Prior):
            raise PriorError(
                f"The prior for {name!r} must be an hb.Prior, e.g. Prior('Normal', mu=0, "
                f"sigma=1); got {prior!r}."
            )
    return dict(overrides)
