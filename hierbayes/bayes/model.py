"""A Bayesian model ready to sample: the design, the priors used and the `pm.Model`.

>>> spec = hb.build_model("Reaction ~ Days + (Days | Subject)", data)   # BayesModel
>>> spec.priors                     # the prior table; spec.model is the pm.Model
>>> prior = spec.sample_prior_predictive(draws=200)

`hierbayes.bayes.sampling` samples it; `fresh_model` gives the copy that is sampled (see
"Reproducibility" there).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd
import pymc as pm
import xarray as xr

from ..arguments import keywords_checked
from ..bigdata import design_for
from ..design import Design
from ..families import check_link
from ..validation import check_magnitudes
from .builder import build_model as build_pymc_model
from .centring import choose
from .priors import Priors, make_priors


@dataclass(frozen=True, eq=False, repr=False)
class BayesModel:
    """A Bayesian model ready to sample: the design, the priors used and the `pm.Model`."""

    design: Design
    priors: Priors
    link: str
    model: pm.Model = field(repr=False)
    missing: str = "drop"
    built_vars: tuple[str, ...] = field(default=(), repr=False)  # to tell if users extended it
    centred: tuple[str, ...] = ()  # blocks sampled centred (`hierbayes.bayes.centring`)

    @property
    def formula(self) -> str:
        return self.design.formula

    @property
    def family(self) -> str:
        return self.design.family.name

    def sample_prior_predictive(self, draws: int = 500, random_seed=None) -> xr.DataTree:
        """Draws of every parameter and of ``y`` from the prior (groups prior, prior_predictive)."""
        return pm.sample_prior_predictive(draws=draws, model=self.model, random_seed=random_seed)

    def __repr__(self) -> str:
        return f"BayesModel(link={self.link!r})\n{self.design!r}\n{self.priors!r}"


@keywords_checked
def build_model(
    formula: str,
    data: pd.DataFrame,
    family="gaussian",
    priors=None,
    link: str | None = None,
    missing: str = "drop",
    known_sigma: str | None = None,
    check_nlevels: str = "error",
    centred=None,
) -> BayesModel:
    """Design, priors (defaults with `priors` overrides by name) and PyMC model; no sampling.

    `known_sigma`: a column of known residual SDs (gaussian; meta-analysis such as eight schools).
    `check_nlevels`: "error", "warning" or "ignore" (see hierbayes.identifiability).
    `centred`: which blocks' group effects are centred on the standard path (`.centring`):
    None chooses per block from how informative its levels' data are; True, False or block names
    decide. Gaussian identity-link models are sampled marginally by default, where the question
    does not arise: there None keeps every block non-centred (pass the blocks to centre, e.g.
    ``centring.choose(design, "identity")``, for ``marginalize=False``).
    """
    design = design_for(formula, data, family, missing, known_sigma, check_nlevels)
    return model_from_design(design, priors, link, missing, centred)


def model_from_design(design: Design, priors=None, link=None, missing="drop",
                      centred=None) -> BayesModel:
    link = check_link(design.family, link)
    if design.moments is not None:  # from a Dask frame: the marginal model, from its sums
        return _marginal_spec(design, make_priors(design, priors, link), link, missing)
    check_magnitudes(design)
    table = make_priors(design, priors, link)
    marginal_default = (design.family.name == "gaussian" and link == "identity"
                        and design.known_sigma is None)
    chosen = () if centred is None and marginal_default else choose(design, link, centred)
    model = build_pymc_model(design, table, link, chosen)
    return BayesModel(design, table, link, model, missing, tuple(model.named_vars), chosen)


def is_extended(spec: BayesModel) -> bool:
    """True when the user added variables to ``spec.model`` (it is then sampled as it is)."""
    return tuple(spec.model.named_vars) != spec.built_vars


def _marginal_spec(design: Design, table: Priors, link: str, missing: str) -> BayesModel:
    """A design without rows has no standard model: its `model` is the marginal one."""
    from .marginal import build_marginal_model, plan_for

    plan = plan_for(BayesModel(design, table, link, pm.Model(), missing), True)
    model = build_marginal_model(design, table, plan)
    return BayesModel(design, table, link, model, missing, tuple(model.named_vars))


def fresh_model(spec: BayesModel) -> pm.Model:
    """The model to sample: a new build of `spec` unless the user extended ``spec.model``."""
    if is_extended(spec):
        return spec.model
    return build_pymc_model(spec.design, spec.priors, spec.link, spec.centred)

