"""Exceptions and warnings raised by hierbayes.

Every error about user input is a `HierbayesError` (also a `ValueError`) whose message names the
column, term or value at fault and what would be valid.
"""


class HierbayesError(ValueError):
    """Base class of every error hierbayes raises about its input."""


class FormulaError(HierbayesError):
    """A model formula that cannot be parsed or expanded."""


class DesignError(HierbayesError):
    """Data that cannot be turned into a design for the given formula."""


class PriorError(HierbayesError):
    """A prior specification that names an unknown parameter or is invalid."""


class FamilyError(HierbayesError):
    """An unknown family or link, or a response the family cannot model."""


class ModelMismatchError(HierbayesError):
    """Two fits that describe different models and so cannot be compared."""


class CardError(HierbayesError):
    """A model card that cannot be read: bad TOML, unknown or missing keys, missing data file."""


class LoadError(HierbayesError):
    """A file `hb.load` cannot read as a saved fit."""


class OutputError(HierbayesError):
    """An output folder or file hierbayes cannot or will not write."""


class HierbayesWarning(UserWarning):
    """Base class of hierbayes warnings."""


class SingularFitWarning(HierbayesWarning):
    """A variance component was estimated at the boundary (zero SD or perfect correlation)."""


class ConvergenceWarning(HierbayesWarning):
    """An optimiser stopped without meeting its convergence criteria."""


class SeparationWarning(ConvergenceWarning):
    """Some fixed effects have no finite maximum-likelihood estimate (complete separation)."""


class SamplingWarning(HierbayesWarning):
    """NUTS diagnostics crossed a threshold (divergences, R-hat, ESS, BFMI, tree depth)."""


class DataWarning(HierbayesWarning):
    """The data were altered on the way into the design (rows dropped, columns dropped)."""


class WithinBetweenWarning(HierbayesWarning):
    """A predictor's within- and between-group slopes differ: the random-effects assumption
    fails for it (`hierbayes.within`)."""
