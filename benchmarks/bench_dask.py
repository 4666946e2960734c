"""Fit 2e7 rows of Parquet from a Dask frame and from pandas, each in its own process; report the
time and the peak resident memory of each (not a pytest file).

    .venv/bin/python benchmarks/bench_dask.py                     # 2e7 rows, 20,000 groups
    .venv/bin/python benchmarks/bench_dask.py --rows 2000000 --groups 2000 --bayes

The data, ``y ~ x + (1 + x | g)``, are written as Parquet files of `--chunk` rows each under a
temporary folder (deleted at the end). Each fit runs in a fresh Python process that reads the
folder itself: the Dask fit with ``dask.dataframe.read_parquet`` (one partition per file, the
local threaded scheduler), the in-memory fit with ``pandas.read_parquet``. Peak memory is the
process's own maximum resident set (``getrusage``), reading included. The pandas fit skips the
within/between check (one extra refit) that the Dask fit does not run, so both do the same work.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
FORMULA = "y ~ x + (1 + x | g)"


def write(folder: Path, rows: int, groups: int, chunk: int, seed: int = 1) -> None:
    rng = np.random.default_rng(seed)
    b = rng.multivariate_normal([0, 0], [[1.0, 0.3], [0.3, 0.25]], size=groups)  # (G, 2)
    for i, start in enumerate(range(0, rows, chunk)):
        m = min(chunk, rows - start)
        g = rng.integers(0, groups, m)
        x = rng.normal(size=m)
        y = 2.0 + 0.5 * x + b[g, 0] + b[g, 1] * x + rng.normal(size=m)
        frame = pd.DataFrame({"y": y, "x": x, "g": g})
        frame.to_parquet(folder / f"part-{i:04d}.parquet", index=False)


def fit(mode: str, folder: str, bayes: bool) -> dict:
    """One fit in this process; returns the results and the peak RSS."""
    sys.path.insert(0, str(ROOT))
    import hierbayes as hb

    start = time.perf_counter()
    if mode == "dask":
        import dask.dataframe as dd

        data = dd.read_parquet(folder)
        reml = hb.fit_reml(FORMULA, data)
    else:
        data = pd.read_parquet(folder)
        reml = hb.fit_reml(FORMULA, data, check_within=False)
    seconds = time.perf_counter() - start
    out = {"mode": mode, "seconds": seconds, "criterion": reml.criterion,
           "beta": reml.beta.tolist(), "theta": reml.theta.tolist(), "sigma": reml.sigma}
    if bayes:
        start = time.perf_counter()
        kw = {"draws": 300, "tune": 300, "chains": 2, "random_seed": 1, "progressbar": False}
        fit_b = hb.fit_bayes(FORMULA, data, **kw) if mode == "dask" else hb.fit_bayes(
            FORMULA, data, check_within=False, **kw)
        out["bayes_seconds"] = time.perf_counter() - start
        out["bayes_fixef"] = fit_b.fixef()["estimate"].tolist()
    out["peak_rss_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=20_000_000)
    parser.add_argument("--groups", type=int, default=20_000)
    parser.add_argument("--chunk", type=int, default=500_000)
    parser.add_argument("--bayes", action="store_true", help="also fit_bayes (marginal NUTS)")
    parser.add_argument("--one", nargs=2, metavar=("MODE", "FOLDER"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(fit(args.one[0], args.one[1], args.bayes)))
        return
    folder = Path(tempfile.mkdtemp(prefix="hierbayes-bench-dask-"))
    try:
        start = time.perf_counter()
        write(folder, args.rows, args.groups, args.chunk)
        size = sum(f.stat().st_size for f in folder.iterdir()) / 2**20
        print(f"wrote {args.rows:,} rows, {args.groups:,} groups, {len(list(folder.iterdir()))} "
              f"files, {size:.0f} MiB in {time.perf_counter() - start:.0f} s; "
              f"load {os.getloadavg()[0]:.2f}")
        results = [_child(mode, folder, args.bayes) for mode in ("dask", "pandas")]
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    _report(results)


def _child(mode: str, folder: Path, bayes: bool) -> dict:
    command = [sys.executable, __file__, "--one", mode, str(folder)] + (["--bayes"] * bayes)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["load"] = os.getloadavg()[0]
    print(json.dumps(result))
    return result


def _report(results: list[dict]) -> None:
    dask_r, pandas_r = results
    print(f"\n{'fit':8} {'seconds':>8} {'peak RSS GiB':>13} {'criterion':>18}")
    for r in results:
        print(f"{r['mode']:8} {r['seconds']:8.1f} {r['peak_rss_gib']:13.2f} {r['criterion']:18.6f}")
    print(f"memory ratio dask/pandas {dask_r['peak_rss_gib'] / pandas_r['peak_rss_gib']:.3f}, "
          f"time ratio {dask_r['seconds'] / pandas_r['seconds']:.2f}, criterion difference "
          f"{dask_r['criterion'] - pandas_r['criterion']:.3g}")


if __name__ == "__main__":
    main()
