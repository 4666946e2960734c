"""The lme4 "bar" layer of model formulas.

`parse_formula` splits ``y ~ fixed + (terms | group)`` into the response, the fixed-effect part
(a plain Wilkinson formula handed to formulaic) and one `RandomTerm` per covariance block:

- ``(x | g)`` is one correlated block with an intercept and a slope, as in lme4;
- ``(1 + x || g)`` is split into uncorrelated blocks, one per term, as lme4's ``expandDoubleVerts``;
- ``(1 | a/b)`` expands to ``(1 | a) + (1 | a:b)``; ``(1 | a:b)`` groups by the combination.

Only the structure is handled here: column names and functions are checked against the data later,
in `hierbayes.design`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import FormulaError

_NAME = re.compile(r"^[A-Za-z_.][A-Za-z0-9_.]*$")
_CBIND = re.compile(r"^cbind\s*\((.*)\)$", re.DOTALL)
_NO_INTERCEPT = {"0", "-1", "- 1"}


@dataclass(frozen=True)
class RandomTerm:
    """One covariance block: the effects of `expr` varying over the levels of `group`."""

    expr: str  # formulaic formula of the block's columns, e.g. "1 + Days" or "0 + Days"
    group: str  # the grouping factor, e.g. "Subject" or "batch:cask"
    factors: tuple[str, ...]  # the data columns that make up the group
    correlated: bool
    source: str  # the bar as the user wrote it, for messages


@dataclass(frozen=True)
class Response:
    """The left-hand side: one expression, or ``cbind(successes, failures)``."""

    kind: str  # "single" or "cbind"
    exprs: tuple[str, ...]
    text: str


@dataclass(frozen=True)
class ParsedFormula:
    text: str
    response: Response
    fixed: str  # formulaic right-hand side, e.g. "1 + Days"
    random: tuple[RandomTerm, ...]
    offsets: tuple[str, ...] = ()  # the expressions inside offset(...) terms, added to η

    @property
    def has_random(self) -> bool:
        return bool(self.random)


def parse_formula(text: str) -> ParsedFormula:
    """Parse an lme4-style formula; raise `FormulaError` pointing at the offending piece."""
    if not isinstance(text, str):
        raise FormulaError(f"A formula must be a string like 'y ~ x + (1 | g)', got {text!r}.")
    _check_parentheses(text)
    if text.count("~") != 1:
        what = "has no '~'" if "~" not in text else "has more than one '~'"
        raise FormulaError(
            f"The formula {text!r} {what}: write it as 'response ~ predictors', "
            "e.g. 'y ~ x + (1 | g)'."
        )
    lhs, rhs = (part.strip() for part in text.split("~"))
    if not lhs:
        raise FormulaError(f"The formula {text!r} has no response left of '~'.")
    if not rhs:
        raise FormulaError(
            f"The formula {text!r} has nothing right of '~'; use '~ 1' for an intercept."
        )
    response = _parse_response(lhs, text)
    fixed_terms, random = _split_rhs(rhs, text)
    fixed_terms, offsets = _split_offsets(fixed_terms, text)
    fixed = _fixed_formula(fixed_terms)
    _check_duplicates(random, text)
    return ParsedFormula(text=text, response=response, fixed=fixed, random=tuple(random),
                         offsets=tuple(offsets))


_OFFSET = re.compile(r"^offset\s*\((.*)\)$", re.DOTALL)


def _split_offsets(terms: list[tuple[str, str]], text: str):
    """lme4's offset(expr) terms: known parts of the linear predictor, with no coefficient.
    They leave the fixed part (formulaic never sees them); the expression inside is evaluated
    like a response expression, through the allow-list."""
    kept, offsets = [], []
    for sign, term in terms:
        match = _OFFSET.match(term.strip())
        if match is None:
            kept.append((sign, term))
            continue
        inner = match.group(1).strip()
        if sign == "-" or not inner:
            raise FormulaError(
                f"In {text!r}, {term!r}: an offset is added as written, 'offset(expr)' with an "
                "expression inside (e.g. '+ offset(np.log(exposure))'); it cannot be "
                "subtracted or empty."
            )
        offsets.append(inner)
    if offsets and not kept:
        kept = [("", "1")]  # y ~ offset(z) + (1 | g) keeps its intercept, as in lme4
    return kept, offsets


def split_top_level(text: str, seps: str) -> list[tuple[str, str]]:
    """Split `text` at characters of `seps` outside parentheses; return (separator, piece) pairs.

    The first piece gets the separator "" (or "-" for a leading minus).
    """
    pieces: list[tuple[str, str]] = []
    depth, start, sep = 0, 0, ""
    for i, ch in enumerate(text):
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif depth == 0 and ch in seps and not _is_exponent_sign(text, i):
            pieces.append((sep, text[start:i].strip()))
            sep, start = ch, i + 1
    pieces.append((sep, text[start:].strip()))
    return pieces


def _is_exponent_sign(text: str, i: int) -> bool:
    # "1e-3" must not split at its minus sign.
    return (
        text[i] in "+-"
        and bool(re.search(r"\d[eE]$", text[:i]))
        and i + 1 < len(text)
        and (text[i + 1].isdigit())
    )


def _check_parentheses(text: str) -> None:
    depth = 0
    for i, ch in enumerate(text):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                raise FormulaError(
                    f"Unbalanced parentheses in {text!r}: the ')' at position {i} closes nothing.\n"
                    f"  {text}\n  {' ' * i}^"
                )
    if depth > 0:
        i = _last_unclosed(text)
        raise FormulaError(
            f"Unbalanced parentheses in {text!r}: the '(' at position {i} is never closed.\n"
            f"  {text}\n  {' ' * i}^"
        )


def _last_unclosed(text: str) -> int:
    stack = []
    for i, ch in enumerate(text):
        if ch == "(":
            stack.append(i)
        elif ch == ")":
            stack.pop()
    return stack[-1]


def _parse_response(lhs: str, text: str) -> Response:
    match = _CBIND.match(lhs)
    if match:
        args = [piece for _, piece in split_top_level(match.group(1), ",")]
        if len(args) != 2 or not all(args):
            raise FormulaError(
                f"In {text!r}, cbind() needs exactly two arguments, the successes and the "
                f"failures, e.g. 'cbind(incidence, size - incidence)'; got {lhs!r}."
            )
        return Response("cbind", tuple(args), lhs)
    if len(split_top_level(lhs, "|")) > 1:
        raise FormulaError(
            f"In {text!r}, the response {lhs!r} uses '|', which hierbayes does not accept on the "
            "left of '~'. For binomial data write 'cbind(successes, failures) ~ ...' as in lme4."
        )
    return Response("single", (lhs,), lhs)


def _split_rhs(rhs: str, text: str) -> tuple[list[tuple[str, str]], list[RandomTerm]]:
    fixed: list[tuple[str, str]] = []
    random: list[RandomTerm] = []
    for sign, piece in split_top_level(rhs, "+-"):
        if not piece:
            if sign or len(rhs.strip()) == 0:
                raise FormulaError(f"Empty term in {text!r}: check for a doubled or trailing '+'.")
            continue
        bar = _bar_content(piece)
        if bar is None:
            fixed.append((sign, piece))
            continue
        if sign == "-":
            raise FormulaError(
                f"In {text!r}, the random-effects term {piece!r} is subtracted; "
                "group-level terms can only be added."
            )
        random.extend(_parse_bar(bar, piece, text))
    return fixed, random


def _bar_content(piece: str) -> str | None:
    """The inside of a parenthesised term with a top-level '|', else None."""
    if not (piece.startswith("(") and piece.endswith(")")):
        if "|" in piece:
            raise FormulaError(
                f"The term {piece!r} contains '|' outside parentheses; write group-level terms "
                "as '(terms | group)'."
            )
        return None
    inner = piece[1:-1]
    if _matching_close(piece) != len(piece) - 1:
        return None  # e.g. "(a + b):(c + d)"
    return inner if len(split_top_level(inner, "|")) > 1 else None


def _matching_close(piece: str) -> int:
    depth = 0
    for i, ch in enumerate(piece):
        depth += ch == "("
        depth -= ch == ")"
        if depth == 0:
            return i
    return -1


def _parse_bar(inner: str, source: str, text: str) -> list[RandomTerm]:
    parts = split_top_level(inner, "|")
    if len(parts) == 3 and parts[1][1] == "":  # "a || g" splits into "a", "", "g"
        lhs, group_text, correlated = parts[0][1], parts[2][1], False
    elif len(parts) == 2:
        lhs, group_text, correlated = parts[0][1], parts[1][1], True
    else:
        raise FormulaError(f"In {text!r}, {source!r} has more than one bar; use '|' or '||' once.")
    if not lhs:
        raise FormulaError(
            f"In {text!r}, {source!r} has nothing left of the bar; write e.g. '(1 | g)' for a "
            "varying intercept."
        )
    if not group_text:
        raise FormulaError(
            f"In {text!r}, {source!r} has no grouping factor right of the bar; write e.g. "
            "'(1 | g)' where g is a column of the data."
        )
    groups = _expand_groups(group_text, source, text)
    exprs = [lhs] if correlated else _split_uncorrelated(lhs, source, text)
    return [
        RandomTerm(
            expr=expr.strip(),
            group=":".join(factors),
            factors=factors,
            correlated=correlated,
            source=source,
        )
        for factors in groups
        for expr in exprs
    ]


def _expand_groups(group_text: str, source: str, text: str) -> list[tuple[str, ...]]:
    """``a/b`` -> [(a,), (a, b)]; ``a:b`` -> [(a, b)]; ``a`` -> [(a,)]."""
    nested = [piece for _, piece in split_top_level(group_text, "/")]
    groups: list[tuple[str, ...]] = []
    prefix: tuple[str, ...] = ()
    for piece in nested:
        factors = tuple(name.strip() for name in piece.split(":"))
        for name in factors:
            if not _NAME.match(name):
                raise FormulaError(
                    f"In {text!r}, the grouping factor {name!r} of {source!r} is not a column "
                    "name. Grouping factors must be plain column names, combined with ':' "
                    "(interaction) or '/' (nesting), e.g. '(1 | school/class)'."
                )
        prefix = prefix + factors
        groups.append(prefix)
    return groups


def _split_uncorrelated(lhs: str, source: str, text: str) -> list[str]:
    """``1 + x + z`` -> ["1", "0 + x", "0 + z"], as lme4 expands ``||``."""
    terms = split_top_level(lhs, "+-")
    intercept = True
    exprs: list[str] = []
    for sign, term in terms:
        if not term:
            continue
        if term in {"0", "1"} or (sign == "-" and term == "1"):
            intercept = term == "1" and sign != "-"
            continue
        if sign == "-":
            raise FormulaError(f"In {text!r}, {source!r}: only '- 1' may be subtracted in a bar.")
        exprs.append(f"0 + {term}")
    return (["1"] if intercept else []) + exprs


def _fixed_formula(terms: list[tuple[str, str]]) -> str:
    if not terms:
        return "1"
    out = ""
    for sign, term in terms:
        out += (f" {sign} " if sign else "") + term
    return out.strip()


def _check_duplicates(random: list[RandomTerm], text: str) -> None:
    seen: dict[tuple[str, str], str] = {}
    for term in random:
        key = (term.group, term.expr)
        if key in seen:
            raise FormulaError(
                f"In {text!r}, the group-level term {term.expr!r} over {term.group!r} appears "
                f"twice ({seen[key]!r} and {term.source!r}); each may appear once."
            )
        seen[key] = term.source
