"""offset(...) terms (lme4's offsets: a known part of the linear predictor, no coefficient), in the
formula layer, the design, the REML/Laplace engine and the Bayesian model.

References: mixedlm's lmer and glmer with the same offset passed as an array (the Rust port of
lme4), and for the Bayesian model its own log-density with the offset moved into the intercept."""

import warnings

import mixedlm  # the test extra installs it: a missing one fails loudly
import numpy as np
import pandas as pd
import pytest
from mixedlm.families import Poisson

import hierbayes as hb
from hierbayes.errors import DesignError, FormulaError


def rates(seed=5, n=400):
    rng = np.random.default_rng(seed)
    g, x, t = rng.integers(0, 20, n), rng.normal(size=n), rng.uniform(0.5, 5.0, n)
    y = rng.poisson(t * np.exp(-0.5 + 0.3 * x + rng.normal(0, 0.5, 20)[g]))
    yl = 2 + 0.5 * x + rng.normal(0, 1, 20)[g] + rng.normal(size=n) + 3 * t
    return pd.DataFrame({"y": y.astype(float), "yl": yl, "x": x, "t": t,
                         "g": [f"g{i:02d}" for i in g]})


def test_offset_is_parsed_out_of_the_fixed_part():
    parsed = hb.parse_formula("y ~ x + offset(np.log(t)) + (1 | g)")
    assert parsed.fixed == "x" and parsed.offsets == ("np.log(t)",)
    assert hb.parse_formula("y ~ offset(t) + (1 | g)").fixed == "1"
    assert hb.parse_formula("y ~ x + (1 | g)").offsets == ()
    design = hb.make_design("y ~ x + offset(np.log(t)) + offset(x) + (1 | g)", rates(),
                            "poisson")
    assert design.fixed_names == ("Intercept", "x")
    np.testing.assert_allclose(design.offset, np.log(rates()["t"]) + rates()["x"])
    assert hb.make_design("y ~ x + (1 | g)", rates(), "poisson").offset is None


@pytest.mark.parametrize(("formula", "error", "match"), [
    ("y ~ x - offset(t) + (1 | g)", FormulaError, "cannot be subtracted"),
    ("y ~ x + offset() + (1 | g)", FormulaError, "expression inside"),
    ("y ~ x + offset(np.log(x)) + (1 | g)", DesignError, r"offset\(np.log\(x\)\) is not a finite"),
    ("y ~ x + offset(exposure) + (1 | g)", DesignError, "'exposure', which is not in the data"),
    ("y ~ x + offset(__import__('os').getcwd()) + (1 | g)", FormulaError, "__import__"),
])
def test_bad_offsets_are_refused_by_name(formula, error, match):
    with pytest.raises(error, match=match):
        hb.make_design(formula, rates(), "poisson")


def test_poisson_rate_model_matches_mixedlm():
    data = rates()
    ours = hb.fit_reml("y ~ x + offset(np.log(t)) + (1 | g)", data, family="poisson")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = mixedlm.glmer("y ~ x + (1 | g)", data, family=Poisson(),
                               offset=np.log(data["t"].to_numpy()))
    assert ours.criterion == pytest.approx(-2.0 * theirs.logLik().value, abs=1e-6)
    assert ours.beta == pytest.approx(np.array(list(theirs.fixef().values())), abs=1e-5)
    assert ours.theta == pytest.approx(np.asarray(theirs.theta), abs=1e-5)
    assert ours.r2()["marginal"] == pytest.approx(mixedlm.r2_nakagawa(theirs).marginal, abs=1e-5)
    without = hb.fit_reml("y ~ x + (1 | g)", data, family="poisson")
    assert abs(without.beta[0] - ours.beta[0]) > 0.5  # the exposure matters


