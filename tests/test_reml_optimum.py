"""The REML/ML/Laplace optimiser lands on lme4's optimum where a correlated block's SD reaches 0.

At a diagonal of Λθ at 0 the Cholesky parameterisation hides descent directions (a tilt of the
block's covariance towards its null direction, or that direction alone: hierbayes.reml.boundary),
and L-BFGS-B stopped there "converged". Before boundary.py the simulations below missed
mixedlm's optimum on 6 of 80 (x | g) fits (up to 0.19 units of criterion), 2 of 80 correlated
ones, 4 of 20 Poisson and 3 of 20 binomial ones (up to 1.9), sleepstudy with Days × 1e3 or × 1e5
fitted without rescaling stopped 9.7 (REML) and 8.9 (ML, × 1e5) too high, and the Poisson fit
below raised numpy's LinAlgError.

References: mixedlm's lmer and glmer (lme4's algorithms ported to Python/Rust, derivative-free
from θ = (1, 0, 1)), whose criteria are stored in MIXEDLM below (`python
tests/test_reml_optimum.py` prints them again; `test_stored_references_are_mixedlm_s` refits a
few live), and lme4's sleepstudy fit (tests/reference). Each fit must reach a criterion no higher
than mixedlm's + 1e-6 (mixedlm itself stops higher on some seeds: those are not asserted equal).
"""

import warnings

import mixedlm  # the test extra installs it: a missing one fails loudly
import numpy as np
import pandas as pd
import pytest
from conftest import SLEEP, load_reference
from mixedlm.families import Binomial, Poisson

import hierbayes as hb
from hierbayes.reml import make_deviance
from hierbayes.reml.optimize import optimize_theta

SEEDS = range(40)
GLMM_SEEDS = range(20)
TOL = 1e-6


def slopes(seed: int) -> pd.DataFrame:
    """10 groups × 6 days, a varying slope and no varying intercept: optima at θ11 ≈ 0 or a
    correlation of ±1 (the team's simulation; seed 24 was its missed one)."""
    rng = np.random.default_rng(seed)
    g, x = np.repeat(np.arange(10), 6), np.tile(np.arange(6.0), 10)
    y = 1 + x + rng.normal(0, 0.8, 10)[g] * x + rng.normal(size=g.size)
    return pd.DataFrame({"y": y, "x": x, "g": [f"g{i}" for i in g]})


def correlated(seed: int) -> pd.DataFrame:
    """8 groups × 5 rows, a small intercept SD and a slope correlated −0.45 with it."""
    rng = np.random.default_rng(seed)
    g, x = np.repeat(np.arange(8), 5), rng.normal(size=40)
    b = rng.multivariate_normal([0, 0], [[0.1, -0.1], [-0.1, 0.5]], 8)
    y = 1 + x + b[g, 0] + b[g, 1] * x + rng.normal(size=g.size)
    return pd.DataFrame({"y": y, "x": x, "g": [f"g{i}" for i in g]})


def counts(seed: int, family: str) -> pd.DataFrame:
    """10 groups × 6 times in [0, 1], a varying slope only: Poisson counts, or binomial
    successes of 5 (`y`, failures `f`)."""
    rng = np.random.default_rng(seed)
    g, x = np.repeat(np.arange(10), 6), np.tile(np.arange(6.0), 10) / 5
    if family == "poisson":
        y = rng.poisson(np.exp(1.0 + x + rng.normal(0, 0.6, 10)[g] * x)).astype(float)
    else:
        eta = -0.5 + x + rng.normal(0, 1.5, 10)[g] * x
        y = rng.binomial(5, 1 / (1 + np.exp(-eta))).astype(float)
    return pd.DataFrame({"y": y, "f": 5.0 - y, "x": x, "g": [f"g{i:02d}" for i in g]})


SIMULATIONS = {"slopes": slopes, "correlated": correlated}
GLMM_FORMULA = {"poisson": "y ~ x + (x | g)", "binomial": "cbind(y, f) ~ x + (x | g)"}


