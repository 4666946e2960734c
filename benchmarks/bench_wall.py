"""Wall time of the whole fit_bayes call, hierbayes beside bambi on nutpie (not a pytest file).

Every measurement runs in its own process (so that imports, compilations and peak memory are its
own), the two tools alternating case by case. Needs bambi (``pip install bambi==0.21.0``).

    .venv/bin/python benchmarks/bench_wall.py                       # every case but InstEval
    .venv/bin/python benchmarks/bench_wall.py --cases insteval --modes fresh --timeout 900 \
        --bambi-timeout 900
    .venv/bin/python benchmarks/bench_wall.py --cases memory --tools hierbayes --before ../main

Modes of a measurement (one process each):

- ``second``: a first fit (untimed: it compiles), then the timed fit of the same model, as a user
  refitting in a notebook does;
- ``fresh``: import and first fit in a new process (hierbayes' disk cache of compiled models as
  the previous runs left it; ``cold``: with an empty one, while PyTensor's and numba's own disk
  caches, which also hold the machine code of hierbayes' callbacks, stay as earlier runs left
  them; ``machine``: as on a machine that never compiled anything — empty PyTensor compile
  folder, numba cache and hierbayes cache, for both tools).

Columns: ``import``, ``design`` (formula → model: ``hb.fit_bayes`` up to sampling, its
within/between check included / ``bmb.Model``),
``compile`` (building the sampler: 0 when hierbayes reuses a compiled model), ``sampling`` (NUTS,
4 chains × 1000 draws after 1000 tuning steps on 2 cores; InstEval 4 × 400 after 200), ``post``
(everything after NUTS: the marginal path's exact draws of the group effects, diagnostics;
bambi's conversion), ``fit`` (the
whole call from formula to fit), ``peak MB`` (the process's peak resident memory), ``min ESS``
(smallest bulk ESS over all parameters, group effects included), ``ESS/s`` (min ESS / fit s),
``max R-hat`` (largest rank-normalised split R-hat over the same quantities),
``div`` (divergences), ``import + fit`` (what a fresh process waits for), and the ratios to
bambi of fit s, import + fit s and ESS/s; ``load`` is the 1-minute load average as the
measurement started; ``n`` the repeats (``--repeat``) whose medians are shown. The ``memory``
case (a Gaussian model of 50,000 rows, hierbayes only) also saves the fit and reports ``file MB``;
``--before CHECKOUT`` times another checkout of hierbayes beside this one (e.g. the main branch,
which stored the pointwise log-likelihood of every fit).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
NUTS = {"draws": 1000, "tune": 1000, "chains": 4, "cores": 2}


# --- data ------------------------------------------------------------------------------------


def _shipped(name: str, factors: list[str]):
    def load() -> pd.DataFrame:
        path = ROOT / "hierbayes" / "models" / "data" / f"{name}.csv"
        return pd.read_csv(path, dtype={f: str for f in factors})

    return load


def crossed(seed: int = 2026, n: int = 20_000, a: int = 400, b: int = 100) -> pd.DataFrame:
    """Crossed random intercepts: 20,000 rows, 400 × 100 levels, SDs 0.8 and 0.5, σ = 1."""
    rng = np.random.default_rng(seed)
    ia, ib, x = rng.integers(0, a, n), rng.integers(0, b, n), rng.normal(size=n)
    y = 1 + 0.5 * x + rng.normal(0, 0.8, a)[ia] + rng.normal(0, 0.5, b)[ib] + rng.normal(0, 1, n)
    return pd.DataFrame({"y": y, "x": x, "a": [f"a{k:03d}" for k in ia],
                         "b": [f"b{k:03d}" for k in ib]})


def logistic(seed: int = 2026, n: int = 50_000, groups: int = 1_000) -> pd.DataFrame:
    """bench_glmm.py's model: logit p = −0.5 + 0.8 x + 0.4 treated + b_g, b_g ~ N(0, 0.9²)."""
    rng = np.random.default_rng(seed)
    g, x, treated = rng.integers(0, groups, n), rng.normal(size=n), rng.integers(0, 2, n)
    eta = -0.5 + 0.8 * x + 0.4 * treated + rng.normal(0.0, 0.9, groups)[g]
    y = rng.binomial(1, 1.0 / (1.0 + np.exp(-eta)))
    return pd.DataFrame({"y": y, "x": x, "treated": treated.astype(float),
                         "g": [f"g{i:04d}" for i in g]})


