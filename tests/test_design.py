import warnings

import numpy as np
import pandas as pd
import pytest
from conftest import ALL_REFERENCES, lme4_name, load_reference

import hierbayes as hb
from hierbayes import DataWarning, DesignError, FamilyError, FormulaError, make_design


@pytest.fixture
def df():
    rng = np.random.default_rng(0)
    n = 40
    return pd.DataFrame({
        "y": rng.normal(size=n),
        "x": rng.normal(size=n),
        "z": rng.uniform(1, 2, size=n),
        "f": np.tile(["a", "b", "c", "d"], n // 4),
        "g": np.repeat([f"g{i}" for i in range(8)], n // 8),
        "h": np.tile(["p", "q"], n // 2),
        "s": rng.integers(0, 5, size=n),
        "k": rng.integers(5, 10, size=n),
    })


@pytest.mark.parametrize("name", ALL_REFERENCES)
def test_reference_formulas(name):
    data, ref = load_reference(name)
    design = make_design(ref["formula"], data, family=ref["family"])
    assert design.n_obs == ref["nobs"]
    assert [lme4_name(n) for n in design.fixed_names] == ref["fixed_effects"]["terms"]
    ours = {":".join(reversed(g.split(":"))): len(lv) for g, lv in design.groups.items()}
    assert ours == ref["ngroups"]  # lme4 prints the nested group a:b as b:a


def test_reference_levels_and_sleepstudy_block():
    data, ref = load_reference("sleepstudy")
    design = make_design(ref["formula"], data)
    (block,) = design.blocks
    assert block.terms == ("Intercept", "Days")
    assert block.correlated
    assert list(block.levels) == sorted({r["grp"] for r in _rows(ref["ranef"])})
    assert np.array_equal(block.Z[:, 1], data["Days"].to_numpy(float))
    assert np.array_equal(np.asarray(block.levels)[block.index], data["Subject"].to_numpy(str))
    assert design.coords["Subject__term"] == ["Intercept", "Days"]


def _rows(table):
    keys = list(table)
    return [dict(zip(keys, vals, strict=True)) for vals in zip(*table.values(), strict=True)]


def test_nested_levels_are_combinations():
    data, _ = load_reference("Pastes")
    design = make_design("strength ~ 1 + (1 | batch/cask)", data)
    outer, inner = design.blocks
    assert (outer.group, inner.group) == ("batch", "batch:cask")
    assert inner.levels[:3] == ("A:a", "A:b", "A:c")
    assert inner.n_levels == 30 and inner.factors == ("batch", "cask")


def test_uncorrelated_blocks_are_split(df):
    design = make_design("y ~ x + (1 + x || g)", df)
    assert [(b.name, b.terms, b.correlated) for b in design.blocks] == [
        ("g", ("Intercept",), False),
        ("g.1", ("x",), False),
    ]


def test_categorical_slope_and_fixed_transforms(df):
    design = make_design("y ~ x * z + np.log(z) + C(f) + (1 + h | g)", df)
    assert design.fixed_names == (
        "Intercept", "x", "z", "np.log(z)", "C(f)[T.b]", "C(f)[T.c]", "C(f)[T.d]", "x:z",
    )
    assert design.blocks[0].terms == ("Intercept", "h[T.q]")
    assert np.allclose(design.X[:, 3], np.log(df["z"]))


def test_no_intercept(df):
    assert make_design("y ~ 0 + x + (1 | g)", df).fixed_names == ("x",)
    assert make_design("y ~ x - 1 + (1 | g)", df).fixed_names == ("x",)
    assert make_design("y ~ (0 + x | g)", df).blocks[0].terms == ("x",)


def test_responses(df):
    binom = make_design("cbind(s, k - s) ~ x + (1 | g)", df, family="binomial")
    assert np.array_equal(binom.y, df["s"]) and np.array_equal(binom.trials, df["k"])
    assert make_design("np.log(z) ~ x", df).y == pytest.approx(np.log(df["z"]))
    bern = make_design("y ~ x + (1 | g)", df.assign(y=df["y"] > 0), family="bernoulli")
    assert set(bern.y) == {0.0, 1.0}


def test_interaction_grouping_and_crossed(df):
    design = make_design("y ~ (1 | g) + (1 | h) + (1 | g:h)", df)
    assert [b.n_levels for b in design.blocks] == [8, 2, 16]


def test_user_frame_untouched(df):
    before = df.copy(deep=True)
    messy = df.copy()
    messy.loc[3, "x"] = np.nan
    messy_before = messy.copy(deep=True)
    with pytest.warns(DataWarning, match=r"Dropped 1 of 40 rows .* 'x' \(1\)"):
        make_design("y ~ x * C(f) + (1 | g)", messy)
    make_design("y ~ x + (1 | g)", df)
    pd.testing.assert_frame_equal(df, before)
    pd.testing.assert_frame_equal(messy, messy_before)


def test_missing_values_dropped_or_raised(df):
    messy = df.copy()
    messy.loc[[1, 2], "x"] = np.nan
    messy.loc[5, "g"] = None
    with pytest.warns(DataWarning, match=r"Dropped 3 of 40 rows .* 'x' \(2\), 'g' \(1\)"):
        design = make_design("y ~ x + (1 | g)", messy)
    assert design.n_obs == 37 and design.n_dropped == 3
    assert list(design.row_labels[:3]) == [0, 3, 4]
    with pytest.raises(DesignError, match="3 of 40 rows have missing values"):
        make_design("y ~ x + (1 | g)", messy, missing="raise")
    # A column the formula does not use may hold missing values freely.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        make_design("y ~ z + (1 | g)", messy.assign(g=df["g"]))


@pytest.mark.parametrize(
    ("formula", "family", "change", "error", "message"),
    [
        ("y ~ xx + (1 | g)", "gaussian", {}, DesignError, "column 'xx'.* Did you mean 'x'"),
        ("y ~ x + (1 | gg)", "gaussian", {}, DesignError, "column 'gg'"),
        ("y ~ foo(x) + (1 | g)", "gaussian", {}, FormulaError, r"foo\(\) is not a known function"),
        ("y ~ x + (1 | g)", "gaussian", {"g": "same"}, DesignError, "'g' .* has 1 level"),
        ("y ~ x + (1 | id)", "gaussian", {"id": "rows"}, DesignError, "40 levels for 40 obs"),
        ("y ~ x + (1 | g)", "gaussian", {"y": "text"}, DesignError, "response 'y' is not numeric"),
        ("y ~ x + (1 | g)", "gaussian", {"x": "inf"}, DesignError, "Column 'x' has 1 infinite"),
        ("np.log(y) ~ x + (1 | g)", "gaussian", {}, DesignError, "non-finite"),
        ("y ~ np.log(x) + (1 | g)", "gaussian", {}, DesignError, r"'np.log\(x\)' has \d+ non-fin"),
        ("y ~ x + (1 | g)", "bernoulli", {}, DesignError, "must be 0/1"),
        ("y ~ x + (1 | g)", "binomial", {}, FamilyError, "cbind"),
        ("cbind(s, k) ~ x + (1 | g)", "gaussian", {}, FamilyError, "family='binomial'"),
        ("cbind(s, k - 2 * s) ~ x", "binomial", {}, DesignError, "failures 'k - 2 \\* s'"),
        ("y ~ x + (1 | g)", "poisson", {}, DesignError, "non-negative whole numbers"),
        ("y ~ x + (1 | g)", "weibull", {}, FamilyError, "Unknown family 'weibull'"),
    ],
)
def test_bad_input(df, formula, family, change, error, message):
    data = df.copy()
    for column, how in change.items():
        data[column] = {
            "same": lambda: "only",
            "rows": lambda: np.arange(len(data)).astype(str),
            "text": lambda: "abc",
            "inf": lambda: data["x"].where(data.index != 7, np.inf),
        }[how]()
    with pytest.raises(error, match=message):
        make_design(formula, data, family=family)


def test_empty_and_wrong_type(df):
    with pytest.raises(DesignError, match="empty"):
        make_design("y ~ x", df.iloc[:0])
    with pytest.raises(DesignError, match="must be a pandas DataFrame"):
        make_design("y ~ x", df.to_dict())


def test_collinear_columns_dropped_with_warning(df):
    data = df.assign(x2=2 * df["x"] + 1, zero=0.0)
    with pytest.warns(DataWarning, match=r"dropping 2 column\(s\) 'x2', 'zero'"):
        design = make_design("y ~ x + x2 + zero + z + (1 | g)", data)
    assert design.fixed_names == ("Intercept", "x", "z")
    assert design.dropped_fixed == ("x2", "zero")
    new = design.evaluate(data.head(3))
    assert new.X.shape == (3, 3)


def test_evaluate_matches_training_and_flags_unseen(df):
    design = make_design("y ~ x + C(f) + (1 + x | g) + (1 | g:h)", df)
    same = design.evaluate(df.drop(columns="y"))
    assert np.array_equal(same.X, design.X)
    for new_index, block in zip(same.index, design.blocks, strict=True):
        assert np.array_equal(new_index, block.index)
    new = df.head(4).copy()
    new.loc[0, "g"] = "brand-new"
    encoded = design.evaluate(new)
    assert encoded.index[0][0] == -1 and encoded.index[0][1] == 0
    assert encoded.unseen_levels == {"g": ["brand-new"], "g:h": ["brand-new:p"]}
    assert np.array_equal(encoded.X[1:], design.X[1:4])


def test_evaluate_rejects_unknown_fixed_category_and_missing(df):
    design = make_design("y ~ x + C(f) + (1 | g)", df)
    with pytest.raises(DesignError, match="not seen in training"):
        design.evaluate(df.head(2).assign(f="zz"))
    with pytest.raises(DesignError, match="missing values in column"):
        design.evaluate(df.head(2).assign(x=np.nan))
    with pytest.raises(DesignError, match="column 'x'"):
        design.evaluate(df.drop(columns="x"))


def test_numeric_and_categorical_level_order():
    data = pd.DataFrame({
        "y": np.arange(8.0),
        "g": [10, 9, 10, 9, 100, 100, 9, 10],
        "c": pd.Categorical(list("bbaabbaa"), categories=["b", "a", "unused"]),
    })
    design = make_design("y ~ (1 | g) + (1 | c)", data)
    assert design.blocks[0].levels == ("9", "10", "100")
    assert design.blocks[1].levels == ("b", "a")


def test_design_is_frozen(df):
    design = make_design("y ~ x + (1 | g)", df)
    with pytest.raises(AttributeError, match="cannot assign to field 'y'"):
        design.y = None
    assert "Design: y ~ x + (1 | g)" in repr(design)
    assert hb.Design is type(design)


@pytest.mark.parametrize(
    ("formula", "message"),
    [
        ("y ~ x + (1 | g) + (x | g)", "both give 'g' a varying Intercept"),
        ("y ~ y + (1 | g)", "response 'y' also appears as a predictor"),
        ("y ~ x + (0 | g)", "no columns left of the bar"),
        ("y ~ x:", r"cannot be parsed: Operator `:`"),
    ],
)
def test_bad_structure(df, formula, message):
    with pytest.raises(FormulaError, match=message) as info:
        make_design(formula, df)
    assert "\x1b[" not in str(info.value)  # no terminal colour codes from formulaic


def test_known_sigma_column():
    schools = hb.simulate.eight_schools()
    design = make_design("effect ~ 1 + (1 | school)", schools, known_sigma="se")
    assert np.array_equal(design.known_sigma, schools["se"].to_numpy(float))
    assert design.known_sigma_column == "se" and design.blocks[0].n_levels == 8
    with pytest.raises(DesignError, match="8 levels for 8 observations"):
        make_design("effect ~ 1 + (1 | school)", schools)  # without known SDs: unidentifiable
    with pytest.raises(DesignError, match=r"positive, finite SDs; found -1\.0"):
        make_design("effect ~ 1 + (1 | school)", schools.assign(se=-1.0), known_sigma="se")
    with pytest.raises(DesignError, match="known_sigma names column 'sd'"):
        make_design("effect ~ 1 + (1 | school)", schools, known_sigma="sd")
    with pytest.raises(FamilyError, match="gaussian family only"):
        make_design("effect ~ 1 + (1 | school)", schools, family="poisson", known_sigma="se")


def test_level_dims_avoid_reserved_names(df):
    data = df.assign(sample=df["g"], obs=np.arange(len(df)).astype(str))
    design = make_design("cbind(s, k - s) ~ x + (1 | sample) + (1 | obs)", data, family="binomial")
    assert [b.level_dim for b in design.blocks] == ["sample_level", "obs_level"]
    assert design.coords["obs_level"] == sorted(str(i) for i in range(len(df)))
    assert "sample" not in design.coords and "obs" not in design.coords
