"""The default Gaussian sampling path (group effects integrated out) run for real, fast.

A tiny ``y ~ x + (1 | g)`` (6 groups × 5 rows), nutpie, 2 chains × 200 draws: each fit costs
its compilation, a few seconds. Checked against closed forms:

- with the group SD and σ pinned at the REML estimates by their priors (and a flat-ish prior on
  β), the posterior of (β, group effects) is a known Gaussian: its mean is REML's β̂ and the
  conditional modes, its β SDs are REML's standard errors;
- every drawn group effect follows its exact conditional given the draw's β, τ and σ;
- a seed reproduces the draws bit for bit, another seed does not.

The slow tests in test_marginal.py compare the two paths on larger models.
"""

import numpy as np
import pytest
from bayes_support import simulate_gaussian
from scipy import stats

import hierbayes as hb
from hierbayes.testing.dense import dense_Z

FORMULA = "y ~ x + (1 | g)"
SETTINGS = {"draws": 200, "tune": 200, "chains": 2, "progressbar": False, "warn": False}
BETA_PRIOR_SD = 100.0  # flat-ish: the data's β SEs are ~0.1-0.3
PIN = 1e4  # Gamma(PIN, PIN / v): mean v, coefficient of variation 1 %


@pytest.fixture(scope="module")
def data():
    return simulate_gaussian()  # 6 groups × 5 rows


@pytest.fixture(scope="module")
def reml(data):
    return hb.fit_reml(FORMULA, data)


def reml_sds(reml) -> tuple[float, float]:
    tau = reml.varcorr().set_index("group").loc["g", "estimate"]
    return float(tau), float(reml.sigma)


@pytest.fixture(scope="module")
def pinned(data, reml):
    tau, sigma = reml_sds(reml)
    priors = {
        "Intercept": hb.Prior("Normal", mu=0.0, sigma=BETA_PRIOR_SD),
        "x": hb.Prior("Normal", mu=0.0, sigma=BETA_PRIOR_SD),
        "sd_g": hb.Prior("Gamma", alpha=PIN, beta=PIN / tau),
        "sigma": hb.Prior("Gamma", alpha=PIN, beta=PIN / sigma),
    }
    return hb.fit_bayes(FORMULA, data, priors=priors, random_seed=3, **SETTINGS)


@pytest.fixture(scope="module")
def spec(data):
    return hb.build_model(FORMULA, data)  # default priors


@pytest.fixture(scope="module")
def seeded(spec):
    """Three fits of one model: seeds 11, 12 and 11 again (after the others, as users do)."""
    return [hb.sample(spec, random_seed=seed, **SETTINGS) for seed in (11, 12, 11)]


def exact_posterior(design, tau: float, sigma: float):
    """Mean and covariance of (β, b) given τ and σ: y ~ N(Xβ + Zb, σ²I), b ~ N(0, τ²I),
    β ~ N(0, BETA_PRIOR_SD² I), all Gaussian, so the posterior is too."""
    W = np.hstack([design.X, dense_Z(design)])  # (n, p + q)
    p, q = design.X.shape[1], W.shape[1] - design.X.shape[1]
    prior_precision = np.r_[np.full(p, BETA_PRIOR_SD**-2), np.full(q, tau**-2)]
    cov = np.linalg.inv(W.T @ W / sigma**2 + np.diag(prior_precision))
    return cov @ W.T @ design.y / sigma**2, cov


def joint_draws(fit) -> np.ndarray:
    """(draws, p + q): β then the group effects, chains one after the other."""
    beta = fit.posterior["beta"].values.reshape(-1, fit.design.X.shape[1])
    r = fit.posterior["r_g"].values[..., 0].reshape(beta.shape[0], -1)
    return np.hstack([beta, r])


# --- the path ---------------------------------------------------------------------------------


def test_gaussian_fits_take_the_marginal_path(seeded):
    fit = seeded[0]
    assert fit.settings["marginalize"] is True and fit.settings["marginal_path"] == "grouped"
    assert fit.sampling_path.startswith("marginal (grouped")
    assert fit.idata["posterior"].attrs["inference_library"] == "nutpie"
    # the group effects are drawn after sampling, with the standard path's names and dims
    assert fit.posterior["r_g"].dims == ("chain", "draw", "g", "g__term")
    assert fit.posterior["r_g"].shape == (2, 200, 6, 1)


# --- pinned variances: the REML answer and the exact Gaussian -----------------------------------


