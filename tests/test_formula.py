import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hierbayes import FormulaError, HierbayesError, parse_formula


def blocks(formula):
    return [(t.expr, t.group, t.factors, t.correlated) for t in parse_formula(formula).random]


@pytest.mark.parametrize(
    ("formula", "fixed", "expected"),
    [
        ("y ~ x + (1 | g)", "x", [("1", "g", ("g",), True)]),
        ("y ~ x + (x | g)", "x", [("x", "g", ("g",), True)]),
        ("y ~ x + (0 + x | g)", "x", [("0 + x", "g", ("g",), True)]),
        ("y ~ x + (1 + x || g)", "x", [("1", "g", ("g",), False), ("0 + x", "g", ("g",), False)]),
        ("y ~ x + (x || g)", "x", [("1", "g", ("g",), False), ("0 + x", "g", ("g",), False)]),
        (
            "y ~ (0 + x + z || g)",
            "1",
            [("0 + x", "g", ("g",), False), ("0 + z", "g", ("g",), False)],
        ),
        ("y ~ 1 + (1 | a/b)", "1", [("1", "a", ("a",), True), ("1", "a:b", ("a", "b"), True)]),
        (
            "y ~ (1 | a/b/c)",
            "1",
            [
                ("1", "a", ("a",), True),
                ("1", "a:b", ("a", "b"), True),
                ("1", "a:b:c", ("a", "b", "c"), True),
            ],
        ),
        ("y ~ (1 | a:b)", "1", [("1", "a:b", ("a", "b"), True)]),
        ("y ~ (1 | a) + (1 | b)", "1", [("1", "a", ("a",), True), ("1", "b", ("b",), True)]),
        ("y ~ x + (1 + f | g)", "x", [("1 + f", "g", ("g",), True)]),
        ("y ~ x1 * x2 + np.log(x) + C(f) + (1 | g)", "x1 * x2 + np.log(x) + C(f)", None),
        ("y ~ 0 + x + (1 | g)", "0 + x", None),
        ("y ~ x - 1 + (1 | g)", "x - 1", None),
        ("y ~ I(a - b) + (1 | g)", "I(a - b)", None),
        ("y ~ (1 | g)", "1", None),
    ],
)
def test_expansion(formula, fixed, expected):
    parsed = parse_formula(formula)
    assert parsed.fixed == fixed
    if expected is not None:
        assert blocks(formula) == expected


def test_response_kinds():
    assert parse_formula("np.log(y) ~ x").response.exprs == ("np.log(y)",)
    cbind = parse_formula("cbind(incidence, size - incidence) ~ period + (1 | herd)").response
    assert cbind.kind == "cbind"
    assert cbind.exprs == ("incidence", "size - incidence")


@pytest.mark.parametrize(
    ("formula", "message"),
    [
        ("y ~ x + (1 | g", r"'\(' at position 8 is never closed"),
        ("y ~ x) + (1 | g)", r"'\)' at position 5 closes nothing"),
        ("y x + (1 | g)", "has no '~'"),
        ("y ~ x ~ z", "more than one '~'"),
        ("~ x", "no response"),
        ("y ~ ", "nothing right of '~'"),
        ("y ~ x + ( | g)", r"'\( \| g\)' has nothing left of the bar"),
        ("y ~ x + (1 | )", r"'\(1 \| \)' has no grouping factor"),
        ("y ~ x + + z", "Empty term"),
        ("y ~ x + ", "Empty term"),
        ("y ~ x | g", "outside parentheses"),
        ("y ~ (1 | g) + (1 | g)", "appears twice"),
        ("y ~ (1 | a + b)", "'a \\+ b' .* is not a column name"),
        ("y ~ x - (1 | g)", "subtracted"),
        ("cbind(s) ~ x", "exactly two arguments"),
        ("s | trials(n) ~ x", "cbind"),
        ("y ~ (1 | g | h)", "more than one bar"),
        (42, "must be a string"),
    ],
)
def test_malformed(formula, message):
    with pytest.raises(FormulaError, match=message):
        parse_formula(formula)


_pieces = st.sampled_from(
    ["x", "z", "1", "0", "(", ")", "|", "||", "+", "-", "~", "g", "a/b", ":", "*", "np.log(x)",
     " ", "cbind(s, f)", ",", "/"]
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_pieces, max_size=12))
def test_random_text_raises_only_hierbayes_errors(pieces):
    with contextlib.suppress(HierbayesError):
        parse_formula("".join(pieces))
