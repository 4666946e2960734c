"""NUTS on a `BayesModel` (`hierbayes.bayes.model`): the staged path's second step.

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

import contextlib
import importlib.util

import numpy as np
import pymc as pm

from ..blas import one_blas_thread
from ..errors import HierbayesError
from .fit import BayesFit
from .interrupt import run_interruptibly
from .marginal import ATTR, build_marginal_model, complete_posterior, plan_for
from .model import BayesModel, fresh_model

SAMPLERS = ("nutpie", "pymc", "numpyro", "blackjax")
_NEEDS = {"nutpie": ("nutpie",), "numpyro": ("numpyro", "jax"), "blackjax": ("blackjax", "jax")}
DEFAULT_TARGET_ACCEPT = 0.9  # above PyMC's 0.8: hierarchical posteriors have funnels


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
    only the other parameters, then draw the group effects exactly (`.marginal`).
    None (default): whenever that applies; True: insist (an error says why it cannot); False: the
    standard non-centred model. ``fit.settings["marginalize"]`` and ``["marginal_path"]`` and
    the posterior attribute ``hierbayes_marginalize`` say which path was taken.
    """
    if not isinstance(spec, BayesModel):
        raise HierbayesError(
            f"hb.sample needs a BayesModel from hb.build_model(...), got {type(spec).__name__}."
        )
    _check_settings(draws, tune, chains, target_accept)
    settings = {
        "draws": draws,
        "tune": tune,
        "chains": chains,
        "random_seed": _seed(random_seed),
        "sampler": resolve_sampler(sampler),
        "target_accept": target_accept,
    }
    plan = plan_for(spec, marginalize)
    if plan.active:
        model = build_marginal_model(spec.design, spec.priors, plan)  # fresh, as fresh_model
    else:
        model = fresh_model(spec)  # see "Reproducibility" in the module docstring
    idata = run_interruptibly(  # Ctrl-C raises, never returns part of a run as whole
        lambda: _run_nuts(model, settings, plan.active, progressbar, sample_kwargs),
        spec, settings, plan,
    )
    if plan.active:
        idata = complete_posterior(idata, spec.design, plan, settings["random_seed"])
    else:
        idata = pm.compute_log_likelihood(idata, model=model, progressbar=False)
        idata["posterior"].attrs[ATTR] = plan.describe()
    # The marginal model has no group effects nor y: predictive draws use the standard model,
    # which reads the z_<b> drawn into the posterior.
    fit = BayesFit(spec, idata, {**settings, **plan.settings()},
                   model=None if plan.active else model)
    if warn:
        fit.diagnostics(warn=True)
    return fit


def _run_nuts(model, settings: dict, marginal: bool, progressbar: bool, sample_kwargs: dict):
    """`pm.sample` with our settings (one BLAS thread on the marginal path, see `..blas`)."""
    with one_blas_thread() if marginal else contextlib.nullcontext():
        return pm.sample(
            draws=settings["draws"],
            tune=settings["tune"],
            chains=settings["chains"],
            random_seed=settings["random_seed"],
            nuts_sampler=settings["sampler"],
            target_accept=settings["target_accept"],
            progressbar=progressbar,
            model=model,
            **sample_kwargs,
        )


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
