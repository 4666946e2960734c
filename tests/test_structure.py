"""The package's shape: no import cycles, small modules and functions, the layers' import rules,
and a public namespace that holds every name the contract and the README promise.

The import graph is read from the source (every ``import`` statement, function-level ones
included), not from what happens to be loaded, so a cycle hidden in a function body counts too.
An edge ``a -> b`` means module ``a`` names module ``b`` in an import; ``from pkg import name``
points at ``pkg.name`` when that is a module and at ``pkg`` otherwise. The implicit import of a
parent package (``import a.b`` runs ``a/__init__.py`` first) is no edge: every submodule would
otherwise form a cycle with its package's ``__init__``.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from functools import cache
from pathlib import Path

import pytest

import hierbayes as hb

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "hierbayes"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60

# The shared spec layer: both engines read it, so it must load without PyMC.
SPEC_LAYER = ("formula", "grouping", "response", "validation", "expressions", "design", "families",
              "links", "naming", "tidy", "errors", "blas", "atomic", "arguments",
              "identifiability")
HEAVY = ("pymc", "pytensor")

# The user-facing contract (the team's API.md, "the names below are what analysts call"): the
# calls and the types they return.
CONTRACT = ("fit_reml", "fit_bayes", "compare", "RemlFit", "BayesFit", "Comparison",
            "HierbayesError", "within_between", "agreement", "sbc", "anova")


# --- the import graph -----------------------------------------------------------------------


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def modules() -> dict[str, Path]:
    """Dotted name -> file, for every module of the package."""
    return {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


@cache
def syntax_tree(name: str) -> ast.Module:
    path = modules()[name]
    return ast.parse(path.read_text(), filename=str(path))


def _base(name: str, node: ast.ImportFrom) -> str:
    """The absolute module a ``from ... import`` statement in module `name` reads from."""
    if not node.level:
        return node.module or ""
    package = name if modules()[name].name == "__init__.py" else name.rpartition(".")[0]
    for _ in range(node.level - 1):
        package = package.rpartition(".")[0]
    return f"{package}.{node.module}" if node.module else package


def imported(name: str) -> set[str]:
    """Every absolute module name that module `name` imports, anywhere in its body (see the
    module docstring for ``from`` imports)."""
    known = modules()
    out = set()
    for node in ast.walk(syntax_tree(name)):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = _base(name, node)
            submodules = {f"{base}.{a.name}" for a in node.names} & known.keys()
            out.update(submodules)
            if len(submodules) < len(node.names):
                out.add(base)
    return out


@cache
def edges(name: str) -> frozenset[str]:
    """The package's modules that module `name` imports."""
    return frozenset((imported(name) & modules().keys()) - {name})


def reachable(name: str) -> set[str]:
    """`name` and every module of the package it imports, directly or through others."""
    seen, todo = {name}, [name]
    while todo:
        for target in edges(todo.pop()):
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def cycles() -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(edges(node)):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(modules()):
        if node not in index:
            visit(node)
    return found


def test_the_graph_reader_sees_relative_and_function_level_imports():
    """The reader itself, on edges known to exist: a relative import of a module, a ``from``
    import of a submodule, a package import and one inside a function body."""
    assert "hierbayes.errors" in edges("hierbayes.design")  # from .errors import ...
    assert "hierbayes.naming" in edges("hierbayes.bayes.diagnostics")  # from .. import naming
    assert "hierbayes.bayes.marginal" in edges("hierbayes.bayes.sampling")  # a package
    # compiled's `import nutpie` sits in a function: found, and no module of ours.
    assert "nutpie" in imported("hierbayes.bayes.compiled")
    inner = [n for n in ast.walk(syntax_tree("hierbayes.bayes.compiled"))
             if isinstance(n, ast.FunctionDef) and n.name == "run_nutpie"]
    assert any(isinstance(n, ast.Import) for n in ast.walk(inner[0]))


def test_no_import_cycles():
    found = cycles()
    assert not found, "modules importing each other (directly or in a cycle):\n" + "\n".join(
        " <-> ".join(c) for c in found)


