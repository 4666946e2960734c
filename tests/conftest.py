import json
import warnings
from pathlib import Path

import pandas as pd
import pytest

REFERENCE = Path(__file__).parent / "reference"
GAUSSIAN_REFERENCES = ["sleepstudy", "radon", "Pastes", "Penicillin"]
ALL_REFERENCES = [*GAUSSIAN_REFERENCES, "cbpp"]
SLEEP = "Reaction ~ Days + (Days | Subject)"  # the sleepstudy model of the reference fit


def load_reference(name: str) -> tuple[pd.DataFrame, dict]:
    """The data set and lme4's reference fit (see tests/reference/README.md)."""
    ref = json.loads((REFERENCE / f"{name}.json").read_text())
    data = pd.read_csv(
        REFERENCE.parent.parent / "hierbayes" / "models" / "data" / f"{name}.csv",
        dtype={c: str for c in ref["factor_columns"]},
    )
    return data, ref


def lme4_name(name: str) -> str:
    """formulaic's term name -> lme4's: 'Intercept' -> '(Intercept)', 'period[T.2]' -> 'period2'."""
    if name == "Intercept":
        return "(Intercept)"
    if "[T." in name:
        base, level = name.split("[T.", 1)
        return base + level.rstrip("]")
    return name


@pytest.fixture
def mocked_sample(monkeypatch) -> list[dict]:
    """`pm.sample` and nutpie's cached path (`run_nutpie`, same keywords), as
    `hierbayes.bayes.sampling` sees them, replaced by prior draws of the model they are given
    (`hierbayes.testing.fakes`); the list of keyword arguments of each call."""
    from hierbayes.bayes import sampling
    from hierbayes.testing.fakes import fake_posterior

    calls: list[dict] = []

    def fake_sample(**kwargs):
        calls.append(kwargs)
        spec = type("Spec", (), {"model": kwargs["model"]})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # prior draws ignore a marginal potential
            return fake_posterior(spec, chains=kwargs["chains"], draws=kwargs["draws"])

    monkeypatch.setattr(sampling.pm, "sample", fake_sample)
    monkeypatch.setattr(sampling, "run_nutpie", fake_sample)
    return calls
