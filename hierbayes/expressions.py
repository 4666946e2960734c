"""The Python inside formulas: an allow-list, the columns it reads, and the one door to formulaic.

formulaic evaluates the Python parts of a formula (``np.log(x)``, ``I(a - b)``, ``C(f)``) with
`eval`, numpy in scope; an attribute chain from ``np`` reaches ctypes, files and the shell. So no
formula text reaches formulaic (not even to list its variables, which also evaluates code) before
`checked_columns` has checked it against the allow-list below, on the Python AST:

- column names (backticks quote odd ones: ``np.log(`dose (mg)`)``), numeric literals;
- arithmetic (``+ - * / // % **``, unary ``-``/``+``) and comparisons (``== != < <= > >=``);
- calls of the functions in `FUNCTIONS`, with the keywords listed there; lists and tuples of
  allowed values as their arguments (``C(f, levels=["b", "a"])``, ``bs(x, knots=[2, 5])``);
- strings only as contrast or level arguments of ``C(...)``; contrasts (``contr.treatment("b")``,
  ``Treatment("b")``, ``contr.sum``) only inside ``C(...)``.

Anything else (other attributes, dunders, other calls, lambdas, subscripts, comprehensions, ...)
raises `FormulaError` naming the token. Around that Python, only formulaic's operators (``+ - * /
: ** ^ %in%``), parentheses, names and numbers are accepted. formulaic's own tokenizer splits the
text, so the check sees exactly the pieces formulaic would evaluate.

`model_matrix` (every model matrix of a formula piece) and `checked_columns` (every variable
discovery) check first; `hierbayes.design`, `.validation` and `.response` reach formulaic only
through them. `context` holds the functions formulaic does not know (``within``, ``between``):
re-encoding new data with a kept model spec needs them too.
Spec layer: no PyMC.
"""

from __future__ import annotations

import ast
import functools
import re
from dataclasses import dataclass
from typing import Any

from formulaic import Formula
from formulaic import model_matrix as _formulaic_model_matrix
from formulaic.errors import FormulaicError
from formulaic.parser.algos.tokenize import tokenize
from formulaic.parser.types import Token
from formulaic.utils.code import sanitize_variable_names

from .centering import between, within
from .errors import FormulaError


@dataclass(frozen=True)
class Allowed:
    """One function a formula may call."""

    keywords: tuple[str, ...] = ()  # keyword arguments it may be given
    strings_from: int | None = None  # positional index from which strings are allowed (None: no)
    contrast: bool = False  # a contrast: only inside C(...), also named without a call
    function: Any = None  # the callable, when formulaic does not provide it itself


_CONTRAST = Allowed(strings_from=0, contrast=True)

# The allow-list: dotted name -> what it accepts. Add a transform here (with `function=` when
# formulaic does not know it) and it works in the fixed part, in bars and in responses.
FUNCTIONS: dict[str, Allowed] = {
    "np.log": Allowed(),
    "np.log1p": Allowed(),
    "np.exp": Allowed(),
    "np.sqrt": Allowed(),
    "np.abs": Allowed(),
    "I": Allowed(),
    "C": Allowed(("contrasts", "levels", "spans_intercept"), strings_from=1),
    "scale": Allowed(("center", "scale", "ddof")),
    "center": Allowed(),
    "standardize": Allowed(("center", "rescale", "ddof")),
    "poly": Allowed(("degree", "raw")),
    "bs": Allowed(("df", "knots", "degree", "include_intercept", "lower_bound", "upper_bound")),
    "cr": Allowed(("df", "knots", "lower_bound", "upper_bound")),
    "within": Allowed(function=within),  # x minus its group mean (`hierbayes.centering`)
    "between": Allowed(function=between),  # the group mean of x
    "contr.treatment": Allowed(("base",), 0, True),
    "contr.sum": _CONTRAST,
    "contr.helmert": Allowed(("reverse", "scale"), 0, True),
    "contr.poly": Allowed(("scores",), 0, True),
    "contr.diff": Allowed(("backward",), 0, True),
    "Treatment": Allowed(("reference",), 0, True),
    "Sum": _CONTRAST,
    "Helmert": _CONTRAST,
    "Poly": _CONTRAST,
    "Diff": _CONTRAST,
}

_OPERATOR_CHARS = frozenset("+-*/:^")
_NAMED_OPERATORS = ("in",)  # a %in% b
_BINARY = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv, ast.Mod, ast.Pow)
_UNARY = (ast.UAdd, ast.USub)
_COMPARE = (ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE)


def allowed_list() -> str:
    """The callable names of the allow-list, for messages."""
    return ", ".join(name for name, a in FUNCTIONS.items() if not a.contrast)


