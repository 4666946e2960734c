"""The staged path: build the Bayesian model (no sampling), then sample it with NUTS.

>>> spec = hb.build_model("Reaction ~ Days + (Days | Subject)", data)   # BayesModel
>>> spec.priors                     # the prior table; spec.model is the pm.Model
>>> prior = spec.sample_prior_predictive(draws=200)
>>> fit = hb.sample(spec, draws=1000, chains=4, random_seed=1)        # BayesFit

Samplers (``sampler=``): ``"nutpie"`` (the default when installed: compiled with numba, fast),
``"pymc"`` (PyMC's own NUTS, the fallback), ``"numpyro"`` or ``"blackjax"`` (JAX; for a GPU; need
``pip install hierbayes[jax]``). A seed is always recorded: with ``random_seed=None`` one is drawn
and stored in ``fit.settings`` so that any fit can be reproduced exactly.

Reproducibility: PyTensor does not compile a graph it has compiled before to bit-identical code
(gradients can differ in the last bit), and NUTS amplifies such differences. So `sample` samples a
fresh copy of the model, rebuilt from the design and the priors, and the same seed gives the same
draws however often the model was sampled before. A model the user has extended (variables added
to ``spec.model``) is sampled as it is, without this guarantee.
"""

from __future__ import annotations

import contextlib
import importlib.util
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pymc as pm
import xarray as xr

from .builder import build_model as build_pymc_model
from .design import Design, make_design
from .errors import HierbayesError
from .families import check_link
from .priors import Priors, make_priors

SAMPLERS = ("nutpie", "pymc", "numpyro", "blackjax")
_NEEDS = {"nutpie": ("nutpie",), "numpyro": ("numpyro", "jax"), "blackjax": ("blackjax", "jax")}
DEFAULT_TARGET_ACCEPT = 0.9  # above PyMC's 0.8: hierarchical posteriors have funnels


@dataclass(frozen=True, eq=False, repr=False)
class BayesModel:
    """A Bayesian model ready to sample: the design, the priors used and the `pm.Model`."""

    design: Design
    priors: Priors
    link: str
    model: pm.Model = field(repr=False)
    missing: str = "drop"
    built_vars: tuple[str, ...] = field(default=(), repr=False)  # to tell if users extended it

    @property
    def formula(self) -> str:
        return self.design.formula

    @property
    def family(self) -> str:
        return self.design.family.name

    def sample(self, **kwargs):
        """`hierbayes.sample` on this model."""
        return sample(self, **kwargs)

    def sample_prior_predictive(self, draws: int = 500, random_seed=None) -> xr.DataTree:
        """Draws of every parameter and of ``y`` from the prior (groups prior, prior_predictive)."""
        return pm.sample_prior_predictive(draws=draws, model=self.model, random_seed=random_seed)

    def __repr__(self) -> str:
        return f"BayesModel(link={self.link!r})\n{self.design!r}\n{self.priors!r}"


def build_model(
    formula: str,
    data: pd.DataFrame,
    family="gaussian",
    priors=None,
    link: str | None = None,
    missing: str = "drop",
    known_sigma: str | None = None,
) -> BayesModel:
    """Design, priors (defaults with `priors` overrides by name) and PyMC model; no sampling.

    `known_sigma`: a column of known residual SDs (gaussian; meta-analysis such as eight schools).
    """
    design = make_design(formula, data, family, missing, known_sigma=known_sigma)
    return model_from_design(design, priors, link, missing)


def model_from_design(design: Design, priors=None, link=None, missing="drop") -> BayesModel:
    link = check_link(design.family, link)
    table = make_priors(design, priors, link)
    model = build_pymc_model(design, table, link)
    return BayesModel(design, table, link, model, missing, tuple(model.named_vars))


def fresh_model(spec: BayesModel) -> pm.Model:
    """The model to sample: a new build of `spec` unless the user extended ``spec.model``."""
    if tuple(spec.model.named_vars) != spec.built_vars:
        return spec.model
    return build_pymc_model(spec.design, spec.priors, spec.link)


