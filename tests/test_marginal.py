"""Gaussian models with the group effects integrated out (`hierbayes.bayes.marginal`, issue 8).

- the marginal log-density equals scipy's multivariate normal of y ~ N(Xβ, σ²I + ZΣZᵀ), for one
  grouping factor (correlated and ``||`` blocks) and for nested and crossed factors, on the dense
  and the Schur layouts; the Schur layout's analytic gradient equals finite differences;
- the group effects drawn after sampling follow their exact Gaussian conditional;
- which path a fit takes, and the plumbing (names, dims, tables, save/load, predictive draws);
- (slow) both paths give the same posterior on radon, sleepstudy and simulated correlated slopes,
  and a small simulation-based calibration of the marginal path (the full one, both paths, is
  benchmarks/sbc_marginal.py).
"""


import arviz_stats as azs
import numpy as np
import pandas as pd
import pymc as pm
import pytensor.tensor as pt
import pytest
import scipy.linalg as sla
import scipy.stats as st
import xarray as xr
from bayes_support import nuts_fit, shared_fit
from conftest import SLEEP

import hierbayes as hb
from hierbayes.bayes import centring
from hierbayes.bayes.diagnostics import reported_quantities
from hierbayes.bayes.marginal import model as mg
from hierbayes.bayes.marginal.draws import draw_group_effects
from hierbayes.datasets import load
from hierbayes.testing.dense import dense_Z, per_level
from hierbayes.testing.fakes import fake_posterior

RADON = "log_radon ~ floor + (1 | county)"
SIM = "y ~ x + (x | g)"
CROSSED_SLOPES = "y ~ x + (x | a) + (1 + x || b)"
DESIGNS = {
    "sleep": (SLEEP, "sleepstudy", "grouped"),
    "radon ||": ("log_radon ~ floor + (1 + floor || county)", "radon", "grouped"),
    # k = 3 on one factor: a correlated pair beside an independent term; and no fixed effects.
    "three terms": ("y ~ x + (1 + x | g) + (0 + z | g)", "three", "grouped"),
    "no fixed effects": ("y ~ 0 + (1 + x | g)", "three", "grouped"),
    "Pastes nested": ("strength ~ 1 + (1 | batch/cask)", "Pastes", "dense"),
    "Penicillin crossed": ("diameter ~ 1 + (1 | plate) + (1 | sample)", "Penicillin", "dense"),
    # The Schur layout, forced on small designs (it takes over beyond MAX_DENSE effects).
    "Pastes nested, Schur": ("strength ~ 1 + (1 | batch/cask)", "Pastes", "schur"),
    "Penicillin crossed, Schur": ("diameter ~ 1 + (1 | plate) + (1 | sample)", "Penicillin",
                                  "schur"),
    "crossed slopes, Schur": (CROSSED_SLOPES, "crossed", "schur"),
}


def simulate_correlated(seed: int = 2027, groups: int = 20, per_group: int = 12) -> pd.DataFrame:
    """``y ~ x + (x | g)`` with SDs 1 and 0.5 and correlation 0.5 between intercept and slope."""
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(groups), per_group)
    x = rng.normal(size=g.size)
    cov = np.array([[1.0, 0.25], [0.25, 0.25]])
    b = rng.multivariate_normal([0.0, 0.0], cov, groups)
    y = 2.0 + 0.7 * x + b[g, 0] + b[g, 1] * x + rng.normal(0.0, 0.8, g.size)
    return pd.DataFrame({"y": y, "x": x, "g": [f"g{k:02d}" for k in g]})


def simulate_crossed(seed: int = 5, n: int = 240, a: int = 12, b: int = 7) -> pd.DataFrame:
    """Crossed factors ``a`` and ``b`` with unbalanced cells, a slope ``x`` varying over both."""
    rng = np.random.default_rng(seed)
    ia, ib = rng.integers(0, a, n), rng.integers(0, b, n)
    x = rng.normal(size=n)
    y = (1.0 + 0.5 * x + rng.normal(0, 0.8, a)[ia] + rng.normal(0, 0.4, a)[ia] * x
         + rng.normal(0, 0.5, b)[ib] + rng.normal(0, 0.3, b)[ib] * x + rng.normal(0, 0.7, n))
    return pd.DataFrame({"y": y, "x": x, "a": [f"a{k:02d}" for k in ia],
                         "b": [f"b{k}" for k in ib]})