def big_gaussian(seed: int = 2026, n: int = 50_000, groups: int = 1_000) -> pd.DataFrame:
    """50,000 rows: the pointwise log-likelihood of 4 × 1000 draws alone is 1.6 GB (8 bytes × rows
    × draws; 6.4 GB at 200,000 rows), more than the shared machine should risk twice over."""
    rng = np.random.default_rng(seed)
    g, x = rng.integers(0, groups, n), rng.normal(size=n)
    y = 1 + 0.5 * x + rng.normal(0, 0.8, groups)[g] + rng.normal(0, 1, n)
    return pd.DataFrame({"y": y, "x": x, "g": [f"g{k:04d}" for k in g]})


def insteval() -> pd.DataFrame:
    import mixedlm

    data = mixedlm.datasets.load_insteval()
    return data.astype({c: str for c in ("s", "d", "service", "dept")})


# case -> (hierbayes formula, bambi formula, family, data, sampler settings)
CASES = {
    "sleepstudy": ("Reaction ~ Days + (Days | Subject)", "Reaction ~ Days + (Days|Subject)",
                   "gaussian", _shipped("sleepstudy", ["Subject"]), NUTS),
    "radon_1": ("log_radon ~ floor + (1 | county)", "log_radon ~ floor + (1|county)",
                "gaussian", _shipped("radon", ["county"]), NUTS),
    "radon_2": ("log_radon ~ floor + (1 + floor | county)",
                "log_radon ~ floor + (1 + floor|county)", "gaussian",
                _shipped("radon", ["county"]), NUTS),
    "cbpp": ("cbind(incidence, size - incidence) ~ period + (1 | herd)",
             "p(incidence, size) ~ period + (1|herd)", "binomial",
             _shipped("cbpp", ["herd", "period"]), NUTS),
    "crossed": ("y ~ x + (1 | a) + (1 | b)", "y ~ x + (1|a) + (1|b)", "gaussian", crossed, NUTS),
    "logistic50k": ("y ~ x + treated + (1 | g)", "y ~ x + treated + (1|g)", "bernoulli",
                    logistic, NUTS),
    "insteval": ("y ~ service + (1 | s) + (1 | d) + (1 | dept:service)",
                 "y ~ service + (1|s) + (1|d) + (1|dept:service)", "gaussian", insteval,
                 {"draws": 400, "tune": 200, "chains": 4, "cores": 2}),
    "memory": ("y ~ x + (1 | g)", None, "gaussian", big_gaussian, NUTS),
}


# --- one measurement (runs in its own process) ---------------------------------------------


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _convergence(values: dict) -> dict:
    """The smallest bulk ESS (and where) and the largest rank-normalised R-hat over `values`."""
    import arviz_stats as azs
    import xarray as xr

    data = xr.Dataset({"v": (("chain", "draw", "q"), np.stack(list(values.values()), -1))})
    ess = azs.ess(data, method="bulk")["v"].values
    worst = int(np.nanargmin(ess))
    rhat = azs.rhat(data)["v"].values
    return {"min ESS": float(ess[worst]), "where": list(values)[worst],
            "max R-hat": float(np.nanmax(rhat))}


def _settings(nuts: dict) -> dict:
    """The case's NUTS settings, with the driver's ``--draws``/``--tune`` (via BENCH_NUTS)."""
    return {**nuts, **json.loads(os.environ.get("BENCH_NUTS", "{}"))}


