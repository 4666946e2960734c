"""NUTS diagnostics with thresholds, verdicts and plain-language remedies.

Checks (Vehtari et al. 2021, "Rank-normalization, folding, and localization"; Betancourt 2017):

=============  ====================================  ======================================
check          passes when                           remedy when it fails
=============  ====================================  ======================================
divergences    no divergent transition               raise ``target_accept``; reparameterise
                                                     where the divergent draws sit at small
                                                     values of an SD (a funnel)
max R-hat      ≤ 1.01                                more ``tune`` and ``draws``;
                                                     reparameterise around the worst SD
min bulk ESS   ≥ 100 per chain                       more ``draws`` (and ``tune``)
min tail ESS   ≥ 100 per chain                       more ``draws`` (and ``tune``)
min BFMI       ≥ 0.3 in every chain                  more ``tune``; reparameterise
tree depth     no transition hit the maximum depth   ``nuts={"max_treedepth": 12}``; look for
                                                     weakly identified parameters
=============  ====================================  ======================================

The remedies change how the model is sampled, never the model: a stronger prior would make a
sampler problem disappear by answering a different question. Reparameterising means sampling the
Gaussian model with its group effects integrated out (``marginalize=True``), or centring and
scaling the predictors of varying slopes.

R-hat and ESS are computed on the reported quantities: fixed effects, SDs, correlations (off the
diagonal), the residual SD, the family parameters and every group effect. A statistic that cannot
be computed (NaN: non-finite draws, e.g. a chain an interrupted run left empty, or draws that
never move) fails its check.
"""

from __future__ import annotations

import warnings

import arviz_stats as azs
import numpy as np
import pandas as pd
import xarray as xr

from .. import naming
from ..design import Design
from ..errors import SamplingWarning
from .posterior import SAMPLE_DIMS, fixef_draws, ranef_draws, varcorr_draws

RHAT_MAX = 1.01
ESS_PER_CHAIN = 100
BFMI_MIN = 0.3
_TREE_HIT = ("maxdepth_reached", "reached_max_treedepth")  # nutpie, PyMC


def diagnostics_table(idata: xr.DataTree, design: Design, settings: dict) -> pd.DataFrame:
    """One row per check: check, value, threshold, ok, where (worst parameter), message."""
    posterior = idata["posterior"].to_dataset()
    stats = idata["sample_stats"].to_dataset()
    chains = posterior.sizes["chain"]
    quantities = reported_quantities(design, posterior)
    target = settings.get("target_accept")
    rows = [
        _divergences(stats, design, posterior, target),
        _rhat(quantities),
        _ess(quantities, "bulk", chains),
        _ess(quantities, "tail", chains),
        _bfmi(idata),
        _tree_depth(stats),
    ]
    frame = pd.DataFrame(rows, columns=["check", "value", "threshold", "ok", "where", "message"])
    frame.attrs["messages"] = [m for m in frame["message"] if m]
    return frame


def emit_warnings(frame: pd.DataFrame) -> None:
    for message in frame.attrs.get("messages", []):
        warnings.warn(message, SamplingWarning, stacklevel=3)


def reported_quantities(
    design: Design, posterior: xr.Dataset, group_effects: bool = True
) -> dict[str, np.ndarray]:
    """Label -> (chain, draw) draws of each quantity the tables report."""
    out: dict[str, np.ndarray] = {}
    fixed = fixef_draws(posterior)
    for k, term in enumerate(fixed["term"].values):
        out[f"beta[{term}]"] = fixed.values[..., k]
    vc = varcorr_draws(design, posterior)
    for k in range(vc.sizes["component"]):
        out[_varcorr_label(vc, k)] = vc.values[..., k]
    for name in ("nu", "alpha"):
        if name in posterior:
            out[name] = posterior[name].transpose(*SAMPLE_DIMS).values
    if not group_effects:
        return out
    re = ranef_draws(design, posterior)
    for k in range(re.sizes["effect"]):
        label = f"r_{re['block'].values[k]}[{re['level'].values[k]}, {re['term'].values[k]}]"
        out[label] = re.values[..., k]
    return out


def _varcorr_label(vc: xr.DataArray, k: int) -> str:
    variable, kind = str(vc["variable"].values[k]), str(vc["kind"].values[k])
    if kind == "sd":
        return f"{variable}[{vc['term1'].values[k]}]"
    if kind == "corr":
        return f"{variable}[{vc['term1'].values[k]}, {vc['term2'].values[k]}]"
    return variable


def _as_dataset(quantities: dict[str, np.ndarray]) -> tuple[xr.Dataset, list[str]]:
    labels = list(quantities)
    values = np.stack([quantities[k] for k in labels], axis=-1)  # (C, D, q)
    return xr.Dataset({"value": ((*SAMPLE_DIMS, "quantity"), values)}), labels


def _rhat(quantities) -> list:
    name = "max R-hat"
    if not quantities:
        return [name, np.nan, RHAT_MAX, True, "", ""]
    ds, labels = _as_dataset(quantities)
    with np.errstate(invalid="ignore", divide="ignore"):
        rhat = azs.rhat(ds)["value"].values
    if np.isnan(rhat).any():
        return _not_computable(name, RHAT_MAX, labels[int(np.argmax(np.isnan(rhat)))], quantities)
    worst = int(np.argmax(rhat))
    value, where = float(rhat[worst]), labels[worst]
    if value <= RHAT_MAX:
        return [name, value, RHAT_MAX, True, where, ""]
    message = (
        f"R-hat of {where} is {value:.3f} (> {RHAT_MAX}): the chains disagree, so the "
        "posterior is not reliably explored. Run longer (e.g. tune=2000, draws=2000)"
        f"{_sd_hint(where)}."
    )
    return [name, value, RHAT_MAX, False, where, message]


