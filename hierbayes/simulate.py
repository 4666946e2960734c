"""Simulated data sets with known truth, for examples, tests and calibration checks."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Simulated:
    data: pd.DataFrame
    truth: dict  # parameter name -> true value (group effects as a Series by level)


def zip_income(
    n_zips: int = 300,
    min_size: int = 1,
    max_size: int = 500,
    mean: float = 60.0,
    between_sd: float = 8.0,
    within_sd: float = 20.0,
    seed: int = 0,
) -> Simulated:
    """Household income (thousand dollars) by ZIP code: the classic partial-pooling example.

    ZIP sizes are log-uniform between `min_size` and `max_size` households (so many ZIPs are tiny
    and a few are large; the smallest and largest sizes always occur). Each ZIP's mean is
    ``mean + u_j`` with ``u_j ~ Normal(0, between_sd)``; households vary around it with
    `within_sd`. The truth holds the ZIP deviations ``u_j`` (by ZIP label) and the three
    hyperparameters.
    """
    rng = np.random.default_rng(seed)
    sizes = np.exp(rng.uniform(np.log(min_size), np.log(max_size + 1), size=n_zips)).astype(int)
    sizes = np.clip(sizes, min_size, max_size)
    sizes[:2] = [min_size, max_size]
    labels = np.array([f"Z{j:05d}" for j in range(n_zips)])
    effects = rng.normal(0.0, between_sd, size=n_zips)
    zips = np.repeat(labels, sizes)
    income = mean + np.repeat(effects, sizes) + rng.normal(0.0, within_sd, size=sizes.sum())
    data = pd.DataFrame({"zip": zips, "income": income})
    truth = {
        "Intercept": mean,
        "sd_zip": between_sd,
        "sigma": within_sd,
        "zip": pd.Series(effects, index=labels, name="zip"),
        "n": pd.Series(sizes, index=labels, name="n"),
    }
    return Simulated(data, truth)


def eight_schools() -> pd.DataFrame:
    """Rubin's (1981) SAT coaching experiments: effect estimates with known standard errors."""
    return pd.DataFrame(
        {
            "school": list("ABCDEFGH"),
            "effect": [28.0, 8.0, -3.0, 7.0, -1.0, 1.0, 18.0, 12.0],
            "se": [15.0, 10.0, 16.0, 11.0, 9.0, 11.0, 10.0, 18.0],
        }
    )


def contextual(
    n_groups: int = 60,
    per_group: int = 10,
    slope: float = 1.0,
    correlation: float = 0.0,
    intercept: float = 0.0,
    between_sd: float = 1.0,
    within_sd: float = 1.0,
    x_between_sd: float = 1.0,
    x_within_sd: float = 1.0,
    seed: int = 0,
) -> Simulated:
    """A predictor that varies within and between groups, for the random-effects assumption.

    Group j has a mean m_j ~ Normal(0, x_between_sd) of x and an effect
    u_j = between_sd·(correlation·m_j/x_between_sd + √(1 − correlation²)·e_j), so that
    corr(u_j, m_j) = `correlation`; rows have x = m_j + Normal(0, x_within_sd) and
    y = intercept + slope·x + u_j + Normal(0, within_sd). The within-group slope is `slope`
    whatever the correlation; the between-group slope (of group means of y on m_j) is
    slope + correlation·between_sd/x_between_sd. With correlation 0 the random-intercept model
    ``y ~ x + (1 | g)`` is right; otherwise its slope mixes the two. `truth` holds both slopes.
    """
    if not -1 <= correlation <= 1:
        raise ValueError(f"correlation must lie in [-1, 1], got {correlation!r}.")
    rng = np.random.default_rng(seed)
    m = rng.normal(0.0, x_between_sd, n_groups)
    u = between_sd * (correlation * m / x_between_sd
                      + np.sqrt(1 - correlation**2) * rng.normal(size=n_groups))
    g = np.repeat(np.arange(n_groups), per_group)
    x = m[g] + rng.normal(0.0, x_within_sd, g.size)
    y = intercept + slope * x + u[g] + rng.normal(0.0, within_sd, g.size)
    data = pd.DataFrame({"y": y, "x": x, "g": [f"g{k:03d}" for k in g]})
    truth = {"within": slope, "between": slope + correlation * between_sd / x_between_sd,
             "sd_g": between_sd, "sigma": within_sd, "Intercept": intercept}
    return Simulated(data, truth)
