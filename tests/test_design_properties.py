"""Property tests of the design: invariances under row order and level names, and error types."""

import contextlib
import warnings

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hierbayes import HierbayesError, make_design

FORMULAS = [
    "y ~ x + (1 | g)",
    "y ~ x + (x | g)",
    "y ~ x + (1 + x || g) + (1 | h)",
    "y ~ C(f) + (1 | g/h)",
    "y ~ x * C(f) + (0 + x | g:h)",
]


def make_data(seed: int, n: int = 36) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "y": rng.normal(size=n),
        "x": rng.normal(size=n),
        "f": rng.choice(list("abc"), size=n),
        "g": rng.choice([f"g{i}" for i in range(6)], size=n),
        "h": rng.choice(["p", "q", "r"], size=n),
    })


def partition(codes: np.ndarray) -> set[frozenset[int]]:
    return {frozenset(np.flatnonzero(codes == c).tolist()) for c in np.unique(codes)}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 10_000), formula=st.sampled_from(FORMULAS), perm_seed=st.integers(0, 99))
def test_permuting_rows_permutes_the_design(seed, formula, perm_seed):
    data = make_data(seed)
    perm = np.random.default_rng(perm_seed).permutation(len(data))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        base = make_design(formula, data)
        shuffled = make_design(formula, data.iloc[perm])
    assert np.array_equal(shuffled.y, base.y[perm])
    assert base.fixed_names == shuffled.fixed_names
    assert np.allclose(shuffled.X, base.X[perm])
    for a, b in zip(base.blocks, shuffled.blocks, strict=True):
        assert a.levels == b.levels  # the level order does not depend on row order
        assert np.array_equal(b.index, a.index[perm])
        assert np.allclose(b.Z, a.Z[perm])


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), formula=st.sampled_from(FORMULAS),
       names=st.permutations([f"level-{c}" for c in "UVWXYZ"]))
def test_relabelling_levels_changes_only_labels(seed, formula, names):
    data = make_data(seed)
    relabel = dict(zip(sorted(data["g"].unique()), names, strict=False))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        base = make_design(formula, data)
        renamed = make_design(formula, data.assign(g=data["g"].map(relabel)))
    assert np.array_equal(base.X, renamed.X) and np.array_equal(base.y, renamed.y)
    for a, b in zip(base.blocks, renamed.blocks, strict=True):
        assert partition(a.index) == partition(b.index)
        assert sorted(a.counts) == sorted(b.counts)
        assert np.array_equal(a.Z, b.Z)


_tokens = st.sampled_from([
    "y", "x", "f", "g", "h", "nope", "1", "0", "+", "-", "*", ":", "/", "|", "||", "(", ")", "~",
    "np.log(x)", "C(f)", "I(x - 1)", "foo(x)", "cbind(y, x)", " ", "np.sqrt(", ",", "**2",
])


@settings(max_examples=200, deadline=None)
@given(tokens=st.lists(_tokens, min_size=1, max_size=10),
       family=st.sampled_from(["gaussian", "bernoulli", "poisson", "binomial", "student_t"]))
def test_any_formula_raises_only_hierbayes_errors(tokens, family):
    data = make_data(1)
    with warnings.catch_warnings(), contextlib.suppress(HierbayesError):
        warnings.simplefilter("ignore")
        make_design("".join(tokens), data, family=family)
