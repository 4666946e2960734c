"""Adaptive Gauss-Hermite quadrature (fit_reml(..., nagq=K), lme4's nAGQ) for one scalar random
effect.

References: lme4's tests/glmer-1.R, `glmer(cbind(incidence, size - incidence) ~ period +
(1 | herd), cbpp, binomial, nAGQ = 25)`: deviance 100.010030538022 (lme4's GLMM deviance, the
−2 log-likelihood less the saturated model's) and the fixed effects to lme4's tolerance 5e-4;
mixedlm's glmer with nAGQ = 25, which reproduces that deviance to 1.3e-9, for −2 logLik and θ.
"""

import numpy as np
import pytest
from conftest import load_reference
from scipy.special import gammaln

import hierbayes as hb
from hierbayes.errors import HierbayesError

LME4_DEVIANCE = 100.010030538022
LME4_BETA = [-1.39922533406847, -0.991407294757321, -1.12782184600404, -1.57946627431248]
MIXEDLM_MINUS2LOGLIK = 183.9667380746217  # mixedlm.glmer(..., nAGQ=25), −2·logLik
MIXEDLM_THETA = 0.64751842
FITS: dict = {}


def cbpp(nagq):
    if nagq not in FITS:
        data, ref = load_reference("cbpp")
        FITS[nagq] = hb.fit_reml(ref["formula"], data, family="binomial", nagq=nagq)
    return FITS[nagq]


def saturated_minus2loglik(design) -> float:
    y, m = design.y, design.trials
    p = y / m
    with np.errstate(divide="ignore", invalid="ignore"):
        ll = (np.where(y > 0, y * np.log(p), 0.0) + np.where(m > y, (m - y) * np.log1p(-p), 0.0)
              + gammaln(m + 1) - gammaln(y + 1) - gammaln(m - y + 1))
    return -2.0 * float(ll.sum())


def test_cbpp_nagq25_is_lme4s_fit():
    fit = cbpp(25)
    assert fit.converged and fit.nagq == 25 and fit.method == "Laplace"
    assert fit.criterion - saturated_minus2loglik(fit.design) == pytest.approx(LME4_DEVIANCE,
                                                                              abs=1e-6)
    assert fit.criterion == pytest.approx(MIXEDLM_MINUS2LOGLIK, abs=1e-6)
    assert fit.beta == pytest.approx(LME4_BETA, rel=5e-4)
    assert fit.theta[0] == pytest.approx(MIXEDLM_THETA, abs=1e-5)
    assert "nAGQ = 25" in fit.summary() and "Laplace" not in fit.summary().splitlines()[0]


def test_one_node_is_the_laplace_fit_and_more_nodes_converge():
    laplace = cbpp(1)
    exact = hb.fit_reml(laplace.design)
    assert laplace.nagq == 1 and laplace.criterion == pytest.approx(exact.criterion, abs=1e-9)
    assert "Laplace approximation" in laplace.summary()
    # The quadrature error shrinks fast with the nodes: 9 nodes are already 25's to 1e-5.
    assert abs(cbpp(9).criterion - cbpp(25).criterion) < 1e-5
    assert abs(laplace.criterion - cbpp(25).criterion) > 0.05  # and Laplace is visibly off


@pytest.mark.parametrize(("formula", "family", "kwargs", "match"), [
    ("y ~ x + (1 | g) + (1 | h)", "poisson", {"nagq": 5}, "single scalar random effect"),
    ("y ~ x + (x | g)", "poisson", {"nagq": 5}, "single scalar random effect"),
    ("y ~ x + (1 | g)", "poisson", {"nagq": 0}, "integer from 1"),
    ("y ~ x + (1 | g)", "poisson", {"nagq": 2.5}, "integer from 1"),
    ("y ~ x + (1 | g)", "poisson", {"nagq": 5, "laplace": "lme4"}, "laplace='exact'"),
    ("y ~ x + (1 | g)", "gaussian", {"nagq": 5}, "applies to GLMMs"),
])
def test_nagq_is_refused_where_it_does_not_apply(formula, family, kwargs, match):
    rng = np.random.default_rng(1)
    n = 120
    data = {"x": rng.normal(size=n), "g": [f"g{i % 12}" for i in range(n)],
            "h": [f"h{i % 5}" for i in range(n)], "y": rng.poisson(2.0, n).astype(float)}
    import pandas as pd
    data = pd.DataFrame(data)
    with pytest.raises(HierbayesError, match=match):
        hb.fit_reml(formula, data, family=family, **kwargs)
    if "nagq" in kwargs and kwargs["nagq"] == 5 and match == "single scalar random effect":
        fit = hb.fit_reml("y ~ x + (1 | g)", data, family=family, nagq=5)  # the scalar one fits
        assert fit.nagq == 5 and np.isfinite(fit.criterion)
