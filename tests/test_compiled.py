"""Compiled models reused (`hierbayes.bayes.compiled`, `.compiled_disk`, `.fingerprint`), the
pointwise log-likelihood on demand, and the status line (`hierbayes.bayes.progress`).

- the fingerprint of a model is blind to its data (response, predictors, the numbers of the
  data-scaled priors) and sees its structure (sizes, kinds of priors, blocks);
- (slow) the compiled callbacks nutpie calls — compiled, reused with other data, loaded from
  disk — give PyMC's own log-density and gradient (integer data of a binomial model included, and
  a gamma model's offset, which must travel with the data);
- (slow) the same seed gives the same draws, bit for bit, whether the compiled model was compiled
  for the fit, reused from memory after fits of other data, or loaded from disk — on the standard
  and on the marginal path — and the status says which happened;
- the log-likelihood is absent until asked for, then equal to a hand computation;
- the status line: one line per stage where it cannot be rewritten, no sampling ticker.
"""

import ctypes
import logging

import numpy as np
import pandas as pd
import pytest
import scipy.stats as st
from bayes_support import simulate_counts, simulate_gaussian

import hierbayes as hb
from hierbayes.bayes import compiled, graphdata
from hierbayes.bayes.builder import build_model as build_pymc_model
from hierbayes.bayes.fingerprint import fingerprint
from hierbayes.bayes.progress import Progress
from hierbayes.datasets import load

SLEEP = "Reaction ~ Days + (Days | Subject)"


def test_the_fingerprint_sees_the_structure_not_the_data():
    data = load("sleepstudy")
    base = hb.build_model(SLEEP, data)
    key = fingerprint(base.model)
    # Other data, so other numbers in the data-scaled priors: the same graph.
    assert fingerprint(hb.build_model(SLEEP, data.assign(Reaction=data.Reaction * 2)).model) == key
    assert fingerprint(build_pymc_model(base.design, base.priors, base.link)) == key
    # Other sizes, other kinds of prior, other blocks: other graphs.
    fewer = data[data["Subject"] != data["Subject"].iloc[0]]
    assert fingerprint(hb.build_model(SLEEP, fewer).model) != key
    other_prior = {"sd_Subject": hb.Prior("Exponential", lam=0.1)}
    assert fingerprint(hb.build_model(SLEEP, data, priors=other_prior).model) != key
    assert fingerprint(hb.build_model("Reaction ~ Days + (Days || Subject)", data).model) != key


def _nutpie_logp(compiled_model, x: np.ndarray):
    """(return code, log-density, gradient) from the C callback nutpie calls."""
    fn = compiled_model.compiled_logp_func.ctypes
    out, logp = np.zeros_like(x), np.zeros(())
    pointer = lambda a: a.ctypes.data_as(ctypes.POINTER(ctypes.c_double))  # noqa: E731
    code = fn(ctypes.c_uint64(compiled_model.n_dim), pointer(x), pointer(out), pointer(logp),
              ctypes.c_void_p(compiled_model.user_data.ctypes.data))
    return code, float(logp), out


def gamma_rates(seed: int = 5, groups: int = 12, per_group: int = 6):
    """Gamma responses (shape 2, log link) with an exposure entering as ``offset(np.log(t))``."""
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(groups), per_group)
    x, t = rng.normal(size=g.size), rng.uniform(0.5, 4.0, g.size)
    mu = t * np.exp(0.3 + 0.5 * x + rng.normal(0, 0.4, groups)[g])
    return pd.DataFrame({"y": rng.gamma(2.0, mu / 2.0), "x": x, "t": t,
                         "g": [f"g{k}" for k in g]})


CALLBACK_MODELS = {
    "cbpp (binomial)": ("cbind(incidence, size - incidence) ~ period + (1 | herd)",
                        lambda: load("cbpp"), "binomial"),
    "sleepstudy": (SLEEP, lambda: load("sleepstudy"), "gaussian"),
    "gamma with an offset": ("y ~ x + offset(np.log(t)) + (1 | g)", gamma_rates, "gamma"),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(CALLBACK_MODELS))
