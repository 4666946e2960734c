"""hierbayes: Bayesian hierarchical models from lme4-style formulas, compared with REML."""

from .design import Block, Design, NewData, make_design
from .errors import (
    ConvergenceWarning,
    DataWarning,
    DesignError,
    FamilyError,
    FormulaError,
    HierbayesError,
    HierbayesWarning,
    ModelMismatchError,
    PriorError,
    SamplingWarning,
    SingularFitWarning,
)
from .formula import parse_formula

__version__ = "0.1.0"

__all__ = [
    "Block",
    "ConvergenceWarning",
    "DataWarning",
    "Design",
    "DesignError",
    "FamilyError",
    "FormulaError",
    "HierbayesError",
    "HierbayesWarning",
    "ModelMismatchError",
    "NewData",
    "PriorError",
    "SamplingWarning",
    "SingularFitWarning",
    "make_design",
    "parse_formula",
]

# --- REML engine exports (hierbayes.reml) ---
from . import reml as reml
from .reml import RemlFit as RemlFit
from .reml import fit_reml as fit_reml
from .reml import make_deviance as make_deviance

# --- Bayesian engine exports (hierbayes.bayes) ---
from .bayes import BayesFit as BayesFit
from .bayes import fit_bayes as fit_bayes
from .persist import load as load
from .priors import Prior as Prior
from .priors import Priors as Priors
from .priors import default_priors as default_priors
from .sampling import BayesModel as BayesModel
from .sampling import build_model as build_model
from .sampling import sample as sample

# --- Comparison exports (hierbayes.compare) ---
from .compare import Comparison, compare, compare_formula  # noqa: E402
