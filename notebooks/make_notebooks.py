"""Write the notebooks of this folder from the cell sources below (then run them to store outputs).

    .venv/bin/python notebooks/make_notebooks.py          # write the .ipynb files
    .venv/bin/python notebooks/make_notebooks.py --run    # write and execute them in place

Every notebook reads HIERBAYES_DRAWS (posterior draws per chain) so the test suite can execute
it quickly; the stored outputs come from a run with the defaults.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import nbformat

HERE = Path(__file__).parent


class MD(str):
    """A Markdown cell that does not start with a heading."""


SETUP = """\
import logging
import os
import warnings

import numpy as np
import pandas as pd
import matplotlib.pyplot as plt

import hierbayes as hb  # loads PyTensor and PyMC only with the first Bayesian call

# PyTensor looks for a BLAS to link its C code against and warns when, as after a pip install,
# there is none. NUTS runs in nutpie's compiled numba code, which does not use it, so say so up
# front (before PyTensor is imported) instead of searching; every other warning still shows.
if "blas__ldflags" not in os.environ.get("PYTENSOR_FLAGS", ""):
    os.environ["PYTENSOR_FLAGS"] = ",".join(
        f for f in (os.environ.get("PYTENSOR_FLAGS"), "blas__ldflags=") if f)
# Log warnings and errors only: PyMC adds its own INFO handler (progress lines such as
# "NUTS[nutpie]: [beta, sigma]") unless logging is configured before it is imported.
logging.basicConfig(level=logging.WARNING)

