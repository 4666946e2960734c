"""The sparse Cholesky backend (reml/sparse.py, optional qdldl) for designs whose dense Schur
complement is too large: equal to the dense backends where both apply (the criterion at fixed θ,
the optimum, modes and conditional variances), a three-way crossed design with 19,000 levels that
the dense path refuses, and a clear error where qdldl is missing."""

import numpy as np
import pandas as pd
import pytest
from test_reml_features import simulated_crossed

import hierbayes as hb
import hierbayes.reml.schur as schur
import hierbayes.reml.sparse as sparse
from hierbayes.errors import HierbayesError
from hierbayes.reml import make_deviance

FORMULAS = ["y ~ x + (1 | g) + (1 | h)", "y ~ x + (x | g) + (1 | h)",
            "y ~ x + f + (1 | g) + (1 | h) + (1 | g:h)"]


@pytest.fixture
def force_sparse(monkeypatch):
    """Every multi-factor design goes to the sparse backend."""
    pytest.importorskip("qdldl", reason="the sparse extra (qdldl) is not installed")
    monkeypatch.setattr(schur, "MAX_DENSE_SCHUR", 3)


@pytest.mark.parametrize("formula", FORMULAS)
def test_sparse_backend_equals_the_dense_one(formula, force_sparse, monkeypatch):
    design = hb.make_design(formula, simulated_crossed())
    monkeypatch.setattr(schur, "MAX_DENSE_SCHUR", 8000)
    dense_dev, dense = make_deviance(design), hb.fit_reml(design)
    monkeypatch.setattr(schur, "MAX_DENSE_SCHUR", 3)
    sparse_dev = make_deviance(design)
    assert isinstance(sparse_dev.backend, sparse.SparseBackend)
    theta = sparse_dev.thetas.start + 0.3
    assert sparse_dev(theta) == pytest.approx(dense_dev(theta), abs=1e-9)
    with np.errstate(all="ignore"):
        fit = hb.fit_reml(design)
    assert fit.converged and fit.criterion == pytest.approx(dense.criterion, abs=1e-8)
    assert fit.theta == pytest.approx(dense.theta, abs=1e-6)
    for block in design.blocks:
        np.testing.assert_allclose(fit.modes[block.name], dense.modes[block.name], atol=1e-7)
        np.testing.assert_allclose(fit.condcov[block.name], dense.condcov[block.name],
                                   atol=1e-8)


def test_selected_inverse_is_the_inverse_on_the_pattern(force_sparse):
    design = hb.make_design(FORMULAS[2], simulated_crossed())
    dev = make_deviance(design)
    factor = dev.state(dev.thetas.start + 0.2).factor
    L = factor.L.toarray()
    unit = np.eye(L.shape[0]) + L
    inverse = np.linalg.inv(unit @ np.diag(factor.d) @ unit.T)
    zdiag, zL, _ = sparse.selected_inverse(factor.L, factor.d)
    csc = factor.L.tocsc()
    csc.sort_indices()
    cols = np.repeat(np.arange(L.shape[0]), np.diff(csc.indptr))
    np.testing.assert_allclose(zdiag, np.diag(inverse), atol=1e-12)
    np.testing.assert_allclose(zL, inverse[csc.indices, cols], atol=1e-12)


def test_crossed_glmm_on_the_sparse_backend_equals_the_dense_one(force_sparse, monkeypatch):
    rng = np.random.default_rng(11)
    n = 800
    a, b, x = rng.integers(0, 30, n), rng.integers(0, 12, n), rng.normal(size=n)
    y = rng.poisson(np.exp(0.4 + 0.3 * x + rng.normal(0, 0.5, 30)[a] + rng.normal(0, 0.3, 12)[b]))
    data = pd.DataFrame({"y": y, "x": x, "a": a.astype(str), "b": b.astype(str)})
    fit = hb.fit_reml("y ~ x + (1 | a) + (1 | b)", data, family="poisson")
    assert not fit.deviance.has_gradient  # no analytic gradient on the sparse backend
    monkeypatch.setattr(schur, "MAX_DENSE_SCHUR", 8000)
    dense = hb.fit_reml("y ~ x + (1 | a) + (1 | b)", data, family="poisson")
    assert dense.deviance.has_gradient
    assert fit.criterion == pytest.approx(dense.criterion, abs=1e-7)
    assert fit.beta == pytest.approx(dense.beta, abs=1e-5)
    np.testing.assert_allclose(fit.ranef()["std_error"], dense.ranef()["std_error"], atol=1e-6)


def three_way(n=30_000, levels=(10_000, 5_000, 4_000), seed=0) -> pd.DataFrame:
    """Three crossed factors whose levels meet in few combinations (each level of a meets b and
    c levels near its own), so the factor of M stays sparse."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, levels[0], n)
    b = (a * levels[1] // levels[0] + rng.integers(0, 8, n)) % levels[1]
    c = (a * levels[2] // levels[0] + rng.integers(0, 8, n)) % levels[2]
    x = rng.normal(size=n)
    y = (1 + 0.5 * x + rng.normal(0, 0.5, levels[0])[a] + rng.normal(0, 0.8, levels[1])[b]
         + rng.normal(0, 0.3, levels[2])[c] + rng.normal(size=n))
    return pd.DataFrame({"y": y, "x": x, "a": a.astype(str), "b": b.astype(str),
                         "c": c.astype(str)})


def test_three_way_crossed_with_19000_levels_fits():
    pytest.importorskip("qdldl", reason="the sparse extra (qdldl) is not installed")
    fit = hb.fit_reml("y ~ x + (1 | a) + (1 | b) + (1 | c)", three_way())
    assert isinstance(fit.deviance.backend, sparse.SparseBackend)  # 9,000 > MAX_DENSE_SCHUR
    assert fit.converged and not fit.singular
    sds = {g: float(np.sqrt(cov[0, 0])) for g, cov in fit.covariance.items()}
    assert sds["a"] == pytest.approx(0.5, rel=0.1)
    assert sds["b"] == pytest.approx(0.8, rel=0.1)
    assert sds["c"] == pytest.approx(0.3, rel=0.2)
    assert fit.sigma == pytest.approx(1.0, rel=0.03)
    assert np.all(fit.ranef()["std_error"] > 0)  # conditional SDs by selected inversion


def test_missing_qdldl_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(schur, "MAX_DENSE_SCHUR", 3)
    monkeypatch.setattr(sparse, "qdldl", None)
    with pytest.raises(HierbayesError, match=r"hierbayes\[sparse\]"):
        hb.fit_reml(FORMULAS[0], simulated_crossed())
    monkeypatch.setattr(schur, "MAX_DENSE_SCHUR", 8000)
    assert hb.fit_reml(FORMULAS[0], simulated_crossed()).converged  # dense needs no qdldl
