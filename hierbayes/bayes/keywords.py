"""The keyword arguments `sample` and `fit_bayes` pass on to `pymc.sample`, checked before
anything compiles: an unknown one (``iter=``, a typo) would otherwise fail inside PyMC or nutpie
with a bare TypeError, after the model was built, or be ignored by some samplers.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import pymc as pm

from ..arguments import check_keywords, keyword_names

# Set by `sample` itself (`sampler=` is its name for nuts_sampler): not accepted as extras.
SET_BY_SAMPLE = ("draws", "tune", "chains", "random_seed", "nuts_sampler", "target_accept",
                 "progressbar", "model", "step")
STEP_KEYWORDS = ("nuts",)  # pm.sample's per-step options, e.g. nuts={"max_treedepth": 12}


def _pymc_keywords() -> frozenset[str]:
    """The named parameters of `pymc.sample` that callers may pass through."""
    parameters = inspect.signature(pm.sample).parameters.values()
    named = {p.name for p in parameters if p.kind is not p.VAR_KEYWORD}
    return frozenset((named - set(SET_BY_SAMPLE)) | set(STEP_KEYWORDS))


# Read once, from the real pm.sample (tests replace it by a stand-in that takes **kwargs).
PYMC_KEYWORDS = _pymc_keywords()


def check_sample_keywords(kwargs: dict, caller: Callable, *more: Callable) -> None:
    """Refuse keywords that neither `caller`, the functions it passes them on to (`more`, e.g.
    `sample` for `fit_bayes`) nor `pymc.sample` take, with the valid ones listed."""
    if not kwargs:
        return
    own = {name for func in (caller, *more) for name in keyword_names(func)}
    check_keywords(kwargs, own | PYMC_KEYWORDS, f"{caller.__name__}()")