def simulate_three(seed: int = 8, groups: int = 15, per_group: int = 9) -> pd.DataFrame:
    """Three effects per level of ``g``: intercept and ``x`` correlated, ``z`` on its own."""
    rng = np.random.default_rng(seed)
    g = np.repeat(np.arange(groups), per_group)
    x, z = rng.normal(size=g.size), rng.normal(size=g.size)
    b = rng.multivariate_normal([0.0, 0.0], [[1.0, -0.3], [-0.3, 0.5]], groups)
    y = (1.0 + 0.4 * x + b[g, 0] + b[g, 1] * x + rng.normal(0, 0.6, groups)[g] * z
         + rng.normal(0, 0.7, g.size))
    return pd.DataFrame({"y": y, "x": x, "z": z, "g": [f"g{k:02d}" for k in g]})


def _spec(name: str, monkeypatch=None):
    formula, data, path = DESIGNS[name]
    if path == "schur" and monkeypatch is not None:
        monkeypatch.setattr(mg, "MAX_DENSE", 0)
    simulated = {"crossed": simulate_crossed, "three": simulate_three}
    frame = simulated[data]() if data in simulated else load(data)
    return hb.build_model(formula, frame)


def _dense_cov(design, sd: dict, corr: dict) -> np.ndarray:
    """Prior covariance of all group effects in the dense layout (block, level, term)."""
    return per_level(design, {b.name: np.outer(sd[b.name], sd[b.name])
                              * corr.get(b.name, np.eye(b.n_terms)) for b in design.blocks})


# --- the marginal log-density ---------------------------------------------------------------


@pytest.mark.parametrize("name", list(DESIGNS))
def test_marginal_log_density_equals_the_dense_normal(name, monkeypatch):
    spec = _spec(name, monkeypatch)
    plan = mg.plan_for(spec, None)
    assert plan.path == DESIGNS[name][2]
    design = spec.design
    model = mg.build_marginal_model(design, spec.priors, plan)
    sd_vars = [model[f"sd_{b.name}"] for b in design.blocks]
    corr_vars = [model[f"corr_{b.name}"] for b in design.blocks if f"corr_{b.name}" in model]
    beta_var = model["beta"] if design.fixed_names else pt.zeros(0)  # "no fixed effects"
    outs = [beta_var, model["sigma"], model.potentials[0], *sd_vars, *corr_vars]
    fn = model.compile_fn(model.replace_rvs_by_values(outs), mode="FAST_COMPILE")
    Z = dense_Z(design)
    rng = np.random.default_rng(3)
    for _ in range(3):  # random points around the initial point, in the sampler's space
        point = {k: v + rng.normal(0, 0.5, np.shape(v)) for k, v in model.initial_point().items()}
        beta, sigma, logp, *rest = fn(point)
        sd = {b.name: v for b, v in zip(design.blocks, rest, strict=False)}
        corr_blocks = [b for b in design.blocks if f"corr_{b.name}" in model]
        corr = {b.name: v for b, v in zip(corr_blocks, rest[len(sd_vars) :], strict=True)}
        V = sigma**2 * np.eye(design.n_obs) + Z @ _dense_cov(design, sd, corr) @ Z.T
        expected = st.multivariate_normal(design.X @ beta, V).logpdf(design.y)
        assert abs(float(logp) - expected) < (1e-10 if plan.path == "schur" else 1e-8)