@functools.lru_cache(maxsize=512)
def checked_columns(piece: str, formula: str) -> frozenset[str]:
    """The names a formula piece reads (data columns), after checking it against the allow-list.

    `piece` is formulaic formula text (``"1 + np.log(x) + C(f)"``); `formula` the whole formula,
    for messages. Raises `FormulaError` naming the first token that is not allowed, or the piece
    when formulaic cannot parse it.
    """
    names: set[str] = set()
    try:
        tokens = list(tokenize(piece))
    except FormulaicError as err:
        raise FormulaError(f"In {formula!r}, the piece {piece!r} cannot be parsed: {err}") from None
    for token in tokens:
        names |= _token_names(token, formula)
    try:
        Formula(piece)  # parsing only: formulaic evaluates nothing before materializing
    except (FormulaicError, SyntaxError, ValueError) as err:
        raise FormulaError(
            f"In {formula!r}, the piece {piece!r} cannot be parsed: {plain(err)}"
        ) from None
    return frozenset(names)


def model_matrix(piece: str, frame, formula: str):
    """formulaic's model matrix (pandas) of a checked `piece` on `frame`; formulaic's errors pass
    through for the caller to word."""
    checked_columns(piece, formula)
    return _formulaic_model_matrix(
        piece, frame, context=context(), na_action="ignore", output="pandas"
    )


def context() -> dict[str, Any]:
    """The functions of the allow-list that formulaic does not provide itself: what every
    evaluation of a formula needs in scope, new data included (`ModelSpec.get_model_matrix`)."""
    return {name: a.function for name, a in FUNCTIONS.items() if a.function is not None}


def plain(err: Exception) -> str:
    """An error message of formulaic without its terminal colour codes."""
    return re.sub(r"\x1b\[[0-9;]*m", "", str(err))


# --- tokens ---------------------------------------------------------------------------------


def _token_names(token: Token, formula: str) -> set[str]:
    kind, text = token.kind, token.token
    if kind is Token.Kind.NAME:
        return {text}  # looked up in the data by name, never evaluated
    if kind is Token.Kind.PYTHON:
        return _python_names(text, formula)
    if kind is Token.Kind.VALUE:
        if not isinstance(_literal(text), int | float):
            _refuse(formula, text, "a string outside C(...)", "Quote odd column names with "
                    "backticks, e.g. `my column`.")
        return set()
    if kind is Token.Kind.CONTEXT and text in "()":
        return set()
    if kind is Token.Kind.OPERATOR and (set(text) <= _OPERATOR_CHARS or text in _NAMED_OPERATORS):
        return set()
    _refuse(formula, text, "not a formula operator", "Use + - * / : ** and parentheses.")
    raise AssertionError("unreachable")


def _literal(text: str):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return None


def _python_names(code: str, formula: str) -> set[str]:
    aliases: dict[str, str] = {}
    text = sanitize_variable_names(code, {}, aliases)  # `odd name` -> a Python identifier
    try:
        tree = ast.parse(text, mode="eval")
    except SyntaxError:
        raise FormulaError(
            f"In {formula!r}, {code!r} is not a valid expression (check its parentheses, commas "
            "and quotes)."
        ) from None
    checker = _Checker(formula)
    checker.visit(tree.body, strings=False, inside_c=False, argument=False)
    return {aliases.get(name, name) for name in checker.names}


# --- the AST walk ---------------------------------------------------------------------------


