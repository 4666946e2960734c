"""NUTS on a `BayesModel` (`hierbayes.bayes.model`): the staged path's second step.

>>> spec = hb.build_model("Reaction ~ Days + (Days | Subject)", data)   # BayesModel
>>> spec.priors                     # the prior table; spec.model is the pm.Model
>>> prior = spec.sample_prior_predictive(draws=200)
>>> fit = hb.sample(spec, draws=1000, chains=4, random_seed=1)        # BayesFit

`sample` runs four stages: plan (which model: the marginal one of `hierbayes.bayes.marginal` or
the standard one), compile or reuse (`hierbayes.bayes.compiled`), run NUTS (`_run_nuts`, the one
place that calls the samplers), finish (the exact group-effect draws of the marginal path, the
diagnostics). The status line (`hierbayes.bayes.progress`) says which stage is running.

Samplers (``sampler=``): ``"nutpie"`` (the default when installed: compiled with numba, fast;
the compiled model is cached and reused by later fits of the same structure), ``"pymc"`` (PyMC's
own NUTS, the fallback), ``"numpyro"`` or ``"blackjax"`` (JAX; for a GPU; need
``pip install hierbayes[jax]``). A seed is always recorded: with ``random_seed=None`` one is drawn
and stored in ``fit.settings`` so that any fit can be reproduced exactly.

Reproducibility: PyTensor does not compile a graph it has compiled before to bit-identical code
(gradients can differ in the last bit), and NUTS amplifies such differences. So what is sampled is
always compiled from a fresh build of the model (rebuilt from the design and the priors): by
`pm.sample` for the other samplers, and for nutpie by the cache, which compiles each structure once
from a fresh build and reuses that code (see `hierbayes.bayes.compiled`). The same seed gives the
same draws however often the model was sampled before and whether its compiled code was new or
reused. A model the user has extended (variables added to ``spec.model``) is sampled as it is by
`pm.sample`, without this guarantee.

Keyword arguments beyond the ones named go to `pymc.sample` unchanged; with nutpie, ``cores``
and ``nuts={...}`` (sampler options such as ``max_treedepth``) keep the cached path, anything else
is passed to `pymc.sample`, which compiles the model anew.
"""

from __future__ import annotations

import contextlib
import importlib.util
import time

import numpy as np
import pymc as pm

from ..arguments import check_seed
from ..blas import one_blas_thread
from ..errors import HierbayesError
from .builder import build_model as build_pymc_model
from .compiled import run_nutpie
from .fit import BayesFit
from .interrupt import run_interruptibly
from .keywords import check_sample_keywords
from .marginal import ATTR, build_marginal_model, complete_posterior, plan_for
from .model import BayesModel, fresh_model, is_extended
from .progress import Progress, in_notebook

SAMPLERS = ("nutpie", "pymc", "numpyro", "blackjax")
_NEEDS = {"nutpie": ("nutpie",), "numpyro": ("numpyro", "jax"), "blackjax": ("blackjax", "jax")}
DEFAULT_TARGET_ACCEPT = 0.9  # above PyMC's 0.8: hierarchical posteriors have funnels
_CACHED_KWARGS = frozenset({"cores", "nuts"})  # what the cached nutpie path takes from **kwargs


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
    log_likelihood: bool = False,
    **sample_kwargs,
):
    """NUTS on `spec`; returns a `BayesFit`.

    Extra keyword arguments go to `pymc.sample` unchanged (e.g. ``cores``, ``init``, ``nuts``).
    With `warn` (the default) failed convergence checks raise a `SamplingWarning` with a remedy.

    `marginalize`: integrate the group effects out of a gaussian, identity-link model and sample
    only the other parameters, then draw the group effects exactly (`.marginal`).
    None (default): whenever that applies; True: insist (an error says why it cannot); False: the
    standard non-centred model. ``fit.settings["marginalize"]`` and ``["marginal_path"]`` and
    the posterior attribute ``hierbayes_marginalize`` say which path was taken.

    `log_likelihood`: store the pointwise log-likelihood (group ``log_likelihood``) now. By
    default it is computed on first use (`BayesFit.loo`, `BayesFit.log_likelihood`): it holds
    rows × draws numbers, far more than the posterior of a large data set.
    """
    if not isinstance(spec, BayesModel):
        raise HierbayesError(
            f"hb.sample needs a BayesModel from hb.build_model(...), got {type(spec).__name__}."
        )
    _check_settings(draws, tune, chains, target_accept)
    check_sample_keywords(sample_kwargs, sample)
    settings = {
        "draws": draws,
        "tune": tune,
        "chains": chains,
        "random_seed": _seed(random_seed),
        "sampler": resolve_sampler(sampler),
        "target_accept": target_accept,
    }
    start = time.perf_counter()
    progress = Progress(progressbar)
    plan = plan_for(spec, marginalize)
    run = _plan_run(spec, plan, settings["sampler"], sample_kwargs)
    timings = {"prepare_s": time.perf_counter() - start}
    idata = run_interruptibly(  # Ctrl-C raises, never returns part of a run as whole
        lambda: _run_nuts(run, settings, progress, sample_kwargs, timings),
        spec, settings, plan,
    )
    fit = _finish(spec, plan, run, idata, settings, timings, log_likelihood)
    if warn:
        fit.diagnostics(warn=True)
    fit.timings["total_s"] = time.perf_counter() - start  # diagnostics included
    return fit


