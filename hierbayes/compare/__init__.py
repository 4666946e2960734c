"""The Bayesian posterior beside the REML (or Laplace) fit of the same model.

`compare(bayes, reml)` joins the two fits on the shared design and returns a `Comparison` with
tidy tables (`fixed`, `variance`, `groups`, `reasons`), an `xarray.Dataset` view, a plain-language
`verdict()` and plots. Conventions of `groups` (one row per level × term; every estimate is a
deviation from the population value, on the scale of ``ranef()``):

- `no_pool`: the group's own fit (see `hierbayes.compare.nopool`);
- `complete_pool`: the value every group gets when the groups are ignored (the fixed part fitted
  alone, `hierbayes.compare.complete`), minus the frequentist population value: the third of
  the three poolings (none, partial, complete), the same for every level of a term;
- `lambda_reml` = 1 − condvar/τ̂² and `lambda_bayes` (its posterior mean, computed draw by draw,
  with `lambda_bayes_lower/upper`): the weight of the group's own data, 1 = no pooling;
- `shrinkage_reml` = 1 − `lambda_reml`, `shrinkage_bayes` = 1 − `lambda_bayes`: the fraction of
  the way from no pooling to the population value (0 = no pooling, 1 = complete pooling);
- `moved_reml`, `moved_bayes`: how far each estimate actually moved, 1 − estimate/no_pool;
- `std_diff` = (bayes − reml)/bayes_std_error; `agree` when |std_diff| < 0.5;
- `reml_total_sd`, `bayes_total_sd` (`total_sd_ratio`): the SD of each group's own coefficient
  β_t + b_jt on each side, and `beta_corr` the posterior correlation of β_t with b_jt (see
  `hierbayes.compare.uncertainty`); `bayes_skewness` of each group effect's draws.

`reasons` lists why the fits may differ here, each measured (`hierbayes.compare.reasons`).
Every table names the frequentist method in ``attrs["method"]`` (REML, ML or Laplace: the
``reml_*`` column names are the API's, the method is `Comparison.method`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import xarray as xr

from .. import report
from ..arguments import check_count, check_probability, keywords_checked
from ..bayes import BayesFit, fit_bayes
from ..errors import ModelMismatchError
from ..naming import row_key
from ..reml import RemlFit, fit_reml
from ..report import plots
from ..tidy import CI_PROB
from ..within import within_between
from .draws import PosteriorDraws, from_fit, varcorr_draws
from .guard import check_same_model
from .reasons import reasons
from .sensitivity import prior_sensitivity
from .tables import fixed_table, groups_table, variance_table
from .verdict import verdicts

__all__ = ["Comparison", "compare", "compare_formula"]


@dataclass(frozen=True, eq=False)
class Comparison:
    bayes: object = field(repr=False)
    reml: object = field(repr=False)
    fixed: pd.DataFrame
    variance: pd.DataFrame
    groups: pd.DataFrame
    reasons: pd.DataFrame
    ci_prob: float
    draws: PosteriorDraws = field(repr=False)
    prior_draws: PosteriorDraws | None = field(repr=False)
    diagnostics: pd.DataFrame | None = field(default=None, repr=False)  # the posterior's checks

    @property
    def design(self):
        return self.bayes.design

    @property
    def method(self) -> str:
        """How the frequentist side was fitted: "REML", "ML" or "Laplace"."""
        return self.reml.method

    def verdict(self) -> list[str]:
        """Short plain-language verdicts, one per block of the comparison, then the reasons.

        When a sampler check failed, the first line says so and not to read the rest yet."""
        lines = verdicts(self.fixed, self.variance, self.groups, self.method, self.diagnostics)
        if self.method == "Laplace":
            lines.append("The frequentist side is a Laplace approximation (lme4's glmer, nAGQ=1).")
        lines += [
            f"Why they may differ — {r}: {w}: {d}."
            for r, w, d in self.reasons.itertuples(index=False)
        ]
        return lines

    def to_xarray(self) -> xr.Dataset:
        """The three tables as one Dataset (dims: fixed term; variance row; group row)."""
        parts = {
            "fixed": self.fixed.set_index("term"),
            "variance": self.variance.assign(row=_row_labels(self.variance)).set_index("row"),
            "groups": self.groups.assign(
                row=self.groups["group"] + "/" + self.groups["level"] + "/" + self.groups["term"]
            ).set_index("row"),
        }
        out = xr.Dataset()
        for prefix, frame in parts.items():
            numeric = frame.select_dtypes(include=[np.number, bool])
            ds = xr.Dataset.from_dataframe(numeric).rename({frame.index.name: f"{prefix}_row"})
            out = out.merge(ds.rename({v: f"{prefix}_{v}" for v in ds.data_vars}))
        out.attrs["ci_prob"] = self.ci_prob
        return out

    def component_draws(self, prior: bool = False) -> dict[tuple, np.ndarray]:
        """(group, term1, term2) -> posterior (or prior) draws of each SD / correlation row of
        `variance`, keyed as `hierbayes.naming.row_key`; empty when there are no prior draws."""
        draws = self.prior_draws if prior else self.draws
        return {} if draws is None else varcorr_draws(draws, self.design)

    def prior_sensitivity(self, alphas=(0.5, 2.0)) -> pd.DataFrame:
        """How much each SD and correlation depends on its prior (power-scaling the
        hyperpriors, no refit): `hierbayes.compare.sensitivity`."""
        return prior_sensitivity(self.bayes, self.reml, alphas)

    # Views: the report package formats what this object computed (it never imports compare).
    def plot_shrinkage(self, **kwargs):
        return plots.plot_shrinkage(self, **kwargs)

    def plot_forest(self, **kwargs):
        return plots.plot_forest(self, **kwargs)

    def plot_variance(self, **kwargs):
        return plots.plot_variance(self, **kwargs)

    def report(self, path=None, **kwargs):
        return report.comparison_report(self, path=path, **kwargs)

    def _repr_html_(self):
        return report.comparison_html(self)

    def __repr__(self) -> str:
        return f"Comparison of the posterior and the {self.method} fit\n  " + "\n  ".join(
            self.verdict()
        )


def _row_labels(variance: pd.DataFrame) -> list[str]:
    return ["/".join(v for v in row_key(r) if v) for r in variance.to_dict("records")]


@keywords_checked
def compare(bayes, reml, ci_prob: float = CI_PROB, max_draws: int = 1000) -> Comparison:
    """Compare a `BayesFit` with a `RemlFit` of the same model (refuses different models)."""
    ci_prob, max_draws = check_probability(ci_prob), check_count(max_draws, "max_draws")
    _check_roles(bayes, reml)
    check_same_model(bayes.design, reml.design)
    if bayes.link != reml.link:
        raise ModelMismatchError(
            f"Cannot compare these fits: the links differ ({bayes.link} vs {reml.link})."
        )
    design = bayes.design
    draws = from_fit(bayes, max_draws=max_draws)
    prior = from_fit(bayes, max_draws=max_draws, prior=True)
    tables = {
        "fixed": fixed_table(bayes, reml, ci_prob),
        "variance": variance_table(draws, prior, reml, design, ci_prob),
        "groups": groups_table(draws, bayes, reml, design, ci_prob),
    }
    tables["reasons"] = reasons(tables["variance"], tables["groups"], reml.method,
                                _within(reml))
    for frame in tables.values():
        frame.attrs["method"] = reml.method
    return Comparison(
        bayes=bayes,
        reml=reml,
        **tables,
        ci_prob=ci_prob,
        draws=draws,
        prior_draws=prior,
        diagnostics=bayes.diagnostics(),
    )


def _within(reml) -> pd.DataFrame:
    """The within/between table of the frequentist fit (its refit's warnings are the fit's)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return within_between(reml)


def _check_roles(bayes, reml) -> None:
    if not isinstance(bayes, BayesFit) or not isinstance(reml, RemlFit):
        got = f"{type(bayes).__name__} and {type(reml).__name__}"
        raise ModelMismatchError(
            f"compare(bayes, reml) takes a BayesFit (hb.fit_bayes) and then a RemlFit "
            f"(hb.fit_reml), got {got}."
        )


def compare_formula(
    formula: str,
    data: pd.DataFrame,
    family: str = "gaussian",
    method: str | None = None,
    priors=None,
    ci_prob: float = CI_PROB,
    **bayes_kwargs,
) -> Comparison:
    """Fit `formula` both ways (REML/Laplace and NUTS) and compare; the models match by design."""
    reml_kwargs = {"family": family, "check_within": bayes_kwargs.pop("check_within", True)}
    if method is not None:
        reml_kwargs["method"] = method
    reml = fit_reml(formula, data, **reml_kwargs)  # warns once about within/between slopes
    bayes = fit_bayes(formula, data, family=family, priors=priors, check_within=False,
                      **bayes_kwargs)
    return compare(bayes, reml, ci_prob=ci_prob)
