"""The PyMC model built from a design: names, dims, and a likelihood that matches scipy.

No sampling: the model's log-likelihood at a random parameter point is compared with the same
quantity computed by hand (numpy gather of the group effects + scipy.stats densities).
"""

import numpy as np
import pandas as pd
import pytensor
import pytest
from bayes_support import simulate_counts
from conftest import SLEEP
from scipy import stats

import hierbayes as hb
from hierbayes.datasets import load


def _compile(model, outs):
    """A function of the model's value variables (FAST_COMPILE: these tests run once)."""
    outs = model.replace_rvs_by_values(outs)
    fn = pytensor.function(model.value_vars, outs, mode="FAST_COMPILE", on_unused_input="ignore")
    return lambda point: fn(*[point[v.name] for v in model.value_vars])


def _random_point(model, seed=1):
    rng = np.random.default_rng(seed)
    return {k: v + rng.normal(0, 0.3, np.shape(v)) for k, v in model.initial_point().items()}


def test_variables_dims_and_coords_read_like_the_data():
    spec = hb.build_model(SLEEP, load("sleepstudy"))
    model = spec.model
    # SDs and the correlation's Cholesky factor are separate free variables (no funnel).
    assert [v.name for v in model.free_RVs] == ["beta", "z_Subject", "sd_Subject",
                                                "chol_Subject", "sigma"]
    assert {v.name for v in model.deterministics} == {"corr_Subject", "r_Subject"}
    assert model.named_vars_to_dims["chol_Subject"] == ("Subject__term", "Subject__term2")
    names = ["corr_Subject", "chol_Subject", "sd_Subject", "z_Subject", "r_Subject"]
    corr, chol, sd, z, r = _compile(model, [model[n] for n in names])(_random_point(model))
    L = np.linalg.cholesky(corr)
    np.testing.assert_allclose(chol, L, atol=1e-12)
    np.testing.assert_allclose(r, z @ (sd[:, None] * L).T, atol=1e-12)  # r_l = diag(sd) L z_l
    dims = model.named_vars_to_dims
    assert dims["beta"] == ("fixed",)
    assert dims["r_Subject"] == ("Subject", "Subject__term")
    assert dims["corr_Subject"] == ("Subject__term", "Subject__term2")
    assert dims["y"] == ("obs",)
    assert list(model.coords["Subject"])[:3] == ["308", "309", "310"]
    assert list(model.coords["Subject__term"]) == ["Intercept", "Days"]
    assert list(model.coords["fixed"]) == ["Intercept", "Days"]


def test_independent_and_nested_blocks():
    model = hb.build_model("strength ~ 1 + (1 | batch/cask)", load("Pastes")).model
    names = {v.name for v in model.free_RVs}
    assert {"sd_batch", "sd_batch:cask", "z_batch", "z_batch:cask"} <= names
    assert not any(n.startswith(("chol_", "corr_")) for n in model.named_vars)
    assert len(model.coords["batch:cask"]) == 30
    uncorrelated = hb.build_model("log_radon ~ floor + (1 + floor || county)", load("radon")).model
    assert uncorrelated.named_vars_to_dims["r_county.1"] == ("county", "county.1__term")
    assert "corr_county" not in uncorrelated.named_vars


def test_mixed_fixed_effect_priors_get_one_variable_per_term():
    priors = {"Days": hb.Prior("StudentT", nu=3, mu=0, sigma=10)}
    model = hb.build_model(
        "Reaction ~ Days + (1 | Subject)", load("sleepstudy"), priors=priors
    ).model
    assert {"beta__Intercept", "beta__Days"} <= {v.name for v in model.free_RVs}
    assert model.named_vars_to_dims["beta"] == ("fixed",)


# The reference means come from scipy, not from hierbayes.families: the inverse links are the
# CDFs of these distributions.
SCIPY_DISTRIBUTIONS = {"logit": stats.logistic, "probit": stats.norm, "cloglog": stats.gumbel_l}
SCIPY_INVERSE_LINKS = {
    "identity": lambda eta: eta,
    "log": np.exp,
    **{name: dist.cdf for name, dist in SCIPY_DISTRIBUTIONS.items()},
}


def _bernoulli_data():
    rng = np.random.default_rng(3)
    g = np.repeat(np.arange(8), 6)
    x = rng.normal(size=g.size)
    y = (rng.random(g.size) < 1 / (1 + np.exp(-(0.3 + x)))).astype(int)
    return pd.DataFrame({"y": y, "x": x, "g": g.astype(str)})