class _Run:
    """What `_run_nuts` samples: `model`, and for the cached nutpie path how to build it anew."""

    def __init__(self, model, marginal: bool, build=None, cached: bool = False):
        self.model = model
        self.marginal = marginal
        self.build = build  # a fresh build of `model`'s structure (None: `model` is fresh)
        self.cached = cached


def _plan_run(spec: BayesModel, plan, sampler: str, sample_kwargs: dict) -> _Run:
    cached = sampler == "nutpie" and set(sample_kwargs) <= _CACHED_KWARGS
    if plan.active:  # a fresh build either way
        return _Run(build_marginal_model(spec.design, spec.priors, plan), True, cached=cached)
    if is_extended(spec):
        return _Run(spec.model, False)  # sampled as it is, by pm.sample
    if cached:
        return _Run(spec.model, False, lambda: build_pymc_model(
            spec.design, spec.priors, spec.link, spec.centred), cached=True)
    return _Run(fresh_model(spec), False)  # see "Reproducibility" in the module docstring


def _run_nuts(run: _Run, settings: dict, progress: Progress, sample_kwargs: dict, timings: dict):
    """The one place that runs NUTS: nutpie on a cached compiled model, or `pm.sample`."""
    kwargs = {
        "draws": settings["draws"],
        "tune": settings["tune"],
        "chains": settings["chains"],
        "random_seed": settings["random_seed"],
        "nuts_sampler": settings["sampler"],
        "target_accept": settings["target_accept"],
        "progressbar": progress.show,
        "model": run.model,
        **sample_kwargs,
    }
    if run.cached:
        return run_nutpie(build=run.build, progress=progress, record=timings, **kwargs)
    progress.stage(f"compiling and sampling the model ({settings['sampler']})…")
    if in_notebook() and not _installed("ipywidgets"):
        kwargs["progressbar"] = False  # PyMC's live bar would only ask for ipywidgets
    start = time.perf_counter()
    with one_blas_thread() if run.marginal else contextlib.nullcontext():
        idata = pm.sample(**kwargs)
    timings["sampling_s"] = float(idata["posterior"].attrs.get("sampling_time", np.nan))
    timings["compile_s"] = time.perf_counter() - start - timings["sampling_s"]
    return idata


def _finish(spec, plan, run: _Run, idata, settings: dict, timings: dict, log_likelihood: bool):
    start = time.perf_counter()
    if plan.active:
        idata = complete_posterior(idata, spec.design, plan, settings["random_seed"])
    else:
        idata["posterior"].attrs[ATTR] = plan.describe()
    # The marginal model has no group effects nor y: predictive draws use the standard model,
    # which reads the z_<b> drawn into the posterior. The cached path sampled a private copy of
    # spec.model's structure; spec.model (same structure, this fit's data) serves the fit.
    model = None if plan.active or run.cached else run.model
    if plan.active and spec.centred:  # its free c_<b> is not in a marginal posterior
        model = build_pymc_model(spec.design, spec.priors, spec.link, ())
    fit = BayesFit(spec, idata, {**settings, **plan.settings()}, model=model)
    if log_likelihood:
        fit.log_likelihood()
    fit.timings = {**timings, "finish_s": time.perf_counter() - start}
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
    return check_seed(random_seed)