DRAWS = int(os.environ.get("HIERBAYES_DRAWS", "1000"))
SAMPLING = dict(draws=DRAWS, tune=DRAWS, chains=2, random_seed=1, progressbar=False)"""

NOTEBOOKS = {
    "01_quick_start.ipynb": [
        "# Quick start\n\nFit a multilevel model two ways — by NUTS (PyMC) and by REML (as lme4 "
        "does) — from one lme4-style formula, then compare them.",
        SETUP,
        "data = hb.datasets.load('sleepstudy')\ndata.head()",
        "## REML (the lme4 fit)",
        "reml = hb.fit_reml('Reaction ~ Days + (Days | Subject)', data)\nprint(reml.summary())",
        "## Bayesian fit (NUTS)\n\nThe default priors are scaled to the data; `fit.priors` shows "
        "every prior actually used.",
        "bayes = hb.fit_bayes('Reaction ~ Days + (Days | Subject)', data, **SAMPLING)\n"
        "bayes.priors.to_frame()",
        MD("A fit shows itself: formula, data, estimates with 95% intervals and the sampler "
           "checks (`print(bayes.summary())` gives the same as text)."),
        "bayes",
        "bayes.diagnostics()",
        "bayes.fixef()",
        "bayes.varcorr()",
        "## Side by side",
        "cmp = hb.compare(bayes, reml)\nfor line in cmp.verdict():\n    print('-', line)",
        "cmp.fixed",
        "cmp.variance",
        "fig = cmp.plot_shrinkage(term='Days')",
        "fig = cmp.plot_forest()",
        "## A report\n\n`cmp.report('report.html')` writes one self-contained HTML file; in a "
        "notebook, the comparison itself renders as HTML.",
        "cmp",
    ],
    "02_partial_pooling_zip.ipynb": [
        "# Partial pooling by ZIP code\n\nMean household income by ZIP code: some ZIPs have "
        "hundreds of households, some two. A ZIP's estimate is pulled toward the overall mean by "
        "the factor\n\n$$\\lambda_j = \\frac{\\tau^2}{\\tau^2 + \\sigma^2 / n_j}$$\n\n(its weight "
        "on its own data), which depends on the group size $n_j$, the within-ZIP variance "
        "$\\sigma^2$ and the between-ZIP variance $\\tau^2$ — and, through how well $\\tau$ and "
        "the mean are estimated, on the total size. Below we vary each.",
        SETUP,
        "sim = hb.simulate.zip_income(n_zips=300, seed=3)\ndata = sim.data\n"
        "data.groupby('zip').size().describe()",
        "cmp = hb.compare_formula('income ~ 1 + (1 | zip)', data, **SAMPLING)\n"
        "fig = cmp.plot_shrinkage()",
        "### 1. Group size: the small ZIPs move furthest",
        "g = cmp.groups\nfig, ax = plt.subplots(figsize=(7, 4))\n"
        "ax.scatter(g['n'], g['lambda_reml'], s=10, label='REML λ̂')\n"
        "ax.errorbar(g['n'], g['lambda_bayes'], yerr=[g['lambda_bayes'] - g['lambda_bayes_lower'],"
        " g['lambda_bayes_upper'] - g['lambda_bayes']], fmt='none', alpha=0.3, "
        "label='posterior λ (95%)')\nax.set_xscale('log'); ax.set_xlabel('households in ZIP'); "
        "ax.set_ylabel('λ: weight on own data'); ax.legend();",
        "### 2. Within-ZIP variance and 3. between-ZIP variance\n\nMore noise inside ZIPs "
        "(larger σ) means more pooling; more real difference between ZIPs (larger τ) means "
        "less. REML fits are instant, so we refit on simulated data for a grid of values.",
        "rows = []\nfor within in (10, 20, 40):\n    for between in (2, 8, 16):\n"
        "        d = hb.simulate.zip_income(n_zips=300, within_sd=within, between_sd=between, "
        "seed=4).data\n        with warnings.catch_warnings():\n"
        "            warnings.simplefilter('ignore')\n"
        "            fit = hb.fit_reml('income ~ 1 + (1 | zip)', d)\n"
        "        vc = fit.varcorr().set_index('group')['estimate']\n"
        "        tau, sigma = vc['zip'], vc['Residual']\n"
        "        rows.append(dict(within_sd=within, between_sd=between, tau_hat=tau, "
        "sigma_hat=sigma, lambda_n5=tau**2 / (tau**2 + sigma**2 / 5)))\n"
        "pd.DataFrame(rows).pivot(index='within_sd', columns='between_sd', values='lambda_n5')"
        ".round(3)",
        "### 4. Total size: fewer ZIPs, a less certain τ\n\nWith few ZIPs the between-ZIP SD is "
        "itself uncertain; REML plugs in one value, the posterior averages over it.",
        "small = hb.simulate.zip_income(n_zips=12, seed=5).data\n"
        "cmp_small = hb.compare_formula('income ~ 1 + (1 | zip)', small, **SAMPLING)\n"
        "cmp_small.variance[['group', 'reml_estimate', 'bayes_median', 'bayes_lower', "
        "'bayes_upper']]",
        "for line in cmp_small.verdict():\n    print('-', line)",
    ],
    "03_bayes_vs_reml.ipynb": [
        "# Bayesian vs REML: when they agree, when they don't\n\nWith many large groups the "
        "likelihood dominates the prior and the two fits nearly coincide. With few groups, "
        "small groups or a variance estimated at zero they part.",
        SETUP,
        "## Many, large groups: agreement",
        "big = hb.simulate.zip_income(n_zips=200, min_size=30, max_size=300, seed=6).data\n"
        "cmp_big = hb.compare_formula('income ~ 1 + (1 | zip)', big, **SAMPLING)\n"
        "print('\\n'.join(cmp_big.verdict()))",
        "## Few groups: the group SD is uncertain",
        "data = hb.datasets.load('Penicillin')\n"
        "cmp_pen = hb.compare_formula('diameter ~ 1 + (1 | plate) + (1 | sample)', data, "
        "**SAMPLING)\ncmp_pen.variance",
        "fig = cmp_pen.plot_variance()",
        "## A singular REML fit\n\nEight groups with no real group variation: REML estimates the "
        "SD as exactly 0; the posterior keeps it off zero.",
        "rng = np.random.default_rng(5)\nflat = pd.DataFrame({'g': np.repeat([f'g{i}' for i in "
        "range(8)], 4), 'y': rng.normal(10, 2, size=32)})\nwith warnings.catch_warnings():\n"
        "    warnings.simplefilter('ignore', hb.SingularFitWarning)\n"
        "    cmp_flat = hb.compare_formula('y ~ 1 + (1 | g)', flat, **SAMPLING)\n"
        "print('\\n'.join(cmp_flat.verdict()))",
        "cmp_flat.reasons",
    ],
    "04_priors_on_hyperparameters.ipynb": [
        "# Priors on hyperparameters\n\nThe group SD is the parameter the prior matters most "
        "for. We look at the default priors, check them by prior predictive simulation, and see "
        "how the posterior of the group SD moves when its prior changes.",
        SETUP,
        "data = hb.datasets.load('radon')\nformula = 'log_radon ~ floor + (1 | county)'\n"
        "hb.default_priors(formula, data).to_frame()",
        "## Prior predictive check",
        "model = hb.build_model(formula, data)\nprior = model.sample_prior_predictive(draws=500, "
        "random_seed=2)\ny_prior = prior['prior_predictive']['y'].values.ravel()\n"
        "fig, ax = plt.subplots(figsize=(7, 3.5))\nax.hist(y_prior, bins=80, density=True, "
        "alpha=0.5, label='prior predictive')\nax.hist(data['log_radon'], bins=40, density=True,"
        " alpha=0.5, label='data')\nax.set_xlim(-15, 15); ax.legend();",
        "## Sensitivity of the county SD to its prior\n\nFour fits, one per prior scale. "
        "Their sampler checks are in the table (`warn=False` only moves them there from "
        "warnings): a posterior whose checks fail is not one to compare.",
        "rows = []\nfor scale in (0.05, 0.2, 1.0, 5.0):\n"
        "    fit = hb.fit_bayes(formula, data, priors={'sd_county': hb.Prior('HalfNormal', "
        "sigma=scale)}, warn=False, **SAMPLING)\n"
        "    vc = fit.varcorr().set_index('group').loc['county']\n"
        "    checks = fit.diagnostics().set_index('check')\n"
        "    rows.append(dict(prior_scale=scale, posterior_median=vc['median'], lower=vc['lower']"
        ", upper=vc['upper'], max_rhat=checks.loc['max R-hat', 'value'],\n"
        "                     min_bulk_ess=checks.loc['min bulk ESS', 'value'], "
        "checks_pass=bool(checks['ok'].all())))\npd.DataFrame(rows)",
        MD("Only a prior that is tight relative to the data (scale 0.05, far below the REML "
        "estimate) moves the posterior noticeably: with 85 counties the data dominate."),
    ],
}


def build(run: bool) -> None:
    for name, cells in NOTEBOOKS.items():
        nb = nbformat.v4.new_notebook()
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                     "language": "python"}
        nb.cells = [
            nbformat.v4.new_code_cell(src) if _is_code(src) else nbformat.v4.new_markdown_cell(src)
            for src in cells
        ]
        path = HERE / name
        if run:
            from nbclient import NotebookClient

            NotebookClient(nb, timeout=1200, resources={"metadata": {"path": str(HERE)}}).execute()
        nbformat.write(nb, path)
        print("wrote", path)


def _is_code(src: str) -> bool:
    return not (isinstance(src, MD) or src.startswith("#"))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", action="store_true", help="execute and store outputs")
    build(parser.parse_args().run)