@pytest.mark.parametrize("name", [n for n, d in DESIGNS.items() if d[2] in ("schur", "grouped")])
def test_analytic_gradient_equals_finite_differences(name, monkeypatch):
    """The analytic gradients of the grouped and Schur layouts, through PyMC's transforms (the
    sampler's space: log SDs, the correlations' Cholesky factors), against central differences
    of the log-density."""
    spec = _spec(name, monkeypatch)
    plan = mg.plan_for(spec, None)
    model = mg.build_marginal_model(spec.design, spec.priors, plan)
    # FAST_COMPILE: the Op's own perform (the numba kernels, compiled once and cached on disk);
    # PyTensor's default numba mode would compile the whole graph again per function (~90 s cold).
    logp = model.compile_logp(jacobian=True, mode="FAST_COMPILE")
    dlogp = model.compile_dlogp(jacobian=True, mode="FAST_COMPILE")
    rng = np.random.default_rng(11)
    for _ in range(3):
        point = {k: v + rng.normal(0, 0.4, np.shape(v)) for k, v in model.initial_point().items()}
        flat = {k: np.atleast_1d(v).astype(float) for k, v in point.items()}
        analytic = dlogp(point)
        numeric, h = [], 1e-5
        for name_, value in flat.items():
            for i in range(value.size):
                up, down = dict(point), dict(point)
                step = np.zeros(value.size)
                step[i] = h
                up[name_] = (value + step).reshape(np.shape(point[name_]))
                down[name_] = (value - step).reshape(np.shape(point[name_]))
                numeric.append((logp(up) - logp(down)) / (2 * h))
        scale = np.maximum(1.0, np.abs(numeric))
        assert np.max(np.abs(analytic - np.array(numeric)) / scale) < 1e-6


@pytest.mark.parametrize("name", ["Penicillin crossed, Schur", "crossed slopes, Schur"])
def test_schur_single_precision_inverse_changes_only_the_gradient(name, monkeypatch):
    """S⁻¹ in single precision (large complements): the log-density is bit for bit the double
    one, the gradient within float32's reach of it; the switch follows size and conditioning."""
    from hierbayes.bayes.marginal import schur_gradient as sg

    spec = _spec(name, monkeypatch)
    stats = mg.plan_for(spec, None).stats
    n, q, ete, *rest = (stats[k] for k in sg.DATA)
    data, design = rest[:4], tuple(rest[4:])
    rng = np.random.default_rng(5)
    K = stats["K"]
    for _ in range(3):
        T = np.zeros((len(K), int(K.max()), int(K.max())))
        for f, k in enumerate(K):
            T[f, :k, :k] = np.tril(rng.normal(0, 0.3, (k, k))) + np.diag(rng.uniform(0.3, 1.5, k))
        delta, var = rng.normal(0, 0.1, len(stats["beta_hat"])), rng.uniform(0.3, 2.0)
        double, single = (sg.value_and_gradient_in(delta, var, T, float(n), float(q), float(ete),
                                                   *data, design, s) for s in (0, 1))
        assert single[0] == double[0]
        grad = lambda out: np.concatenate([out[1], [out[2]], out[3].ravel()])  # noqa: E731
        error = np.abs(grad(single) - grad(double)) / np.maximum(1.0, np.abs(grad(double)))
        assert 0 < error.max() < 1e-5  # > 0: the single-precision inverse did run
    well = np.eye(sg.SINGLE_MIN) * 3.0 + 0.001
    assert sg.single_precision(well, 1.0)
    assert not sg.single_precision(well[:-1, :-1], 1.0)  # too small to pay
    assert not sg.single_precision(well, 1e-3)  # ‖S‖∞ / σ² = 3.4e3 > SINGLE_MAX_COND


# --- the group effects drawn after sampling -------------------------------------------------


def _fixed_posterior(design, beta, sd: dict, corr: dict, sigma: float, draws: int):
    """A one-chain 'posterior' repeating one parameter value `draws` times."""
    rep = lambda v: np.broadcast_to(np.asarray(v, float), (1, draws, *np.shape(v)))  # noqa: E731
    data = {"beta": (("chain", "draw", "fixed"), rep(beta))}
    data["sigma"] = (("chain", "draw"), rep(sigma))
    for b in design.blocks:
        data[f"sd_{b.name}"] = (("chain", "draw", b.term_dim), rep(sd[b.name]))
        if b.name in corr:
            dims = ("chain", "draw", b.term_dim, f"{b.name}__term2")
            data[f"corr_{b.name}"] = (dims, rep(corr[b.name]))
    return xr.Dataset(data, coords={"fixed": list(design.fixed_names)})


