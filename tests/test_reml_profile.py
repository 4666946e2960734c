"""Profile likelihood intervals and Hessian SEs of the variance components (hierbayes.reml.profile).

References that share none of its code:

- balanced one-way data (lme4's Dyestuff, Dyestuff2): the REML and ML criteria in closed form
  (within and between sums of squares), so every profile is a 1-D minimisation and every limit a
  root of it; the information matrix is diagonal in (σ_e², σ_e² + nσ_a²), which gives the SEs;
- mixedlm's penalised least-squares components (log|L|², log|RX|², PWRSS) at θ, turned into the
  criterion at an explicit σ and profiled here with scipy on lme4's SD / correlation scale
  (sleepstudy REML and ML, Penicillin REML). mixedlm 1.3 profiles fixed effects only, so its
  criterion, not its intervals, is the reference; the limits are checked by bracketing: the
  reference rise is below the χ²₁ cut-off 1e-3 inside our limit and above it 1e-3 outside;
- lme4's own confint(method = "profile") of the ML sleepstudy fit (spline-interpolated, so to
  1e-4): lme4 profiles the ML deviance for every fit, so only ML fits can be compared;
- cbpp (Laplace): the Laplace deviance minimised over β by BFGS at fixed θ.
"""

import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import load_reference
from scipy.optimize import brentq, minimize, minimize_scalar
from scipy.stats import chi2
from test_reml_features import DYESTUFF, DYESTUFF2, batches

import hierbayes as hb
from hierbayes.errors import HierbayesError

Q95 = float(chi2.ppf(0.95, 1))
SLEEP = "Reaction ~ Days + (Days | Subject)"
PENICILLIN = "diameter ~ 1 + (1 | plate) + (1 | sample)"


