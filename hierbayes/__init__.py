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
    SeparationWarning,
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
    "SeparationWarning",
    "SingularFitWarning",
    "make_design",
    "parse_formula",
]

# Engines, comparison, data, model cards and reports (re-exported by name).
from . import datasets as datasets
from . import reml as reml
from . import simulate as simulate
from .bayes import BayesFit as BayesFit
from .bayes import fit_bayes as fit_bayes
from .cards import CardError as CardError
from .cards import ModelCard as ModelCard
from .cards import list_cards as list_cards
from .cards import load_card as load_card
from .compare import Comparison as Comparison
from .compare import compare as compare
from .compare import compare_formula as compare_formula
from .persist import load as load
from .priors import Prior as Prior
from .priors import Priors as Priors
from .priors import default_priors as default_priors
from .reml import RemlFit as RemlFit
from .reml import fit_reml as fit_reml
from .reml import make_deviance as make_deviance
from .report import Report as Report
from .report import comparison_report as comparison_report
from .report import fit_report as fit_report
from .sampling import BayesModel as BayesModel
from .sampling import build_model as build_model
from .sampling import sample as sample