def worker_hierbayes(case: str, mode: str) -> dict:
    start = time.perf_counter()
    import hierbayes as hb
    from hierbayes.bayes.diagnostics import reported_quantities

    imported = time.perf_counter() - start
    formula, _, family, make, nuts = CASES[case]
    nuts = _settings(nuts)
    data = make()
    settings = {**nuts, "random_seed": 1, "progressbar": False, "warn": False}
    if mode == "second":
        hb.fit_bayes(formula, data, family=family, **settings)
    start = time.perf_counter()
    fit = hb.fit_bayes(formula, data, family=family, **settings)
    saved = np.nan
    if case == "memory":  # the fit as a user keeps it: in memory and in posterior.nc
        path = Path(tempfile.mkdtemp()) / "posterior.nc"
        fit.save(path)
        saved = path.stat().st_size / 1e6
    wall = time.perf_counter() - start
    t = getattr(fit, "timings", {})
    # Before `sample` starts: the formula, the design, the priors, the model and fit_bayes'
    # within/between check (a REML fit).
    design = wall - t.get("total_s", wall) if t else np.nan
    compile_s = t.get("compile_s", np.nan)
    sampling = t.get("sampling_s", np.nan)
    converged = _convergence(reported_quantities(fit.design, fit.posterior))
    return {"import": imported, "design": design, "compile": compile_s, "sampling": sampling,
            "post": wall - design - compile_s - sampling, "fit": wall, **converged,
            "div": int(fit.idata["sample_stats"]["diverging"].sum()),
            "path": fit.settings.get("marginal_path"), "compiled": t.get("compiled", ""),
            "file MB": saved}


def worker_bambi(case: str, mode: str) -> dict:
    start = time.perf_counter()
    import bambi as bmb
    import pymc as pm

    imported = time.perf_counter() - start
    _, formula, family, make, nuts = CASES[case]
    nuts = _settings(nuts)
    data = make()
    timer = {}
    original = pm.sample

    def timed(*args, **kwargs):
        begin = time.perf_counter()
        out = original(*args, **kwargs)
        timer["sample"] = time.perf_counter() - begin
        return out

    pm.sample = timed
    settings = {**nuts, "random_seed": 1, "progressbar": False, "inference_method": "nutpie"}
    if mode == "second":
        bmb.Model(formula, data, family=family).fit(**settings)
    start = time.perf_counter()
    model = bmb.Model(formula, data, family=family)
    design = time.perf_counter() - start
    idata = model.fit(**settings)
    wall = time.perf_counter() - start
    sampling = float(idata["posterior"].attrs.get("sampling_time", np.nan))
    posterior = idata["posterior"].to_dataset()
    values = {}
    for name, var in posterior.data_vars.items():
        array = var.transpose("chain", "draw", ...).to_numpy()
        flat = array.reshape(*array.shape[:2], -1)
        values.update({f"{name}[{j}]": flat[..., j] for j in range(flat.shape[-1])})
    return {"import": imported, "design": design, "compile": timer["sample"] - sampling,
            "sampling": sampling, "post": wall - design - timer["sample"], "fit": wall,
            **_convergence(values), "div": int(idata["sample_stats"]["diverging"].sum()),
            "path": "", "compiled": ""}


def worker(tool: str, case: str, mode: str) -> None:
    warnings.simplefilter("ignore")
    run = worker_hierbayes if tool == "hierbayes" else worker_bambi
    row = run(case, mode)
    row["peak MB"] = _peak_mb()
    nuts = _settings(CASES[case][4])
    row["nuts"] = f"{nuts['chains']} × {nuts['draws']} + {nuts['tune']}"
    print("RESULT " + json.dumps(row), flush=True)


# --- the driver -------------------------------------------------------------------------------


def measure(tool: str, case: str, mode: str, code: Path, timeout: float | None,
            nuts: dict | None = None) -> dict:
    env = {**os.environ, "PYTHONPATH": str(code), "OMP_NUM_THREADS": "1",
           "BENCH_NUTS": json.dumps(nuts or {})}
    if mode in ("cold", "machine"):
        env["HIERBAYES_CACHE"] = tempfile.mkdtemp(prefix="hierbayes-cold-")
    if mode == "machine":  # nothing compiled before, for either tool
        env["PYTENSOR_FLAGS"] = f"base_compiledir={tempfile.mkdtemp(prefix='pytensor-')}"
        env["NUMBA_CACHE_DIR"] = tempfile.mkdtemp(prefix="numba-")
    command = [sys.executable, __file__, "--worker", tool, case, "second" if mode == "second"
               else "fresh"]  # fmt: skip
    label = tool if code == ROOT else f"{tool} ({code.name})"
    row = {"case": case, "tool": label, "mode": mode, "load": os.getloadavg()[0]}
    try:
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {**row, "fit": np.inf, "where": f"stopped after {timeout:.0f} s"}
    lines = [x for x in done.stdout.splitlines() if x.startswith("RESULT ")]
    if not lines:
        last = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
        return {**row, "where": "failed: " + last[:120]}
    return {**row, **json.loads(lines[-1][len("RESULT "):])}