def test_compiled_callbacks_give_pymc_log_density(name, tmp_path, monkeypatch):
    monkeypatch.setenv("HIERBAYES_CACHE", str(tmp_path))
    formula, make_data, family = CALLBACK_MODELS[name]
    data = make_data()
    first, other = (hb.build_model(formula, d, family=family) for d in (data, data.iloc[::-1]))
    # Rows reversed: other data, same structure; its own model is the reference.
    reference = other.model
    logp, dlogp = reference.compile_logp(), reference.compile_dlogp()
    names = [v.name for v in reference.value_vars]
    rng = np.random.default_rng(2)
    labels = {d: list(v) for d, v in reference.coords.items() if v is not None}
    for source in ("compiled", "memory", "disk"):
        if source == "disk":
            compiled.clear()
        elif source == "compiled":
            compiled.clear()
            for f in tmp_path.iterdir():
                f.unlink()
        model = first.model if source == "compiled" else other.model  # compiled from `first`
        key = compiled.cache_key(model, "nutpie")
        build = lambda: build_pymc_model(  # noqa: E731
            first.design, first.priors, first.link, first.centred)
        with compiled.nutpie_model(key, build, graphdata.data_values(other.model), labels,
                                   Progress(False)) as (nutpie_model, info):
            assert info["source"] == source
            for _ in range(3):
                x = rng.normal(0, 0.5, nutpie_model.n_dim)
                point, at = {}, 0
                for var in reference.value_vars:
                    size = int(np.prod(reference.initial_point()[var.name].shape))
                    point[var.name] = x[at:at + size].reshape(
                        reference.initial_point()[var.name].shape)
                    at += size
                code, value, gradient = _nutpie_logp(nutpie_model, x)
                assert code == 0 and value == pytest.approx(logp(point), rel=1e-10)
                np.testing.assert_allclose(gradient, dlogp(point), rtol=1e-8, atol=1e-8)
    assert names == [v.name for v in first.model.value_vars]


def _draws(fit) -> dict:
    return {name: fit.posterior[name].values for name in ("beta", "sd_g", "sigma", "r_g")}


@pytest.mark.slow
@pytest.mark.parametrize("marginalize", [False, True])
def test_reused_compiled_models_give_the_same_draws_bit_for_bit(marginalize, tmp_path,
                                                                monkeypatch, caplog):
    monkeypatch.setenv("HIERBAYES_CACHE", str(tmp_path / "first"))
    data = simulate_gaussian()
    spec = hb.build_model("y ~ x + (1 | g)", data)
    other = hb.build_model("y ~ x + (1 | g)", data.assign(y=data["y"] * 3 + 1))
    settings = {"draws": 60, "tune": 60, "chains": 2, "random_seed": 11, "warn": False,
                "progressbar": False, "marginalize": marginalize}
    compiled.clear()
    with caplog.at_level(logging.INFO, logger="hierbayes"):
        first = hb.sample(spec, **settings)
        hb.sample(other, **settings)  # other data through the same compiled model
        again = hb.sample(spec, **settings)
        compiled.clear()
        loaded = hb.sample(spec, **settings)  # from disk
    monkeypatch.setenv("HIERBAYES_CACHE", str(tmp_path / "second"))
    compiled.clear()
    fresh = hb.sample(spec, **settings)  # compiled anew
    sources = [first, again, loaded, fresh]
    assert [f.timings["compiled"] for f in sources] == ["compiled", "memory", "disk", "compiled"]
    assert [f.timings["compile_s"] == 0 for f in sources] == [False, True, False, False]
    for fit in sources[1:]:
        for name, values in _draws(first).items():
            np.testing.assert_array_equal(_draws(fit)[name], values, err_msg=name)
    messages = [r.getMessage() for r in caplog.records]
    assert sum(m.startswith("compiled the model in") for m in messages) == 1
    assert sum(m.startswith("reusing the compiled model") for m in messages) == 2
    assert sum(m.startswith("loaded the compiled model from disk") for m in messages) == 1


def _flat_support_point(model) -> np.ndarray:
    point = model.initial_point()  # PyMC's support points in the sampler's space, no jitter
    return np.concatenate([np.ravel(point[v.name]) for v in model.value_vars])


def test_initial_points_are_pymc_support_points_kept_per_data_set():
    """The support points the chains start from equal PyMC's; they are read back from the
    layout for data seen before (nothing compiled) and computed for new prior numbers; the
    jitter is U(-1, 1), fixed by the seed."""
    from hierbayes.bayes.initial_points import InitialPoints, support_point_inputs

    data = load("sleepstudy")
    spec, scaled = (hb.build_model(SLEEP, d) for d in (data, data.assign(Reaction=data.Reaction
                                                                          * 1000)))
    inputs = support_point_inputs(spec.model)
    assert inputs and all(name.startswith("hierbayes.prior.") for name in inputs)
    expected = _flat_support_point(spec.model)
    layout, saved = {"n_dim": expected.size, "initial_inputs": inputs}, []
    points = InitialPoints(spec.model, layout, saved.append)
    np.testing.assert_array_equal(points.support_point(), expected)
    assert len(saved) == 1 and len(layout["initial_points"]) == 1
    again = InitialPoints(spec.model, json_round_trip(layout), saved.append)
    np.testing.assert_array_equal(again.support_point(), expected)  # read, bit for bit
    assert again._function is None and len(saved) == 1
    # Another data set of the same structure: other prior scales, other support points.
    for name, var in graphdata.data_variables(spec.model).items():
        var.set_value(graphdata.data_variables(scaled.model)[name].get_value())
    moved = again.support_point()
    np.testing.assert_array_equal(moved, _flat_support_point(scaled.model))
    assert not np.allclose(moved, expected) and len(again._layout["initial_points"]) == 2
    jittered = again(7)
    assert 0 < np.max(np.abs(jittered - moved)) < 1
    np.testing.assert_array_equal(again(7), jittered)
    assert not np.array_equal(again(8), jittered)