def test_gaussian_offset_matches_mixedlm_and_fitting_y_minus_it():
    data = rates()
    ours = hb.fit_reml("yl ~ x + offset(3 * t) + (1 | g)", data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = mixedlm.lmer("yl ~ x + (1 | g)", data, offset=3 * data["t"].to_numpy())
    assert ours.criterion == pytest.approx(float(theirs.REMLcrit()), abs=1e-6)
    assert ours.beta == pytest.approx(np.array(list(theirs.fixef().values())), abs=1e-6)
    shifted = hb.fit_reml("I(yl - 3 * t) ~ x + (1 | g)", data)
    assert ours.criterion == pytest.approx(shifted.criterion, abs=1e-8)


def test_bayesian_model_adds_the_offset_to_the_linear_predictor():
    """A constant offset log 2 is the intercept moved by log 2: the two models' likelihoods
    agree point for point; and the Gaussian model with an offset is not marginalised."""
    data = rates().assign(two=2.0)
    # Non-centred: a centred block's coefficients carry the intercept, so moving β alone
    # would not move the linear predictor there.
    spec = hb.build_model("y ~ x + offset(np.log(two)) + (1 | g)", data, family="poisson",
                          centred=False)
    plain = hb.build_model("y ~ x + (1 | g)", data, family="poisson", centred=False)
    point = plain.model.initial_point()
    # The likelihood terms only (the intercept's prior sits at another value once moved).
    logp_plain = plain.model.compile_logp(vars=plain.model.observed_RVs)
    logp_offset = spec.model.compile_logp(vars=spec.model.observed_RVs)
    moved = dict(point)
    beta = np.array(point["beta"], float)  # (Intercept, x): one vector when priors match
    beta[0] -= np.log(2.0)
    moved["beta"] = beta
    assert logp_offset(moved) == pytest.approx(logp_plain(point), rel=1e-10)
    # Centred: the group coefficients c_g hold the intercept, so they move with it.
    spec, plain = (hb.build_model(f, data, family="poisson", centred=True) for f in
                   ("y ~ x + offset(np.log(two)) + (1 | g)", "y ~ x + (1 | g)"))
    assert spec.centred == plain.centred == ("g",)
    point = plain.model.initial_point()
    moved = {**point, "c_g": point["c_g"] - np.log(2.0)}
    logp_plain = plain.model.compile_logp(vars=plain.model.observed_RVs)
    logp_offset = spec.model.compile_logp(vars=spec.model.observed_RVs)
    assert logp_offset(moved) == pytest.approx(logp_plain(point), rel=1e-10)
    assert logp_offset(point) != pytest.approx(logp_plain(point), rel=1e-3)
    from hierbayes.bayes.marginal.model import plan_for
    gaussian = hb.build_model("yl ~ x + offset(t) + (1 | g)", data)
    assert plan_for(gaussian, None).path == "standard"
    assert "offset" in plan_for(gaussian, None).reason


POISSON_OFFSET = "y ~ x + offset(np.log(t)) + (1 | g)"


def test_predictions_add_the_offset_of_the_rows_they_predict():
    """Twice the exposure, twice the expected count: both engines' predictions carry each row's
    own offset (the fitted rows' and new data's alike)."""
    from hierbayes.testing.fakes import fake_fit

    data = rates()
    doubled = data.assign(t=2 * data["t"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", hb.WithinBetweenWarning)
        reml = hb.fit_reml(POISSON_OFFSET, data, family="poisson")
    fitted = reml.predict(kind="mean")
    np.testing.assert_allclose(reml.predict(data, kind="mean"), fitted, rtol=1e-12)
    np.testing.assert_allclose(reml.predict(doubled, kind="mean"), 2 * fitted, rtol=1e-12)
    np.testing.assert_allclose(  # η = Xβ̂ + Zb̂ + log t: lme4's fitted values
        reml.predict(kind="link"),
        data["x"].to_numpy() * reml.beta[1] + reml.beta[0] + np.log(data["t"]).to_numpy()
        + reml.ranef().set_index("level").loc[data["g"], "estimate"].to_numpy(), rtol=1e-10)
    bayes = fake_fit(hb.build_model(POISSON_OFFSET, data, family="poisson"), draws=20)
    once = bayes.predict(data, kind="mean", summary=False)
    twice = bayes.predict(doubled, kind="mean", summary=False)
    np.testing.assert_allclose(np.asarray(twice), 2 * np.asarray(once), rtol=1e-12)


def test_no_pooling_holds_the_offset_with_the_fixed_part():
    """A constant offset log 2 moves each group's own intercept estimate down by log 2."""
    from hierbayes.compare.nopool import no_pooling

    data = rates().assign(two=2.0)
    with_offset = hb.make_design("y ~ x + offset(np.log(two)) + (1 | g)", data, "poisson")
    without = hb.make_design("y ~ x + (1 | g)", data, "poisson")
    beta = np.array([-0.4, 0.3])
    own = no_pooling(with_offset, beta, with_offset.blocks[0])[:, 0]
    plain = no_pooling(without, beta, without.blocks[0])[:, 0]
    np.testing.assert_allclose(own, plain - np.log(2.0), atol=1e-8)