def quiet_fit(*args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", hb.SingularFitWarning)
        return hb.fit_reml(*args, **kwargs)


# --- balanced one-way: closed forms ------------------------------------------------------------


class OneWay:
    """−2 log-likelihood (ML) or −2 restricted log-likelihood (REML) of y_ij = μ + a_i + e_ij,
    a groups of n, up to a constant: with λ = σ_e² + nσ_a²,
    a(n−1)·log σ_e² + SSE/σ_e² + df·log λ + SSA/λ, df = a − 1 (REML) or a (ML)."""

    def __init__(self, yields, method):
        y = np.asarray(yields, float).reshape(6, 5)
        self.a, self.n = y.shape
        means = y.mean(axis=1)
        self.sse = float(((y - means[:, None]) ** 2).sum())
        self.ssa = float(self.n * ((means - y.mean()) ** 2).sum())
        self.df = self.a - 1 if method == "REML" else self.a

    def __call__(self, sa, se):
        lam = se**2 + self.n * sa**2
        return (self.a * (self.n - 1) * np.log(se**2) + self.sse / se**2 + self.df * np.log(lam)
                + self.ssa / lam)

    def profile_sigma(self, se):
        """min over σ_a ≥ 0: λ̂ = max(SSA/df, σ_e²)."""
        lam = max(self.ssa / self.df, se**2)
        return self(np.sqrt((lam - se**2) / self.n), se)

    def profile_batch(self, sa):
        res = minimize_scalar(lambda t: self(sa, np.exp(t)), bounds=(-10, 10), method="bounded",
                              options={"xatol": 1e-12})
        return res.fun

    def minimum(self):
        res = minimize_scalar(lambda t: self.profile_sigma(np.exp(t)), bounds=(-10, 10),
                              method="bounded", options={"xatol": 1e-12})
        return res.fun, np.exp(res.x)

    def limits(self, profile, estimate, lowest):
        """Both roots of profile(v) − min − χ²₁(0.95) around `estimate`; `lowest` when the
        profile there stays below the cut-off (an SD's bound 0)."""
        low, _ = self.minimum()

        def rise(v):
            return profile(v) - low - Q95

        lower = lowest if rise(lowest) < 0 else brentq(rise, lowest, estimate, xtol=1e-12)
        upper = brentq(rise, estimate, 50 * estimate, xtol=1e-12)
        return lower, upper


@pytest.mark.parametrize(("yields", "method"), [(DYESTUFF, "REML"), (DYESTUFF, "ML"),
                                                (DYESTUFF2, "REML"), (DYESTUFF2, "ML")])
def test_one_way_limits_are_the_closed_form_roots(yields, method):
    ref = OneWay(yields, method)
    fit = quiet_fit("Yield ~ 1 + (1 | Batch)", batches(yields), method)
    vc = fit.varcorr().set_index("group")
    sa_hat, se_hat = vc.loc["Batch", "estimate"], vc.loc["Residual", "estimate"]
    lo, hi = ref.limits(ref.profile_batch, max(sa_hat, se_hat / 10), 0.0)
    assert vc.loc["Batch", "lower"] == pytest.approx(lo, rel=1e-6, abs=1e-9)
    assert vc.loc["Batch", "upper"] == pytest.approx(hi, rel=1e-6)
    lo, hi = ref.limits(ref.profile_sigma, se_hat, se_hat / 10)
    assert vc.loc["Residual", "lower"] == pytest.approx(lo, rel=1e-6)
    assert vc.loc["Residual", "upper"] == pytest.approx(hi, rel=1e-6)
    if fit.singular:  # Dyestuff2: σ̂_a = 0, so its lower limit is the bound
        assert sa_hat == 0.0 and vc.loc["Batch", "lower"] == 0.0
        assert np.isnan(vc.loc["Batch", "std_error"])
    else:
        assert vc.loc["Batch", "lower"] > 0.0


@pytest.mark.parametrize("method", ["REML", "ML"])
def test_one_way_standard_errors_are_the_inverse_information(method):
    """Fisher information is diagonal in (σ_e², λ): var σ̂_e² = 2σ_e⁴/(a(n−1)), var λ̂ = 2λ²/df,
    σ_a² = (λ − σ_e²)/n; then the delta method to the SD scale."""
    ref = OneWay(DYESTUFF, method)
    vc = hb.fit_reml("Yield ~ 1 + (1 | Batch)", batches(DYESTUFF), method).varcorr()
    vc = vc.set_index("group")
    sa, se = vc.loc["Batch", "estimate"], vc.loc["Residual", "estimate"]
    lam = se**2 + ref.n * sa**2
    var_e2 = 2 * se**4 / (ref.a * (ref.n - 1))
    var_a2 = (2 * lam**2 / ref.df + var_e2) / ref.n**2
    assert vc.loc["Residual", "std_error"] == pytest.approx(np.sqrt(var_e2) / (2 * se), rel=1e-5)
    assert vc.loc["Batch", "std_error"] == pytest.approx(np.sqrt(var_a2) / (2 * sa), rel=1e-5)


# --- mixedlm's criterion, profiled by scipy ----------------------------------------------------


class MixedlmProfile:
    """The REML criterion / ML deviance at explicit (SDs, correlation, σ) from mixedlm's PLS
    components, profiled over the other parameters on an unconstrained scale (log SD, atanh
    correlation, log σ)."""

    def __init__(self, formula, data, method):
        mixedlm = pytest.importorskip("mixedlm")
        from mixedlm.estimation.reml import profiled_deviance_components

        self.components = profiled_deviance_components
        self.reml = method == "REML"
        fit = mixedlm.lmer(formula, data, REML=self.reml)
        self.m = fit.matrices
        self.sizes = [s.n_terms for s in self.m.random_structures]
        self.dof = self.m.n_obs - (self.m.n_fixed if self.reml else 0)
        self.hat = self.parameters(np.asarray(fit.theta), float(fit.sigma))
        self.minimum = self.criterion(self.hat)

    def parameters(self, theta, sigma):
        """lme4's order: per term its SD(s), then the correlation; σ last."""
        out, at = [], 0
        for k in self.sizes:
            if k == 1:
                out.append(theta[at] * sigma)
            else:  # k == 2: θ = (λ11, λ21, λ22)
                L = np.array([[theta[at], 0.0], [theta[at + 1], theta[at + 2]]]) * sigma
                sd = np.sqrt((L * L).sum(axis=1))
                out += [sd[0], sd[1], (L[0] @ L[1]) / (sd[0] * sd[1])]
            at += k * (k + 1) // 2
        return np.array([*out, sigma])

    def criterion(self, params):
        sigma, theta, at = params[-1], [], 0
        for k in self.sizes:
            if k == 1:
                theta.append(params[at] / sigma)
            else:
                s1, s2, rho = params[at:at + 3]
                cov = np.array([[s1 * s1, rho * s1 * s2], [rho * s1 * s2, s2 * s2]])
                L = np.linalg.cholesky(cov) / sigma
                theta += [L[0, 0], L[1, 0], L[1, 1]]
            at += 3 if k == 2 else 1
        c = self.components(np.array(theta), self.m, self.reml)
        return c.ldL2 + c.ldRX2 + c.pwrss / sigma**2 + self.dof * np.log(2 * np.pi * sigma**2)

    def is_corr(self, j):
        at = 0
        for k in self.sizes:
            if k == 2 and j == at + 2:
                return True
            at += 3 if k == 2 else 1
        return False

    def rise(self, j, value, start=None):
        """(min over the other parameters of the criterion with parameter j at `value`, minus
        the minimum; the other parameters there, on the unconstrained scale)."""
        corr = np.array([self.is_corr(i) for i in range(self.hat.size)])[np.arange(
            self.hat.size) != j]
        free = np.arange(self.hat.size) != j

        def unpack(u):
            params = self.hat.copy()
            params[free] = [np.tanh(v) if c else np.exp(v) for v, c in zip(u, corr, strict=True)]
            params[j] = value
            return params

        if start is None:
            start = [np.arctanh(v) if c else np.log(v)
                     for v, c in zip(self.hat[free], corr, strict=True)]
        res = minimize(lambda u: self.criterion(unpack(u)), start, method="BFGS",
                       options={"gtol": 1e-6})
        return res.fun - self.minimum, res.x


def assert_limits_bracket_the_reference(ref, vc, rtol=1e-3):
    """Each finite limit v: the reference rise crosses χ²₁(0.95) between v·(1 ∓ rtol) (absolute
    rtol for correlations), on the side that says v is the root to that tolerance."""
    rows = vc.to_dict("records")
    assert len(rows) == ref.hat.size
    for j, row in enumerate(rows):
        assert row["estimate"] == pytest.approx(ref.hat[j], rel=1e-4, abs=1e-4)
        for side, limit in ((-1, row["lower"]), (1, row["upper"])):
            delta = rtol if ref.is_corr(j) else rtol * abs(limit)
            below, at = ref.rise(j, limit - side * delta)
            above, _ = ref.rise(j, limit + side * delta, start=at)
            assert below < Q95 < above, (row, side)


@pytest.mark.parametrize(("formula", "name", "method"), [
    (SLEEP, "sleepstudy", "REML"), (SLEEP, "sleepstudy", "ML"), (PENICILLIN, "Penicillin", "REML"),
])
def test_profile_limits_against_mixedlm_criterion(formula, name, method):
    data, _ = load_reference(name)
    vc = hb.fit_reml(formula, data, method).varcorr()
    assert_limits_bracket_the_reference(MixedlmProfile(formula, data, method), vc)


def test_ml_sleepstudy_matches_lme4_confint():
    """lme4's confint(method = "profile") of lmer(Reaction ~ Days + (Days | Subject),
    sleepstudy, REML = FALSE) as R prints it, rows reordered to ours (.sig01, .sig03, .sig02,
    .sigma). lme4 interpolates its profile by splines: agreement to ~1e-5, tested at 1e-4."""
    data, _ = load_reference("sleepstudy")
    vc = hb.fit_reml(SLEEP, data, "ML").varcorr()
    lme4 = [(14.381474, 37.715996), (3.801164, 8.753383), (-0.481501, 0.684986),
            (22.898267, 28.857997)]
    np.testing.assert_allclose(vc[["lower", "upper"]].to_numpy(), lme4, rtol=1e-4, atol=1e-4)


def test_reml_and_ml_profile_their_own_criterion():
    """REML limits surround the REML estimates, ML limits the ML ones (lme4 profiles ML for
    both), and each table says which criterion it profiled."""
    data, _ = load_reference("sleepstudy")
    reml, ml = hb.fit_reml(SLEEP, data), hb.fit_reml(SLEEP, data, "ML")
    vr, vm = reml.varcorr(), ml.varcorr()
    assert "REML criterion" in vr.attrs["interval"] and "ML deviance" not in vr.attrs["interval"]
    assert "ML deviance" in vm.attrs["interval"] and "REML" not in vm.attrs["interval"]
    assert vr.loc[0, "upper"] - vm.loc[0, "upper"] > 1.0  # the intercept SD: 39.5 vs 37.7
    for vc in (vr, vm):
        assert ((vc["lower"] < vc["estimate"]) & (vc["estimate"] < vc["upper"])).all()


def test_ci_prob_changes_the_cut_off():
    data, _ = load_reference("sleepstudy")
    fit = hb.fit_reml(SLEEP, data)
    wide, narrow = fit.varcorr(0.99), fit.varcorr(0.5)
    assert (wide["lower"] < narrow["lower"]).all() and (wide["upper"] > narrow["upper"]).all()
    assert "99% profile" in wide.attrs["interval"] and "6.634897" in wide.attrs["interval"]
    assert "50% profile" in narrow.attrs["interval"]
    # Computed once per ci_prob: asking again evaluates nothing.
    before = fit.deviance.n_evaluations
    again = fit.varcorr(0.99)
    assert fit.deviance.n_evaluations == before and again.equals(wide)


@pytest.mark.parametrize("bad", [2, 0, 1.0, -0.5, True, "0.95", None])
def test_varcorr_rejects_a_bad_ci_prob(bad):
    fit = hb.fit_reml(SLEEP, load_reference("sleepstudy")[0])
    for table in (fit.varcorr, fit.fixef, fit.ranef):
        with pytest.raises(HierbayesError, match="ci_prob must be a probability"):
            table(ci_prob=bad)


def three_terms(seed=4, groups=40, per_group=12):
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(groups), per_group)
    x1, x2 = rng.normal(size=g.size), rng.normal(size=g.size)
    sd = np.array([1.0, 0.7, 0.5])
    corr = np.array([[1, 0.5, -0.3], [0.5, 1, 0.2], [-0.3, 0.2, 1]])
    b = rng.multivariate_normal(np.zeros(3), corr * np.outer(sd, sd), groups)
    y = 1 + x1 - x2 + b[g, 0] + b[g, 1] * x1 + b[g, 2] * x2 + rng.normal(size=g.size)
    return pd.DataFrame({"y": y, "x1": x1, "x2": x2, "g": [f"g{i}" for i in g]})