@pytest.mark.parametrize("name", ["sleep", "Penicillin crossed", "Penicillin crossed, Schur",
                                  "crossed slopes, Schur"])
def test_group_effects_follow_their_exact_conditional(name, monkeypatch):
    spec = _spec(name, monkeypatch)
    design, plan = spec.design, mg.plan_for(spec, True)
    assert plan.path == DESIGNS[name][2]
    beta = np.linalg.lstsq(design.X, design.y, rcond=None)[0] * 1.02
    sd = {b.name: np.linspace(1.0, 0.4, b.n_terms) * np.std(design.y) for b in design.blocks}
    corr = {b.name: np.array([[1.0, 0.3], [0.3, 1.0]]) for b in design.blocks if b.n_terms == 2}
    sigma, draws = 0.7 * float(np.std(design.y)), 4000
    posterior = _fixed_posterior(design, beta, sd, corr, sigma, draws)
    effects = draw_group_effects(plan, design, posterior, np.random.default_rng(1))
    r = np.concatenate(
        [effects[f"r_{b.name}"][0].reshape(1, draws, -1) for b in design.blocks], axis=-1
    )[0]  # (draws, q) in the dense layout
    # Exact conditional: precision ZᵀZ/σ² + Σ⁻¹, mean = cov Zᵀ(y - Xβ)/σ².
    Z = dense_Z(design)
    cov = np.linalg.inv(Z.T @ Z / sigma**2 + np.linalg.inv(_dense_cov(design, sd, corr)))
    mean = cov @ Z.T @ (design.y - design.X @ beta) / sigma**2
    white = sla.solve_triangular(np.linalg.cholesky(cov), (r - mean).T, lower=True).T
    assert np.abs(white.mean(axis=0)).max() < 4.5 / np.sqrt(draws)  # N(0, I) after whitening
    sample_cov = np.cov(white, rowvar=False)
    assert np.abs(np.diag(sample_cov) - 1).max() < 5 * np.sqrt(2 / draws)
    assert np.abs(sample_cov - np.diag(np.diag(sample_cov))).max() < 5.5 / np.sqrt(draws)
    z = effects[f"z_{design.blocks[0].name}"][0][0]  # (draws, levels, k): r = T z per level
    assert z.shape == (draws, design.blocks[0].n_levels, design.blocks[0].n_terms)


# --- which path, and the plumbing of a marginal fit -----------------------------------------


def test_the_path_is_chosen_and_explained():
    assert mg.plan_for(_spec("sleep"), None).path == "grouped"
    assert mg.plan_for(_spec("sleep"), False).path == "standard"
    cbpp = hb.build_model(
        "cbind(incidence, size - incidence) ~ period + (1 | herd)", load("cbpp"), family="binomial"
    )
    assert "gaussian" in mg.plan_for(cbpp, None).reason
    with pytest.raises(hb.HierbayesError, match=r"marginalize=True is not possible.*gaussian"):
        mg.plan_for(cbpp, True)
    with pytest.raises(hb.HierbayesError, match="None, True or False"):
        mg.plan_for(cbpp, "yes")
    plain = hb.build_model("y ~ x", simulate_correlated())
    assert "no group effects" in mg.plan_for(plain, None).reason
    spec = _spec("sleep")
    with spec.model:
        pm.Deterministic("ratio", spec.model["sigma"] * 2)
    assert "extended" in mg.plan_for(spec, None).reason