def report(rows: list[dict]) -> str:
    """The table: per case, mode and tool the median of the repeats (``n``), ratios to bambi's."""
    frame = pd.DataFrame(rows)
    frame["ESS/s"] = frame["min ESS"] / frame["fit"]
    frame["import + fit"] = frame["import"] + frame["fit"]  # what a fresh process waits
    keys = ["case", "mode", "tool"]
    numeric = [c for c in frame.columns if c not in keys and frame[c].dtype.kind in "fi"]
    grouped = frame.groupby(keys, sort=False)
    table = grouped[numeric].median().join(grouped.size().rename("n"))
    text = [c for c in ("where", "path", "compiled", "nuts") if c in frame]
    table = table.join(grouped[text].last()).reset_index()
    out = []
    for _, group in table.groupby(["case", "mode"], sort=False):
        bambi = group[group["tool"] == "bambi"]
        if len(bambi):
            group = group.assign(**{"fit × bambi": group["fit"] / bambi["fit"].iloc[0],
                                    "import + fit × bambi": group["import + fit"]
                                    / bambi["import + fit"].iloc[0],
                                    "ESS/s × bambi": group["ESS/s"] / bambi["ESS/s"].iloc[0]})
        out.append(group)
    table = pd.concat(out)
    columns = ["case", "mode", "tool", "n", "load", "import", "design", "compile", "sampling",
               "post", "fit", "import + fit", "peak MB", "file MB", "min ESS", "ESS/s", "max R-hat",
               "div",
               "fit × bambi", "import + fit × bambi", "ESS/s × bambi", "nuts", "path", "where"]
    table = table[[c for c in columns if c in table]]
    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    for row in table.itertuples(index=False):
        cells = ["" if v is None or v != v else f"{v:.3g}" if isinstance(v, float) else str(v)
                 for v in row]  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--worker", nargs=3, metavar=("TOOL", "CASE", "MODE"))
    parser.add_argument("--cases", nargs="+", default=[c for c in CASES if c not in
                                                       ("insteval", "memory")])  # fmt: skip
    parser.add_argument("--modes", nargs="+", default=["second", "fresh"],
                        choices=["second", "fresh", "cold", "machine"])
    parser.add_argument("--tools", nargs="+", default=["hierbayes", "bambi"])
    parser.add_argument("--before", type=Path, help="another checkout to time beside this one")
    parser.add_argument("--bambi-timeout", type=float, default=None)
    parser.add_argument("--timeout", type=float, default=None, help="hierbayes' limit, seconds")
    parser.add_argument("--repeat", type=int, default=1, help="measurements per row (medians)")
    parser.add_argument("--draws", type=int, help="draws per chain instead of the case's")
    parser.add_argument("--tune", type=int, help="tuning steps instead of the case's")
    args = parser.parse_args(argv)
    if args.worker:
        worker(*args.worker)
        return
    print(f"load average before: {os.getloadavg()}", flush=True)
    rows = []
    for case in args.cases:
        for mode in args.modes * args.repeat:  # the tools alternate within each repeat
            for tool in args.tools:
                if tool == "bambi" and CASES[case][1] is None:
                    continue
                codes = [ROOT] + ([args.before.resolve()] if args.before and tool != "bambi"
                                  else [])  # fmt: skip
                for code in codes:
                    timeout = args.bambi_timeout if tool == "bambi" else args.timeout
                    nuts = {k: v for k, v in (("draws", args.draws), ("tune", args.tune))
                            if v is not None}  # fmt: skip
                    rows.append(measure(tool, case, mode, code, timeout, nuts))
                    print(json.dumps(rows[-1], default=str), flush=True)
    print(f"load average after: {os.getloadavg()}")
    print(report(rows))


if __name__ == "__main__":
    main()
