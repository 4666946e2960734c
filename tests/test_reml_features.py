"""REML engine features beyond the references: fixed-θ deviance, singular and unconverged fits,
`||`, categorical slopes, crossed slopes, ML, and a brute-force check of the sparse algebra."""

import warnings

import mixedlm  # the test extra installs it: a missing one fails loudly
import numpy as np
import pandas as pd
import pytest
from conftest import load_reference

import hierbayes as hb
from hierbayes.reml import make_deviance
from hierbayes.testing.dense import dense_Z, per_level

# lme4's Dyestuff and Dyestuff2 (Davies 1947; Box & Tiao 1973): 6 batches A–F of 5 yields.
DYESTUFF = [1545, 1440, 1440, 1520, 1580, 1540, 1555, 1490, 1560, 1495, 1595, 1550, 1605, 1510,
            1560, 1445, 1440, 1595, 1465, 1545, 1595, 1630, 1515, 1635, 1625, 1520, 1455, 1450,
            1480, 1445]
DYESTUFF2 = [7.298, 3.846, 2.434, 9.566, 7.99, 5.22, 6.556, 0.608, 11.788, -0.892, 0.11, 10.386,
             13.434, 5.51, 8.166, 2.212, 4.852, 7.092, 9.288, 4.98, 0.282, 9.014, 4.458, 9.446,
             7.198, 1.722, 4.782, 8.106, 0.758, 3.758]


def batches(yields) -> pd.DataFrame:
    return pd.DataFrame({"Yield": np.array(yields, float), "Batch": np.repeat(list("ABCDEF"), 5)})


def simulated_crossed(seed=3, n=400) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    g, h = rng.integers(0, 30, n), rng.integers(0, 7, n)
    x = rng.normal(size=n)
    f = rng.choice(["a", "b", "c"], n)
    b = rng.multivariate_normal([0, 0], [[1.0, 0.3], [0.3, 0.5]], 30)
    y = (1 + 0.5 * x + b[g, 0] + b[g, 1] * x + rng.normal(0, 0.7, 7)[h] + (f == "b") * 0.4
         + rng.normal(0, 1, 3 * 30).reshape(30, 3)[g, np.searchsorted(["a", "b", "c"], f)] * 0.6
         + rng.normal(size=n))
    return pd.DataFrame({"y": y, "x": x, "f": f, "g": [f"g{i:02d}" for i in g],
                         "h": [f"h{i}" for i in h]})


def brute_force(design, theta, method="REML"):
    """Dense V = I + ZΛΛᵀZᵀ: the criterion, modes and conditional covariances, textbook style."""
    templates = hb.reml.theta_layout(design).templates(theta)
    Z = dense_Z(design)
    Lam = per_level(design, {b.name: T for b, T in zip(design.blocks, templates, strict=True)})
    X, y, (n, p) = design.X, design.y, design.X.shape
    V = np.eye(n) + Z @ Lam @ Lam.T @ Z.T
    Vi = np.linalg.inv(V)
    XVX = X.T @ Vi @ X
    beta = np.linalg.solve(XVX, X.T @ Vi @ y)
    r = y - X @ beta
    quad = r @ Vi @ r
    dof = n - p if method == "REML" else n
    crit = np.linalg.slogdet(V)[1] + dof * (1 + np.log(2 * np.pi * quad / dof))
    if method == "REML":
        crit += np.linalg.slogdet(XVX)[1]
    M = Lam.T @ Z.T @ Z @ Lam + np.eye(Lam.shape[0])
    modes = Lam @ np.linalg.solve(M, Lam.T @ Z.T @ r)
    condcov = quad / dof * Lam @ np.linalg.inv(M) @ Lam.T
    return crit, beta, modes, condcov


def test_dyestuff_deviance_at_theta_one():
    dev = make_deviance(hb.make_design("Yield ~ 1 + (1 | Batch)", batches(DYESTUFF)), "REML")
    assert dev([1.0]) == pytest.approx(319.792389042002, abs=1e-9)


