"""Names shared by the engines, the comparison and the reports.

Posterior variables and dimensions (the Bayesian engine writes them; the comparison, reports and
saved files read them), and the labels of ``varcorr()`` rows. Spec layer: no PyMC.
"""

from __future__ import annotations

# Posterior variables of every model (`hierbayes.bayes.builder` creates them).
BETA = "beta"  # fixed effects, dim FIXED_DIM
SIGMA = "sigma"  # residual SD (gaussian) or scale (student_t)
NU = "nu"  # student_t degrees of freedom
ALPHA = "alpha"  # negative binomial shape (var = mu + mu^2 / alpha); Gamma shape (mu^2 / alpha)
FAMILY_PARAMETERS = (SIGMA, NU, ALPHA)
RESPONSE = "y"

# Dimensions. A grouping factor named like one of these, or like a variable of the model, gets
# the level dimension "<g>_level" (xarray cannot have a dimension and a variable of one name).
SAMPLE_DIMS = ("chain", "draw")
FIXED_DIM = "fixed"
OBS_DIM = "obs"
RESERVED_DIMS = frozenset({*SAMPLE_DIMS, "sample", FIXED_DIM, OBS_DIM, BETA, RESPONSE,
                           *FAMILY_PARAMETERS})

RESIDUAL = "Residual"  # the group of the residual SD row in varcorr()


# Per block `<b>` (`Block.name`: the grouping factor, e.g. "Subject", "batch:cask", "g.1"):
def beta_term(term: str) -> str:
    """A fixed effect's own variable, when the fixed-effect priors differ in kind."""
    return f"{BETA}__{term}"


def sd(block) -> str:
    """(k,) SDs of the block's effects."""
    return f"sd_{block.name}"


def corr(block) -> str:
    """(k, k) correlation matrix of a correlated block with more than one term."""
    return f"corr_{block.name}"


def chol(block) -> str:
    """Packed Cholesky factor of a correlated block's covariance (the free variable)."""
    return f"chol_{block.name}"


def z(block) -> str:
    """(levels, k) standard-normal raw effects (non-centred)."""
    return f"z_{block.name}"


def r(block) -> str:
    """(levels, k) group effects: deviations from the fixed effects, as lme4's ranef."""
    return f"r_{block.name}"


def coefficients(block) -> str:
    """(levels, k) group coefficients of a centred block: fixed effect + r where the term is
    also a fixed effect, r otherwise (the free variable of hierarchical centring)."""
    return f"c_{block.name}"


def term_dim(block_name: str) -> str:
    """Dimension of a block's terms."""
    return f"{block_name}__term"


def corr_dim(block) -> str:
    """Second dimension of a block's correlation matrix."""
    return f"{block.name}__term2"


def level_dim(group: str) -> str:
    """Dimension of a grouping factor's levels."""
    return f"{group}_level" if group in RESERVED_DIMS else group


def row_key(row: dict) -> tuple:
    """(group, term1, term2) of a varcorr-shaped row, with missing terms as None."""
    return tuple(
        None if v is None or v != v else v for v in (row["group"], row["term1"], row["term2"])
    )


_ROW_NAMES = {
    "short": ("sigma (residual)", "sd({t1} | {g})", "cor({t1}, {t2} | {g})"),
    "prose": ("residual SD", "SD of {t1} over {g}", "correlation of {t1} and {t2} over {g}"),
}


def is_sd(row: dict) -> bool:
    """True for an SD row (and the residual SD), False for a correlation row."""
    return row_key(row)[2] is None


def row_name(row: dict, style: str = "short") -> str:
    """How plots ("short") and verdicts ("prose") name a varcorr row."""
    residual, sd, corr = _ROW_NAMES[style]
    g, t1, t2 = row_key(row)
    if g == RESIDUAL:
        return residual
    return (sd if t2 is None else corr).format(g=g, t1=t1, t2=t2)
