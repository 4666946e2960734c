"""Time hierbayes.fit_reml side by side with mixedlm and statsmodels MixedLM (not a pytest file).

Same data, same machine, one timed run per fit (after one untimed warm-up fit of sleepstudy per
library, so imports and first-call costs are not counted). Prints times, ratios and criteria.

    .venv/bin/python benchmarks/bench_reml.py                 # all cases
    .venv/bin/python benchmarks/bench_reml.py --cases sleepstudy sim100k
    .venv/bin/python benchmarks/bench_reml.py --cases insteval --repeat 3   # the real InstEval
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


def sleepstudy() -> tuple[str, pd.DataFrame, dict]:
    data = _csv("sleepstudy", "Subject")
    return "Reaction ~ Days + (Days | Subject)", data, {"groups": "Subject", "re": "~Days"}


def _csv(name: str, factor: str) -> pd.DataFrame:
    path = Path(__file__).resolve().parents[1] / "hierbayes" / "models" / "data" / f"{name}.csv"
    return pd.read_csv(path, dtype={factor: str})


def sim100k(seed: int) -> tuple[str, pd.DataFrame, dict]:
    """100,000 rows, 2,000 groups, correlated random intercept and slope."""
    rng = np.random.default_rng(seed)
    n, G = 100_000, 2_000
    g, x = rng.integers(0, G, n), rng.normal(size=n)
    b = rng.multivariate_normal([0, 0], [[4.0, 0.6], [0.6, 1.0]], G)
    y = 1 + 0.5 * x + b[g, 0] + b[g, 1] * x + rng.normal(size=n)
    data = pd.DataFrame({"y": y, "x": x, "g": [f"g{i:04d}" for i in g]})
    return "y ~ x + (x | g)", data, {"groups": "g", "re": "~x"}


def insteval() -> tuple[str, pd.DataFrame, dict | None]:
    """lme4's InstEval (73,421 ratings; 2,972 students, 1,128 lecturers, 28 department × service
    cells), the model of lme4's own examples, from mixedlm's copy of the data."""
    from mixedlm.datasets import load_insteval

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = load_insteval()
    data["y"] = data["y"].astype(float)
    return "y ~ service + (1 | s) + (1 | d) + (1 | dept:service)", data, None


def insteval_shaped(seed: int) -> tuple[str, pd.DataFrame, dict | None]:
    """InstEval's shape: 73,421 ratings, 2,972 students × 1,128 lecturers, crossed intercepts.

    Students rate ~25 lecturers each, lecturers with very unequal numbers of ratings (lognormal
    popularity), as in the real data set."""
    rng = np.random.default_rng(seed)
    n, ns, nd = 73_421, 2_972, 1_128
    popularity = rng.lognormal(0.0, 1.0, nd)
    s = rng.integers(0, ns, n)
    d = rng.choice(nd, n, p=popularity / popularity.sum())
    y = 3.2 + rng.normal(0, 0.32, ns)[s] + rng.normal(0, 0.52, nd)[d] + rng.normal(0, 1.18, n)
    data = pd.DataFrame({"y": y, "s": [f"s{i:04d}" for i in s], "d": [f"d{i:04d}" for i in d]})
    return "y ~ 1 + (1 | s) + (1 | d)", data, None  # statsmodels: one grouping factor only


REPEAT = 1


def time_it(fn):
    """Wall seconds of the fastest of REPEAT runs (1 by default: one run), the CPU seconds of
    that run (all threads of the process: robust to other load on the machine) and the result."""
    best, cpu = np.inf, np.inf
    for _ in range(REPEAT):
        start, start_cpu = time.perf_counter(), time.process_time()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = fn()
        wall = time.perf_counter() - start
        if wall < best:
            best, cpu = wall, time.process_time() - start_cpu
    return (best, cpu), out


def run_hierbayes(formula, data):
    # The default call runs the within/between check (one warm-started refit per grouping
    # factor a predictor varies within); the lme4-equivalent call is check_within=False.
    total, fit = time_it(lambda: hb.fit_reml(formula, data))
    bare, _ = time_it(lambda: hb.fit_reml(formula, data, check_within=False))
    design = fit.design
    engine, fit2 = time_it(lambda: hb.fit_reml(design, check_within=False))
    return {"hierbayes": (total, fit.criterion),
            "hierbayes (check_within=False)": (bare, fit.criterion),
            "hierbayes (engine)": (engine, fit2.criterion)}


def run_mixedlm(formula, data):
    import mixedlm
    seconds, fit = time_it(lambda: mixedlm.lmer(formula, data))
    return {"mixedlm": (seconds, float(fit.REMLcrit()))}


def run_statsmodels(formula, data, spec):
    if spec is None:
        return {"statsmodels": ((np.nan, np.nan), np.nan)}
    import statsmodels.formula.api as smf
    fixed = formula.split("+ (")[0].strip()

    def fit():
        model = smf.mixedlm(fixed, data, groups=data[spec["groups"]], re_formula=spec["re"])
        return model.fit(reml=True)

    seconds, result = time_it(fit)
    return {"statsmodels": (seconds, -2.0 * float(result.llf))}


def warm_up(skip_statsmodels: bool) -> None:
    formula, data, spec = sleepstudy()
    run_hierbayes(formula, data)
    run_mixedlm(formula, data)
    if not skip_statsmodels:
        run_statsmodels(formula, data, spec)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cases = ["sleepstudy", "sim100k", "insteval", "insteval_sim"]
    parser.add_argument("--cases", nargs="+", default=cases, choices=cases)
    parser.add_argument("--seed", type=int, default=20261126)
    parser.add_argument("--skip-statsmodels", action="store_true")
    parser.add_argument("--repeat", type=int, default=1,
                        help="time each fit this many times and keep the fastest (default 1)")
    args = parser.parse_args(argv)
    global REPEAT
    REPEAT = max(1, args.repeat)
    makers = {"sleepstudy": lambda: sleepstudy(), "sim100k": lambda: sim100k(args.seed),
              "insteval": insteval, "insteval_sim": lambda: insteval_shaped(args.seed)}
    warm_up(args.skip_statsmodels)
    rows = []
    for case in args.cases:
        formula, data, spec = makers[case]()
        results = run_hierbayes(formula, data) | run_mixedlm(formula, data)
        if not args.skip_statsmodels:
            results |= run_statsmodels(formula, data, spec)
        (base, base_cpu), base_crit = results["hierbayes"]
        for tool, ((seconds, cpu), crit) in results.items():
            rows.append({"case": case, "rows": len(data), "tool": tool, "seconds": seconds,
                         "time / hierbayes": seconds / base, "cpu_s": cpu,
                         "cpu / hierbayes": cpu / base_cpu, "criterion": crit,
                         "criterion - hierbayes": crit - base_crit})
    table = pd.DataFrame(rows)
    with pd.option_context("display.width", 140, "display.max_columns", 20,
                           "display.float_format", "{:.6g}".format):
        print(table.to_string(index=False))


if __name__ == "__main__":
    main()
