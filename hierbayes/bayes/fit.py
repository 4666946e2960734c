"""`BayesFit`: what `fit_bayes` / `sample` return.

``fit = hb.fit_bayes("Reaction ~ Days + (Days | Subject)", data, random_seed=1)``

What other modules (compare, report) can rely on:

- ``fit.idata``: `xarray.DataTree` with groups ``posterior``, ``sample_stats``, ``observed_data``,
  and after the corresponding calls ``log_likelihood`` (`log_likelihood`, `loo`, or
  ``fit_bayes(..., log_likelihood=True)``: rows × draws numbers, so computed on demand),
  ``prior``, ``prior_predictive``, ``posterior_predictive``. Posterior variables are named as in
  `hierbayes.bayes.builder`: ``beta`` (dim ``fixed``), ``sd_<b>``, ``corr_<b>``, ``r_<b>`` (dims
  ``<group>`` × ``<b>__term``), ``z_<b>``, ``sigma``, ``nu``, ``alpha``; ``<b>`` is `Block.name`.
- ``fixef()``, ``varcorr()``, ``ranef()``: the tidy tables of the API contract, estimate = posterior
  mean, std_error = posterior SD, plus ``median`` and a 95 % equal-tailed interval (``ci_prob=``);
  ``attrs["interval"]`` says which.
- ``summary()``: a brms-like text summary (``print(fit)`` shows it; notebooks show a compact
  HTML view); ``arviz_summary()`` the ArviZ table (MCSE, ESS, R-hat) at full precision.
- ``draws("fixef" | "varcorr" | "ranef")``: (chain, draw, row) draws whose rows are those of the
  matching table, in order (see `hierbayes.bayes.posterior`).
- ``design``, ``priors``, ``model``, ``link``, ``settings`` (sampler, seed, draws, tune, chains,
  ``marginalize`` and ``marginal_path``); ``timings``: seconds per stage of the `sample` call
  that made the fit (``prepare_s``, ``compile_s`` — 0 when a compiled model was reused —,
  ``sampling_s``, ``finish_s``, ``total_s``; empty for a loaded fit).
- Gaussian identity-link models are by default sampled with the group effects integrated out
  (`hierbayes.bayes.marginal`): NUTS explores β, the SDs, correlations and σ only, and ``z_<b>``,
  ``r_<b>`` are then drawn exactly from their conditional, so the posterior has the same variables
  and coords either way; ``sampling_path`` (and ``arviz_summary().attrs["sampling"]``) says
  which path a fit took. ``model`` is then the standard model, for predictive draws from the
  posterior.
"""

from __future__ import annotations

import arviz_stats as azs
import pandas as pd
import xarray as xr

from .. import naming
from ..arguments import keywords_checked
from ..bigdata import is_dask_frame
from ..bigdata.rows import MESSAGE, RowsNotInMemory
from ..errors import HierbayesError
from ..tidy import CI_PROB, check_ci_prob
from . import posterior as post
from .diagnostics import diagnostics_table, emit_warnings, reported_quantities
from .model import BayesModel
from .persist import save_fit
from .predict import predict_draws

DRAW_KINDS = ("fixef", "varcorr", "ranef")


