"""Bad input, tried as an attacker and as a careless user would (issue 12): one table of cases per
entry point — fit_reml, fit_bayes / sample (up to the sampler, which is a stub that fails the
test if reached: no NUTS), compare and its plots, predict on both fits, save/load and the
command line.

Every case asserts either a `HierbayesError` subclass whose message names the culprit (the
column, term, value or argument, matched by regex) or the right result, and in every case that
the caller's frame is unchanged (`pd.testing.assert_frame_equal` against a deep copy taken
before; for the command line, the data file's bytes). Right answers come with the opposite case
that must not warn or fail (a new level that is not a near miss, an observation-level effect in a
Poisson model, a prior parameter that may be negative). The whole file takes seconds.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from typing import Any

import matplotlib
import numpy as np
import pandas as pd
import pytest

import hierbayes as hb
from hierbayes import cli
from hierbayes.bayes import sampling
from hierbayes.bayes.keywords import check_sample_keywords
from hierbayes.errors import (
    DataWarning,
    DesignError,
    FamilyError,
    FormulaError,
    HierbayesError,
    LoadError,
    ModelMismatchError,
    OutputError,
    PriorError,
)
from hierbayes.testing.fakes import fake_fit

matplotlib.use("Agg")

SLEEP = hb.datasets.load("sleepstudy")  # Reaction (float), Days (int), Subject (str)
FORMULA = "Reaction ~ Days + (Days | Subject)"
SIMPLE = "Reaction ~ Days + (1 | Subject)"


@dataclass(frozen=True)
class Case:
    """One adversarial input: `call(frame, ctx)` must raise `raises` matching `match`, or warn
    `warns` matching `match`, or return something `check` accepts."""

    id: str
    frame: Any  # a DataFrame, or a function making one
    call: Any
    raises: type | None = None
    match: str | None = None
    warns: type | None = None
    check: Any = None

    def data(self) -> pd.DataFrame:
        return self.frame() if callable(self.frame) else self.frame.copy()


def err(id, frame, call, raises, match):
    return Case(id, frame, call, raises=raises, match=match)


def ok(id, frame, call, check=None):
    return Case(id, frame, call, check=check)


def warn(id, frame, call, match, check=None, warns=DataWarning):
    return Case(id, frame, call, warns=warns, match=match, check=check)


def run_case(case: Case, ctx: dict) -> None:
    frame = case.data()
    before = frame.copy(deep=True)
    if case.raises is not None:
        with pytest.raises(case.raises, match=case.match):
            case.call(frame, ctx)
    elif case.warns is not None:
        with pytest.warns(case.warns, match=case.match):
            result = case.call(frame, ctx)
        if case.check is not None:
            case.check(result, ctx)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("error", DataWarning)  # a right answer comes without excuses
            result = case.call(frame, ctx)
        if case.check is not None:
            case.check(result, ctx)
    pd.testing.assert_frame_equal(frame, before)
    assert list(frame.columns) == list(before.columns)


# --- data that breaks the design (both engines) ---------------------------------------------


def sleep(**columns) -> pd.DataFrame:
    return SLEEP.assign(**columns)


def constant_within() -> pd.DataFrame:
    return sleep(Reaction=SLEEP.groupby("Subject")["Reaction"].transform("mean"))


def tiny() -> pd.DataFrame:
    x = np.arange(6.0)
    return pd.DataFrame({"y": [1.0, 3.0, 2.0, 5.0, 4.0, 7.0], "x1": x, "x2": x**2,
                         "x3": np.sin(x), "x4": np.cos(x), "x5": x**3, "g": list("aabbcc")})


def mixed_labels() -> pd.DataFrame:
    subject = SLEEP["Subject"].astype(object).copy()
    subject[SLEEP["Subject"] == "308"] = 308
    subject[SLEEP["Subject"] == "309"] = "308"
    return sleep(Subject=subject)


def colliding_categories() -> pd.DataFrame:
    g = pd.Categorical([1, "1"] * 90, categories=[1, "1"])
    return sleep(g=g)


def colliding_interaction() -> pd.DataFrame:
    a = np.where(np.arange(180) % 2 == 0, "x:y", "x")
    b = np.where(np.arange(180) % 2 == 0, "z", "y:z")
    return sleep(a=a, b=b)


def continuous_group() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    return sleep(x=np.round(rng.normal(size=180), 2) + 0.001)


def int_names(renames: dict) -> pd.DataFrame:
    return SLEEP.rename(columns=renames)


def with_zero_and_string_zero() -> pd.DataFrame:
    out = SLEEP.copy()
    out[0] = 1.0
    out["0"] = 2.0
    return out


DESIGN_CASES = [
    # (id, formula, frame, keyword arguments, error, match)
    ("constant response", SIMPLE, sleep(Reaction=250.0), {}, DesignError,
     r"response 'Reaction' is constant \(every value is 250\)"),
    ("response constant within every group", "Reaction ~ 1 + (1 | Subject)", constant_within,
     {}, DesignError, r"'Reaction' is constant within every level of 'Subject'"),
    ("response constant within groups, slope too", SIMPLE, constant_within, {}, DesignError,
     r"constant within every level of 'Subject'"),
    ("response used as the group", "Subject ~ Days + (1 | Subject)",
     sleep(Subject=SLEEP["Subject"].astype(int)), {}, FormulaError,
     r"response 'Subject' is also the grouping factor of '\(1 \| Subject\)'"),
    ("predictor reproduces the response", "Reaction ~ copy + (1 | Subject)",
     sleep(copy=2 * SLEEP["Reaction"] + 1), {}, DesignError,
     r"fixed effects reproduce the response 'Reaction' exactly"),
    ("as many fixed columns as rows", "y ~ x1 + x2 + x3 + x4 + x5 + (1 | g)", tiny, {},
     DesignError, r"6 fixed-effect columns \(Intercept, x1, x2, x3, x4, x5\) for 6 obs"),
    ("columns 0 and '0'", "Reaction ~ Days + (1 | Subject)", with_zero_and_string_zero, {},
     DesignError, r"columns 0 and '0', which formulas both name '0'"),
    ("datetime predictor", "Reaction ~ t + (1 | Subject)",
     sleep(t=pd.Timestamp("2020-01-01") + pd.to_timedelta(SLEEP["Days"], unit="D")), {},
     DesignError, r"Column 't' holds dates or times"),
    ("timedelta predictor", "Reaction ~ t + (1 | Subject)",
     sleep(t=pd.to_timedelta(SLEEP["Days"], unit="D")), {}, DesignError,
     r"Column 't' holds dates or times"),
    ("datetime in a bar", "Reaction ~ Days + (t | Subject)",
     sleep(t=pd.Timestamp("2020-01-01") + pd.to_timedelta(SLEEP["Days"], unit="D")), {},
     DesignError, r"Column 't' holds dates or times"),
    ("complex predictor", "Reaction ~ xc + (1 | Subject)", sleep(xc=SLEEP["Days"] + 1j), {},
     DesignError, r"Column 'xc' holds complex numbers"),
    ("complex response", SIMPLE, sleep(Reaction=SLEEP["Reaction"] + 0j), {}, DesignError,
     r"response 'Reaction' holds complex numbers"),
    ("int 308 and str '308' in one grouping column", SIMPLE, mixed_labels, {}, DesignError,
     r"column 'Subject' holds 308 \(int\) and '308' \(str\)"),
    ("categories 1 and '1'", "Reaction ~ Days + (1 | g)", colliding_categories, {},
     DesignError, r"column 'g' holds 1 \(int\) and '1' \(str\)"),
    ("interaction labels collide", "Reaction ~ Days + (1 | a:b)", colliding_interaction, {},
     DesignError, r"'a:b' holds .* both read 'x:y:z'"),
    ("as many levels as rows", "Reaction ~ Days + (1 | row)", sleep(row=np.arange(180)), {},
     DesignError, r"'row' of '\(1 \| row\)' has 180 levels for 180 observations"),
    ("more group effects than rows", "Reaction ~ Days + (Days | pair)",
     sleep(pair=np.arange(180) // 2), {}, DesignError,
     r"180 group effects \(90 levels × 2 terms\) for 180 observations"),
    ("continuous column as group", "Reaction ~ Days + (1 | x)", continuous_group, {},
     DesignError, r"'x' of '\(1 \| x\)' is a column of non-integer numbers"),
    ("one level", "Reaction ~ Days + (1 | one)", sleep(one="a"), {}, DesignError,
     r"'one' of '\(1 \| one\)' has 1 level \('a'\)"),
    ("check_nlevels misspelt", SIMPLE, SLEEP, {"check_nlevels": "warn"}, HierbayesError,
     r"check_nlevels='warn' is not one of .* Did you mean 'warning'"),
    ("infinite predictor", SIMPLE, sleep(Days=SLEEP["Days"].replace(9, np.inf)), {},
     DesignError, r"Column 'Days' has 18 infinite value"),
    ("log of zero", "Reaction ~ np.log(Days) + (1 | Subject)", SLEEP, {}, DesignError,
     r"column 'np.log\(Days\)' has 18 non-finite"),
    ("missing column", "Reaction ~ Dayz + (1 | Subject)", SLEEP, {}, DesignError,
     r"column 'Dayz', which is not in the data. Did you mean 'Days'"),
    ("only missing rows", SIMPLE, sleep(Days=np.nan), {}, DesignError,
     r"Every row has a missing value in column\(s\) 'Days'"),
    ("missing='raise'", SIMPLE, sleep(Days=SLEEP["Days"].where(SLEEP["Days"] > 0)),
     {"missing": "raise"}, DesignError, r"18 of 180 rows have missing values in column\(s\) "
     "'Days'"),
    ("missing= misspelt", SIMPLE, SLEEP, {"missing": "omit"}, DesignError,
     r"missing must be 'drop' or 'raise', got 'omit'"),
    ("empty frame", SIMPLE, SLEEP.iloc[:0], {}, DesignError, r"data frame is empty"),
    ("duplicated column names",
     SIMPLE, SLEEP.set_axis(["Reaction", "Days", "Reaction"], axis=1), {}, DesignError,
     r"duplicated column names \['Reaction'\]"),
    ("text response", SIMPLE, sleep(Reaction=SLEEP["Reaction"].astype(str)), {}, DesignError,
     r"response 'Reaction' is not numeric"),
    ("unknown function", "Reaction ~ os.system(Days) + (1 | Subject)", SLEEP, {}, FormulaError,
     r"os.system"),
    ("formula not a string", None, SLEEP, {}, FormulaError, r"formula must be a string"),
    ("two tildes", "Reaction ~ Days ~ 1 + (1 | Subject)", SLEEP, {}, FormulaError,
     r"more than one '~'"),
    ("unknown family", SIMPLE, SLEEP, {"family": "gausian"}, FamilyError,
     r"Unknown family 'gausian'"),
    ("known_sigma column missing", SIMPLE, SLEEP, {"known_sigma": "se"}, DesignError,
     r"known_sigma names column 'se'"),
    ("negative known SDs", SIMPLE, sleep(se=-1.0), {"known_sigma": "se"}, DesignError,
     r"known_sigma column 'se' must hold positive, finite SDs"),
    ("bernoulli response of 2", "y ~ Days + (1 | Subject)", sleep(y=2), {"family": "bernoulli"},
     DesignError, r"bernoulli response 'y' must be 0/1"),
    ("negative counts", "y ~ Days + (1 | Subject)", sleep(y=-SLEEP["Days"]),
     {"family": "poisson"}, DesignError, r"counts 'y' must be non-negative whole numbers"),
    ("not a data frame", SIMPLE, SLEEP, {"_as_dict": True}, DesignError,
     r"data must be a pandas DataFrame, got dict"),
]


def _design_call(engine: str, formula, kwargs: dict):
    kwargs = dict(kwargs)
    as_dict = kwargs.pop("_as_dict", False)

    def call(frame, ctx):
        data = frame.to_dict("list") if as_dict else frame
        if engine == "fit_reml":
            return hb.fit_reml(formula, data, **kwargs)
        return hb.fit_bayes(formula, data, draws=10, tune=10, chains=1, **kwargs)

    return call


def design_cases(engine: str) -> list[Case]:
    return [err(f"{engine}: {id}", frame, _design_call(engine, formula, kwargs), exc, match)
            for id, formula, frame, kwargs, exc, match in DESIGN_CASES]


# --- fit_reml: arguments and right answers ----------------------------------------------------


def reml(formula=SIMPLE, **kwargs):
    return lambda frame, ctx: hb.fit_reml(formula, frame, **kwargs)


def same_criterion_as(formula, data):
    def check(fit, ctx):
        assert fit.criterion == pytest.approx(hb.fit_reml(formula, data).criterion, abs=1e-9)

    return check


def scaled_by(y: float = 1.0, x: float = 1.0):
    """A REML fit of SIMPLE on Reaction·y and Days·x: estimates rescaled, criterion shifted by
    the log-Jacobian 2(n − p)·log y + 2·log x (see hierbayes.reml.scaling)."""

    def check(fit, ctx):
        ref = ctx["reml_simple"]
        assert fit.sigma == pytest.approx(y * ref.sigma, rel=1e-6)
        np.testing.assert_allclose(fit.beta, ref.beta * [y, y / x], rtol=1e-6)
        np.testing.assert_allclose(np.sqrt(np.diag(fit.vcov)),
                                   np.sqrt(np.diag(ref.vcov)) * [y, y / x], rtol=1e-5)
        sd, ref_sd = (np.sqrt(f.covariance["Subject"][0, 0]) for f in (fit, ref))
        assert sd == pytest.approx(y * ref_sd, rel=1e-5)
        shift = 2 * 178 * np.log(y) + 2 * np.log(x)
        assert fit.criterion == pytest.approx(ref.criterion + shift, abs=1e-6 * (1 + abs(shift)))

    return check


def slopes_equal_int_version(fit, ctx):
    ref = hb.fit_reml("Reaction ~ late + (1 | Subject)",
                      SLEEP.assign(late=(SLEEP["Days"] > 4).astype(int)))
    np.testing.assert_allclose(fit.beta, ref.beta, rtol=1e-10)


def fitted(group: str, n_levels: int):
    """The fit has `group`'s block with all its levels, and finite estimates."""

    def check(fit, ctx):
        assert np.isfinite(fit.criterion) and np.all(np.isfinite(fit.beta))
        block = next(b for b in fit.design.blocks if b.group == group)
        assert block.n_levels == n_levels
        assert fit.modes[block.name].shape[0] == n_levels

    return check


