"""Small data sets shipped with hierbayes: the data of the model cards (`hierbayes/models/data`,
provenance in its README.md)."""

from __future__ import annotations

from importlib import resources

import pandas as pd

from .errors import HierbayesError

# Columns that are factors even where they look numeric (lme4's references read them as strings).
FACTOR_COLUMNS = {
    "sleepstudy": ["Subject"],
    "radon": ["county"],
    "Pastes": ["batch", "cask", "sample"],
    "Penicillin": ["plate", "sample"],
    "cbpp": ["herd", "period"],
    "eight_schools": ["school"],
    "zip_income": ["zip"],
    "zip_income_truth": ["zip"],
}


def _folder():
    return resources.files("hierbayes.models") / "data"


def available() -> list[str]:
    names = (p.name for p in _folder().iterdir())
    return sorted(n.removesuffix(".csv") for n in names if n.endswith(".csv"))


def load(name: str) -> pd.DataFrame:
    """Load a shipped data set by name, factor columns as strings."""
    if name not in available():
        raise HierbayesError(f"No shipped data set {name!r}; available: {', '.join(available())}.")
    path = _folder() / f"{name}.csv"
    with resources.as_file(path) as file:
        return pd.read_csv(file, dtype={c: str for c in FACTOR_COLUMNS.get(name, [])})
