"""hierbayes: Bayesian hierarchical models from lme4-style formulas, compared with REML.

Names are imported on first use (PEP 562), so ``import hierbayes; hb.fit_reml(...)`` loads the
REML engine (numpy/scipy) and never PyMC; the Bayesian engine loads with the first Bayesian call.
"""

from __future__ import annotations

import importlib
import sys
import types

from .errors import (
    CardError,
    ConvergenceWarning,
    DataWarning,
    DesignError,
    FamilyError,
    FormulaError,
    HierbayesError,
    HierbayesWarning,
    LoadError,
    ModelMismatchError,
    OutputError,
    PriorError,
    SamplingWarning,
    SeparationWarning,
    SingularFitWarning,
    WithinBetweenWarning,
)

__version__ = "0.1.0"

# public name -> the module that defines it (imported on first access)
_LAZY = {
    # the shared spec layer
    "Block": "design",
    "Design": "design",
    "NewData": "design",
    "make_design": "design",
    "parse_formula": "formula",
    # the REML / Laplace engine
    "RemlFit": "reml",
    "anova": "reml",
    "fit_reml": "reml",
    "make_deviance": "reml",
    # the Bayesian engine
    "BayesFit": "bayes",
    "BayesModel": "bayes",
    "Prior": "bayes",
    "Priors": "bayes",
    "build_model": "bayes",
    "default_priors": "bayes",
    "fit_bayes": "bayes",
    "load": "bayes",
    "sample": "bayes",
    "SamplingInterrupted": "bayes",
    # the note's questions: pooling, agreement, calibration
    "within_between": "within",
    "agreement": "study",
    "sbc": "study",
    # comparison and reports
    "Comparison": "compare",
    "compare": "compare",
    "compare_formula": "compare",
    "Report": "report",
    "comparison_report": "report",
    "fit_report": "report",
    # model cards
    "ModelCard": "cards",
    "list_cards": "cards",
    "load_card": "cards",
}
_SUBMODULES = ("bayes", "cards", "datasets", "reml", "report", "simulate", "study", "testing")

__all__ = [
    "CardError",
    "ConvergenceWarning",
    "DataWarning",
    "DesignError",
    "FamilyError",
    "FormulaError",
    "HierbayesError",
    "HierbayesWarning",
    "LoadError",
    "ModelMismatchError",
    "OutputError",
    "PriorError",
    "SamplingWarning",
    "SeparationWarning",
    "SingularFitWarning",
    "WithinBetweenWarning",
    *_LAZY,
    *_SUBMODULES,
]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    elif name in _SUBMODULES:
        value = importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module 'hierbayes' has no attribute {name!r}")
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


class _Package(types.ModuleType):
    """`hb.compare` is the function, although a subpackage has that name too: importing the
    subpackage would bind it here, so that binding is skipped and `__getattr__` answers."""

    def __setattr__(self, name: str, value) -> None:
        if isinstance(value, types.ModuleType) and _LAZY.get(name) == name:
            return
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
