"""Write the notebooks of this folder from the cell sources below (then run them to store outputs).

    .venv/bin/python notebooks/make_notebooks.py          # write the .ipynb files
    .venv/bin/python notebooks/make_notebooks.py --run    # write and execute them in place
    .venv/bin/python notebooks/make_notebooks.py --run 05  # only those whose names start so

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
        "### All three poolings side by side\n\nNo pooling takes each ZIP's own mean; complete "
        "pooling ignores the ZIPs (one mean for everybody); partial pooling — REML and the "
        "posterior — lies between, nearer the ZIP's own mean the more households it has. In "
        "`cmp.groups` every estimate is a deviation from the mixed model's population mean, so "
        "complete pooling is one number for all ZIPs: the gap between the raw mean of all "
        "households (dominated by the big ZIPs) and the mixed model's mean.",
        "g = cmp.groups.sort_values('n')\ncolumns = ['level', 'n', 'complete_pool', 'no_pool', "
        "'reml_estimate', 'bayes_estimate']\npd.concat([g.head(4), g.tail(3)])[columns].round(2)",
        "fig, ax = plt.subplots(figsize=(7, 4))\n"
        "ax.scatter(g['n'], g['no_pool'], s=8, color='0.6', label='no pooling (the ZIP mean)')\n"
        "ax.scatter(g['n'], g['reml_estimate'], s=8, label='partial pooling (REML)')\n"
        "ax.axhline(g['complete_pool'].iloc[0], color='k', lw=1, label='complete pooling')\n"
        "ax.set_xscale('log'); ax.set_xlabel('households in ZIP'); "
        "ax.set_ylabel('deviation from the population mean'); ax.legend();",
        "### The variance of the ZIP means is biased high\n\nThe obvious estimate of how much "
        "ZIPs differ is the variance of their means. But each mean carries its own sampling "
        "noise, σ²/n_j, so on average var(ȳ_j) ≈ τ² + mean(σ²/n_j): with many tiny ZIPs it "
        "overstates τ² several times over. REML and the posterior separate the two sources; "
        "the simulation's truth is τ² = 64.",
        "means = data.groupby('zip')['income'].mean()\nsizes = data.groupby('zip').size()\n"
        "vc = cmp.reml.varcorr().set_index('group')['estimate']\n"
        "tau2_draws = cmp.component_draws()[('zip', 'Intercept', None)] ** 2\n"
        "pd.Series({\n    'truth τ²': sim.truth['sd_zip'] ** 2,\n"
        "    'naive: variance of the ZIP means': means.var(),\n"
        "    'its expected size τ² + mean(σ²/n_j) (truth)': sim.truth['sd_zip'] ** 2 + "
        "np.mean(sim.truth['sigma'] ** 2 / sizes),\n"
        "    'REML τ̂²': vc['zip'] ** 2,\n"
        "    'posterior median of τ²': np.median(tau2_draws),\n}).round(1).to_frame('value')",
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

FIVE = [
    "# What is a random effect? Five definitions, one model\n\nThe words *fixed* and *random* "
    "effect are used in at least five different senses (Gelman 2005, \"Analysis of variance — "
    "why it is more important than ever\", collects them). They do not agree with one another: "
    "an effect can be fixed by one and random by the next. Below, each definition in our own "
    "words, what it would have us do with a shipped model card, and what the fitted model "
    "actually computes. The last definition is the one the software implements; the first four "
    "turn out to be reasons for (or assumptions of) it.",
    SETUP,
    "def card_data(name):\n    card = hb.load_card(hb.cards.resolve_card(name))\n"
    "    return card, card.load_data()",
    "## 1. Constant or varying (Kreft & De Leeuw)\n\n*An effect is fixed when it is the same "
    "for every group and random when it differs between groups.* In the sleep study: does a "
    "day without sleep slow every subject down by the same amount?",
    "card, sleep = card_data('sleepstudy')\nsame = hb.fit_reml('Reaction ~ Days + (1 | Subject)'"
    ", sleep)\nvarying = hb.fit_reml(card.formula, sleep)\n"
    "slopes = varying.fixef().loc['Days', 'estimate'] + varying.ranef().query(\"term == 'Days'\")"
    "['estimate']\none = same.fixef().loc['Days', 'estimate']\n"
    "print(f'one slope for all: {one:.1f} ms/day; subject slopes from {slopes.min():.1f} to "
    "{slopes.max():.1f}')\n"
    "varying.varcorr()[['group', 'term1', 'term2', 'estimate', 'lower', 'upper']].round(3)",
    MD("The slopes vary: their SD is about 6 ms/day and its profile interval stays well away "
       "from 0. So by this definition `Days` is random over subjects. But the definition "
       "describes the world, not an estimator: whether an effect varies is a question the data "
       "answer with a variance τ, and the fixed effect is just the case τ = 0."),
    "## 2. Interesting levels or a sample of a population (Searle, Casella & McCulloch)\n\n"
    "*Effects are fixed when the levels themselves are of interest and random when the interest "
    "is in the population they were drawn from.* Penicillin: 24 plates (nobody cares about plate "
    "17 as such) and 6 antibiotic samples (which someone may want to compare one by one). By "
    "this definition `sample` is fixed and `plate` random. Fit it both ways:",
    "card, pen = card_data('penicillin')\n"
    "fixed = hb.fit_reml('diameter ~ 0 + sample + (1 | plate)', pen)\n"
    "random = hb.fit_reml(card.formula, pen)\n"
    "as_fixed = fixed.fixef()['estimate'].to_numpy()\n"
    "as_random = random.fixef().loc['Intercept', 'estimate'] + random.ranef().query(\"group == "
    "'sample'\")['estimate'].to_numpy()\n"
    "vc = random.varcorr().set_index('group')['estimate']\n"
    "weight = 24 * vc['sample'] ** 2 / (24 * vc['sample'] ** 2 + vc['Residual'] ** 2)\n"
    "print(f'weight of each sample on its own 24 plates: λ = {weight:.3f}')\n"
    "pd.DataFrame({'fixed': as_fixed, 'random': as_random}, "
    "index=sorted(pen['sample'].unique())).round(3)",
    MD("The two answers are nearly the same: with 24 plates per sample the random version keeps "
       "more than 99 % of each sample's own deviation. Interest in the levels does not decide "
       "between the two models; the amount of data per level decides how much the choice "
       "matters."),
    "## 3. Whole population or a small part of it (Green & Tukey)\n\n*A factor is fixed when "
    "the levels in the data are all the levels there are, random when they are a small part of "
    "a larger population.* The radon survey covers all 85 counties of Minnesota: by this "
    "definition county is fixed. But many counties have one or two measured homes.",
    "card, radon = card_data('radon_intercepts')\ncmp = hb.compare_formula(card.formula, radon, "
    "**SAMPLING)\ng = cmp.groups.sort_values('n')\n"
    "g[['level', 'n', 'complete_pool', 'no_pool', 'reml_estimate', 'bayes_estimate']]"
    ".head(6).round(2)",
    MD("Every county is in the data, yet a county with two homes says little about itself: its "
       "own mean (no pooling) is far out, and the model pulls it most of the way back. Whether "
       "the levels exhaust a population is a question about sampling; how good a county's own "
       "estimate is depends on its n_j, σ and τ, and pooling helps just the same."),
    "## 4. A draw from a distribution (LaMotte)\n\n*An effect is random when it is treated as "
    "the realised value of a random variable.* This is the model's own description: "
    "b_j ~ Normal(0, τ²). In a Bayesian model every parameter is a random variable, so the "
    "definition adds little there; what it does add is an **assumption**: the draws b_j are "
    "independent of the predictors. When a predictor's group means go with the b_j (richer "
    "counties, better schools), the single slope mixes the within-group and the between-group "
    "slope. `hb.within_between` tests it; `fit_reml` and `fit_bayes` warn.",
    "hb.within_between(card.formula, radon)",
    MD("For radon the floor effect is about the same within counties (−0.69) and between them "
       "(−0.36 ± 0.25): no evidence against the assumption. Now a simulation where the group "
       "effects follow the group means of x (correlation 0.7):"),
    "sim = hb.simulate.contextual(n_groups=200, per_group=4, correlation=0.7, seed=11)\n"
    "with warnings.catch_warnings(record=True) as caught:\n    warnings.simplefilter('always')\n"
    "    naive = hb.fit_reml('y ~ x + (1 | g)', sim.data)\n"
    "print([str(w.message)[:160] + ' ...' for w in caught if w.category is "
    "hb.WithinBetweenWarning])\n"
    "split = hb.fit_reml('y ~ within(x, g) + between(x, g) + (1 | g)', sim.data)\n"
    "pd.concat({'y ~ x + (1 | g)': naive.fixef(), 'split model': split.fixef()})"
    "[['estimate', 'std_error']].round(3)",
    MD("The true within-group slope is 1, the between-group slope 1.7. The naive model's "
       "single slope lies between them, several SEs from the truth; the split model "
       "`within(x, g) + between(x, g)` recovers each (`within` is x minus its group mean, "
       "`between` the group mean; new data are centred on the training means)."),
    "## 5. Estimated with shrinkage (Robinson)\n\n*Fixed effects are estimated by least "
    "squares or maximum likelihood, random effects by shrinkage.* This names the estimator. The "
    "conditional modes of a mixed model are the solution of a ridge regression: minimise "
    "Σ(y − Xβ − Zb)² + λ Σ b_j², with λ = σ²/τ² for a random intercept, the penalty chosen by the "
    "data. `RemlFit.ridge_equivalent()` solves that ridge problem directly:",
    "fit = cmp.reml\nridge = fit.ridge_equivalent()\n"
    "vc = fit.varcorr().set_index('group')['estimate']\n"
    "print(f\"λ = σ²/τ² = {vc['Residual'] ** 2:.3f} / {vc['county'] ** 2:.3f} = "
    "{ridge.attrs['lambda']['county']:.3f}\")\n"
    "print('largest |ridge − conditional mode|:', "
    "np.abs(ridge['estimate'] - fit.ranef()['estimate']).max())",
    "from hierbayes.reml.ridge import ridge_path\n"
    "scales = np.logspace(-3, 3, 25)\npath = ridge_path(fit, scales)\n"
    "lam = ridge.attrs['lambda']['county'] * path['scale']\n"
    "fig, ax = plt.subplots(figsize=(7, 4))\nfor _, part in path.groupby('level'):\n"
    "    ax.plot(lam[part.index], part['estimate'], color='C0', lw=0.5, alpha=0.5)\n"
    "ax.axvline(ridge.attrs['lambda']['county'], color='k', ls='--', label='REML: λ = σ̂²/τ̂²')\n"
    "ax.set_xscale('log'); ax.set_xlabel('ridge penalty λ'); "
    "ax.set_ylabel('county effect'); ax.legend();",
    MD("Reading the path from left to right: λ → 0 is no pooling (each county's own least-squares "
       "fit: econometrics' \"fixed effects\"); λ → ∞ is complete pooling (one value for all: "
       "definition 1's \"fixed\" effect, τ = 0); the mixed model sits where the data put "
       "σ²/τ². That is why definition 5 is the operational one. Definitions 1–3 describe the "
       "world or the study and leave the estimator open; definition 4 is the assumption under "
       "which the estimated λ is the right penalty; definition 5 says what is computed, and the "
       "others are its limiting cases or its justification. An effect is random when it is "
       "partially pooled — and how much is itself estimated."),
]

QUESTIONS = [
    "# When do Bayes and REML agree?\n\n\"With a decent-sized data set, the standard mixed "
    "effects model and the fully Bayesian variant will often give very similar results.\" How "
    "decent, and where do they part? Three tools: `hb.agreement` measures the distance between "
    "the fits as the data grow; `cmp.prior_sensitivity()` shows where the posterior leans on "
    "its prior (REML has none); `hb.sbc` checks that the Bayesian fit is calibrated at all.",
    SETUP,
    "## Agreement against the number of groups\n\nSubsamples of the ZIP-code data with 3, 10 "
    "and 40 ZIPs of 20 households each, fitted both ways; `std_diff` is the distance between "
    "the posterior mean and the REML estimate in posterior SDs.",
    "zips = hb.simulate.zip_income(n_zips=80, min_size=20, max_size=80, seed=2).data\n"
    "study = hb.agreement('income ~ 1 + (1 | zip)', zips, n_groups=(3, 10, 40), "
    "per_group=(20,), reps=1, seed=1, progressbar=False,\n"
    "                     draws=DRAWS, tune=DRAWS, chains=2)\nstudy.summary().round(3)",
    "fig = study.plot()",
    MD("The fixed effect agrees at every size. The group SD does not with 3 ZIPs: its posterior "
       "is wide and skewed, so its mean sits well above REML's estimate, and every group "
       "effect inherits some of that. From about ten ZIPs of 20 households on, the two fits "
       "coincide "
       "(`hierbayes agreement CARD --out DIR` runs the same study on a model card, in parallel "
       "with `--jobs`)."),
    "## Where the prior matters: sensitivity of the group SD\n\nPower-scaling the hyperpriors "
    "(Kallioinen et al. 2024) asks how far the posterior would move if the priors of the SDs "
    "were half or twice as strong — without refitting.",
    "def groups(J, n=10, seed=1):\n    rng = np.random.default_rng(seed)\n"
    "    g = np.repeat(np.arange(J), n)\n"
    "    return pd.DataFrame({'g': [f'g{i:02d}' for i in g],\n"
    "                         'y': 5 + rng.normal(0, 1, J)[g] + rng.normal(0, 1, g.size)})\n\n"
    "tables = {}\nfor J in (3, 80):\n"
    "    # 3 groups: the SD's posterior reaches down to 0, a funnel; a smaller step size\n"
    "    cmp = hb.compare_formula('y ~ 1 + (1 | g)', groups(J), target_accept=0.95, **SAMPLING)\n"
    "    tables[f'{J} groups'] = cmp.prior_sensitivity()\n"
    "columns = ['group', 'reml_estimate', 'bayes_median', 'median_weaker', 'median_stronger', "
    "'prior_sensitivity', 'diagnosis']\n"
    "pd.concat({k: v[columns] for k, v in tables.items()}).round(3)",
    MD("With 3 groups the group SD is sensitive to its prior (above arviz-stats' threshold "
       "0.05): halving or doubling the prior's weight moves its median noticeably. This is "
       "where the posterior and REML legitimately differ: the posterior is partly the prior's, "
       "and REML has no prior. With 80 groups the data decide."),
    "## Is the Bayesian fit calibrated? Simulation-based calibration\n\nDraw parameters and "
    "data from the prior, fit each data set, and rank every true value among the posterior "
    "draws: a calibrated fit gives uniform ranks (Talts et al. 2018). Here on a small design, "
    "then once more fitting with a deliberately wrong prior for the group SD.",
    "template = groups(6, n=4)\nP = hb.Prior\n"
    "priors = {'Intercept': P('Normal', mu=0, sigma=1), 'sd_g': P('HalfNormal', sigma=1), "
    "'sigma': P('Exponential', lam=1)}\n"
    "calibration = hb.sbc('y ~ 1 + (1 | g)', template, n_datasets=40, priors=priors, "
    "draws=DRAWS, tune=DRAWS, chains=1,\n"
    "                     thin=max(DRAWS // 20, 1), bins=5, progressbar=False)\n"
    "print(calibration.verdict())\ncalibration.uniformity",
    "fig = calibration.plot()",
    "wrong = hb.sbc('y ~ 1 + (1 | g)', template, n_datasets=40, priors=priors, "
    "fit_priors={'sd_g': P('HalfNormal', sigma=0.1)},\n"
    "               draws=DRAWS, tune=DRAWS, chains=1, thin=max(DRAWS // 20, 1), bins=5, "
    "progressbar=False)\nprint(wrong.verdict())\nfig = wrong.plot()",
    MD("Fitted with the prior the data came from, every quantity's ranks are flat. Fitted with a "
       "prior ten times too narrow for the group SD, the true SD lies above nearly all posterior "
       "draws: its ranks pile up at the top. `hierbayes sbc CARD --out DIR` runs the same check "
       "for any card, any family and either sampling path."),
]

NOTEBOOKS["05_what_is_a_random_effect.ipynb"] = FIVE
NOTEBOOKS["06_when_bayes_and_reml_agree.ipynb"] = QUESTIONS


def build(run: bool, only: list[str] | None = None) -> None:
    for name, cells in NOTEBOOKS.items():
        if only and not any(name.startswith(prefix) for prefix in only):
            continue
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
    parser.add_argument("only", nargs="*", help="notebooks whose names start so (default: all)")
    args = parser.parse_args()
    build(args.run, args.only)
