"""Prior weights in GLMMs (lme4's glmer `weights`, R's glm semantics): observation i's −2
log-likelihood and working weight are multiplied by w_i.

References: an integer weight is that many copies of the row (exactly: the Laplace and the
quadrature deviance alike), and mixedlm's weighted glmer (the Rust port of lme4)."""

import warnings

import mixedlm  # the test extra installs it: a missing one fails loudly
import numpy as np
import pandas as pd
import pytest
from mixedlm.families import Poisson

import hierbayes as hb


def counts(seed=4, n=300):
    rng = np.random.default_rng(seed)
    g, h, x = rng.integers(0, 15, n), rng.integers(0, 6, n), rng.normal(size=n)
    y = rng.poisson(np.exp(0.3 + 0.4 * x + rng.normal(0, 0.6, 15)[g] + rng.normal(0, 0.3, 6)[h]))
    return (pd.DataFrame({"y": y.astype(float), "x": x, "g": [f"g{i:02d}" for i in g],
                          "h": [f"h{i}" for i in h]}),
            rng.integers(1, 4, n).astype(float))


def duplicated(data, w):
    return data.loc[data.index.repeat(w.astype(int))].reset_index(drop=True)


@pytest.mark.parametrize(("formula", "kwargs"), [
    ("y ~ x + (1|g)", {}),
    ("y ~ x + (1|g)", {"nagq": 7}),
    ("y ~ x + (1|g) + (1|h)", {}),  # crossed: the analytic gradient carries the weights
])
def test_integer_weights_are_copies_of_rows(formula, kwargs):
    data, w = counts()
    weighted = hb.fit_reml(formula, data, family="poisson", weights=w, **kwargs)
    copies = hb.fit_reml(formula, duplicated(data, w), family="poisson", **kwargs)
    assert weighted.converged and weighted.design.n_obs == len(data)
    assert weighted.criterion == pytest.approx(copies.criterion, abs=1e-7)
    assert weighted.beta == pytest.approx(copies.beta, abs=1e-6)
    assert weighted.theta == pytest.approx(copies.theta, abs=1e-5)
    unweighted = hb.fit_reml(formula, data, family="poisson", **kwargs)
    assert abs(unweighted.criterion - weighted.criterion) > 100  # the weights do count


def test_weighted_poisson_matches_mixedlm():
    data, w = counts()
    ours = hb.fit_reml("y ~ x + (1|g)", data, family="poisson", weights=pd.Series(w,
                                                                                  data.index))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = mixedlm.glmer("y ~ x + (1|g)", data, family=Poisson(), weights=w)
    assert ours.criterion == pytest.approx(-2.0 * theirs.logLik().value, abs=1e-6)
    assert ours.beta == pytest.approx(np.array(list(theirs.fixef().values())), abs=1e-5)
    assert ours.theta == pytest.approx(np.asarray(theirs.theta), abs=1e-5)