def test_singular_fit_is_exactly_zero():
    """Dyestuff2 is lme4's textbook singular fit: the batch variance is estimated at exactly 0."""
    data = batches(DYESTUFF2)
    with pytest.warns(hb.SingularFitWarning, match="Batch"):
        fit = hb.fit_reml("Yield ~ 1 + (1 | Batch)", data)
    assert fit.singular and fit.converged
    assert fit.theta[0] == 0.0
    vc = fit.varcorr()
    assert vc.loc[vc["group"] == "Batch", "estimate"].item() == 0.0
    assert (fit.ranef()["estimate"] == 0.0).all() and (fit.ranef()["std_error"] == 0.0).all()
    # At θ = 0 the model is a plain regression: σ is the sample SD and the REML criterion is closed.
    y = data["Yield"].to_numpy()
    assert fit.sigma == pytest.approx(y.std(ddof=1), rel=1e-12)
    n = len(y)
    closed = np.log(n) + (n - 1) * (1 + np.log(2 * np.pi * y.var() * n / (n - 1)))
    assert fit.criterion == pytest.approx(closed, abs=1e-9)


def test_non_convergence_is_reported():
    data, ref = load_reference("sleepstudy")
    with pytest.warns(hb.ConvergenceWarning, match="did not converge"):
        fit = hb.fit_reml(ref["formula"], data, maxiter=1)
    assert not fit.converged
    assert fit.criterion >= ref["fit_criteria"]["REML_criterion"]
    assert "NOT CONVERGED" in fit.summary()