CASES = {
    "gaussian": (
        SLEEP,
        lambda: load("sleepstudy"),
        "gaussian",
        None,
    ),
    "crossed": (
        "diameter ~ 1 + (1 | plate) + (1 | sample)",
        lambda: load("Penicillin"),
        "gaussian",
        None,
    ),
    "nested": ("strength ~ 1 + (1 | batch/cask)", lambda: load("Pastes"), "gaussian", None),
    "student_t": (
        "log_radon ~ floor + (1 + floor || county)",
        lambda: load("radon"),
        "student_t",
        None,
    ),
    "bernoulli": ("y ~ x + (1 | g)", _bernoulli_data, "bernoulli", "probit"),
    "binomial": (
        "cbind(incidence, size - incidence) ~ period + (1 | herd)",
        lambda: load("cbpp"),
        "binomial",
        None,
    ),
    "binomial_cloglog": (
        "cbind(incidence, size - incidence) ~ period + (1 | herd)",
        lambda: load("cbpp"),
        "binomial",
        "cloglog",
    ),
    "poisson": ("y ~ x + (1 | g)", lambda: simulate_counts("poisson"), "poisson", None),
    "negative_binomial": (
        "y ~ x + (1 | g)",
        lambda: simulate_counts("nb"),
        "negative_binomial",
        None,
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_log_likelihood_matches_a_hand_computation(case):
    formula, data, family, link = CASES[case]
    spec = hb.build_model(formula, data(), family=family, link=link)
    model, design = spec.model, spec.design
    point = _random_point(model)
    names = ["beta"] + [f"r_{b.name}" for b in design.blocks]
    names += [n for n in ("sigma", "nu", "alpha") if n in model.named_vars]
    values = dict(zip(names, _compile(model, [model[n] for n in names])(point), strict=True))
    eta = design.X @ values["beta"]
    for block in design.blocks:
        eta = eta + np.sum(values[f"r_{block.name}"][block.index] * block.Z, axis=1)
    mu = SCIPY_INVERSE_LINKS[spec.link](eta)
    expected = _scipy_loglik(family, design, mu, values)
    (actual,) = _compile(model, [model.logp(vars=[model["y"]])])(point)
    assert actual == pytest.approx(expected, rel=1e-9)


def _scipy_loglik(family, design, mu, v):
    y = design.y
    if family == "gaussian":
        return stats.norm.logpdf(y, mu, v["sigma"]).sum()
    if family == "student_t":
        return stats.t.logpdf(y, v["nu"], mu, v["sigma"]).sum()
    if family == "bernoulli":
        return stats.bernoulli.logpmf(y, mu).sum()
    if family == "binomial":
        return stats.binom.logpmf(y, design.trials, mu).sum()
    if family == "poisson":
        return stats.poisson.logpmf(y, mu).sum()
    alpha = v["alpha"]
    return stats.nbinom.logpmf(y, alpha, alpha / (alpha + mu)).sum()


@pytest.mark.parametrize(
    ("link", "intercept", "y", "finite"),
    [("probit", -30.0, 1, True), ("cloglog", -40.0, 1, True), ("cloglog", 6.0, 0, True),
     ("probit", 9.0, 0, False)],
)
def test_likelihood_in_the_tails(link, intercept, y, finite):
    """μ rounds to 0 (or to 1) here. Compiled with PyTensor's rewrites, as NUTS compiles it,
    the logs of the link's graph stay at scipy's value, except probit's log(1 − μ) where μ
    rounds to 1 (the builder's comment says so)."""
    data = pd.DataFrame({"y": [y] * 6, "g": list("aabbcc")})
    model = hb.build_model("y ~ 1 + (1 | g)", data, family="bernoulli", link=link).model
    point = model.initial_point()
    point["beta"] = np.array([intercept])
    point["z_g"] = np.zeros_like(point["z_g"])
    outs = model.replace_rvs_by_values([model.logp(vars=[model["y"]])])
    fn = pytensor.function(model.value_vars, outs, mode="FAST_RUN", on_unused_input="ignore")
    (actual,) = fn(*[point[v.name] for v in model.value_vars])
    dist = SCIPY_DISTRIBUTIONS[link]
    expected = 6 * (dist.logcdf(intercept) if y else dist.logsf(intercept))
    if finite:
        assert actual == pytest.approx(expected, rel=1e-9)
    else:
        assert actual == -np.inf and np.isfinite(expected)


def test_prior_predictive_from_the_staged_path():
    spec = hb.build_model(SLEEP, load("sleepstudy"))
    prior = spec.sample_prior_predictive(draws=20, random_seed=1)
    assert prior["prior_predictive"]["y"].shape == (1, 20, 180)
    assert prior["prior"]["corr_Subject"].shape == (1, 20, 2, 2)
    again = spec.sample_prior_predictive(draws=20, random_seed=1)
    np.testing.assert_array_equal(prior["prior"]["beta"], again["prior"]["beta"])