def test_correlation_of_later_terms_in_a_three_term_block():
    """corr(x1, x2) is not a CPC of the block in its own order (its terms are put first for its
    profile): checked against the REML criterion on the direct (SDs, correlations, log σ) scale,
    minimised by Nelder–Mead with the correlation matrix kept positive definite."""
    from hierbayes.reml.pls import criterion

    fit = hb.fit_reml("y ~ x1 + x2 + (1 + x1 + x2 | g)", three_terms())
    vc = fit.varcorr()
    dev, n, p = fit.deviance, fit.deviance.layout.n, fit.deviance.layout.p
    rows = np.tril_indices(3)[0][[0, 1, 3, 2, 4, 5]], np.tril_indices(3)[1][[0, 1, 3, 2, 4, 5]]

    def rise(par):
        sd, (r01, r02, r12), sigma = par[:3], par[3:6], np.exp(par[6])
        R = np.array([[1, r01, r02], [r01, 1, r12], [r02, r12, 1]])
        if sd.min() < 0 or np.linalg.eigvalsh(R).min() <= 1e-10:
            return np.inf
        T = np.linalg.cholesky(np.outer(sd, sd) * R) / sigma  # θ: lme4's column-major order
        state = dev.state(T[rows])
        return criterion(state.logdet_M, state.logdet_X, state.r2, n, p, "REML",
                         sigma**2) - fit.criterion

    hat = np.r_[vc["estimate"].iloc[:6], np.log(fit.sigma)]
    assert rise(hat) == pytest.approx(0.0, abs=1e-8)
    row = vc.iloc[5]
    assert (row["term1"], row["term2"]) == ("x1", "x2")
    free = np.arange(7) != 5
    for side, limit in ((-1, row["lower"]), (1, row["upper"])):
        values = []
        for v in (limit - side * 1e-3, limit + side * 1e-3):
            start = hat.copy()
            start[5] = v

            def at(u, v=v):
                par = hat.copy()
                par[free], par[5] = u, v
                return rise(par)

            values.append(minimize(at, start[free], method="Nelder-Mead",
                                   options={"xatol": 1e-8, "fatol": 1e-10, "maxiter": 20000}).fun)
        assert values[0] < Q95 < values[1], (side, limit, values)