def test_pinned_priors_hold_the_sds(pinned, reml):
    tau, sigma = reml_sds(reml)
    varcorr = pinned.varcorr().set_index("group")
    assert varcorr.loc["g", "estimate"] == pytest.approx(tau, rel=0.01)
    assert varcorr.loc["Residual", "estimate"] == pytest.approx(sigma, rel=0.01)


def test_pinned_posterior_gives_the_reml_estimates(pinned, reml):
    """With τ and σ at REML's values and a flat prior, E[β | y] = β̂ (GLS), SD(β | y) = REML's
    SE, and E[b | y] = the conditional modes (the BLUPs)."""
    bayes, freq = pinned.fixef(), reml.fixef()
    # 400 draws: a mean is off by ~0.05 SD by chance, an SD by ~4 %
    assert np.abs(bayes["estimate"] - freq["estimate"]).max() < 0.2 * freq["std_error"].min()
    np.testing.assert_allclose(bayes["std_error"], freq["std_error"], rtol=0.12)
    ours = pinned.ranef().set_index("level")
    modes = reml.ranef().set_index("level").loc[ours.index]
    assert (np.abs(ours["estimate"] - modes["estimate"]) / ours["std_error"]).max() < 0.25


def test_pinned_posterior_is_the_exact_gaussian(pinned, reml):
    """All of (β, b) at once: the draws, whitened by the exact posterior, are N(0, I)."""
    mean, cov = exact_posterior(pinned.design, *reml_sds(reml))
    white = np.linalg.solve(np.linalg.cholesky(cov), (joint_draws(pinned) - mean).T).T
    # β's bulk ESS is ~300-400 of 400 draws: chance moves a whitened mean by ~0.055 and a
    # (co)variance by ~0.055-0.08 (measured over seeds 3-5: at most 0.14 and 0.22)
    assert np.abs(white.mean(axis=0)).max() < 0.25, white.mean(axis=0)
    np.testing.assert_allclose(np.cov(white, rowvar=False), np.eye(mean.size), atol=0.35)
    # the group effects' SDs include β's uncertainty: wider than REML's conditional SDs
    sd = np.sqrt(np.diag(cov))[2:]
    assert np.all(sd > reml.ranef()["std_error"].to_numpy())
    np.testing.assert_allclose(pinned.ranef()["std_error"], sd, rtol=0.15)


# --- the group effects drawn after sampling ---------------------------------------------------


def test_drawn_group_effects_follow_their_exact_conditional(seeded):
    """Given one draw's β, τ and σ, level j's effect is N(m_j, 1/P_j) with P_j = Z_jᵀZ_j/σ² +
    1/τ² and m_j = Z_jᵀ(y - Xβ)_j/(σ² P_j): whitened, the 2 × 200 × 6 draws are iid N(0, 1)."""
    fit = seeded[0]
    design, post = fit.design, fit.posterior
    Z = dense_Z(design)  # (n, 6)
    beta = post["beta"].values.reshape(-1, 2)
    tau = post["sd_g"].values.reshape(-1)
    sigma = post["sigma"].values.reshape(-1)
    r = post["r_g"].values[..., 0].reshape(-1, 6)
    precision = np.diag(Z.T @ Z)[None, :] / sigma[:, None] ** 2 + 1 / tau[:, None] ** 2
    resid = design.y[None, :] - beta @ design.X.T  # (draws, n)
    mean = (resid @ Z) / sigma[:, None] ** 2 / precision
    white = ((r - mean) * np.sqrt(precision)).reshape(-1)
    assert abs(white.mean()) < 4 / np.sqrt(white.size)
    assert abs(white.var() - 1) < 5 * np.sqrt(2 / white.size)
    assert stats.kstest(white, "norm").pvalue > 1e-3
    # τ varies from draw to draw here (default priors): the check above used each draw's own
    assert tau.std() > 0.1 * tau.mean()


# --- seeds --------------------------------------------------------------------------------------


def test_a_seed_reproduces_the_draws_bit_for_bit(seeded):
    first, other, again = seeded
    for name in ("beta", "sd_g", "sigma", "z_g", "r_g"):
        np.testing.assert_array_equal(first.posterior[name], again.posterior[name])
    np.testing.assert_array_equal(first.log_likelihood(), again.log_likelihood())
    assert not np.array_equal(first.posterior["beta"], other.posterior["beta"])
    assert not np.array_equal(first.posterior["r_g"], other.posterior["r_g"])
