"""The comparison under each family and link: posterior shrinkage (issue 11), no pooling.

`shrinkage_bayes` weighs each group's data by the GLM working weight at every draw's linear
predictor. Before the shared family table it used the logit weight m·μ(1 − μ), μ = expit(η), for
every binomial link and the Poisson weight e^η for the negative binomial: with 60 observations
per group its shrinkage missed REML's by 0.12 (probit), 0.05 (cloglog) and 0.09 (negative
binomial) on average, where both must agree. `_old_lambda` recomputes that old number here, by
hand, to show each test would fail on it.

For a random intercept, λ_j = τ²W_j / (1 + τ²W_j) with W_j = Σ_{i∈j} w_i; at the REML estimates
(θ̂, β̂, the conditional modes and α̂) the posterior formula must give REML's own λ̂ = 1 − condvar/τ̂²
exactly, since both are the Laplace curvature at the same point.
"""

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import hierbayes as hb
from hierbayes.compare.draws import PosteriorDraws, from_fit
from hierbayes.compare.shrinkage import posterior_lambda

GROUPS, PER_GROUP = 36, 60


def _simulate(kind: str, seed: int = 11):
    """y ~ x + (1 | g): a known truth, GROUPS × PER_GROUP rows; returns data, formula, family,
    link."""
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(GROUPS), PER_GROUP)
    x = rng.normal(size=g.size)
    data = pd.DataFrame({"x": x, "g": [f"g{k:02d}" for k in g]})
    if kind == "negative_binomial":
        mu = np.exp(1.0 + 0.4 * x + rng.normal(0, 0.3, GROUPS)[g])
        alpha = 1.5
        data["y"] = rng.negative_binomial(alpha, alpha / (alpha + mu))
        return data, "y ~ x + (1 | g)", "negative_binomial", None
    eta = -0.2 + 0.6 * x + rng.normal(0, 0.5, GROUPS)[g]
    if kind == "probit":
        data["y"] = (rng.random(g.size) < stats.norm.cdf(eta)).astype(int)
        return data, "y ~ x + (1 | g)", "bernoulli", "probit"
    m = rng.integers(1, 6, g.size)
    data["s"] = rng.binomial(m, stats.gumbel_l.cdf(eta))
    data["f"] = m - data["s"]
    return data, "cbind(s, f) ~ x + (1 | g)", "binomial", "cloglog"


FITS: dict = {}


def _reml(kind: str):
    if kind not in FITS:
        data, formula, family, link = _simulate(kind)
        fit = hb.fit_reml(formula, data, family=family, link=link)
        FITS[kind] = (fit, hb.make_design(formula, data, family=family), data)
    return FITS[kind]


def _reml_lambda(fit, design) -> tuple[np.ndarray, float]:
    """REML's λ̂ per level (in the block's level order) and τ̂."""
    ranef = fit.ranef().set_index("level").loc[list(design.blocks[0].levels)]
    tau = float(fit.varcorr()["estimate"].iloc[0])
    return 1 - ranef["std_error"].to_numpy() ** 2 / tau**2, tau


def _draws_at_reml(fit, design, alpha=None) -> PosteriorDraws:
    """One 'draw' at the REML estimates (or several, one per value of `alpha`)."""
    ranef = fit.ranef().set_index("level").loc[list(design.blocks[0].levels)]
    tau = float(fit.varcorr()["estimate"].iloc[0])
    alpha = None if fit.dispersion is None else np.atleast_1d(
        fit.dispersion if alpha is None else alpha)
    s = 1 if alpha is None else alpha.size
    return PosteriorDraws(
        beta=np.tile(np.asarray(fit.beta), (s, 1)),
        sigma=None,
        cov=(np.full((s, 1, 1), tau**2),),
        effects=(np.tile(ranef["estimate"].to_numpy()[None, :, None], (s, 1, 1)),),
        alpha=alpha,
        link=fit.link,
    )


def _old_lambda(draws: PosteriorDraws, design) -> np.ndarray:
    """(S, J) λ as computed before the family table: logit weights for every binomial link,
    Poisson weights for the negative binomial (random intercepts only)."""
    block = design.blocks[0]
    eta = draws.beta @ design.X.T + draws.effects[0][:, block.index, 0]  # (S, n)
    if design.family.response == "count":
        w = np.exp(eta)
    else:
        m = 1.0 if design.trials is None else design.trials
        w = m * stats.logistic.cdf(eta) * stats.logistic.sf(eta)
    W = np.stack([np.bincount(block.index, ws, minlength=block.n_levels) for ws in w])
    tau2 = draws.cov[0][:, 0, 0][:, None]
    return tau2 * W / (1 + tau2 * W)