def test_many_crossed_effects_take_the_schur_layout_up_to_its_limit():
    rng = np.random.default_rng(0)
    data = pd.DataFrame({"a": rng.integers(0, 200, 2000), "b": rng.integers(0, 150, 2000)})
    data = data.astype(str).assign(y=rng.normal(size=2000))
    plan = mg.plan_for(hb.build_model("y ~ 1 + (1 | a) + (1 | b)", data), None)
    assert plan.path == "schur" and plan.n_effects == 350
    assert "a eliminated level by level, the other 150 factored densely" in plan.reason
    assert [seg.block.group for seg in plan.segments] == ["a", "b"]  # the largest first
    # Beyond MAX_REST effects outside the largest factor: the standard model, and why.
    many = pd.DataFrame({"a": np.arange(8000) % 4000, "b": np.arange(8000) % 3001})
    many = many.astype(str).assign(y=rng.normal(size=8000))
    spec = hb.build_model("y ~ 1 + (1 | a) + (1 | b)", many)
    assert mg.plan_for(spec, None).path == "standard"
    with pytest.raises(hb.HierbayesError, match=r"3001 of them outside the largest factor \(a\)"):
        mg.plan_for(spec, True)


def test_a_marginal_fit_has_the_variables_and_dims_of_the_standard_path(mocked_sample, tmp_path):
    data = load("sleepstudy")
    fit = hb.fit_bayes(SLEEP, data, draws=40, chains=2, random_seed=5, warn=False)
    (call,) = mocked_sample
    free = [v.name for v in call["model"].free_RVs]
    assert free == ["beta", "sd_Subject", "chol_Subject", "sigma"]
    assert fit.settings["marginalize"] is True and fit.settings["marginal_path"] == "grouped"
    assert fit.sampling_path.startswith("marginal (grouped")
    assert fit.arviz_summary().attrs["sampling"] == fit.sampling_path
    standard = fake_posterior(hb.build_model(SLEEP, data))["posterior"].to_dataset()
    posterior = fit.posterior
    for name in ("beta", "sd_Subject", "corr_Subject", "z_Subject", "r_Subject", "sigma"):
        assert posterior[name].dims == standard[name].dims, name
        for dim in posterior[name].dims[2:]:
            assert list(posterior[dim].values) == list(standard[dim].values)
    # r = T z per level, T = diag(sd) chol(corr).
    s = (0, 7)
    L = np.diag(posterior["sd_Subject"][s].values) @ np.linalg.cholesky(
        posterior["corr_Subject"][s].values
    )
    np.testing.assert_allclose(
        posterior["r_Subject"][s].values, posterior["z_Subject"][s].values @ L.T
    )
    assert len(fit.ranef()) == 36 and fit.predict(summary=True)["estimate"].notna().all()
    assert list(fit.idata["observed_data"]["y"].values) == list(data["Reaction"])
    _check_conditional_log_likelihood(fit)
    fit.save(tmp_path / "fit.nc")
    loaded = hb.load(tmp_path / "fit.nc")
    assert loaded.settings == fit.settings and loaded.sampling_path == fit.sampling_path
    pd.testing.assert_frame_equal(loaded.ranef(), fit.ranef())


def _check_conditional_log_likelihood(fit):
    """Pointwise log-lik = log N(y | the draw's mean, σ) with the drawn group effects."""
    mean = fit.predict(kind="mean").values  # (C, D, n), the drawn group effects included
    sigma = fit.posterior["sigma"].values[..., None]
    expected = st.norm(mean, sigma).logpdf(fit.design.y)
    np.testing.assert_allclose(fit.log_likelihood().values, expected, rtol=1e-10, atol=1e-9)
    assert fit.log_likelihood().dims == ("chain", "draw", "obs")


def test_posterior_predictive_reads_the_drawn_group_effects(mocked_sample):
    fit = hb.fit_bayes(SLEEP, load("sleepstudy"), draws=40, chains=2, random_seed=5, warn=False)
    replicated = fit.sample_posterior_predictive(random_seed=1)["posterior_predictive"]["y"]
    # Residuals of the replicas around each draw's mean are N(0, σ) only if the standard model
    # used the z drawn into the posterior (not fresh ones from the prior).
    sigma = fit.posterior["sigma"].values[..., None]
    scaled = (replicated.values - fit.predict(kind="mean").values) / sigma
    assert abs(scaled.std() - 1) < 0.05


