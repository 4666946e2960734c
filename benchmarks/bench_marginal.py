"""Speed of Gaussian multilevel fits: hierbayes' marginal path vs its standard path vs bambi.

Not a pytest file. Needs bambi (``pip install bambi==0.21.0``; a benchmark-only dependency).

    .venv/bin/python benchmarks/bench_marginal.py                        # all cases
    .venv/bin/python benchmarks/bench_marginal.py --cases radon_1 --bambi nutpie

Same data, same machine, one timed run per fit, after one untimed warm-up fit per tool (so that
imports and the first JIT compilation of the samplers' own code are not counted). Every fit runs
4 chains × 1000 draws after 1000 tuning steps on the same cores, with each tool's default target
acceptance (hierbayes 0.9, bambi/PyMC 0.8). The models are the same (uncorrelated group effects:
bambi has no correlated ones); the default priors differ a little (bambi's are its own).

Columns:
- ``compile s``: the `pymc.sample` call minus its sampling time (building the sampler's
  functions: numba for nutpie, C for PyMC);
- ``sampling s``: NUTS itself (PyMC's ``sampling_time``); for the marginal path plus the exact
  draws of the group effects after NUTS (``+ draws s``), without which it has no group effects;
- ``min ESS``: the smallest bulk ESS over all parameters, group effects included, and where;
- ``ESS/s``: min ESS / (sampling s + draws s); ``× bambi``: ratio to bambi with the same sampler;
- ``fit s``: the whole call (design, compile, sampling, pointwise log-likelihood — which bambi does
  not compute by default — and diagnostics).
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import arviz_stats as azs
import numpy as np
import pandas as pd
import pymc as pm
import xarray as xr

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout

import hierbayes as hb
import hierbayes.bayes.marginal.draws as marginal_draws
from hierbayes.bayes.diagnostics import reported_quantities

NUTS = {"draws": 1000, "tune": 1000, "chains": 4, "cores": 2}
TIMES: dict[str, float] = {}


def radon() -> pd.DataFrame:
    path = Path(__file__).resolve().parents[1] / "hierbayes" / "models" / "data" / "radon.csv"
    return pd.read_csv(path, dtype={"county": str})


def sim50k(seed: int = 2026) -> pd.DataFrame:
    """50,000 rows, 1,000 groups of unequal size, independent varying intercept and slope."""
    rng = np.random.default_rng(seed)
    n, groups = 50_000, 1_000
    weights = rng.lognormal(0.0, 0.7, groups)
    g = rng.choice(groups, n, p=weights / weights.sum())
    x = rng.normal(size=n)
    a, b = rng.normal(0.0, 0.8, groups), rng.normal(0.0, 0.3, groups)
    y = 1.0 + 0.5 * x + a[g] + b[g] * x + rng.normal(0.0, 1.0, n)
    return pd.DataFrame({"y": y, "x": x, "g": [f"g{k:04d}" for k in g]})


# case -> (hierbayes formula, bambi formula, data)
CASES = {
    "radon_1": ("log_radon ~ floor + (1 | county)", "log_radon ~ floor + (1|county)", radon),
    "radon_2": (
        "log_radon ~ floor + (1 + floor || county)",
        "log_radon ~ floor + (1|county) + (0 + floor|county)",
        radon,
    ),
    "sim50k": ("y ~ x + (1 + x || g)", "y ~ x + (1|g) + (0 + x|g)", sim50k),
}


def _timed(name, fn):
    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        out = fn(*args, **kwargs)
        TIMES[name] = TIMES.get(name, 0.0) + time.perf_counter() - start
        return out

    return wrapper


def install_timers() -> None:
    """Time every pymc.sample call (ours and bambi's) and the marginal path's effect draws."""
    pm.sample = _timed("pm.sample", pm.sample)
    marginal_draws.draw_group_effects = _timed("draws", marginal_draws.draw_group_effects)


def min_ess(quantities: dict[str, np.ndarray]) -> tuple[float, str]:
    ds = xr.Dataset({"v": (("chain", "draw", "q"), np.stack(list(quantities.values()), -1))})
    ess = azs.ess(ds, method="bulk")["v"].values
    worst = int(np.nanargmin(ess))
    return float(ess[worst]), list(quantities)[worst]


def run_hierbayes(formula, data, marginalize: bool, seed: int) -> dict:
    TIMES.clear()
    start = time.perf_counter()
    fit = hb.fit_bayes(formula, data, random_seed=seed, progressbar=False, warn=False,
                       marginalize=marginalize, **NUTS)  # fmt: skip
    wall = time.perf_counter() - start
    posterior = fit.posterior
    ess, where = min_ess(reported_quantities(fit.design, posterior))
    fixed = posterior["beta"].mean(("chain", "draw")).to_series().round(3).to_dict()
    tool = "hierbayes marginal" if marginalize else "hierbayes standard"
    # nutpie's cached path (no pm.sample): the fit's own timings say what compiling took.
    TIMES["pm.sample"] = fit.timings["compile_s"] + fit.timings["sampling_s"]
    fit.idata["posterior"].attrs["sampling_time"] = fit.timings["sampling_s"]
    return _row(tool, fit.idata, ess, where, wall, TIMES.get("draws", 0.0), fixed)


def run_bambi(formula, data, sampler: str, seed: int) -> dict:
    import bambi as bmb

    TIMES.clear()
    start = time.perf_counter()
    model = bmb.Model(formula, data)
    idata = model.fit(inference_method=sampler, random_seed=seed, progressbar=False, **NUTS)
    wall = time.perf_counter() - start
    posterior = idata["posterior"].to_dataset()
    quantities = {}
    for name, var in posterior.data_vars.items():
        values = var.transpose("chain", "draw", ...).to_numpy()
        flat = values.reshape(*values.shape[:2], -1)
        quantities.update({f"{name}[{j}]": flat[..., j] for j in range(flat.shape[-1])})
    ess, where = min_ess(quantities)
    fixed = {k: round(float(posterior[k].mean()), 3) for k in posterior.data_vars if "|" not in k}
    return _row(f"bambi ({sampler})", idata, ess, where, wall, 0.0, fixed)


def _row(tool, idata, ess, where, wall, draws_s, fixed) -> dict:
    sampling = float(idata["posterior"].attrs.get("sampling_time", np.nan))
    divergences = int(idata["sample_stats"]["diverging"].sum())
    return {
        "tool": tool,
        "compile s": TIMES["pm.sample"] - sampling,
        "sampling s": sampling,
        "+ draws s": draws_s,
        "min ESS": ess,
        "where": where,
        "ESS/s": ess / (sampling + draws_s),
        "divergences": divergences,
        "fit s": wall,
        "fixed effects (mean)": fixed,
    }


def warm_up(bambi_samplers) -> None:
    data = radon().iloc[:200]
    small = {"draws": 50, "tune": 50, "chains": 2, "cores": 2, "progressbar": False}
    hb.fit_bayes("log_radon ~ floor + (1 | county)", data, warn=False, **small)
    hb.fit_bayes("log_radon ~ floor + (1 | county)", data, warn=False, marginalize=False, **small)
    if bambi_samplers:
        import bambi as bmb

        for sampler in bambi_samplers:
            bmb.Model("log_radon ~ floor + (1|county)", data).fit(inference_method=sampler, **small)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--bambi", nargs="*", default=["nutpie", "pymc"],
                        help="bambi samplers to run (none: skip bambi)")  # fmt: skip
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    install_timers()
    warm_up(args.bambi)
    rows = []
    for case in args.cases:
        ours, theirs, make = CASES[case]
        data = make()
        fits = [
            run_hierbayes(ours, data, True, args.seed),
            run_hierbayes(ours, data, False, args.seed),
        ]
        fits += [run_bambi(theirs, data, s, args.seed) for s in args.bambi]
        for row in fits:
            rows.append({"case": case, **row})
            print(_format(rows[-1]), flush=True)
    print(report(pd.DataFrame(rows)))


def _format(row: dict) -> str:
    return " | ".join(f"{v:.3g}" if isinstance(v, float) else str(v) for v in row.values())


def report(frame: pd.DataFrame) -> str:
    """Markdown table with the ESS/s ratio of each fit to each bambi fit of the same case."""
    out = []
    for _, group in frame.groupby("case", sort=False):
        ratios = {
            f"× {tool}": group["ESS/s"] / ess_per_s
            for tool, ess_per_s in zip(group["tool"], group["ESS/s"], strict=True)
            if tool.startswith("bambi")
        }
        out.append(group.assign(**ratios))
    table = pd.concat(out).drop(columns=["fixed effects (mean)"])
    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    for row in table.itertuples(index=False):
        cells = ["" if v != v else f"{v:.3g}" if isinstance(v, float) else str(v) for v in row]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