class _Checker:
    """Walks an expression, refusing every node the allow-list does not name; collects names."""

    def __init__(self, formula: str):
        self.formula = formula
        self.names: set[str] = set()

    def visit(self, node: ast.AST, strings: bool, inside_c: bool, argument: bool) -> None:
        if isinstance(node, ast.Constant):
            self._constant(node, strings)
        elif isinstance(node, ast.Name):
            self._name(node, inside_c)
        elif isinstance(node, ast.Attribute):
            self._reference(node, inside_c)
        elif isinstance(node, ast.BinOp) and isinstance(node.op, _BINARY):
            if isinstance(node.op, ast.Pow) and not _reads_a_name(node):
                # 10 ** 10 ** 10 would compute a number of ten billion digits.
                _refuse(self.formula, _source(node), "a power of numbers alone",
                        "Write the number itself.")
            for child in (node.left, node.right):
                self.visit(child, False, inside_c, False)
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, _UNARY):
            self.visit(node.operand, False, inside_c, False)
        elif isinstance(node, ast.Compare) and all(isinstance(o, _COMPARE) for o in node.ops):
            for child in (node.left, *node.comparators):
                self.visit(child, False, inside_c, False)
        elif isinstance(node, ast.Call):
            self._call(node, inside_c)
        elif isinstance(node, ast.List | ast.Tuple) and argument:
            for child in node.elts:
                self.visit(child, strings, inside_c, False)
        else:
            _refuse(self.formula, _source(node), _what(node), "")

    def _constant(self, node: ast.Constant, strings: bool) -> None:
        value = node.value
        if isinstance(value, str) and strings:
            return
        if isinstance(value, bool | int | float | complex) or value is None:
            return
        _refuse(self.formula, _source(node), "a string outside C(...)" if isinstance(value, str)
                else "a literal that is not a number", "Strings are allowed only as levels or "
                "contrast arguments of C(...), e.g. C(f, contr.treatment('b')).")

    def _name(self, node: ast.Name, inside_c: bool) -> None:
        if node.id.startswith("__"):
            _refuse(self.formula, node.id, "a dunder name", "")
        entry = FUNCTIONS.get(node.id)
        if entry is not None and entry.contrast and inside_c:
            return  # C(f, Sum): a contrast named without a call
        self.names.add(node.id)

    def _reference(self, node: ast.Attribute, inside_c: bool) -> None:
        name = _dotted(node)
        entry = FUNCTIONS.get(name) if name else None
        if entry is not None and entry.contrast and inside_c:
            return  # C(f, contr.sum)
        hint = ""
        if name and name.count(".") == 1 and not name.startswith(("np.", "contr.")):
            hint = f"If {name!r} is a column, quote it with backticks: `{name}`."
        _refuse(self.formula, _source(node), "an attribute, not an allowed function", hint)

    def _call(self, node: ast.Call, inside_c: bool) -> None:
        name = _dotted(node.func)
        entry = FUNCTIONS.get(name) if name else None
        if entry is None:
            self._unknown_call(node, name)
        if entry.contrast and not inside_c:
            _refuse(self.formula, name, "a contrast outside C(...)",
                    f"Write it as C(column, {name}(...)).")
        for position, arg in enumerate(node.args):
            if isinstance(arg, ast.Starred):
                _refuse(self.formula, _source(arg), "a starred argument", "")
            strings = entry.strings_from is not None and position >= entry.strings_from
            self.visit(arg, strings, inside_c or name == "C", True)
        for keyword in node.keywords:
            if keyword.arg is None or keyword.arg not in entry.keywords:
                allowed = ", ".join(entry.keywords) or "none"
                _refuse(self.formula, f"{name}({keyword.arg or '**'}=...)",
                        f"a keyword {name}() does not take here", f"Allowed keywords: {allowed}.")
            strings = entry.strings_from is not None
            self.visit(keyword.value, strings, inside_c or name == "C", True)

    def _unknown_call(self, node: ast.Call, name: str | None) -> None:
        if name is not None and "." not in name and not name.startswith("_"):
            hint = f" (numpy's is np.{name})" if name in ("log", "log1p", "exp", "sqrt", "abs") \
                else ""
            raise FormulaError(
                f"In {self.formula!r}, {name}() is not a known function{hint}. Formulas may call "
                f"only {allowed_list()}."
            )
        _refuse(self.formula, _source(node.func), "not an allowed function", "")


def _reads_a_name(node: ast.AST) -> bool:
    return any(isinstance(n, ast.Name) for n in ast.walk(node))


def _dotted(node: ast.AST) -> str | None:
    """``np.log`` for Attribute(Name('np'), 'log'); None for anything but a plain dotted name."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return ".".join([node.id, *reversed(parts)])


def _source(node: ast.AST) -> str:
    text = ast.unparse(node)
    return text if len(text) <= 80 else text[:77] + "..."


_KINDS = {
    ast.Lambda: "a lambda", ast.Subscript: "a subscript", ast.ListComp: "a comprehension",
    ast.SetComp: "a comprehension", ast.DictComp: "a comprehension",
    ast.GeneratorExp: "a generator", ast.NamedExpr: "an assignment", ast.IfExp: "a conditional",
    ast.BoolOp: "'and'/'or'", ast.JoinedStr: "an f-string", ast.Dict: "a dict",
    ast.Set: "a set", ast.Await: "an await", ast.Starred: "a starred argument",
}


def _what(node: ast.AST) -> str:
    if isinstance(node, ast.BinOp | ast.UnaryOp | ast.Compare):
        return "an operator that is not arithmetic or a comparison"
    if isinstance(node, ast.List | ast.Tuple):
        return "a list or tuple outside a function's arguments"
    return _KINDS.get(type(node), f"a {type(node).__name__} expression")


def _refuse(formula: str, token: str, what: str, hint: str) -> None:
    raise FormulaError(
        f"In {formula!r}, {token!r} is not allowed in a formula ({what}). Formulas may use only "
        f"column names, numbers, arithmetic, comparisons and the functions {allowed_list()}."
        + (f" {hint}" if hint else "")
    )