class BayesFit:
    """A sampled Bayesian model: the `DataTree` of draws plus what is needed to read it."""

    def __init__(self, spec: BayesModel, idata: xr.DataTree, settings: dict, model=None):
        self.spec = spec
        # The model sampled by pm.sample (a fresh build, see .sampling); None when nutpie's cached
        # path sampled a private build of spec.model's structure: spec.model then serves.
        self._model = model
        self.idata = idata
        self.settings = dict(settings)
        self.timings: dict = {}
        self._diagnostics: pd.DataFrame | None = None

    # --- what the fit is -------------------------------------------------------------------
    design = property(lambda self: self.spec.design)
    priors = property(lambda self: self.spec.priors)
    model = property(lambda self: self._model if self._model is not None else self.spec.model)
    link = property(lambda self: self.spec.link)
    formula = property(lambda self: self.spec.formula)
    family = property(lambda self: self.spec.family)
    method = "NUTS"  # how the fit was made (`hierbayes.tidy.Fit`); RemlFit says REML, ML, Laplace

    @property
    def posterior(self) -> xr.Dataset:
        return self.idata["posterior"].to_dataset()

    # --- tidy tables ------------------------------------------------------------------------
    def fixef(self, ci_prob: float = CI_PROB) -> pd.DataFrame:
        """Fixed effects: posterior mean, SD, median and equal-tailed interval per term."""
        return post.fixef_table(self.posterior, check_ci_prob(ci_prob))

    def varcorr(self, ci_prob: float = CI_PROB) -> pd.DataFrame:
        """SDs and correlations per grouping factor, then the residual SD (group "Residual").

        Columns as the REML side: group, term1, term2 (None on SD rows), estimate (posterior
        mean), std_error (posterior SD), median, lower, upper, block (`Block.name`). For
        student_t the "Residual" row is the scale sigma of the t distribution, not its SD.
        """
        return post.varcorr_table(self.design, self.posterior, check_ci_prob(ci_prob))

    def ranef(self, ci_prob: float = CI_PROB) -> pd.DataFrame:
        """Group effects as deviations from the fixed effects (lme4's ranef), per level × term.

        Rows level-major within each block (as the REML side), with a ``block`` column.
        """
        return post.ranef_table(self.design, self.posterior, check_ci_prob(ci_prob))

    def draws(self, what: str = "ranef") -> xr.DataArray:
        """(chain, draw, row) posterior draws lined up with the rows of fixef/varcorr/ranef."""
        if what == "fixef":
            return post.fixef_draws(self.posterior)
        if what == "varcorr":
            return post.varcorr_draws(self.design, self.posterior)
        if what == "ranef":
            return post.ranef_draws(self.design, self.posterior)
        raise HierbayesError(f"draws() takes one of {', '.join(DRAW_KINDS)}; got {what!r}.")

    def summary(self, ci_prob: float = CI_PROB) -> str:
        """A brms-like text summary (`hierbayes.report.display`): model, data, sampling, SDs,
        correlations and fixed effects with intervals, rounded for reading, and the verdict of
        the sampler checks. The tables themselves (`fixef()`, ...) keep full precision; the
        ArviZ table with MCSE, ESS and R-hat per parameter is `arviz_summary()`."""
        from ..report.display import fit_text

        return fit_text(self, check_ci_prob(ci_prob))

    def arviz_summary(self, ci_prob: float = CI_PROB) -> pd.DataFrame:
        """ArviZ summary (mean, sd, equal-tailed interval, MCSE, ESS, R-hat) of the parameters.

        Rows: ``beta[<term>]``, ``sd_<b>[<term>]``, ``corr_<b>[<term1>, <term2>]`` (each pair
        once), ``sigma``, ``nu``, ``alpha`` — the group effects are left to `ranef`.
        ``attrs["sampling"]`` says how the posterior was sampled (`sampling_path`).
        """
        quantities = reported_quantities(self.design, self.posterior, group_effects=False)
        data = xr.Dataset({label: (naming.SAMPLE_DIMS, v) for label, v in quantities.items()})
        frame = azs.summary(data, ci_prob=check_ci_prob(ci_prob), ci_kind="eti", round_to="none")
        frame = pd.DataFrame(frame)
        frame.attrs["interval"] = post.interval_label(ci_prob)
        frame.attrs["sampling"] = self.sampling_path
        return frame

    @property
    def sampling_path(self) -> str:
        """Which model NUTS sampled: the group effects integrated out (marginal) or not, and why
        (`hierbayes.bayes.marginal`)."""
        text = self.idata["posterior"].attrs.get("hierbayes_marginalize")
        if text:
            return str(text)
        return "marginal" if self.settings.get("marginalize") else "standard"

    # --- sampling checks --------------------------------------------------------------------
    def diagnostics(self, warn: bool = False) -> pd.DataFrame:
        """Divergences, R-hat, ESS, BFMI and tree depth, each with threshold, verdict, remedy.

        The failed checks' messages are in ``attrs["messages"]``; with `warn` each is also
        issued as a `SamplingWarning`.
        """
        if self._diagnostics is None:
            self._diagnostics = diagnostics_table(self.idata, self.design, self.settings)
        frame = self._diagnostics.copy()
        frame.attrs = dict(self._diagnostics.attrs)
        if warn:
            emit_warnings(frame)
        return frame

    # --- predictive -------------------------------------------------------------------------
    def sample_prior_predictive(self, draws: int = 500, random_seed=None) -> xr.DataTree:
        """Prior and prior-predictive draws; also added to ``idata`` (groups prior, ...)."""
        prior = self.spec.sample_prior_predictive(draws=draws, random_seed=random_seed)
        for group in ("prior", "prior_predictive"):
            self.idata[group] = prior[group]
        return prior

    def sample_posterior_predictive(self, random_seed=None, progressbar=False) -> xr.DataTree:
        """Replicated data ``y`` per posterior draw; also added to ``idata``."""
        import pymc as pm

        # The data and prior numbers are shared variables (`.graphdata`), which PyMC would take
        # for changed data; every variable in the posterior is a draw to condition on.
        in_trace = [v for v in self.model.named_vars if v in self.idata["posterior"].data_vars]
        out = pm.sample_posterior_predictive(
            self.idata, model=self.model, random_seed=random_seed, progressbar=progressbar,
            freeze_vars=in_trace,
        )
        self.idata["posterior_predictive"] = out["posterior_predictive"]
        return out

    def log_likelihood(self) -> xr.DataArray:
        """Pointwise log-likelihood (chain, draw, obs) of the observed ``y`` given each draw (with
        its group effects); computed on first use and kept as ``idata["log_likelihood"]``."""
        self._check_rows("the pointwise log-likelihood")
        if "log_likelihood" not in self.idata.children:
            self.idata["log_likelihood"] = xr.DataTree(self._pointwise_log_likelihood())
        return self.idata["log_likelihood"][naming.RESPONSE]

    def _pointwise_log_likelihood(self) -> xr.Dataset:
        design = self.design
        if design.family.name == "gaussian" and self.link == "identity" and (
                design.known_sigma is None):
            from .marginal.draws import pointwise_log_likelihood

            return pointwise_log_likelihood(design, self.posterior)  # numpy, no compilation
        import pymc as pm

        out = pm.compute_log_likelihood(self.idata, model=self.model,
                                        extend_inferencedata=False, progressbar=False)
        return out.to_dataset() if isinstance(out, xr.DataTree) else out

    def loo(self):
        """PSIS-LOO (`arviz_stats.loo`) of the fit (computes the pointwise log-likelihood first
        if the fit does not hold it yet)."""
        self._check_rows("the pointwise log-likelihood (for LOO)")
        self.log_likelihood()
        return azs.loo(self.idata)

    def _check_rows(self, what: str) -> None:
        if self.design.moments is not None:  # fitted from a Dask frame
            raise RowsNotInMemory(MESSAGE.format(what=what))

    @keywords_checked
    def predict(
        self,
        new_data: pd.DataFrame | None = None,
        kind: str = "mean",
        group_effects: str = "sample_new",
        random_seed=None,
        summary: bool = False,
        ci_prob: float = CI_PROB,
    ):
        """Predictions per posterior draw, (chain, draw, obs); see `hierbayes.bayes.predict`.

        With `summary` a DataFrame (one row per row of `new_data`: estimate = posterior mean,
        std_error, median, lower, upper) instead of the draws. A Dask frame gives that summary
        as a Dask DataFrame (summary=True; hierbayes.bigdata.predict).
        """
        if is_dask_frame(new_data):
            from ..bigdata.predict import predict_dask

            return predict_dask(self, new_data, kind=kind, group_effects=group_effects,
                                random_seed=random_seed, summary=summary, ci_prob=ci_prob)
        draws = predict_draws(
            self.design, self.link, self.posterior, new_data, kind, group_effects, random_seed
        )
        if not summary:
            return draws
        s = post.summarize(draws, check_ci_prob(ci_prob))
        frame = pd.DataFrame(s, index=pd.Index(draws[naming.OBS_DIM].values, name="row"))
        frame.attrs["interval"] = post.interval_label(ci_prob)
        return frame

    # --- persistence ------------------------------------------------------------------------
    def save(self, path) -> None:
        """Write the fit to one netCDF file; `hierbayes.load` rebuilds it."""
        save_fit(self, path)

    # --- display (hierbayes.report.display) -------------------------------------------------
    def _repr_html_(self) -> str:
        from ..report.display import fit_display_html

        return fit_display_html(self)

    def __repr__(self) -> str:
        return f"BayesFit\n{self.summary()}"