def test_a_support_point_reading_a_users_variable_is_never_kept():
    import pymc as pm
    import pytensor

    from hierbayes.bayes.initial_points import InitialPoints, support_point_inputs

    spec = hb.build_model("y ~ x + (1 | g)", simulate_gaussian())
    scale = pytensor.shared(2.0, name="user_scale")
    with spec.model:
        pm.Normal("extra", mu=scale, sigma=1.0)
    assert support_point_inputs(spec.model) is None
    layout = {"n_dim": _flat_support_point(spec.model).size, "initial_inputs": None}
    points = InitialPoints(spec.model, layout, lambda _: pytest.fail("saved"))
    first = points.support_point()
    scale.set_value(5.0)
    assert points.support_point()[-1] == first[-1] + 3.0
    assert "initial_points" not in layout


def json_round_trip(layout: dict) -> dict:
    import json

    return json.loads(json.dumps(layout))


def test_the_pointwise_log_likelihood_is_computed_on_demand(mocked_sample):
    data = simulate_counts("poisson")
    settings = {"family": "poisson", "draws": 20, "chains": 2, "warn": False, "random_seed": 3}
    fit = hb.fit_bayes("y ~ x + (1 | g)", data, **settings)
    assert "log_likelihood" not in fit.idata.children
    values = fit.log_likelihood()
    assert "log_likelihood" in fit.idata.children and values.dims == ("chain", "draw", "obs")
    expected = st.poisson(fit.predict(kind="mean").values).logpmf(data["y"].to_numpy())
    np.testing.assert_allclose(values.values, expected, rtol=1e-10)
    stored = hb.fit_bayes("y ~ x + (1 | g)", data, log_likelihood=True, **settings)
    assert "log_likelihood" in stored.idata.children
    np.testing.assert_array_equal(stored.log_likelihood().values, values.values)
    lazy = hb.fit_bayes("y ~ x + (1 | g)", data, **settings)
    lazy.loo()  # prior draws stand in for a posterior: only that LOO finds its input
    np.testing.assert_array_equal(lazy.idata["log_likelihood"]["y"].values, values.values)


def test_a_gaussian_log_likelihood_adds_the_offset(mocked_sample):
    data = simulate_gaussian().assign(t=lambda d: np.linspace(-3.0, 3.0, len(d)))
    fit = hb.fit_bayes("y ~ x + offset(t) + (1 | g)", data, draws=10, chains=2, warn=False,
                       random_seed=4)
    post = fit.posterior
    beta = post["beta"].transpose("chain", "draw", "fixed").values  # (c, d, 2)
    r = post["r_g"].sel(g__term="Intercept").transpose("chain", "draw", "g").values
    level = data["g"].map({name: i for i, name in enumerate(post["g"].values)}).to_numpy()
    mean = beta[..., :1] + beta[..., 1:] * data["x"].to_numpy() + data["t"].to_numpy() \
        + r[..., level]
    expected = st.norm(mean, post["sigma"].values[..., None]).logpdf(data["y"].to_numpy())
    np.testing.assert_allclose(fit.log_likelihood().values, expected, rtol=1e-10)
    # Without the offset the same draws fit other means: the check can fail.
    assert not np.allclose(expected, st.norm(mean - data["t"].to_numpy(), post["sigma"].values[
        ..., None]).logpdf(data["y"].to_numpy()))


def test_the_status_is_one_line_per_stage_off_a_terminal(capsys):
    progress = Progress(show=True)
    progress.stage("compiling the model…")
    progress.sampling([_Chain(400, 2000, 1, True)] * 4)  # a ticker: a log file gets none
    progress.stage("sampled 4 chains × 1,000 draws in 1.0 s", final=True)
    lines = capsys.readouterr().err.splitlines()
    assert lines == ["compiling the model…", "sampled 4 chains × 1,000 draws in 1.0 s"]
    Progress(show=False).stage("compiling the model…")
    assert capsys.readouterr().err == ""


class _Chain:
    """What nutpie's progress callback passes per chain."""

    def __init__(self, done, total, divergences, tuning):
        self.finished_draws, self.total_draws = done, total
        self.divergences, self.tuning, self.runtime_ms = divergences, tuning, 1200
