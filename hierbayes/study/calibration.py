"""Simulation-based calibration (Talts et al. 2018) of any model hierbayes fits: `sbc`.

For the design of `formula` on `data` (its predictors and groups; the response is replaced) and
fixed priors: draw the parameters and a response from the prior `n_datasets` times (the standard
PyMC model's prior predictive), fit each simulated data set by NUTS, and take the rank of every
true value among thinned posterior draws. If the sampler, the likelihood and the prior used for
fitting are right, every quantity's ranks are uniform; `uniformity` tests that with a chi-square
test on `bins` equal-width bins of ranks (`hierbayes.testing.sbc`), and the study counts as
calibrated when no p-value is below 0.01 divided by the number of quantities (Bonferroni).

`fit_priors` (name -> `hb.Prior`) fits with other priors than the data were simulated from: the
ranks then show what a wrong prior does (too narrow a prior for an SD piles its ranks at the
top). Quantities: fixed effects, SDs, correlations, the residual SD and family parameters; every
group effect too with ``group_effects=True``.

Paths. A Gaussian identity-link model on the marginal path (``marginalize=None`` when it
applies, or True) is compiled once per worker and the data swapped in
(`hierbayes.testing.sbc.marginal_ranks`; it takes draws, tune, chains and thin only, and reports
divergences per worker). Every other model and path (``marginalize=False``, other families) is
fitted by `hierbayes.sample` per data set, with its sampler checks recorded per data set.
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..errors import HierbayesError
from .parallel import run_all

BONFERRONI = 0.01  # the family-wise level of the uniformity tests


@dataclass(frozen=True, eq=False)
class Calibration:
    """What `sbc` measured: `ranks` (data set × quantity, 0 .. n_ranks − 1), `uniformity` (one
    row per quantity: chi2, p_value, counts per bin), `fits` (per data set or per worker: sampler
    checks, divergences, seconds) and the settings."""

    formula: str
    ranks: pd.DataFrame
    uniformity: pd.DataFrame
    fits: pd.DataFrame
    n_ranks: int
    bins: int
    settings: dict = field(default_factory=dict)

    @property
    def threshold(self) -> float:
        return BONFERRONI / max(len(self.uniformity), 1)

    @property
    def calibrated(self) -> bool:
        """No quantity's ranks reject uniformity at 0.01 / number of quantities."""
        return bool((self.uniformity["p_value"] >= self.threshold).all())

    def verdict(self) -> str:
        worst = self.uniformity["p_value"].idxmin()
        p = self.uniformity.loc[worst, "p_value"]
        if self.calibrated:
            return (f"Calibrated: every quantity's ranks are consistent with uniform (smallest "
                    f"p = {p:.2g}, for {worst}; threshold {self.threshold:.2g}).")
        bad = self.uniformity.index[self.uniformity["p_value"] < self.threshold]
        return (f"Not calibrated: the ranks of {', '.join(bad)} are not uniform (smallest "
                f"p = {p:.2g}, for {worst}; threshold {self.threshold:.2g}).")

    def plot(self, **kwargs):
        """Rank histograms, one per quantity (matplotlib Figure)."""
        from .figures import plot_ranks

        return plot_ranks(self, **kwargs)

    def report(self, path=None, title: str | None = None, description: str = ""):
        from .figures import sbc_report

        return sbc_report(self, path, title=title, description=description)

    def __repr__(self) -> str:
        return f"Calibration of {self.formula}: {len(self.ranks)} data sets\n{self.verdict()}"


def sbc(formula: str, data: pd.DataFrame, n_datasets: int = 50, *, family: str = "gaussian",
        priors=None, fit_priors=None, link: str | None = None,
        known_sigma: str | None = None, draws: int = 500,
        tune: int = 500, chains: int = 2, thin: int = 10, bins: int | None = None,
        seed: int = 0, marginalize: bool | None = None, group_effects: bool = False,
        n_jobs: int = 1, client=None, progressbar: bool = True,
        **sampler_options) -> Calibration:
    """Simulation-based calibration of `formula` on the design of `data` (module docstring).

    `priors`: the overrides of the model simulated from (defaults fill the rest, scaled to
    `data` once); `fit_priors`: overrides for fitting only. `draws`, `tune`, `chains`: per fit;
    every `thin`-th draw is kept, so ranks run 0 .. chains·draws/thin. `bins`: of the
    uniformity test (default: about 5 data sets per bin, at most 20). `sampler_options` go to
    `hb.sample` on the standard path. `n_jobs`, `client`: parallel fits (`.parallel`).
    """
    from ..bayes import build_model
    from ..bayes.marginal import plan_for
    from ..bayes.model import model_from_design
    from ..testing import sbc as kit

    _check(n_datasets, thin, draws, chains)
    n_ranks = len(range(0, chains * draws, thin)) + 1
    bins = _bins(bins, n_datasets, n_ranks)
    spec = build_model(formula, data, family, priors, link, known_sigma=known_sigma)
    fitted = model_from_design(spec.design, {**dict(spec.priors), **(fit_priors or {})},
                               spec.link) if fit_priors else spec
    truth, ys = kit.simulate(spec, n_datasets, seed=seed)
    truth = truth[[c for c in truth.columns if group_effects or not c.startswith("r_")]]
    marginal = plan_for(fitted, marginalize).active
    settings = {"draws": draws, "tune": tune, "chains": chains, "thin": thin, "seed": seed,
                "path": "marginal" if marginal else "standard", **sampler_options}
    jobs = _jobs(fitted, truth, ys, settings, marginal, n_jobs if client is None else 1)
    results = run_all(_fit_job, jobs, n_jobs=n_jobs, client=client, progressbar=progressbar,
                      label="sbc fits")
    ranks = pd.concat([r["ranks"] for r in results]).sort_index()
    uniformity = kit.uniformity(ranks[list(truth.columns)], n_ranks, bins)
    fits = pd.DataFrame([row for r in results for row in r["fits"]])
    return Calibration(formula, ranks, uniformity, fits, n_ranks, bins,
                       {**settings, "family": family, "n_datasets": n_datasets})