# --- boundaries and GLMMs ----------------------------------------------------------------------


def test_singular_slope_sd_has_lower_limit_zero_and_corr_may_span_all():
    """radon's floor SD: the REML profile stays below the cut-off all the way to 0, so its lower
    limit is 0; the correlation's profile never reaches the cut-off inside (−1, 1)."""
    data, _ = load_reference("radon")
    vc = hb.fit_reml("log_radon ~ floor + (1 + floor | county)", data).varcorr()
    floor, corr = vc.iloc[1], vc.iloc[2]
    assert floor["term1"] == "floor" and floor["lower"] == 0.0 and floor["upper"] > 0.5
    assert corr["term2"] == "floor" and (corr["lower"], corr["upper"]) == (-1.0, 1.0)
    assert vc.iloc[0]["lower"] > 0.2  # the intercept SD is well away from 0


def slopes(seed):
    """10 groups × 6 days, varying slopes only (the intercept SD is 0 in truth)."""
    rng = np.random.default_rng(seed)
    g, x = np.repeat(np.arange(10), 6), np.tile(np.arange(6.0), 10)
    y = 1 + x + rng.normal(0, 0.8, 10)[g] * x + rng.normal(size=g.size)
    return pd.DataFrame({"y": y, "x": x, "g": [f"g{i}" for i in g]})