@pytest.mark.parametrize("kind", ["probit", "cloglog", "negative_binomial"])
def test_shrinkage_at_the_reml_estimates_is_remls(kind):
    fit, design, _ = _reml(kind)
    expected, _ = _reml_lambda(fit, design)
    draws = _draws_at_reml(fit, design)
    actual = posterior_lambda(draws, design, 0)[0, :, 0]
    np.testing.assert_allclose(actual, expected, atol=1e-8)
    old = _old_lambda(draws, design)[0]
    assert np.mean(np.abs(old - expected)) > 0.04  # what the bug did to the same quantity


def test_each_draw_uses_its_own_alpha():
    fit, design, _ = _reml("negative_binomial")
    expected, _ = _reml_lambda(fit, design)
    draws = _draws_at_reml(fit, design, alpha=[fit.dispersion, 4 * fit.dispersion])
    lam = posterior_lambda(draws, design, 0)[:, :, 0]
    np.testing.assert_allclose(lam[0], expected, atol=1e-8)
    # A larger α is less overdispersion: more weight per observation, less shrinkage.
    assert np.all(lam[1] > lam[0] + 1e-3)


@pytest.mark.slow  # a real NUTS fit of 2160 probit rows: about a minute on 2 busy cores
def test_posterior_shrinkage_agrees_with_reml_for_a_probit_model():
    fit, design, data = _reml("probit")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # 2 × 300 draws: R-hat may be just above 1.01
        bayes = hb.fit_bayes("y ~ x + (1 | g)", data, family="bernoulli", link="probit",
                             draws=300, tune=300, chains=2, random_seed=5, progressbar=False)
    groups = hb.compare(bayes, fit).groups
    gap = (groups["shrinkage_bayes"] - groups["shrinkage_reml"]).abs()
    assert gap.mean() < 0.02
    old = 1 - _old_lambda(from_fit(bayes), design).mean(axis=0)
    assert np.mean(np.abs(old - groups["shrinkage_reml"].to_numpy())) > 0.05


def test_the_draws_carry_the_models_link_and_alpha():
    """`from_fit` takes the link and α the shrinkage needs from the fit itself."""
    from hierbayes.testing.fakes import fake_fit

    data, formula, family, _ = _simulate("negative_binomial")
    spec = hb.build_model(formula, data.iloc[:300], family=family)
    draws = from_fit(fake_fit(spec, chains=1, draws=20))
    assert draws.link == "log" and draws.alpha.shape == (20,) and np.all(draws.alpha > 0)
    data, formula, family, link = _simulate("probit")
    draws = from_fit(fake_fit(hb.build_model(formula, data.iloc[:300], family=family, link=link),
                              chains=1, draws=20))
    assert draws.link == "probit" and draws.alpha is None


def test_negative_binomial_no_pooling_uses_its_own_score():
    """With α, a group intercept's own estimate solves Σ (y − μ)·α/(α + μ) = 0; without it, the
    Poisson root Σ (y − μ) = 0. The two differ when μ varies within a group."""
    from scipy.optimize import brentq

    from hierbayes.compare.nopool import no_pooling

    fit, design, _ = _reml("negative_binomial")
    block, alpha = design.blocks[0], fit.dispersion
    own = no_pooling(design, np.asarray(fit.beta), block, alpha=alpha)[:, 0]
    poisson = no_pooling(design, np.asarray(fit.beta), block)[:, 0]
    offset, y = design.X @ np.asarray(fit.beta), design.y
    for j in (0, 7, 21):
        rows = block.index == j

        def nb_score(b, rows=rows):
            mu = np.exp(offset[rows] + b)
            return np.sum((y[rows] - mu) * alpha / (alpha + mu))

        assert own[j] == pytest.approx(brentq(nb_score, -5, 5, xtol=1e-14), abs=1e-9)
        expected = np.log(y[rows].sum() / np.exp(offset[rows]).sum())
        assert poisson[j] == pytest.approx(expected, abs=1e-9)
        assert abs(own[j] - poisson[j]) > 1e-4