def test_cycle_finder_finds_a_cycle(monkeypatch):
    """The check above can fail: a fake edge closing a loop is reported."""
    real = edges.__wrapped__

    def with_loop(name):
        extra = {"hierbayes.design"} if name == "hierbayes.errors" else set()
        return frozenset(real(name) | extra)

    monkeypatch.setattr(sys.modules[__name__], "edges", with_loop)
    found = cycles()
    assert len(found) == 1 and {"hierbayes.design", "hierbayes.errors"} <= set(found[0])


# --- layers -----------------------------------------------------------------------------------


def heavy_imports(name: str) -> set[str]:
    return {t for t in imported(name) if t.split(".")[0] in HEAVY}


@pytest.mark.parametrize("name", [*SPEC_LAYER, "reml"])
def test_spec_layer_and_reml_never_reach_pymc(name):
    top = f"hierbayes.{name}"
    starts = [m for m in modules() if m == top or m.startswith(f"{top}.")]
    assert starts, name
    offenders = {}
    for start in starts:
        for module in reachable(start):
            if heavy := heavy_imports(module):
                offenders[module] = sorted(heavy)
            if module.startswith("hierbayes.bayes"):
                offenders[module] = ["hierbayes.bayes"]
    assert not offenders, f"hierbayes.{name} imports PyMC through {offenders}"


def test_report_never_imports_compare():
    """The report formats what the comparison computed; the comparison imports the report."""
    report = [m for m in modules() if m.split(".")[:2] == ["hierbayes", "report"]]
    direct = {m: sorted(t for t in edges(m) if t.startswith("hierbayes.compare")) for m in report}
    assert not {m: t for m, t in direct.items() if t}, f"report -> compare imports: {direct}"
    through = [m for m in report if any(t.startswith("hierbayes.compare") for t in reachable(m))]
    assert not through, f"report modules reaching compare through other modules: {through}"


def test_fit_reml_runs_without_pymc():
    """In a fresh interpreter: the lazy top level, a REML fit and every spec-layer module load
    neither PyMC nor PyTensor."""
    spec = ", ".join(f"hierbayes.{m}" for m in SPEC_LAYER)
    code = (
        "import sys, hierbayes\n"
        "hierbayes.fit_reml\n"
        "assert 'pymc' not in sys.modules, 'hierbayes.fit_reml loaded pymc'\n"
        f"import {spec}, hierbayes.reml\n"
        "fit = hierbayes.fit_reml('Reaction ~ Days + (Days | Subject)',\n"
        "                         hierbayes.datasets.load('sleepstudy'))\n"
        "assert abs(fit.criterion - 1743.628) < 1e-3, fit.criterion\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r}))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "[]", result.stdout


# --- sizes ------------------------------------------------------------------------------------


def long_functions() -> list[str]:
    out = []
    for name, path in modules().items():
        for node in ast.walk(syntax_tree(name)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
                length = node.end_lineno - first + 1
                if length > MAX_FUNCTION_LINES:
                    where = path.relative_to(ROOT)
                    out.append(f"{where}:{node.lineno} {node.name} ({length} lines)")
    return out


def test_modules_are_small():
    long = {str(p.relative_to(ROOT)): n for p in modules().values()
            if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES}
    assert not long, f"modules over {MAX_MODULE_LINES} lines: {long}"


def test_functions_are_short():
    long = long_functions()
    assert not long, f"functions over {MAX_FUNCTION_LINES} lines:\n" + "\n".join(long)


# --- the public namespace -----------------------------------------------------------------------


def _readme_names() -> set[str]:
    """Every ``hb.<name>`` the README shows (its examples and prose)."""
    return set(re.findall(r"\bhb\.([A-Za-z_]\w*)", (ROOT / "README.md").read_text()))


def test_the_readme_names_were_read():
    assert {"fit_reml", "fit_bayes", "compare", "build_model", "Prior"} <= _readme_names()


@pytest.mark.parametrize("name", sorted(set(CONTRACT) | _readme_names()))
def test_promised_names_resolve_and_are_exported(name):
    assert getattr(hb, name) is not None
    assert name in hb.__all__, f"hb.{name} works but is missing from hierbayes.__all__"


def test_every_exported_name_resolves():
    missing = [name for name in hb.__all__ if not hasattr(hb, name)]
    assert not missing, f"in hierbayes.__all__ but not importable: {missing}"
