"""Checks of the arguments users pass (not of their data): seeds, counts, probabilities, choices
and keyword names. Each raises a `HierbayesError` that names the argument, the value given and
what would be valid, before any engine sees the value (PyMC and numpy would otherwise answer with a
deep traceback, or accept it silently).

Spec layer: no PyMC. The Bayesian engine passes its own lists of valid names in.
"""

from __future__ import annotations

import difflib
import functools
import inspect
import numbers
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import numpy as np

from .errors import HierbayesError, OutputError
from .tidy import check_ci_prob

MAX_SEED = 2**32 - 1  # numpy's SeedSequence takes any int >= 0; PyMC's samplers want 32 bits

# Names other tools use for what ours call differently (lme4, rstan, brms, numpyro, bambi).
KEYWORD_HINTS = {
    "iter": "hierbayes counts kept draws and warm-up apart: use draws= (kept draws per chain) "
            "and tune= (warm-up draws per chain), e.g. draws=1000, tune=1000",
    "warmup": "use tune= (warm-up draws per chain)",
    "num_warmup": "use tune= (warm-up draws per chain)",
    "n_warmup": "use tune= (warm-up draws per chain)",
    "samples": "use draws= (kept draws per chain)",
    "n_samples": "use draws= (kept draws per chain)",
    "num_samples": "use draws= (kept draws per chain)",
    "n_chains": "use chains=",
    "num_chains": "use chains=",
    "seed": "use random_seed=",
    "adapt_delta": "use target_accept= (e.g. 0.95)",
    "nuts_sampler": "use sampler= ('nutpie', 'pymc', 'numpyro' or 'blackjax')",
    "max_treedepth": "NUTS options go in nuts={'max_treedepth': ...}",
    "REML": "use method='REML' (the default) or method='ML'",
    "nAGQ": "GLMMs are fitted by the Laplace approximation (lme4's nAGQ=1) only",
    "control": "pass the optimiser settings by name: maxiter=, start=",
    "prob": "use ci_prob= (e.g. 0.95)",
    "level": "use ci_prob= (e.g. 0.95)",
    "newdata": "use new_data=",
    "re_form": "use group_effects='population' (lme4's re.form = NA) or 'conditional'",
    "type": "use kind='link' or kind='mean'",
}


def check_seed(seed, name: str = "random_seed") -> int | None:
    """None, or a whole number in [0, 2**32 - 1] (what numpy and PyMC's samplers accept)."""
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise HierbayesError(
            f"{name} must be a whole number between 0 and {MAX_SEED} (or None for a fresh one), "
            f"got {seed!r} ({type(seed).__name__})."
        )
    if not 0 <= int(seed) <= MAX_SEED:
        raise HierbayesError(
            f"{name} must lie between 0 and {MAX_SEED} (or be None for a fresh one), got {seed}."
        )
    return int(seed)


def check_count(value, name: str, least: int = 1) -> int:
    """A whole number >= `least` (bools and floats such as 1000.0 are refused)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < least:
        raise HierbayesError(f"{name} must be a whole number >= {least}, got {value!r}.")
    return int(value)


def check_probability(value, name: str = "ci_prob") -> float:
    """A probability strictly between 0 and 1 (`hierbayes.tidy.check_ci_prob` for ci_prob)."""
    if name == "ci_prob":
        return check_ci_prob(value)
    ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if not ok or not 0 < float(value) < 1 or not np.isfinite(float(value)):
        raise HierbayesError(f"{name} must lie strictly between 0 and 1, got {value!r}.")
    return float(value)


def check_choice(value, name: str, valid: Iterable[str]):
    """`value` if it is one of `valid`; else an error listing them (and the nearest one)."""
    valid = tuple(str(v) for v in valid)
    if isinstance(value, str) and value in valid:
        return value
    hint = _did_you_mean(value, valid)
    raise HierbayesError(
        f"{name}={value!r} is not one of {', '.join(map(repr, valid))}.{hint}"
    )


def check_keywords(given: Iterable[str], valid: Iterable[str], where: str,
                   hints: Mapping[str, str] | None = None) -> None:
    """Refuse keyword names that `where` does not take, listing the valid ones, with a "did you
    mean" for near misses and a pointer for names other tools use (`KEYWORD_HINTS`)."""
    valid = sorted(set(valid))
    unknown = [k for k in given if k not in valid]
    if not unknown:
        return
    hints = {**KEYWORD_HINTS, **(hints or {})}
    notes = []
    for key in unknown:
        if key in hints:
            notes.append(f"{key}=: {hints[key]}.")
        elif close := _did_you_mean(key, valid):
            notes.append(f"{key}=:{close}")
    raise HierbayesError(
        f"{where} got unknown keyword argument(s) {', '.join(map(repr, unknown))}. "
        + " ".join(notes)
        + f" Valid keywords: {', '.join(valid)}."
    )


def as_path(path, name: str = "path") -> Path:
    """`path` (a str or os.PathLike) as a `Path`."""
    if isinstance(path, bytes) or not isinstance(path, str | os.PathLike):
        raise HierbayesError(
            f"{name} must be a file path (a str or pathlib.Path), got {path!r} "
            f"({type(path).__name__})."
        )
    return Path(path)


def check_output_file(path, name: str = "path") -> Path:
    """A file path that can be written: its folder exists and it is not itself a folder."""
    path = as_path(path, name)
    if path.is_dir():
        raise OutputError(f"{name} {str(path)!r} is a folder; give a file name, e.g. "
                          f"{str(path / 'fit.nc')!r}.")
    if not path.parent.is_dir():
        raise OutputError(f"Cannot write {str(path)!r}: its folder {str(path.parent)!r} does not "
                          "exist. Create it first.")
    return path


def keyword_names(func: Callable) -> list[str]:
    """The parameters of `func` that can be passed by keyword."""
    return [p.name for p in inspect.signature(func).parameters.values()
            if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]


def refuse_unknown(unknown: Mapping, func: Callable) -> None:
    """For a function that collects stray keywords in ``**unknown`` (rather than being wrapped
    by `keywords_checked`, which would add a frame between its warnings and the caller)."""
    check_keywords(unknown, keyword_names(func), f"{func.__qualname__}()")


def keywords_checked(function: Callable | None = None, *, hints: Mapping[str, str] | None = None):
    """Decorator: unknown keyword arguments raise `check_keywords`' error instead of Python's
    bare TypeError (which names neither the valid keywords nor what was probably meant)."""

    def decorate(func: Callable) -> Callable:
        valid = keyword_names(func)
        takes_any = any(p.kind is p.VAR_KEYWORD
                        for p in inspect.signature(func).parameters.values())

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            if not takes_any:
                check_keywords(kwargs, valid, f"{func.__qualname__}()", hints)
            return func(*args, **kwargs)

        return wrapper

    return decorate if function is None else decorate(function)


def _did_you_mean(value, valid: Iterable[str]) -> str:
    if not isinstance(value, str):
        return ""
    lower = {v.lower(): v for v in valid}
    close = difflib.get_close_matches(value.lower(), list(lower), n=2, cutoff=0.6)
    return f" Did you mean {' or '.join(repr(lower[c]) for c in close)}?" if close else ""
