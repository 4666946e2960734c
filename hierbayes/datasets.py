"""Small data sets shipped with hierbayes (provenance in `hierbayes/data/README.md`)."""

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
}


def available() -> list[str]:
    return sorted(
        p.name.removesuffix(".csv")
        for p in resources.files("hierbayes.data").iterdir()
        if p.name.endswith(".csv")
    )


def load(name: str) -> pd.DataFrame:
    """Load a shipped data set by name, factor columns as strings."""
    if name not in available():
        raise HierbayesError(f"No shipped data set {name!r}; available: {', '.join(available())}.")
    path = resources.files("hierbayes.data") / f"{name}.csv"
    with resources.as_file(path) as file:
        return pd.read_csv(file, dtype={c: str for c in FACTOR_COLUMNS.get(name, [])})