# --- real NUTS: both paths agree; the marginal path is calibrated ---------------------------

AGREE = {
    "radon": (RADON, lambda: load("radon")),
    "sleep": (SLEEP, lambda: load("sleepstudy")),
    "sim": (SIM, simulate_correlated),
    # The Schur layout forced; 12 levels of b, not 7: the SD of a 7-level factor has a tail the
    # standard path explores too slowly for its SDs to agree within 10 %.
    "crossed, Schur": (CROSSED_SLOPES, lambda: simulate_crossed(n=480, a=16, b=12)),
}


def _nuts_fit(formula, data, marginalize, longer: bool = False):
    # The standard path at its best: blocks centred where their levels' data dominate.
    centred = centring.choose(hb.build_model(formula, data).design, "identity")
    more = {"draws": 4000, "tune": 2000} if longer and not marginalize else {}
    return nuts_fit(formula, data, marginalize=marginalize, centred=centred, **more)


def _moments(fit) -> pd.DataFrame:
    """Mean, SD and MCSE of the mean of every reported quantity, group effects included."""
    quantities = reported_quantities(fit.design, fit.posterior)
    ds = xr.Dataset({k: (("chain", "draw"), v) for k, v in quantities.items()})
    mcse = azs.mcse(ds, method="mean")
    return pd.DataFrame(
        {
            "mean": [float(ds[k].mean()) for k in quantities],
            "sd": [float(ds[k].std()) for k in quantities],
            "mcse": [float(mcse[k]) for k in quantities],
        },
        index=list(quantities),
    )


def posterior_agreement(marginal, standard) -> pd.DataFrame:
    """Per quantity: difference of the means in MCSEs of the difference, ratio of the SDs."""
    a, b = _moments(marginal), _moments(standard)
    return pd.DataFrame(
        {
            "z": (a["mean"] - b["mean"]) / np.sqrt(a["mcse"] ** 2 + b["mcse"] ** 2),
            "sd_ratio": a["sd"] / b["sd"],
        }
    )


@pytest.mark.slow
@pytest.mark.parametrize("name", list(AGREE))
def test_both_paths_give_the_same_posterior(name, tmp_path_factory, monkeypatch):
    formula, make_data = AGREE[name]
    if "Schur" in name:
        monkeypatch.setattr(mg, "MAX_DENSE", 0)
    # Crossed factors: the standard path's group effects drift slowly along the shift between
    # the factors that only their priors pin down; it gets four times the draws.
    fits = {
        m: shared_fit(
            f"marginal-{name}-{m}",
            lambda m=m: _nuts_fit(formula, make_data(), m, longer="crossed" in name),
            tmp_path_factory,
        )
        for m in (True, False)
    }
    expected = "schur" if "Schur" in name else "grouped"
    assert fits[True].settings["marginal_path"] == expected
    assert fits[False].settings["marginal_path"] == "standard"
    _check_diagnostics(fits[True], fits[False])
    table = posterior_agreement(fits[True], fits[False])
    z = table["z"].abs()
    hyper = [label for label in table.index if not label.startswith("r_")]
    assert z[hyper].max() <= 3.0, z[hyper]
    # 40-90 group effects: under exact agreement one beyond 3 MCSEs is no surprise (p = 0.0027
    # each), a wrong conditional would move most of them, and far.
    assert (z > 3.0).sum() <= 1 and z.max() <= 4.0, z.sort_values().tail()
    assert (table["sd_ratio"] - 1).abs().max() <= 0.10, table["sd_ratio"].sort_values()
    assert np.isfinite(fits[True].loo().elpd)


