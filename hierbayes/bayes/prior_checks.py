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

# Parameters that are scales, rates, shapes or degrees of freedom in PyMC's continuous
# distributions: they must be > 0 (PyMC builds the model anyway and NUTS then fails to start,
# seconds later, deep inside the compiled sampler).
POSITIVE = frozenset({"sigma", "tau", "lam", "nu", "b", "s", "kappa", "scale", "alpha", "beta",
                      "eta", "a", "m"})
# Where those names are a location, skewness or shift instead (may be <= 0).
NOT_POSITIVE = {"Cauchy": {"alpha"}, "SkewNormal": {"alpha"}, "Wald": {"alpha"},
                "Rice": {"nu", "b"}}
ORDERED = (("lower", "upper"),)  # Uniform, TruncatedNormal, Triangular: lower < upper


def validate(prior, entry) -> None:
    """Raise `PriorError` unless `prior` can stand for `entry`'s parameter."""
    if entry.kind == "corr":
        if prior.distribution != "LKJ" or set(prior.params) != {"eta"}:
            raise PriorError(
                f"The prior {entry.name!r} is on correlations: use Prior('LKJ', eta=...) "
                f"(eta > 0), got {prior!r}."
            )
        _check_values(prior, entry)
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
    _check_values(prior, entry)
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


def _check_values(prior, entry) -> None:
    """Numbers, finite, and > 0 where PyMC needs a positive parameter; lower < upper."""
    values = {}
    for key, value in prior.params.items():
        try:
            values[key] = np.asarray(value, dtype=float)
        except (TypeError, ValueError):
            raise PriorError(
                f"The parameter {key}={value!r} of the prior {entry.name!r} must be a number "
                "(or one number per term)."
            ) from None
        if not np.all(np.isfinite(values[key])):
            raise PriorError(
                f"The parameter {key}={value!r} of the prior {entry.name!r} {prior!r} must be "
                "finite (not NaN or infinite)."
            )
        positive = key in POSITIVE and key not in NOT_POSITIVE.get(prior.distribution, ())
        if positive and not np.all(values[key] > 0):
            raise PriorError(
                f"The parameter {key}={value!r} of the prior {entry.name!r} {prior!r} must be "
                f"> 0 ({key} > 0: a scale, rate or shape), e.g. {prior.distribution}({key}=1)."
            )
    for low, high in ORDERED:
        if low in values and high in values and not np.all(values[low] < values[high]):
            raise PriorError(
                f"The prior {entry.name!r} {prior!r} needs {low} < {high}."
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