@pytest.mark.parametrize("formula", [
    "y ~ x + (x | g) + (1 | h)",  # slope in the eliminated factor
    "y ~ x + (1 | g) + (x | h)",  # slope in the dense Schur part
    "y ~ x + f + (1 | g) + (1 | h) + (1 | g:h)",  # three factors
])
def test_schur_backend_matches_brute_force(formula):
    design = hb.make_design(formula, simulated_crossed())
    dev = make_deviance(design, "REML")
    rng = np.random.default_rng(0)
    for method in ("REML", "ML"):
        dev = make_deviance(design, method)
        theta = dev.thetas.start + rng.uniform(0.1, 0.8, dev.thetas.n_theta)
        assert dev(theta) == pytest.approx(brute_force(design, theta, method)[0], abs=1e-8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", hb.SingularFitWarning)
        fit = hb.fit_reml(design)
    _check_modes(fit, brute_force(design, fit.theta))


def test_block_diagonal_backend_matches_brute_force():
    design = hb.make_design("y ~ x + (x + f | g)", simulated_crossed())
    dev = make_deviance(design)
    theta = dev.thetas.start + np.random.default_rng(1).uniform(0.1, 0.5, dev.thetas.n_theta)
    assert dev(theta) == pytest.approx(brute_force(design, theta)[0], abs=1e-8)
    fit = hb.fit_reml(design)
    _check_modes(fit, brute_force(design, fit.theta))


def _check_modes(fit, brute):
    _, beta, modes, condcov = brute
    np.testing.assert_allclose(fit.beta, beta, rtol=1e-7, atol=1e-9)
    at = 0
    for block in fit.design.blocks:
        L, k = block.n_levels, block.n_terms
        idx = at + np.arange(L * k).reshape(L, k)
        np.testing.assert_allclose(fit.modes[block.name], modes[idx], atol=1e-7)
        np.testing.assert_allclose(fit.condcov[block.name],
                                   condcov[idx[:, :, None], idx[:, None, :]], atol=1e-8)
        at += L * k


def test_analytic_gradient_matches_finite_differences():
    data, ref = load_reference("radon")
    for method in ("REML", "ML"):
        dev = make_deviance(hb.make_design(ref["formula"], data), method)
        theta = np.array([0.6, -0.2, 0.3])
        h, fd = 1e-6, []
        for j in range(3):
            e = np.zeros(3)
            e[j] = h
            fd.append((dev(theta + e) - dev(theta - e)) / (2 * h))
        np.testing.assert_allclose(dev.gradient(theta), fd, rtol=1e-5, atol=1e-6)


def test_uncorrelated_slope_matches_mixedlm():
    data, _ = load_reference("sleepstudy")
    formula = "Reaction ~ Days + (Days || Subject)"
    fit = hb.fit_reml(formula, data)
    assert [b.name for b in fit.design.blocks] == ["Subject", "Subject.1"]
    other = mixedlm.lmer(formula, data)
    assert fit.criterion <= other.REMLcrit() + 1e-6
    np.testing.assert_allclose(fit.theta, other.theta, rtol=1e-3)
    assert fit.sigma == pytest.approx(other.sigma, rel=1e-4)
    vc = fit.varcorr()
    assert (vc["term2"].isna()).all()  # no correlation row for an uncorrelated pair


def test_ml_and_categorical_slope_match_mixedlm():
    data = simulated_crossed()
    for formula, reml in [("y ~ x + f + (f | g)", True), ("y ~ x + (x | g) + (1 | h)", False)]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = hb.fit_reml(formula, data, method="REML" if reml else "ML")
            other = mixedlm.lmer(formula, data, REML=reml)
        theirs = other.REMLcrit() if reml else other.deviance
        assert fit.criterion <= theirs + 1e-6
        assert fit.criterion == pytest.approx(theirs, abs=1e-3)
        assert fit.sigma == pytest.approx(other.sigma, rel=1e-3)


def test_properties_scale_and_permutation():
    data, ref = load_reference("sleepstudy")
    fit = hb.fit_reml(ref["formula"], data)
    scaled = data.assign(Reaction=data["Reaction"] * 10)
    fit10 = hb.fit_reml(ref["formula"], scaled)
    np.testing.assert_allclose(fit10.beta, 10 * fit.beta, rtol=1e-6)
    assert fit10.sigma == pytest.approx(10 * fit.sigma, rel=1e-6)
    np.testing.assert_allclose(fit10.theta, fit.theta, rtol=1e-5, atol=1e-7)
    shuffled = data.sample(frac=1.0, random_state=2)
    assert hb.fit_reml(ref["formula"], shuffled).criterion == pytest.approx(fit.criterion, abs=1e-8)


def test_bad_input():
    data, ref = load_reference("sleepstudy")
    with pytest.raises(hb.HierbayesError, match="not implemented"):  # GLMMs: test_glmm.py
        hb.fit_reml("y ~ x + (1 | g)", pd.DataFrame({"y": [0, 1] * 10, "x": range(20),
                                                      "g": list("ab") * 10}), family="student_t")
    with pytest.raises(hb.HierbayesError, match="method"):
        hb.fit_reml(ref["formula"], data, method="REMl")
    dev = make_deviance(hb.make_design(ref["formula"], data))
    with pytest.raises(hb.HierbayesError, match="3"):
        dev([1.0, 0.0])
    with pytest.raises(hb.HierbayesError, match=">= 0"):
        dev([-1.0, 0.0, 1.0])
    with pytest.raises(hb.DesignError, match="column 'Nope', which is not in the data"):
        hb.fit_reml("Reaction ~ Days + (1 | Nope)", data)


def test_no_fixed_effects_and_ml_print():
    data, ref = load_reference("sleepstudy")
    fit = hb.fit_reml("Reaction ~ 0 + (1 | Subject)", data)
    assert fit.fixef().empty
    assert fit.criterion == pytest.approx(
        mixedlm.lmer("Reaction ~ 0 + (1 | Subject)", data).REMLcrit(), abs=1e-6)
    ml = hb.fit_reml(ref["formula"], data, method="ML")
    assert ml.method == "ML" and "Deviance:" in repr(ml)
    assert ml.criterion <= make_deviance(ml.design, "ML")(fit.theta[:1].repeat(3) * [1, 0, 1])


@pytest.mark.parametrize("formula", ["y ~ x + (x | g)", "y ~ x + (1 | g) + (1 | h)"])
def test_prior_weights_match_mixedlm(formula):
    """lme4's prior weights, var(e_i) = σ²/w_i (the weighted PLS a GLMM's PIRLS step reuses)."""
    data = simulated_crossed()
    w = np.random.default_rng(1).uniform(0.5, 2.0, len(data))
    for reml in (True, False):
        fit = hb.fit_reml(formula, data, method="REML" if reml else "ML", weights=w)
        other = mixedlm.lmer(formula, data, REML=reml, weights=w)
        theirs = other.REMLcrit() if reml else other.deviance
        assert fit.criterion == pytest.approx(theirs, abs=1e-6)
        assert fit.sigma == pytest.approx(other.sigma, rel=1e-5)
    as_series = hb.fit_reml(formula, data, weights=pd.Series(w, index=data.index))
    assert as_series.criterion == pytest.approx(hb.fit_reml(formula, data, weights=w).criterion)
    with pytest.raises(hb.HierbayesError, match="> 0"):
        hb.fit_reml(formula, data, weights=-w)
    with pytest.raises(hb.HierbayesError, match="rows"):
        hb.fit_reml(formula, data, weights=w[:10])


def test_formula_without_group_terms_is_rejected():
    data = hb.datasets.load("sleepstudy")
    with pytest.raises(hb.HierbayesError, match="no group-level term such as"):
        hb.fit_reml("Reaction ~ Days", data)