def _ess(quantities, method: str, chains: int) -> list:
    threshold = ESS_PER_CHAIN * chains
    name = f"min {method} ESS"
    if not quantities:
        return [name, np.nan, threshold, True, "", ""]
    ds, labels = _as_dataset(quantities)
    with np.errstate(invalid="ignore", divide="ignore"):
        ess = azs.ess(ds, method=method)["value"].values
    if np.isnan(ess).any():
        return _not_computable(name, threshold, labels[int(np.argmax(np.isnan(ess)))], quantities)
    worst = int(np.argmin(ess))
    value, where = float(ess[worst]), labels[worst]
    if value >= threshold:
        return [name, value, threshold, True, where, ""]
    what, verb = ("tail quantiles", "are") if method == "tail" else ("mean", "is")
    message = (
        f"The {method} effective sample size of {where} is {value:.0f} (< {threshold}, i.e. "
        f"{ESS_PER_CHAIN} per chain): its {what} {verb} imprecise. Draw more (e.g. draws=2000, "
        f"tune=2000){_sd_hint(where)}."
    )
    return [name, value, threshold, False, where, message]


def _not_computable(name: str, threshold, where: str, quantities) -> list:
    """A check whose statistic is NaN fails: NaN draws (an interrupted or broken run) or draws
    that never move cannot show convergence."""
    draws = quantities[where]
    if not np.isfinite(draws).all():
        bad = [c for c in range(draws.shape[0]) if not np.isfinite(draws[c]).all()]
        why = f"chain(s) {', '.join(map(str, bad))} hold non-finite (NaN) draws of it"
    else:
        why = "its draws do not vary"
    message = (
        f"The {name.split(' ', 1)[1]} cannot be computed for {where}: {why}, so convergence "
        "is not shown. Sample again to the end (an interrupted run leaves NaN draws), with more "
        "tune and draws."
    )
    return [name, np.nan, threshold, False, where, message]


def _sd_hint(label: str) -> str:
    if label.startswith(("sd_", "r_", "corr_")):
        block = label.split("[", 1)[0].split("_", 1)[1]
        return (f", or reparameterise around sd_{block} (marginalize=True for a Gaussian "
                "model; centre and scale the predictors of its varying slopes)")
    return ""


def _divergences(stats, design, posterior, target_accept) -> list:
    diverging = stats["diverging"].transpose(*SAMPLE_DIMS).values.astype(bool)
    count = int(diverging.sum())
    if count == 0:
        return ["divergences", 0, 0, True, "", ""]
    sd_name = _funnel_sd(design, posterior, diverging)
    raise_to = 0.99 if (target_accept or 0.9) >= 0.95 else 0.95
    message = (
        f"{count} divergent transition(s) ({100 * count / diverging.size:.1f}% of draws): the "
        "sampler could not follow the posterior's curvature, and the draws may be biased. Raise "
        f"target_accept (e.g. target_accept={raise_to})"
    )
    if sd_name:
        message += (
            f"; the divergent draws sit at small values of {sd_name!r}, the neck of a funnel: "
            "reparameterise (marginalize=True integrates a Gaussian model's group effects out; "
            "else centre and scale the predictors of varying slopes)"
        )
    return ["divergences", count, 0, False, sd_name, message + "."]


def _funnel_sd(design: Design, posterior: xr.Dataset, diverging: np.ndarray) -> str:
    """The SD variable whose log is lowest, relative to its spread, in the divergent draws."""
    best, best_score = "", np.inf
    for block in design.blocks:
        sd = posterior[naming.sd(block)].transpose(*SAMPLE_DIMS, ...).values
        log_sd = np.log(np.maximum(sd, 1e-300)).reshape(*diverging.shape, -1)
        spread = log_sd.std(axis=(0, 1)) + 1e-12
        score = np.min((log_sd[diverging].mean(axis=0) - log_sd.mean(axis=(0, 1))) / spread)
        if score < best_score:
            best, best_score = naming.sd(block), score
    return best


def _bfmi(idata: xr.DataTree) -> list:
    name = "min BFMI"
    if "energy" not in idata["sample_stats"]:
        return [name, np.nan, BFMI_MIN, True, "", ""]
    bfmi = np.atleast_1d(azs.bfmi(idata)["energy"].values)
    worst = int(np.argmin(bfmi))
    value = float(bfmi[worst])
    if value >= BFMI_MIN:
        return [name, value, BFMI_MIN, True, f"chain {worst}", ""]
    message = (
        f"BFMI of chain {worst} is {value:.2f} (< {BFMI_MIN}): the sampler explores the energy "
        "distribution poorly, typical of heavy-tailed or funnel-shaped posteriors. Use more "
        "tune (e.g. tune=2000), or reparameterise (marginalize=True for a Gaussian model)."
    )
    return [name, value, BFMI_MIN, False, f"chain {worst}", message]


def _tree_depth(stats: xr.Dataset) -> list:
    name = "tree depth hits"
    stat = next((n for n in _TREE_HIT if n in stats), None)
    if stat is None:
        return [name, np.nan, 0, True, "", ""]
    hits = int(stats[stat].values.astype(bool).sum())
    if hits == 0:
        return [name, 0, 0, True, "", ""]
    message = (
        f"{hits} transition(s) hit the maximum tree depth: sampling is slow and may be "
        "inefficient. Raise the limit (nuts={'max_treedepth': 12}) or look for weakly "
        "identified parameters (e.g. collinear predictors: centre and scale them)."
    )
    return [name, hits, 0, False, "", message]
