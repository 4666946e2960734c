"""Simulation-based calibration of the marginal and the standard paths (not a pytest file).

    .venv/bin/python benchmarks/sbc_marginal.py                       # 100 data sets, both paths
    .venv/bin/python benchmarks/sbc_marginal.py --datasets 200 --paths marginal

For each design, parameters and a response are drawn from the prior (fixed priors, so that every
data set has the same model), each data set is fitted (2 chains × 500 draws after 500 tuning
steps), and the rank of each true value among 100 thinned posterior draws is recorded
(`hierbayes.testing.sbc`). Calibrated inference gives uniform ranks: per quantity a chi-square
test on 10 equal bins, the smallest p-value against its Bonferroni threshold (0.05 / quantities),
and a chi-square test of all ranks pooled (approximate: ranks of one data set are dependent).

Designs:
- ``slopes``: ``y ~ x + (x | g)``, 10 groups × 8 rows, correlated intercept and slope (the grouped
  marginal path: unrolled 2 × 2 factorizations, LKJ correlation);
- ``crossed``: ``y ~ 1 + (1 | a) + (1 | b)``, 6 × 5 crossed levels, 2 rows per cell (the dense
  marginal path).
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
from hierbayes.testing import sbc

P = hb.Prior
THIN, DRAWS, CHAINS = 10, 500, 2
N_RANKS = DRAWS * CHAINS // THIN + 1  # ranks 0 .. 100


def slopes() -> tuple[str, pd.DataFrame, dict]:
    rng = np.random.default_rng(5)
    g = np.repeat(np.arange(10), 8)
    data = pd.DataFrame({"y": 0.0, "x": rng.normal(size=g.size), "g": [f"g{k}" for k in g]})
    priors = {
        "Intercept": P("Normal", mu=0.0, sigma=1.0),
        "x": P("Normal", mu=0.0, sigma=1.0),
        "sd_g": P("HalfNormal", sigma=1.0),
        "corr_g": P("LKJ", eta=2.0),
        "sigma": P("Exponential", lam=1.0),
    }
    return "y ~ x + (x | g)", data, priors


def crossed() -> tuple[str, pd.DataFrame, dict]:
    a, b = np.meshgrid(np.arange(6), np.arange(5), indexing="ij")
    a, b = np.repeat(a.ravel(), 2), np.repeat(b.ravel(), 2)
    data = pd.DataFrame({"y": 0.0, "a": [f"a{k}" for k in a], "b": [f"b{k}" for k in b]})
    priors = {
        "Intercept": P("Normal", mu=0.0, sigma=1.0),
        "sd_a": P("HalfNormal", sigma=1.0),
        "sd_b": P("HalfNormal", sigma=1.0),
        "sigma": P("Exponential", lam=1.0),
    }
    return "y ~ 1 + (1 | a) + (1 | b)", data, priors


DESIGNS = {"slopes": slopes, "crossed": crossed}


def calibrate(design: str, path: str, datasets: int, seed: int, save: str | None) -> dict:
    formula, template, priors = DESIGNS[design]()
    template["y"] = np.random.default_rng(seed).normal(size=len(template))  # replaced below
    spec = hb.build_model(formula, template, priors=priors)
    truth, ys = sbc.simulate(spec, datasets, seed=seed)
    run = sbc.marginal_ranks if path == "marginal" else sbc.standard_ranks
    start = time.perf_counter()
    ranks = run(spec, truth, ys, draws=DRAWS, tune=500, chains=CHAINS, thin=THIN, seed=seed)
    seconds = time.perf_counter() - start
    if save:
        ranks.to_csv(f"{save}-{design}-{path}.csv")
    per_quantity = sbc.uniformity(ranks, N_RANKS, bins=10)
    pooled = sbc.uniformity(ranks.stack().to_frame("all"), N_RANKS, bins=10)
    m = len(per_quantity)
    return {
        "design": design,
        "path": path,
        "data sets": datasets,
        "quantities": m,
        "min p": per_quantity["p_value"].min(),
        "worst": per_quantity["p_value"].idxmin(),
        "Bonferroni 0.05/m": 0.05 / m,
        "p < 0.01": int((per_quantity["p_value"] < 0.01).sum()),
        "pooled p": pooled["p_value"].iloc[0],
        "divergences": ranks.attrs.get("divergences", 0),
        "seconds": seconds,
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=int, default=100)
    parser.add_argument("--designs", nargs="+", default=list(DESIGNS), choices=list(DESIGNS))
    parser.add_argument("--paths", nargs="+", default=["marginal", "standard"])
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--save", help="write the ranks to <SAVE>-<design>-<path>.csv")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    rows = []
    for design in args.designs:
        for path in args.paths:
            rows.append(calibrate(design, path, args.datasets, args.seed, args.save))
            print(rows[-1], flush=True)
    frame = pd.DataFrame(rows)
    lines = ["| " + " | ".join(frame.columns) + " |", "|" + "---|" * len(frame.columns)]
    for row in frame.itertuples(index=False):
        lines.append(
            "| " + " | ".join(f"{v:.3g}" if isinstance(v, float) else str(v) for v in row) + " |"
        )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