def _check(n_datasets, thin, draws, chains) -> None:
    for name, value, least in (("n_datasets", n_datasets, 2), ("thin", thin, 1),
                               ("draws", draws, 1), ("chains", chains, 1)):
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < least:
            raise HierbayesError(f"{name} must be a whole number >= {least}, got {value!r}.")


def _bins(bins, n_datasets: int, n_ranks: int) -> int:
    if bins is None:
        return int(max(2, min(20, n_datasets // 5, n_ranks)))
    if isinstance(bins, bool) or not isinstance(bins, int) or not 2 <= bins <= n_ranks:
        raise HierbayesError(f"bins must be a whole number from 2 to {n_ranks} (the number of "
                             f"possible ranks), got {bins!r}.")
    return bins


def _jobs(spec, truth, ys, settings, marginal: bool, workers: int) -> list[dict]:
    """The marginal path in one chunk per worker (compiled once each); else one job per data
    set."""
    index = np.arange(len(ys))
    chunks = np.array_split(index, workers) if marginal else [[i] for i in index]
    return [{"spec": spec, "rows": list(map(int, rows)), "truth": truth.iloc[list(rows)],
             "ys": ys[list(rows)], "settings": settings, "marginal": marginal}
            for rows in chunks if len(rows)]


def _fit_job(job: dict) -> dict:
    from ..testing import sbc as kit

    s, spec, truth, ys = job["settings"], job["spec"], job["truth"], job["ys"]
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # recorded in `fits`, not shown per data set
        if job["marginal"]:
            ranks = kit.marginal_ranks(spec, truth, ys, draws=s["draws"], tune=s["tune"],
                                       chains=s["chains"], thin=s["thin"],
                                       seed=s["seed"] + job["rows"][0])
            ranks.index = job["rows"]
            fits = [{"data_sets": len(job["rows"]), "first": job["rows"][0],
                     "divergences": ranks.attrs.get("divergences", 0), "sampler_ok": np.nan,
                     "seconds": time.perf_counter() - start}]
            return {"ranks": ranks, "fits": fits}
        return _standard(job, kit, start)


def _standard(job: dict, kit, start: float) -> dict:
    from ..bayes import sample

    s, spec = job["settings"], job["spec"]
    options = {k: v for k, v in s.items() if k not in ("thin", "seed", "path")}
    rows, fits = [], []
    for i, y, (_, truth) in zip(job["rows"], job["ys"], job["truth"].iterrows(), strict=True):
        spec_i = _with_response(spec, y)
        fit = sample(spec_i, random_seed=s["seed"] + i, progressbar=False, warn=False,
                     marginalize=False, **options)
        checks = fit.diagnostics()
        rows.append(kit.ranks(fit.posterior, spec_i.design, truth, s["thin"]).rename(i))
        fits.append({"data_set": i, "divergences": int(fit.idata["sample_stats"]["diverging"]
                                                       .sum()),
                     "sampler_ok": bool(checks["ok"].all()),
                     "seconds": time.perf_counter() - start})
        start = time.perf_counter()
    return {"ranks": pd.DataFrame(rows), "fits": fits}


def _with_response(spec, y: np.ndarray):
    """`spec` with the response `y` (successes for the binomial) in its design; every prior
    kept as it was (the defaults were scaled to the original data once)."""
    from ..bayes.model import model_from_design

    design = dataclasses.replace(spec.design, y=np.asarray(y, dtype=float))
    return model_from_design(design, dict(spec.priors), spec.link, spec.missing)
