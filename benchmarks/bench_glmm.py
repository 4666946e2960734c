"""Time hierbayes.fit_reml's Laplace GLMM fit beside mixedlm's glmer (not a pytest file).

Two cases, same data, same machine, one timed run per fit after an untimed warm-up of each
library: "sim50k", a simulated logistic model (50,000 rows, 1,000 groups, random intercepts),
and "grouseticks", lme4's grouse-ticks example (Elston et al. 2001: Poisson, three crossed
factors, one of them observation-level). Prints wall and CPU seconds, the ratio to hierbayes,
and −2 log-likelihood (Laplace) of each.

    .venv/bin/python benchmarks/bench_glmm.py
    .venv/bin/python benchmarks/bench_glmm.py --cases grouseticks --repeat 3
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

import hierbayes as hb

FORMULA = "y ~ x + treated + (1 | g)"
TICKS = "TICKS ~ YEAR + cHEIGHT + (1 | BROOD) + (1 | INDEX) + (1 | LOCATION)"


def simulate(rows: int, groups: int, seed: int) -> pd.DataFrame:
    """Bernoulli outcomes: logit p = −0.5 + 0.8·x + 0.4·treated + b_g, b_g ~ N(0, 0.9²)."""
    rng = np.random.default_rng(seed)
    g = rng.integers(0, groups, rows)
    x = rng.normal(size=rows)
    treated = rng.integers(0, 2, rows)
    b = rng.normal(0.0, 0.9, groups)
    eta = -0.5 + 0.8 * x + 0.4 * treated + b[g]
    y = rng.binomial(1, 1.0 / (1.0 + np.exp(-eta)))
    return pd.DataFrame({"y": y, "x": x, "treated": treated.astype(float),
                         "g": [f"g{i:04d}" for i in g]})


def time_it(fn, repeat: int):
    """Wall seconds of the fastest of `repeat` runs, the CPU seconds of that run, the result."""
    best, cpu, out = np.inf, np.inf, None
    for _ in range(repeat):
        start, start_cpu = time.perf_counter(), time.process_time()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = fn()
        wall = time.perf_counter() - start
        if wall < best:
            best, cpu, out = wall, time.process_time() - start_cpu, result
    return best, cpu, out


def grouseticks() -> pd.DataFrame:
    from mixedlm.datasets import load_grouseticks

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return load_grouseticks()


def run_hierbayes(data: pd.DataFrame, repeat: int, formula: str = FORMULA,
                  family: str = "bernoulli") -> dict:
    wall, cpu, fit = time_it(lambda: hb.fit_reml(formula, data, family=family), repeat)
    design = fit.design
    wall_e, cpu_e, fit_e = time_it(lambda: hb.fit_reml(design), repeat)
    return {"hierbayes": (wall, cpu, fit.criterion, fit.beta),
            "hierbayes (engine)": (wall_e, cpu_e, fit_e.criterion, fit_e.beta)}


def run_mixedlm(data: pd.DataFrame, repeat: int, formula: str = FORMULA,
                family: str = "bernoulli") -> dict:
    import mixedlm
    from mixedlm.families import Binomial, Poisson
    fam = Poisson() if family == "poisson" else Binomial()
    wall, cpu, fit = time_it(lambda: mixedlm.glmer(formula, data, family=fam), repeat)
    return {"mixedlm": (wall, cpu, -2.0 * float(fit.logLik().value),
                        np.asarray(list(fit.fixef().values())))}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", default=["sim50k", "grouseticks"],
                        choices=["sim50k", "grouseticks"])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--groups", type=int, default=1_000)
    parser.add_argument("--seed", type=int, default=20261126)
    parser.add_argument("--repeat", type=int, default=1, help="keep the fastest of N runs")
    args = parser.parse_args(argv)
    warm = simulate(500, 20, args.seed + 1)
    run_hierbayes(warm, 1)
    run_mixedlm(warm, 1)
    for case in args.cases:
        if case == "sim50k":
            data, formula, family = simulate(args.rows, args.groups, args.seed), FORMULA, \
                "bernoulli"
            title = f"{FORMULA}: {args.rows:,} rows, {args.groups:,} groups (bernoulli, logit)"
        else:
            data, formula, family = grouseticks(), TICKS, "poisson"
            title = f"{TICKS}: lme4's grouseticks, 403 rows (poisson, log)"
        results = (run_hierbayes(data, args.repeat, formula, family)
                   | run_mixedlm(data, args.repeat, formula, family))
        print(title)
        with pd.option_context("display.width", 140, "display.max_columns", 20,
                               "display.float_format", "{:.6g}".format):
            print(_table(results).to_string(index=False))


def _table(results: dict) -> pd.DataFrame:
    base_wall, base_cpu, base_crit, base_beta = results["hierbayes"]
    rows = []
    for tool, (wall, cpu, crit, beta) in results.items():
        rows.append({"tool": tool, "wall_s": wall, "time / hierbayes": wall / base_wall,
                     "cpu_s": cpu, "cpu / hierbayes": cpu / base_cpu, "-2 logLik": crit,
                     "- hierbayes": crit - base_crit,
                     "max |Δβ|": float(np.max(np.abs(beta - base_beta)))})
    return pd.DataFrame(rows)


if __name__ == "__main__":
    main()