def mixedlm_criterion(kind: str, seed: int, method: str) -> float:
    """mixedlm's REML criterion or deviance (−2 logLik) of the fit of simulation `kind`."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if kind in SIMULATIONS:
            fit = mixedlm.lmer("y ~ x + (x | g)", SIMULATIONS[kind](seed), REML=method == "REML")
            return float(fit.REMLcrit()) if method == "REML" else float(-2 * fit.logLik().value)
        data = counts(seed, kind)
        if kind == "poisson":
            fit = mixedlm.glmer(GLMM_FORMULA[kind], data, family=Poisson())
        else:  # lme4's binomial: the proportion, weighted by the trials
            fit = mixedlm.glmer("p ~ x + (x | g)", data.assign(p=data["y"] / 5),
                                family=Binomial(), weights=np.full(len(data), 5.0))
        return float(-2 * fit.logLik().value)


def quietly(func, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return func(*args, **kwargs)


def lmm_criterion(data: pd.DataFrame, method: str, formula: str = "y ~ x + (x | g)") -> float:
    """Our optimum, straight from the deviance and the optimiser (no rescaling of columns)."""
    dev = make_deviance(hb.make_design(formula, data), method)
    return quietly(optimize_theta, dev).criterion


@pytest.mark.parametrize("method", ["REML", "ML"])
@pytest.mark.parametrize("kind", list(SIMULATIONS))
def test_lmm_reaches_mixedlm_on_every_seed(kind, method):
    stored = MIXEDLM[kind][method]
    above = {seed: lmm_criterion(SIMULATIONS[kind](seed), method) - stored[seed]
             for seed in SEEDS}
    missed = {seed: round(gap, 6) for seed, gap in above.items() if gap > TOL}
    assert not missed, f"criterion above mixedlm's by seed: {missed}"


@pytest.mark.parametrize("family", ["poisson", "binomial"])
def test_laplace_reaches_mixedlm_on_every_seed(family):
    stored = MIXEDLM[family]["Laplace"]
    above = {}
    for seed in GLMM_SEEDS:
        fit = quietly(hb.fit_reml, GLMM_FORMULA[family], counts(seed, family), family=family,
                      check_within=False)
        above[seed] = fit.criterion - stored[seed]
    missed = {seed: round(gap, 6) for seed, gap in above.items() if gap > TOL}
    assert not missed, f"criterion above mixedlm's by seed: {missed}"


@pytest.mark.parametrize(("kind", "seed", "method"), [
    ("slopes", 24, "REML"), ("correlated", 22, "ML"), ("poisson", 18, "Laplace"),
    ("binomial", 0, "Laplace"),
])
def test_stored_references_are_mixedlm_s(kind, seed, method):
    """The stored numbers are what mixedlm fits today (cases the old optimiser missed)."""
    assert mixedlm_criterion(kind, seed, method) == pytest.approx(MIXEDLM[kind][method][seed],
                                                                  abs=1e-7)


@pytest.mark.parametrize("method", ["REML", "ML"])
@pytest.mark.parametrize("d", [20.0, 1e3, 1e5])
def test_sleepstudy_slope_in_other_units_without_rescaling(d, method):
    """Days × d, fitted by the deviance and the optimiser directly (fit_reml would rescale the
    column first): the same optimum in other units, θ's slope row divided by d and the REML
    criterion raised by 2·log d (the fixed-effect column's Jacobian; ML has none)."""
    data, ref = load_reference("sleepstudy")
    scaled = data.assign(Days=data["Days"] * d)
    dev = make_deviance(hb.make_design(SLEEP, scaled), method)
    opt = quietly(optimize_theta, dev)
    assert opt.converged
    if method == "REML":
        expected = ref["fit_criteria"]["REML_criterion"] + 2 * np.log(d)
        theta = np.array(list(ref["theta"].values()))
        np.testing.assert_allclose(opt.theta * [1, d, d], theta, rtol=1e-4)
    else:
        expected = MIXEDLM["sleepstudy"]["ML"]
    assert opt.criterion == pytest.approx(expected, abs=TOL)


def test_poisson_correlated_slope_fits_without_a_linear_algebra_error():
    """The team's case (seed 3, 12 groups × 15 rows): a trial step from θ = (0.34, −0.17,
    0.33) to (0, 22, 0) left PIRLS, warm-started from the old modes, at a penalized deviance of
    1.8e14 with an indefinite Schur complement, and the profiled gradient raised numpy's
    LinAlgError out of fit_reml. That solve is now retried from u = 0."""
    rng = np.random.default_rng(3)
    g = np.repeat(np.arange(12), 15)
    x = rng.normal(size=g.size)
    eta = 0.5 + (0.4 + rng.normal(0, 0.3, 12)[g]) * x + rng.normal(0, 0.5, 12)[g]
    data = pd.DataFrame({"y": rng.poisson(np.exp(eta)), "x": x, "g": g})
    fit = quietly(hb.fit_reml, "y ~ x + (x | g)", data, family="poisson")
    theirs = quietly(mixedlm.glmer, "y ~ x + (x | g)", data, family=Poisson())
    assert fit.converged
    assert fit.criterion <= -2 * theirs.logLik().value + TOL
    assert fit.criterion == pytest.approx(-2 * theirs.logLik().value, abs=1e-4)


def test_a_diverged_warm_start_is_solved_again_from_zero():
    """PIRLS at a θ far from the last one gives the modes of a cold start (u = 0), not the
    warm start's unconverged ones."""
    rng = np.random.default_rng(3)
    g = np.repeat(np.arange(12), 15)
    x = rng.normal(size=g.size)
    eta = 0.5 + (0.4 + rng.normal(0, 0.3, 12)[g]) * x + rng.normal(0, 0.5, 12)[g]
    design = hb.make_design("y ~ x + (x | g)", pd.DataFrame(
        {"y": rng.poisson(np.exp(eta)), "x": x, "g": g}), "poisson")
    far = np.array([0.0, 22.19231985, 0.0])
    warm = make_deviance(design, "Laplace")
    warm.profiled(np.array([0.34232894, -0.17236595, 0.32668562]))
    state = warm.profiled_state(far)
    cold = make_deviance(design, "Laplace").profiled_state(far)
    assert state.converged and np.isfinite(state.RX).all()
    assert state.criterion == pytest.approx(cold.criterion, abs=1e-8)


# --- the mechanism ----------------------------------------------------------------------------


def test_equal_covariance_points_on_the_bound_and_the_tilt_that_leaves_them():
    """Seed 24 (REML): the old optimiser's end point θ = (0, 0.1686, 0.7423) is a KKT point of
    the θ problem (no coordinate step inside lowers the criterion), but its covariance can fall:
    boundary.py's tilt finds a point 0.0059 lower, and the restart reaches mixedlm's optimum."""
    from hierbayes.reml.boundary import edge_points
    from hierbayes.reml.optimize import off_the_edge

    dev = make_deviance(hb.make_design("y ~ x + (x | g)", slopes(24)), "REML")
    stuck = np.array([0.0, 0.16858969, 0.74227222])
    f0 = dev(stuck)
    # every (0, a, b) on the circle a² + b² = r² is the same covariance, the same criterion
    r = np.hypot(*stuck[1:])
    assert dev([0.0, -r, 0.0]) == pytest.approx(f0, abs=1e-9)
    assert off_the_edge(dev, stuck, f0, dev.thetas.is_diagonal) is None  # θ11 alone: no way in
    inside = off_the_edge(dev, stuck, f0, dev.thetas.is_diagonal, dev.thetas)
    assert inside is not None and dev(inside) < f0 - 1e-3
    opt = optimize_theta(dev, start=inside)
    assert opt.criterion == pytest.approx(MIXEDLM["slopes"]["REML"][24], abs=TOL)
    interior = opt.theta + np.array([1e-3, 0.0, 1e-3])
    assert not list(edge_points(interior, dev.thetas))  # no diagonal at 0: no candidates


def test_semidefinite_cholesky_reads_a_singular_covariance():
    from hierbayes.reml.boundary import semidefinite_cholesky

    T = np.array([[0.0, 0.0, 0.0], [0.5, 0.0, 0.0], [-0.2, 0.3, 0.4]])  # T11 = T22 = 0
    S = T @ T.T
    L = semidefinite_cholesky(S)
    np.testing.assert_allclose(L @ L.T, S, atol=1e-15)
    assert np.all(np.diag(L) >= 0) and np.allclose(L, np.tril(L))
    full = np.array([[2.0, 0.3], [0.3, 1.0]])
    np.testing.assert_allclose(semidefinite_cholesky(full), np.linalg.cholesky(full))


# mixedlm 1.3.0's criteria (REMLcrit, or −2 logLik), regenerated by running this file.
MIXEDLM = {
    "slopes": {
        "REML": [
            197.38439086042092, 184.88637890696808, 207.75813683649966, 206.80992238649918,
            202.6080137476813, 199.43153486402633, 202.77705828959, 188.78033163362556,
            216.83087919873378, 204.30326689872584, 185.3992957745428, 183.19925521870155,
            192.3022140253702, 201.92468657266957, 213.69834774253093, 207.0960999035964,
            198.92515094711314, 210.04583050016134, 205.35869008254363, 191.27274162543216,
            217.01554310709696, 197.74737151137725, 212.10230774825285, 214.14771636297104,
            212.37480156526334, 189.8058169929281, 227.22363945973817, 193.80916891894555,
            206.14277271189746, 204.1627658403412, 199.79273727307526, 184.24252627393767,
            210.56367693615297, 203.999027887788, 188.9410625020788, 215.11880999205866,
            184.54144892464927, 210.91772327694076, 206.7434665788001, 194.61455625727226,
        ],
        "ML": [
            195.22542075656156, 181.4917393798719, 205.92723216687844, 205.5829005399479,
            200.33708659228043, 197.32087485593797, 201.26965469382242, 185.9146279642599,
            215.46913345055086, 201.81331434622882, 182.40811879566945, 180.76741523027042,
            190.20646233664706, 200.47712739020704, 212.25461116633255, 205.71544923183475,
            196.82309657373236, 207.8541923879805, 203.78720904811743, 188.43250501368607,
            214.804431054884, 195.74940420816012, 210.72614231754739, 212.88953906058453,
            210.46460739559004, 187.82864660386005, 226.3579140180185, 191.30084617865262,
            203.53775468388838, 200.78703600779804, 198.24269955469651, 181.42417872083962,
            209.03073678041443, 201.66664954686217, 187.1248764483242, 213.24735837380967,
            181.29123363413024, 209.49176115365324, 204.4704670068805, 192.0067018656666,
        ],
    },
    "correlated": {
        "REML": [
            126.29369737240039, 110.76169966807605, 126.02776130610785, 129.9764129498452,
            130.32542332501723, 123.69076691122552, 115.29103006443285, 110.06015337415863,
            135.77665240365127, 108.72792512014598, 108.80814951193825, 121.8233616164876,
            114.00014974171802, 127.46593591630155, 103.8656983096772, 127.16743737143247,
            130.04275331320306, 129.81578533535375, 110.8180313189143, 134.8257922287772,
            137.62578744037845, 103.78560027886218, 125.4734074408888, 139.39641693753632,
            116.044683376694, 130.16165943457057, 119.2495584009781, 120.25394803385637,
            115.7115674584856, 126.68580675247061, 109.39020904026437, 107.45489588788739,
            110.40344416967929, 115.69514232512897, 113.92374750101371, 117.06555333077911,
            122.12288904554637, 125.12174247623456, 130.9170969698904, 106.33374782565942,
        ],
        "ML": [
            124.36161511502439, 106.92642320949608, 123.83246673641092, 127.39119482939763,
            128.1428311870245, 122.33088590362397, 111.9779641945657, 108.29007940331638,
            134.24436600765407, 104.63232600592923, 106.43461498195344, 118.76834708554115,
            111.37914219627075, 125.48619166291996, 100.43881731717778, 124.92231077506393,
            128.20313133303733, 128.01885884499245, 108.55962804314956, 132.95774850247895,
            136.28470440798037, 100.85752875891441, 122.73563692366946, 137.9933156210149,
            113.55119608326669, 128.51396426458533, 116.81481428469266, 117.05504182697459,
            113.9181732386184, 124.87620250625278, 106.70787629925381, 104.94535272806885,
            107.27949140434424, 112.9096518654494, 111.74839797477861, 114.60250134410362,
            119.91491817633376, 123.06841211502787, 129.7568052587479, 103.62426121970546,
        ],
    },
    "poisson": {
        "Laplace": [
            277.89603344662214, 269.0092070527602, 272.05335627605785, 284.7572553181717,
            277.8698869047365, 277.94793227032324, 277.9151339621294, 267.5216065140128,
            279.53608861916683, 270.092863710246, 266.0381262447124, 259.177779923015,
            281.14652018218743, 280.50877325768715, 270.05942206377546, 281.8798499130504,
            276.5134364816792, 257.8752985018181, 302.1266086644305, 270.9420349074887,
        ],
    },
    "binomial": {
        "Laplace": [
            188.11175038344834, 176.27767877352017, 177.88227501656158, 169.49715618626732,
            182.60409768703585, 186.3229673012074, 170.4491200167254, 192.88937782164055,
            167.15767831703857, 183.50386483408943, 172.77635622869332, 189.12249654387722,
            183.4126541915496, 184.62157614057094, 192.05890831768022, 192.24178444211623,
            187.48971207381948, 183.30946183041527, 187.64230778021096, 177.7900258137859,
        ],
    },
    "sleepstudy": {
        "ML": 1751.9393444631976,
    },
}


def _print_references() -> None:
    out = {kind: {method: [mixedlm_criterion(kind, s, method) for s in SEEDS]
                  for method in ("REML", "ML")} for kind in SIMULATIONS}
    for family in GLMM_FORMULA:
        out[family] = {"Laplace": [mixedlm_criterion(family, s, "Laplace") for s in GLMM_SEEDS]}
    sleep = quietly(mixedlm.lmer, SLEEP, hb.datasets.load("sleepstudy"), REML=False)
    out["sleepstudy"] = {"ML": float(-2 * sleep.logLik().value)}
    print("MIXEDLM = {")
    for kind, methods in out.items():
        print(f"    {kind!r}: {{")
        for method, values in methods.items():
            if isinstance(values, float):
                print(f"        {method!r}: {values!r},")
                continue
            print(f"        {method!r}: [")
            for i in range(0, len(values), 4):
                print("            " + " ".join(f"{v!r}," for v in values[i:i + 4]))
            print("        ],")
        print("    },")
    print("}")


if __name__ == "__main__":
    _print_references()