def _check_diagnostics(marginal, standard):
    """What the agreement relies on, asserted by name.

    Both paths: no divergence (a biased path would move its means) and a bulk ESS of at least
    100 per chain for every quantity (the MCSEs in `z` are then well estimated). The marginal
    path passes every check, R-hat ≤ 1.01 included: clean sampling is what it promises. The
    standard path is the reference and only needs chains that agree: its non-centred intercept
    mixes slowly (bulk ESS ~500 of 4000 draws on "sim"), so its largest R-hat over 50-90
    quantities lands near 1.01 (1.009 here, 1.010 on another machine) by chance alone; slow
    mixing is already in its MCSEs, so it is held to R-hat ≤ 1.02.
    """
    tables = {p: f.diagnostics().set_index("check") for p, f in
              (("marginal", marginal), ("standard", standard))}
    for path, table in tables.items():
        assert table.loc["divergences", "value"] == 0, (path, table.attrs["messages"])
        assert table.loc["min bulk ESS", "ok"], (path, table.attrs["messages"])
    assert tables["marginal"]["ok"].all(), tables["marginal"].attrs["messages"]
    assert tables["standard"].loc["max R-hat", "value"] <= 1.02, tables["standard"]


SBC_PRIORS = {
    "Intercept": hb.Prior("Normal", mu=0.0, sigma=1.0),
    "x": hb.Prior("Normal", mu=0.0, sigma=1.0),
    "sd_g": hb.Prior("HalfNormal", sigma=1.0),
    "corr_g": hb.Prior("LKJ", eta=2.0),
    "sigma": hb.Prior("Exponential", lam=1.0),
}


@pytest.mark.slow
def test_marginal_path_is_calibrated_on_simulated_data():
    """20 data sets from the prior of ``y ~ x + (x | g)``: ranks of the true values uniform."""
    from hierbayes.testing import sbc

    template = simulate_correlated(groups=10, per_group=8)
    spec = hb.build_model(SIM, template, priors=SBC_PRIORS)
    truth, ys = sbc.simulate(spec, 20, seed=8)
    keep = [c for c in truth.columns if not c.startswith("r_")] + list(truth.columns[-4:])
    ranks = sbc.marginal_ranks(spec, truth[keep], ys, draws=500, chains=2, thin=10)
    assert ranks.to_numpy().min() >= 0 and ranks.to_numpy().max() <= 100
    table = sbc.uniformity(ranks, n_ranks=101, bins=4)
    assert table["p_value"].min() > 0.001, table
    pooled = sbc.uniformity(ranks.stack().to_frame("all"), n_ranks=101, bins=10)
    assert pooled["p_value"].iloc[0] > 0.001, pooled


@pytest.mark.slow
def test_schur_path_is_calibrated_on_simulated_data(monkeypatch):
    """20 data sets from the prior of crossed intercepts and slopes, sampled on the Schur layout
    (compiled once, reused for every data set): ranks of the true values uniform."""
    from hierbayes.testing import sbc

    monkeypatch.setattr(mg, "MAX_DENSE", 0)
    template = simulate_crossed(n=120, a=8, b=5)
    priors = {"Intercept": hb.Prior("Normal", mu=0.0, sigma=1.0),
              "x": hb.Prior("Normal", mu=0.0, sigma=1.0),
              "sd_a": hb.Prior("HalfNormal", sigma=1.0), "corr_a": hb.Prior("LKJ", eta=2.0),
              "sd_b": hb.Prior("HalfNormal", sigma=1.0),
              "sd_b.1": hb.Prior("HalfNormal", sigma=1.0),
              "sigma": hb.Prior("Exponential", lam=1.0)}
    spec = hb.build_model(CROSSED_SLOPES, template, priors=priors)
    assert mg.plan_for(spec, None).path == "schur"
    truth, ys = sbc.simulate(spec, 20, seed=3)
    keep = [c for c in truth.columns if not c.startswith("r_")]
    keep += ["r_a[a00, x]", "r_b[b0, Intercept]", "r_b.1[b0, x]"]
    ranks = sbc.marginal_ranks(spec, truth[keep], ys, draws=500, chains=2, thin=10)
    table = sbc.uniformity(ranks, n_ranks=101, bins=4)
    assert table["p_value"].min() > 0.001, table
    pooled = sbc.uniformity(ranks.stack().to_frame("all"), n_ranks=101, bins=10)
    assert pooled["p_value"].iloc[0] > 0.001, pooled