REML_CASES = [
    err("REML=False (lme4's habit)", SLEEP, reml(REML=False), HierbayesError,
        r"'REML'.*use method='REML' \(the default\) or method='ML'"),
    err("nAGQ", SLEEP, reml(nAGQ=2), HierbayesError, r"'nAGQ'.*Laplace"),
    err("misspelt method keyword", SLEEP, reml(methd="ML"), HierbayesError,
        r"'methd'.*Did you mean 'method'"),
    err("control=", SLEEP, reml(control={}), HierbayesError, r"'control'.*maxiter="),
    err("method value misspelt", SLEEP, reml(method="REMl"), HierbayesError,
        r"method must be one of 'REML', 'ML', got 'REMl'"),
    err("student_t before the data", sleep(Reaction=1.0), reml(family="student_t"),
        FamilyError, r"'student_t' is not implemented"),
    err("laplace= for a gaussian model", SLEEP, reml(laplace="lme4"), HierbayesError,
        r"lme4"),
    err("no bar", SLEEP, reml("Reaction ~ Days"), HierbayesError, r"not a mixed model"),
    err("response ×1e200: variances beyond float64", sleep(Reaction=SLEEP["Reaction"] * 1e200),
        reml(), HierbayesError, r"float64 cannot hold .* about 1e\+40\d.*response 'Reaction'"),
    err("response ×1e-200: variances below float64", sleep(Reaction=SLEEP["Reaction"] * 1e-200),
        reml(), HierbayesError, r"float64 cannot hold .* about 1e-39\d.*response 'Reaction'"),
    err("predictor ×1e-160: its coefficient's variance beyond float64",
        sleep(Days=SLEEP["Days"] * 1e-160), reml(), HierbayesError,
        r"variance of the fixed effect 'Days' .* about 1e\+3\d\d.*column 'Days'"),
    err("predictor ×1e155: its coefficient's variance below float64 (not dropped as zero)",
        sleep(Days=SLEEP["Days"] * 1e155), reml(FORMULA), HierbayesError,
        r"variance of the fixed effect 'Days' .* about 1e-310.*column 'Days'"),
    err("slope ×1e155 without the fixed slope: its variance below float64",
        sleep(Days=SLEEP["Days"] * 1e155), reml("Reaction ~ 1 + (Days | Subject)"),
        HierbayesError, r"variance of 'Days' over 'Subject' .* about 1e-3\d\d.*column 'Days'"),
    ok("response ×1e150", sleep(Reaction=SLEEP["Reaction"] * 1e150), reml(), scaled_by(y=1e150)),
    ok("response ×1e-150", sleep(Reaction=SLEEP["Reaction"] * 1e-150), reml(),
       scaled_by(y=1e-150)),
    ok("predictor ×1e150", sleep(Days=SLEEP["Days"] * 1e150), reml(), scaled_by(x=1e150)),
    ok("predictor ×1e-100", sleep(Days=SLEEP["Days"] * 1e-100), reml(), scaled_by(x=1e-100)),
    ok("inside the band: response ×1000", sleep(Reaction=SLEEP["Reaction"] * 1e3), reml(),
       scaled_by(y=1e3)),
    ok("int column name in backticks", int_names({"Days": 3}),
       reml("Reaction ~ `3` + (1 | Subject)"), same_criterion_as(SIMPLE, SLEEP)),
    ok("int response column", int_names({"Reaction": 0}), reml("`0` ~ Days + (1 | Subject)"),
       same_criterion_as(SIMPLE, SLEEP)),
    ok("unused int and tuple column names", SLEEP.assign(**{"5": 1.0}).rename(
        columns={"5": 5}), reml(), same_criterion_as(SIMPLE, SLEEP)),
    ok("bool predictor", sleep(late=SLEEP["Days"] > 4), reml("Reaction ~ late + (1 | Subject)"),
       slopes_equal_int_version),
    ok("ints and strings without collision", sleep(
        Subject=SLEEP["Subject"].astype(object).where(SLEEP["Subject"] != "308", 308)), reml(),
       same_criterion_as(SIMPLE, SLEEP)),
    ok("unused categories", sleep(Subject=pd.Categorical(
        SLEEP["Subject"], categories=[*SLEEP["Subject"].unique(), "999"])), reml(),
       same_criterion_as(SIMPLE, SLEEP)),
    warn("check_nlevels='warning' fits too many group effects",
         sleep(pair=np.arange(180) // 2), reml("Reaction ~ Days + (Days | pair)",
                                               check_nlevels="warning"),
         r"check.nobs.vs.nRE.*check_nlevels='warning'", fitted("pair", 90)),
    ok("check_nlevels='ignore' is silent", sleep(pair=np.arange(180) // 2),
       reml("Reaction ~ Days + (Days | pair)", check_nlevels="ignore"), fitted("pair", 90)),
    warn("check_nlevels='warning': continuous group", continuous_group,
         reml("Reaction ~ Days + (1 | x)", check_nlevels="warning"), r"non-integer numbers"),
    ok("Poisson: an observation-level effect is allowed (lme4's allow.n)",
       sleep(y=(SLEEP["Reaction"] // 50).astype(int), row=np.arange(180)),
       reml("y ~ Days + (1 | Subject) + (1 | row)", family="poisson"), fitted("row", 180)),
    err("gaussian: the same observation-level effect is not",
        sleep(row=np.arange(180)), reml("Reaction ~ Days + (1 | Subject) + (1 | row)"),
        DesignError, r"'row' of '\(1 \| row\)' has 180 levels for 180 observations"),
    ok("known residual SDs: one level per row is the meta-analysis model",
       sleep(row=np.arange(180), se=10.0), reml("Reaction ~ Days + (1 | row)", known_sigma="se"),
       fitted("row", 180)),
]


# --- fit_bayes and sample: arguments and priors (the sampler is never reached) ----------------


def bayes(formula=SIMPLE, **kwargs):
    kwargs = {"draws": 10, "tune": 10, "chains": 1, **kwargs}
    return lambda frame, ctx: hb.fit_bayes(formula, frame, **kwargs)


def prior(name, distribution, **params):
    return bayes(priors={name: hb.Prior(distribution, **params)})


def sample(**kwargs):
    return lambda frame, ctx: hb.sample(ctx["spec"], **{"draws": 10, "tune": 10, "chains": 1,
                                                        **kwargs})


def priors_accepted(spec, ctx):
    assert spec.priors["Days"].params == {"alpha": -3.0, "beta": 2.0}


BAYES_CASES = [
    err("prior sigma < 0", SLEEP, prior("sd_Subject", "HalfNormal", sigma=-1), PriorError,
        r"sigma=-1 of the prior 'sd_Subject'.*must be > 0"),
    err("prior sigma = 0", SLEEP, prior("sd_Subject", "HalfNormal", sigma=0), PriorError,
        r"sigma=0 of the prior 'sd_Subject'.*must be > 0"),
    err("prior sigma = inf", SLEEP, prior("sd_Subject", "HalfNormal", sigma=np.inf), PriorError,
        r"sigma=inf of the prior 'sd_Subject'.*must be finite"),
    err("prior sigma = NaN", SLEEP, prior("Days", "Normal", mu=0, sigma=np.nan), PriorError,
        r"sigma=nan of the prior 'Days'.*must be finite"),
    err("prior mu = -inf", SLEEP, prior("Days", "Normal", mu=-np.inf, sigma=1), PriorError,
        r"mu=-inf of the prior 'Days'"),
    err("prior sigma as text", SLEEP, prior("Days", "Normal", mu=0, sigma="wide"), PriorError,
        r"sigma='wide' of the prior 'Days' must be a number"),
    err("prior rate < 0", SLEEP, prior("sigma", "Exponential", lam=-0.1), PriorError,
        r"lam=-0.1 of the prior 'sigma'.*must be > 0"),
    err("prior shape = 0", SLEEP, prior("sigma", "Gamma", alpha=0, beta=1), PriorError,
        r"alpha=0 of the prior 'sigma'"),
    err("prior nu < 0", SLEEP, prior("Days", "StudentT", nu=-3, mu=0, sigma=1), PriorError,
        r"nu=-3 of the prior 'Days'"),
    err("prior per-term sigma with a negative", SLEEP,
        bayes(FORMULA, priors={"sd_Subject": hb.Prior("HalfNormal", sigma=[10.0, -1.0])}),
        PriorError, r"sigma=\[10.0, -1.0\] of the prior 'sd_Subject'"),
    err("Uniform lower > upper", SLEEP, prior("Days", "Uniform", lower=5, upper=1), PriorError,
        r"'Days'.*needs lower < upper"),
    err("LKJ eta = 0", SLEEP, bayes(FORMULA, priors={"corr_Subject": hb.Prior("LKJ", eta=0)}),
        PriorError, r"eta=0 of the prior 'corr_Subject'"),
    err("LKJ eta = inf", SLEEP,
        bayes(FORMULA, priors={"corr_Subject": hb.Prior("LKJ", eta=np.inf)}), PriorError,
        r"eta=inf of the prior 'corr_Subject'.*finite"),
    err("prior on an SD without positive support", SLEEP, prior("sd_Subject", "Normal", mu=0,
                                                                sigma=1),
        PriorError, r"'sd_Subject'.*positive support"),
    err("unknown prior name", SLEEP, prior("sd_subject", "HalfNormal", sigma=1), PriorError,
        r"Unknown prior name\(s\) 'sd_subject'"),
    ok("a negative location is fine (Cauchy alpha)", SLEEP,
       lambda frame, ctx: hb.build_model(SIMPLE, frame, priors={
           "Days": hb.Prior("Cauchy", alpha=-3.0, beta=2.0)}), priors_accepted),
    err("random_seed = -1", SLEEP, bayes(random_seed=-1), HierbayesError,
        r"random_seed must lie between 0 and 4294967295.*got -1"),
    err("random_seed = 2**32", SLEEP, bayes(random_seed=2**32), HierbayesError,
        r"random_seed must lie between 0 and 4294967295"),
    err("random_seed = 1.5", SLEEP, bayes(random_seed=1.5), HierbayesError,
        r"random_seed must be a whole number .* got 1.5 \(float\)"),
    err("random_seed = '1'", SLEEP, bayes(random_seed="1"), HierbayesError,
        r"random_seed must be a whole number .* \(str\)"),
    err("random_seed = True", SLEEP, bayes(random_seed=True), HierbayesError,
        r"random_seed must be a whole number .* \(bool\)"),
    err("sample: random_seed = -1", SLEEP, sample(random_seed=-1), HierbayesError,
        r"random_seed must lie between 0"),
    err("iter= (Stan's habit)", SLEEP, bayes(iter=2000), HierbayesError,
        r"'iter'.*use draws= \(kept draws per chain\) and tune="),
    err("warmup=", SLEEP, bayes(warmup=500), HierbayesError, r"'warmup'.*use tune="),
    err("num_samples=", SLEEP, bayes(num_samples=500), HierbayesError,
        r"'num_samples'.*use draws="),
    err("n_chains=", SLEEP, bayes(n_chains=2), HierbayesError, r"'n_chains'.*use chains="),
    err("seed=", SLEEP, bayes(seed=1), HierbayesError, r"'seed'.*use random_seed="),
    err("adapt_delta=", SLEEP, bayes(adapt_delta=0.95), HierbayesError,
        r"'adapt_delta'.*use target_accept="),
    err("max_treedepth=", SLEEP, bayes(max_treedepth=12), HierbayesError,
        r"'max_treedepth'.*nuts=\{'max_treedepth'"),
    err("nuts_sampler=", SLEEP, bayes(nuts_sampler="pymc"), HierbayesError,
        r"'nuts_sampler'.*use sampler="),
    err("chain= (typo)", SLEEP, bayes(chain=2), HierbayesError, r"'chain'.*Did you mean 'chains'"),
    err("drwas= (typo)", SLEEP, bayes(drwas=100), HierbayesError,
        r"'drwas'.*Did you mean 'draws'"),
    err("familly= (typo)", SLEEP, bayes(familly="poisson"), HierbayesError,
        r"'familly'.*Did you mean 'family'"),
    err("sample: iter=", SLEEP, sample(iter=100), HierbayesError, r"sample\(\).*'iter'"),
    ok("sample's and pm.sample's own keywords pass fit_bayes (the opposite case)", SLEEP,
       lambda frame, ctx: check_sample_keywords(
           {"warn": False, "cores": 1, "init": "adapt_diag", "nuts": {"max_treedepth": 12}},
           hb.fit_bayes, hb.sample)),
    err("draws = 0", SLEEP, bayes(draws=0), HierbayesError, r"draws must be a whole number >= 1"),
    err("draws = 1.5", SLEEP, bayes(draws=1.5), HierbayesError, r"draws must be a whole number"),
    err("tune = -1", SLEEP, bayes(tune=-1), HierbayesError, r"tune must be a whole number >= 0"),
    err("chains = 0", SLEEP, bayes(chains=0), HierbayesError, r"chains must be a whole number"),
    err("target_accept = 1.5", SLEEP, bayes(target_accept=1.5), HierbayesError,
        r"target_accept must lie strictly between 0 and 1"),
    err("unknown sampler", SLEEP, bayes(sampler="stan"), HierbayesError,
        r"Unknown sampler 'stan'"),
    err("unknown link", SLEEP, bayes(link="logit"), FamilyError,
        r"gaussian family has no link 'logit'"),
    err("build_model: REML= (lme4's habit)", SLEEP,
        lambda frame, ctx: hb.build_model(SIMPLE, frame, REML=True), HierbayesError,
        r"build_model\(\) got unknown keyword argument\(s\) 'REML'"),
    err("make_design: famly= (typo)", SLEEP,
        lambda frame, ctx: hb.make_design(SIMPLE, frame, famly="poisson"), HierbayesError,
        r"make_design\(\).*'famly'.*Did you mean 'family'"),
    err("sample() of something else", SLEEP, lambda frame, ctx: hb.sample(frame),
        HierbayesError, r"hb.sample needs a BayesModel .* got DataFrame"),
]


# --- compare and its plots --------------------------------------------------------------------


def compare(**kwargs):
    return lambda frame, ctx: hb.compare(ctx["bayes"], ctx["reml"], **kwargs)


def plot(name, **kwargs):
    def call(frame, ctx):
        fig = getattr(ctx["comparison"], name)(**kwargs)
        matplotlib.pyplot.close(fig)
        return fig

    return call


def plotted_days(fig, ctx):
    assert "Days of each Subject" in fig.axes[0].get_ylabel()


COMPARE_CASES = [
    *[err(f"ci_prob = {v!r}", SLEEP, compare(ci_prob=v), HierbayesError,
          rf"ci_prob must be a probability strictly between 0 and 1 .* got {m}")
      for v, m in ((2, "2"), (0, "0"), (1, "1"), (-0.5, "-0.5"), (np.nan, "nan"),
                   ("0.95", "'0.95'"), (True, "True"), (None, "None"))],
    *[err(f"max_draws = {v!r}", SLEEP, compare(max_draws=v), HierbayesError,
          rf"max_draws must be a whole number >= 1, got {m}")
      for v, m in ((0, "0"), (-1, "-1"), (2.5, "2.5"), (True, "True"))],
    err("prob= (arviz's habit)", SLEEP, compare(prob=0.9), HierbayesError,
        r"'prob'.*use ci_prob="),
    err("fits swapped", SLEEP, lambda frame, ctx: hb.compare(ctx["reml"], ctx["bayes"]),
        ModelMismatchError, r"takes a BayesFit \(hb.fit_bayes\) and then a RemlFit"),
    err("a fit of another model", SLEEP,
        lambda frame, ctx: hb.compare(ctx["bayes"], ctx["reml_simple"]), ModelMismatchError,
        r"Cannot compare"),
    err("plot_shrinkage: unknown term", SLEEP, plot("plot_shrinkage", term="Dayz"),
        HierbayesError, r"no term 'Dayz' varies over 'Subject'; valid terms: 'Intercept', "
        "'Days'"),
    err("plot_shrinkage: unknown group", SLEEP, plot("plot_shrinkage", group="Subjects"),
        HierbayesError, r"no grouping factor 'Subjects'; valid: 'Subject'"),
    err("plot_shrinkage: a number as term", SLEEP, plot("plot_shrinkage", term=1),
        HierbayesError, r"no term 1 varies over 'Subject'"),
    err("plot_forest: unknown keyword", SLEEP, plot("plot_forest", ci_prob=0.9),
        HierbayesError, r"plot_forest\(\) got unknown keyword argument\(s\) 'ci_prob'"),
    ok("plot_shrinkage: a known term", SLEEP, plot("plot_shrinkage", term="Days"),
       plotted_days),
]


# --- predict, both fits -----------------------------------------------------------------------


def new(**columns) -> pd.DataFrame:
    base = {"Days": [0, 5, 9], "Subject": ["308", "309", "330"]}
    return pd.DataFrame({**base, **columns})


def predict(fit: str, **kwargs):
    return lambda frame, ctx: ctx[fit].predict(frame, **kwargs)


def at_population(fit: str):
    """The row of Subject 999 (new) predicted at the fixed part, 308 at its own effect."""

    def check(result, ctx):
        reml = ctx["reml"]
        population = reml.predict(new(), group_effects="population").to_numpy()
        if fit == "reml":
            values = result.to_numpy()
            assert values[1] == pytest.approx(population[1], rel=1e-12)
            assert abs(values[0] - population[0]) > 1.0  # 308's own intercept moves it
            return
        bayes = ctx["bayes"]
        zero = bayes.predict(new(Subject=["308", "999", "330"]), group_effects="zero_new")
        base = bayes.predict(new(Subject=["308", "999", "330"]), group_effects="population")
        np.testing.assert_allclose(zero[..., 1], base[..., 1], rtol=1e-12)  # lme4's choice
        assert not np.allclose(zero[..., 0], base[..., 0])  # 308 has its own effect
        # The default adds a draw of the new subject's effect from the fitted population.
        effect = (result[..., 1] - base[..., 1]).to_numpy()
        assert np.all(effect != 0) and np.ptp(effect) > 0

    return check


PREDICT_CASES = []
for fit in ("reml", "bayes"):
    PREDICT_CASES += [
        err(f"{fit}: True/False where numbers were fitted", new(Days=[True, False, True]),
            predict(fit), DesignError, r"column 'Days' is True/False, but the model was fitted "
            "with numbers"),
        err(f"{fit}: dates where numbers were fitted",
            new(Days=pd.to_datetime(["2020-01-01"] * 3)), predict(fit), DesignError,
            r"Column 'Days' holds dates or times"),
        err(f"{fit}: complex new data", new(Days=[0j, 1j, 2j]), predict(fit), DesignError,
            r"Column 'Days' holds complex numbers"),
        err(f"{fit}: missing column", new().drop(columns="Days"), predict(fit), DesignError,
            r"column 'Days', which is not in the data"),
        err(f"{fit}: missing value", new(Days=[0, np.nan, 2]), predict(fit), DesignError,
            r"missing values in column\(s\) 'Days' \(1\)"),
        err(f"{fit}: infinite value", new(Days=[0, np.inf, 2]), predict(fit), DesignError,
            r"Column 'Days' has 1 infinite"),
        err(f"{fit}: group_effects misspelt", new(), predict(fit, group_effects="populaton"),
            HierbayesError, r"group_effects='populaton' is not one of"),
        err(f"{fit}: kind misspelt", new(), predict(fit, kind="respone"), HierbayesError,
            r"kind='respone' is not one of"),
        err(f"{fit}: newdata= (lme4's habit)", new(), lambda frame, ctx, f=fit: ctx[f].predict(
            newdata=frame), HierbayesError, r"'newdata'.*use new_data="),
        err(f"{fit}: not a data frame", new(), lambda frame, ctx, f=fit: ctx[f].predict(
            frame.to_dict("list")), DesignError, r"data must be a pandas DataFrame"),
        *[warn(f"{fit}: near miss {label!r}", new(Subject=[label, "309", "330"]), predict(fit),
               rf"level {label!r} of 'Subject' was not seen .* fitted level\(s\) '308' only by")
          for label in (" 308", "308 ", "0308", "308.0", "3 08")],
        ok(f"{fit}: a new level that is no near miss predicts silently at the population",
           new(Subject=["308", "999", "330"]), predict(fit), at_population(fit)),
    ]
PREDICT_CASES += [
    err("reml: kind='response' is the posterior's", new(), predict("reml", kind="response"),
        HierbayesError, r"kind='response' is not one of 'link', 'mean'"),
    err("reml: group_effects='sample_new' is the posterior's", new(),
        predict("reml", group_effects="sample_new"), HierbayesError,
        r"group_effects='sample_new' is not one of 'conditional', 'population'"),
    warn("reml: case differs", pd.DataFrame({"y": [0.0], "x": [1.0], "g": ["Ab"]}),
         lambda frame, ctx: ctx["reml_letters"].predict(frame),
         r"level 'Ab' of 'g' .* fitted level\(s\) 'AB' only by whitespace, letter case"),
]


# --- save / load ------------------------------------------------------------------------------


def save_to(name):
    return lambda frame, ctx: ctx["bayes"].save(ctx["tmp"] / name)


def load_from(name, content=None):
    def call(frame, ctx):
        path = ctx["tmp"] / name
        if content is not None:
            path.write_text(content)
        return hb.load(path)

    return call


def round_trip(fit, ctx):
    pd.testing.assert_frame_equal(fit.ranef(), ctx["bayes"].ranef())


SAVE_LOAD_CASES = [
    err("save into a missing folder", SLEEP, save_to("nowhere/fit.nc"), OutputError,
        r"its folder .*nowhere' does not exist"),
    err("save onto a folder", SLEEP, save_to(""), OutputError, r"is a folder; give a file name"),
    err("save to a number", SLEEP, lambda frame, ctx: ctx["bayes"].save(3), HierbayesError,
        r"path must be a file path .* got 3 \(int\)"),
    err("load a missing file", SLEEP, load_from("absent.nc"), LoadError, r"No file .*absent.nc"),
    err("load a CSV", SLEEP, load_from("data.csv", "a,b\n1,2\n"), LoadError,
        r"data.csv: not a readable netCDF file"),
    err("load a number", SLEEP, lambda frame, ctx: hb.load(7), HierbayesError,
        r"hb.load's path must be a file path .* got 7 \(int\)"),
    ok("save and load again", SLEEP, lambda frame, ctx: (save_to("ok.nc")(frame, ctx),
                                                         load_from("ok.nc")(frame, ctx))[1],
       round_trip),
]


# --- the command line -------------------------------------------------------------------------

CARD = """name = "bad"
description = "an adversarial card"
formula = "{formula}"
family = "{family}"

[data]
path = "data.csv"
factors = ["Subject"]

[sampler]
draws = 10
tune = 10
chains = 1
seed = {seed}
{priors}"""


def cli_case(id, frame, match, formula=SIMPLE, family="gaussian", seed=1, priors="",
             args=()):
    """`hierbayes fit CARD --out DIR` on `frame`: exit status 2, one clean line with `match`."""

    def call(frame_, ctx):
        folder = ctx["tmp"] / id.replace(" ", "_")
        folder.mkdir()
        frame_.to_csv(folder / "data.csv", index=False)
        content = (folder / "data.csv").read_bytes()
        (folder / "card.toml").write_text(CARD.format(formula=formula, family=family, seed=seed,
                                                      priors=priors))
        status = cli.main(["fit", str(folder / "card.toml"), "--out", str(folder / "out"),
                           "--quiet", *args])
        assert (folder / "data.csv").read_bytes() == content
        return status

    def check(status, ctx):
        err_text = ctx["capsys"].readouterr().err
        assert status == 2, err_text
        last = err_text.strip().splitlines()[-1]
        assert last.startswith("hierbayes: error: ") and "Traceback" not in err_text
        assert re.search(match, last), last

    return ok(f"cli: {id}", frame, call, check)


CLI_CASES = [
    cli_case("constant response", sleep(Reaction=1.0), r"response 'Reaction' is constant"),
    cli_case("negative prior scale", SLEEP, r"sigma=-1 of the prior 'sd_Subject'",
             priors='\n[priors]\nsd_Subject = { distribution = "HalfNormal", sigma = -1 }\n'),
    cli_case("seed -1 in the card", SLEEP, r"seed must be a non-negative integer", seed=-1),
    cli_case("missing column", SLEEP, r"column 'Dayz', which is not in the data",
             formula="Reaction ~ Dayz + (1 | Subject)"),
    cli_case("continuous group", continuous_group, r"non-integer numbers",
             formula="Reaction ~ Days + (1 | x)"),
    cli_case("unknown family", SLEEP, r"gausian", family="gausian"),
    cli_case("response as the group", sleep(Subject=SLEEP["Subject"].astype(int)),
             r"also the grouping factor", formula="Subject ~ Days + (1 | Subject)"),
]


# --- the runners ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fits(tmp_path_factory):
    """One REML fit and one fake posterior (prior draws, no NUTS) of the sleepstudy model, their
    comparison, and a model of letter-coded groups for the case-only near miss."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        spec = hb.build_model(FORMULA, SLEEP)
        bayes = fake_fit(spec, chains=2, draws=20)
        reml = hb.fit_reml(FORMULA, SLEEP)
        letters = pd.DataFrame({"y": np.r_[np.arange(6.0), np.arange(6.0) ** 1.5],
                                "x": np.tile([1.0, 2.0, 3.0], 4), "g": np.repeat(
                                    ["AB", "CD", "EF", "GH"], 3)})
        return {"spec": spec, "bayes": bayes, "reml": reml,
                "reml_simple": hb.fit_reml(SIMPLE, SLEEP),
                "reml_letters": hb.fit_reml("y ~ x + (1 | g)", letters),
                "comparison": hb.compare(bayes, reml, max_draws=40),
                "tmp": tmp_path_factory.mktemp("adversarial")}


@pytest.fixture
def ctx(fits, monkeypatch, capsys):
    def no_nuts(**kwargs):
        raise AssertionError("the sampler was reached: the input should have been refused")

    monkeypatch.setattr(sampling.pm, "sample", no_nuts)
    return {**fits, "capsys": capsys}


def _ids(cases):
    return [c.id for c in cases]


ALL = {
    "design": design_cases("fit_reml") + design_cases("fit_bayes"),
    "fit_reml": REML_CASES,
    "fit_bayes": BAYES_CASES,
    "compare": COMPARE_CASES,
    "predict": PREDICT_CASES,
    "save_load": SAVE_LOAD_CASES,
    "cli": CLI_CASES,
}


def test_the_matrix_is_large_and_its_ids_unique():
    cases = [c for group in ALL.values() for c in group]
    assert len(cases) >= 150, len(cases)
    assert len({c.id for c in cases}) == len(cases)


@pytest.mark.parametrize("case", ALL["design"], ids=_ids(ALL["design"]))
def test_design(case, ctx):
    run_case(case, ctx)


@pytest.mark.parametrize("case", REML_CASES, ids=_ids(REML_CASES))
def test_fit_reml(case, ctx):
    run_case(case, ctx)


@pytest.mark.parametrize("case", BAYES_CASES, ids=_ids(BAYES_CASES))
def test_fit_bayes(case, ctx):
    run_case(case, ctx)


@pytest.mark.parametrize("case", COMPARE_CASES, ids=_ids(COMPARE_CASES))
def test_compare(case, ctx):
    run_case(case, ctx)


@pytest.mark.parametrize("case", PREDICT_CASES, ids=_ids(PREDICT_CASES))
def test_predict(case, ctx):
    run_case(case, ctx)


@pytest.mark.parametrize("case", SAVE_LOAD_CASES, ids=_ids(SAVE_LOAD_CASES))
def test_save_load(case, ctx):
    run_case(case, ctx)


@pytest.mark.parametrize("case", CLI_CASES, ids=_ids(CLI_CASES))
def test_cli(case, ctx):
    run_case(case, ctx)