def underdispersed_slopes(seed):
    """Varying slopes only, x centred and the noise demeaned within each group: the groups'
    means vary less than noise alone would make them, so the intercept SD's REML estimate is 0
    (mixedlm's lmer agrees: same criterion, intercept SD 0). In `slopes` the optimum is instead
    a correlation of ±1 with a small intercept SD; θ11 = 0 there is only a local optimum."""
    rng = np.random.default_rng(seed)
    g, x = np.repeat(np.arange(10), 6), np.tile(np.arange(6.0) - 2.5, 10)
    e = rng.normal(size=g.size)
    e -= np.repeat(e.reshape(10, 6).mean(axis=1), 6)
    y = 1 + x + rng.normal(0, 0.8, 10)[g] * x + e
    return pd.DataFrame({"y": y, "x": x, "g": [f"g{i}" for i in g]})


def test_correlation_with_a_zero_sd_is_undefined():
    fit = quiet_fit("y ~ x + (x | g)", underdispersed_slopes(3))
    assert fit.criterion == pytest.approx(203.638176, abs=1e-6)  # mixedlm's REMLcrit
    assert fit.theta[0] == 0.0  # intercept SD exactly 0, slope SD not:
    assert np.hypot(fit.theta[1], fit.theta[2]) > 0.1
    vc = fit.varcorr()
    intercept, slope, corr = vc.iloc[0], vc.iloc[1], vc.iloc[2]
    assert intercept["estimate"] == 0.0 and intercept["lower"] == 0.0
    assert np.isnan(corr[["estimate", "std_error", "lower", "upper"]].astype(float)).all()
    assert 0 < slope["lower"] < slope["estimate"] < slope["upper"]


def test_correlation_at_one_has_that_limit():
    """θ22 = 0 with both SDs positive: the correlation is estimated at exactly 1, the bound."""
    fit = quiet_fit("y ~ x + (x | g)", slopes(2))
    assert fit.theta[2] == 0.0 and fit.theta[0] > 0 and fit.theta[1] > 0
    corr = fit.varcorr().iloc[2]
    assert corr["estimate"] == pytest.approx(1.0, abs=1e-12)
    assert corr["upper"] == 1.0 and -1.0 < corr["lower"] < 1.0 and np.isnan(corr["std_error"])


