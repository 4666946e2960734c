"""Checks of a prior given by the user against the parameter it replaces (`.priors`).

Duck-typed on purpose: a prior has ``distribution``, ``params`` and ``pymc_class()``; an entry has
``name``, ``kind``, ``applies_to`` and ``size``. That keeps this module free of `priors`' types.
"""

from __future__ import annotations

import inspect

import numpy as np
import pymc as pm
from pymc.distributions.continuous import PositiveContinuous

from ..errors import PriorError


def validate(prior, entry) -> None:
    """Raise `PriorError` unless `prior` can stand for `entry`'s parameter."""
    if entry.kind == "corr":
        if prior.distribution != "LKJ" or set(prior.params) != {"eta"}:
            raise PriorError(
                f"The prior {entry.name!r} is on correlations: use Prior('LKJ', eta=...) "
                f"(eta > 0), got {prior!r}."
            )
        if not np.all(np.asarray(prior.params["eta"], dtype=float) > 0):
            raise PriorError(f"LKJ needs eta > 0 for {entry.name!r}, got {prior.params['eta']!r}.")
        return
    cls = prior.pymc_class()
    if not issubclass(cls, pm.Continuous):
        raise PriorError(f"The prior {entry.name!r} must be a continuous distribution: {prior!r}.")
    if entry.kind != "fixed" and not issubclass(cls, PositiveContinuous):
        raise PriorError(
            f"{entry.name!r} ({entry.applies_to}) is positive: its prior needs positive support, "
            f"e.g. HalfNormal, Exponential, Gamma, HalfStudentT; got {prior!r}."
        )
    _check_sizes(prior, entry)
    _check_names(prior, entry, cls)
    try:
        cls.dist(**prior.params, shape=(entry.size,))
    except (TypeError, ValueError) as err:
        raise PriorError(
            f"Invalid parameters for the prior {entry.name!r} {prior!r}: {err}"
        ) from None


def _check_sizes(prior, entry) -> None:
    for key, value in prior.params.items():
        size = np.size(value)
        if size != 1 and size != entry.size:
            what = f"one per term ({entry.size})" if entry.kind == "sd" else "a scalar"
            raise PriorError(
                f"The parameter {key}={value!r} of the prior {entry.name!r} must be a scalar or "
                f"{what}."
            )


def _check_names(prior, entry, cls) -> None:
    # PyMC's `dist` silently swallows unknown keywords (Normal(mean=0) would be Normal(0, 1)).
    signature = inspect.signature(cls.dist)
    named = {
        p.name
        for p in signature.parameters.values()
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    } - {"shape", "size", "dims", "rng"}
    unknown = sorted(set(prior.params) - named)
    if unknown:
        raise PriorError(
            f"Invalid parameters for the prior {entry.name!r} {prior!r}: {cls.__name__} has no "
            f"parameter {', '.join(map(repr, unknown))}; its parameters are "
            f"{', '.join(sorted(named))}."
        )


def plain(value):
    """Numbers and lists of numbers as plain Python (JSON-friendly, comparable)."""
    if isinstance(value, np.ndarray | list | tuple):
        values = [plain(v) for v in np.asarray(value).tolist()]
        return values[0] if len(values) == 1 else values
    if isinstance(value, np.generic):
        return value.item()
    return value


def fmt(value) -> str:
    if isinstance(value, list):
        return "[" + ", ".join(fmt(v) for v in value) + "]"
    if isinstance(value, float):
        return f"{value:.4g}"
    return repr(value)