def sample(
    spec: BayesModel,
    draws: int = 1000,
    tune: int = 1000,
    chains: int = 4,
    random_seed: int | None = None,
    sampler: str | None = None,
    target_accept: float = DEFAULT_TARGET_ACCEPT,
    progressbar: bool = True,
    warn: bool = True,
    marginalize: bool | None = None,
    **sample_kwargs,
):
    """NUTS on `spec`; returns a `BayesFit` with pointwise log-likelihood (for LOO).

    Extra keyword arguments go to `pymc.sample` unchanged (e.g. ``cores``, ``init``, ``nuts``).
    With `warn` (the default) failed convergence checks raise a `SamplingWarning` with a remedy.

    `marginalize`: integrate the group effects out of a gaussian, identity-link model and sample
    only the other parameters, then draw the group effects exactly (`hierbayes.marginal`). None
    (default): whenever that applies; True: insist (an error says why it cannot); False: the
    standard non-centred model. ``fit.settings["marginalize"]`` and ``["marginal_path"]`` and
    the posterior attribute ``hierbayes_marginalize`` say which path was taken.
    """
    from .bayes import BayesFit  # bayes imports this module
    from .marginal import build_marginal_model, plan_for
    from .marginal_draws import ATTR, complete_posterior, one_blas_thread

    if not isinstance(spec, BayesModel):
        raise HierbayesError(
            f"hb.sample needs a BayesModel from hb.build_model(...), got {type(spec).__name__}."
        )
    _check_settings(draws, tune, chains, target_accept)
    sampler = resolve_sampler(sampler)
    seed = _seed(random_seed)
    plan = plan_for(spec, marginalize)
    if plan.active:
        model = build_marginal_model(spec.design, spec.priors, plan)  # fresh, as fresh_model
    else:
        model = fresh_model(spec)  # see "Reproducibility" in the module docstring
    blas = one_blas_thread() if plan.active else contextlib.nullcontext()
    with blas:
        idata = pm.sample(
            draws=draws,
            tune=tune,
            chains=chains,
            random_seed=seed,
            nuts_sampler=sampler,
            target_accept=target_accept,
            progressbar=progressbar,
            model=model,
            **sample_kwargs,
        )
    if plan.active:
        idata = complete_posterior(idata, spec.design, plan, seed)
    else:
        idata = pm.compute_log_likelihood(idata, model=model, progressbar=False)
        idata["posterior"].attrs[ATTR] = plan.describe()
    settings = {
        "draws": draws,
        "tune": tune,
        "chains": chains,
        "random_seed": seed,
        "sampler": sampler,
        "target_accept": target_accept,
        **plan.settings(),
    }
    # The marginal model has no group effects nor y: predictive draws use the standard model,
    # which reads the z_<b> drawn into the posterior.
    fit = BayesFit(spec, idata, settings, model=None if plan.active else model)
    if warn:
        fit.diagnostics(warn=True)
    return fit


def _check_settings(draws, tune, chains, target_accept) -> None:
    """Plain messages for settings PyMC would reject with a deep traceback (or accept silently)."""
    for name, value, least in (("draws", draws, 1), ("tune", tune, 0), ("chains", chains, 1)):
        if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < least:
            raise HierbayesError(f"{name} must be a whole number >= {least}, got {value!r}.")
    if not 0 < target_accept < 1:
        raise HierbayesError(
            f"target_accept must lie strictly between 0 and 1 (e.g. 0.9, or 0.99 against "
            f"divergences), got {target_accept!r}."
        )


def resolve_sampler(sampler: str | None) -> str:
    """The NUTS implementation to use; a clear error when its packages are missing."""
    if sampler is None:
        return "nutpie" if _installed("nutpie") else "pymc"
    if sampler not in SAMPLERS:
        raise HierbayesError(f"Unknown sampler {sampler!r}; valid samplers: {', '.join(SAMPLERS)}.")
    missing = [name for name in _NEEDS.get(sampler, ()) if not _installed(name)]
    if missing:
        raise ImportError(
            f"sampler={sampler!r} needs {', '.join(missing)}, which is not installed. Install it "
            f"(for numpyro/blackjax: pip install 'hierbayes[jax]'), or use sampler='nutpie' or "
            "sampler='pymc'."
        )
    return sampler


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _seed(random_seed) -> int:
    """An int seed: the caller's, or a fresh one, so that the fit records how to reproduce it."""
    if random_seed is None:
        return int(np.random.SeedSequence().generate_state(1)[0] % (2**31))
    if isinstance(random_seed, bool) or not isinstance(random_seed, int | np.integer):
        raise HierbayesError(f"random_seed must be an int or None, got {random_seed!r}.")
    return int(random_seed)