def test_cbpp_laplace_profile_against_beta_refits():
    data, _ = load_reference("cbpp")
    fit = hb.fit_reml("cbind(incidence, size - incidence) ~ period + (1 | herd)", data,
                      family="binomial")
    vc = fit.varcorr()
    assert "Laplace deviance" in vc.attrs["interval"] and list(vc["group"]) == ["herd"]
    dev = fit.deviance

    def rise(sd):
        res = minimize(lambda b: dev(np.concatenate([[sd], b])), fit.beta, method="BFGS",
                       options={"gtol": 1e-7})
        return res.fun - fit.criterion

    row = vc.iloc[0]
    assert 0 < row["lower"] < row["estimate"] < row["upper"]
    for side, limit in ((-1, row["lower"]), (1, row["upper"])):
        assert rise(limit * (1 - side * 1e-3)) < Q95 < rise(limit * (1 + side * 1e-3))
    # Profiling leaves the fit as it was.
    assert dev(fit.optim.par) == pytest.approx(fit.criterion, abs=1e-9)


def test_a_fit_short_of_its_optimum_is_told_so():
    data, _ = load_reference("sleepstudy")
    with pytest.warns(hb.ConvergenceWarning, match="did not converge"):
        short = hb.fit_reml(SLEEP, data, maxiter=1)
    with pytest.warns(hb.ConvergenceWarning, match=r"Profiling found a REML criterion [\d.]+ "
                      "below the fit's own") as record:
        short.varcorr()
    assert record[0].filename == __file__  # points at the caller
    converged = hb.fit_reml(SLEEP, data)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the converged fit profiles without a word
        converged.varcorr()


def test_a_limit_not_reached_is_nan_and_said(monkeypatch):
    import hierbayes.reml.profile as profile

    data, _ = load_reference("sleepstudy")
    fit = hb.fit_reml(SLEEP, data)
    monkeypatch.setattr(profile, "MAX_STEPS", 0)
    with pytest.warns(hb.ConvergenceWarning, match="limit was not reached in 0 steps"):
        vc = fit.varcorr(0.8)
    assert vc[["lower", "upper"]].isna().all().all()
    monkeypatch.setattr(profile, "MAX_STEPS", 60)
    assert vc["estimate"].notna().all() and fit.varcorr(0.7)[["lower", "upper"]].notna().all().all()


# --- lme4's confint(method = "profile") of a REML fit: the ML refit's profile ------------------

# lme4's confint(fm1) for fm1 <- lmer(Reaction ~ Days + (Days | Subject), sleepstudy) (a REML
# fit; confint refits by ML): .sig01, .sig02 (the correlation), .sig03, .sigma.
LME4_CONFINT = {"sd_intercept": (14.3814761, 37.7159917), "corr": (-0.4815007, 0.6849863),
                "sd_days": (3.8011641, 8.7533766), "sigma": (22.8982669, 28.8579965)}


def test_ml_criterion_reproduces_lme4s_confint_of_a_reml_fit():
    data, _ = load_reference("sleepstudy")
    fit = hb.fit_reml(SLEEP, data)
    lme4 = fit.varcorr(criterion="ML")
    ours = fit.varcorr()
    expected = [LME4_CONFINT[k] for k in ("sd_intercept", "sd_days", "corr", "sigma")]
    for (_, row), (lower, upper) in zip(lme4.iterrows(), expected, strict=True):
        assert row["lower"] == pytest.approx(lower, abs=1e-3)
        assert row["upper"] == pytest.approx(upper, abs=1e-3)
    # Estimates and SEs stay the REML fit's; only the intervals are lme4's.
    assert lme4["estimate"].tolist() == ours["estimate"].tolist()
    assert lme4["std_error"].tolist() == ours["std_error"].tolist()
    assert "lme4's confint" in lme4.attrs["interval"]
    assert "lme4's confint" not in ours.attrs["interval"]
    # The default surrounds the REML estimates: the intercept SD's limits are visibly higher.
    assert ours["lower"].iloc[0] > lme4["lower"].iloc[0] + 0.5


def test_ml_criterion_changes_nothing_for_ml_and_glmm_fits_and_is_checked():
    data, _ = load_reference("sleepstudy")
    fit = hb.fit_reml(SLEEP, data, method="ML")
    assert fit.varcorr(criterion="ML").equals(fit.varcorr())
    with pytest.raises(hb.HierbayesError, match="criterion must be 'fit'"):
        fit.varcorr(criterion="REML")
