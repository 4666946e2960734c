"""When do the posterior and REML agree? `agreement` measures it against the size of the data.

"With a decent-sized data set, the standard mixed effects model and the fully Bayesian variant
will often give very similar results." How decent? `agreement(formula, data, n_groups=...,
per_group=..., reps=...)` draws, for every combination of a number of groups and a number of rows
per group, `reps` subsamples of the data (groups at random among those with enough rows, then
rows at random within each), fits each subsample both ways (`fit_reml`, `fit_bayes`), compares
them (`compare`) and keeps, for every quantity, the standardised difference

    std_diff = (posterior mean − frequentist estimate) / posterior SD

and `agree` = |std_diff| < `tol` (0.5 by default: the comparison's own rule for fixed effects and
group effects, here applied to SDs and correlations too). Quantities fall in classes: "fixed
effects", "SDs" (the group SDs and the residual SD), "correlations" and "group effects" (every
level × term of every block).

A class **agrees at a size** (n_groups, per_group) when at least `share` (0.9) of its quantities,
over all reps, agree. `Agreement.summary()` gives, per class and rows per group, the smallest
number of groups from which it agrees at that size and at every larger one in the study.

Subsampling groups by the first grouping factor of the formula (or `group=`) keeps the other
factors of a crossed design as they fall. A subsample that cannot be fitted (a factor left with
one level, say) is recorded in `Agreement.fits` with its error, not raised.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..design import make_design
from ..errors import HierbayesError
from ..grouping import labels_of
from ..naming import row_name
from .parallel import run_all

TOL = 0.5
SHARE = 0.9
CLASSES = ("fixed effects", "SDs", "correlations", "group effects")
TABLE_COLUMNS = ["n_groups", "per_group", "rep", "class", "quantity", "std_diff", "agree",
                 "reml_estimate", "bayes_estimate", "bayes_std_error"]


@dataclass(frozen=True, eq=False)
class Agreement:
    """What `agreement` measured: `table` (one row per size × rep × quantity), `fits` (one row
    per subsample: its size, whether REML was singular, the sampler checks, seconds, any
    error) and the settings. `cells()`, `summary()`, `plot()`, `report()` read them."""

    formula: str
    group: str
    table: pd.DataFrame
    fits: pd.DataFrame
    tol: float = TOL
    share: float = SHARE
    settings: dict = field(default_factory=dict)

    def cells(self) -> pd.DataFrame:
        """One row per class × size: median and max |std_diff|, the share that agree, whether
        the class agrees there (share ≥ `share`), and how many quantities and reps."""
        t = self.table.assign(abs_diff=self.table["std_diff"].abs())
        keys = ["class", "n_groups", "per_group"]
        out = t.groupby(keys, sort=False).agg(
            median_abs_std_diff=("abs_diff", "median"), max_abs_std_diff=("abs_diff", "max"),
            share_agree=("agree", "mean"), quantities=("quantity", "nunique"),
            reps=("rep", "nunique")).reset_index()
        out["agree"] = out["share_agree"] >= self.share
        out["n_obs"] = out["n_groups"] * out["per_group"]
        order = {c: i for i, c in enumerate(CLASSES)}
        return out.sort_values(["class", "per_group", "n_groups"], key=lambda s: s.map(
            order) if s.name == "class" else s, ignore_index=True)

    def summary(self) -> pd.DataFrame:
        """Per class × rows per group: `smallest_n_groups`, the fewest groups from which the
        class agrees at every larger number of groups in the study (NaN: not even at the
        largest), with `n_obs` there and the median |std_diff| at the smallest and largest."""
        rows = []
        for (cls, per_group), part in self.cells().groupby(["class", "per_group"], sort=False):
            part = part.sort_values("n_groups")
            agree = part["agree"].to_numpy()
            from_here = np.flip(np.logical_and.accumulate(np.flip(agree)))
            first = int(np.argmax(from_here)) if from_here.any() else None
            smallest = np.nan if first is None else int(part["n_groups"].iloc[first])
            rows.append({"class": cls, "per_group": per_group, "smallest_n_groups": smallest,
                         "n_obs": smallest * per_group if first is not None else np.nan,
                         "median_abs_std_diff_smallest_size":
                             part["median_abs_std_diff"].iloc[0],
                         "median_abs_std_diff_largest_size":
                             part["median_abs_std_diff"].iloc[-1]})
        out = pd.DataFrame(rows)
        out.attrs["rule"] = (f"a class agrees at a size when at least {self.share:.0%} of its "
                             f"quantities have |std_diff| < {self.tol:g} posterior SD")
        return out

    def plot(self, **kwargs):
        """|std_diff| against the number of groups, one panel per class (matplotlib Figure)."""
        from .figures import plot_agreement

        return plot_agreement(self, **kwargs)

    def report(self, path=None, title: str | None = None, description: str = ""):
        """A `hierbayes.report.Report` (HTML + Markdown) of the study; written when `path`."""
        from .figures import agreement_report

        return agreement_report(self, path, title=title, description=description)

    def _repr_html_(self) -> str:
        return self.report()._repr_html_()

    def __repr__(self) -> str:
        failed = int(self.fits["error"].notna().sum())
        head = (f"Agreement of Bayes and REML for {self.formula}: {len(self.fits)} subsamples "
                f"of {self.group}" + (f" ({failed} failed)" if failed else ""))
        return head + "\n" + self.summary().to_string(index=False)


def agreement(formula: str, data: pd.DataFrame, n_groups=(5, 10, 20), per_group=(5,),
              reps: int = 2, *, family: str = "gaussian", priors=None, link: str | None = None,
              known_sigma: str | None = None, group: str | None = None, seed: int = 0,
              tol: float = TOL, share: float = SHARE, n_jobs: int = 1, client=None,
              progressbar: bool = True, **sampler_options) -> Agreement:
    """Fit subsamples of every size both ways and measure how far apart the fits are.

    `n_groups`, `per_group`: the sizes (each combination is one size); `reps` subsamples per
    size. `group`: the column(s) to subsample groups by (default: the formula's first grouping
    factor). `sampler_options` go to `fit_bayes` (draws, tune, chains, target_accept, sampler,
    marginalize, ...); each fit gets its own seed drawn from `seed`. `n_jobs`, `client`: run the
    fits in parallel (`hierbayes.study.parallel`). See the module docstring for the measures.
    """
    if not (tol > 0 and 0 < share <= 1):
        raise HierbayesError(f"tol must be > 0 and share in (0, 1]; got {tol!r}, {share!r}.")
    design = make_design(formula, data, family, known_sigma=known_sigma)
    factors = _factors(design, group)
    sizes = _sizes(n_groups, per_group, reps)
    labels = labels_of(design.data, factors)
    jobs = _jobs(formula, design.data, labels, sizes, reps, seed,
                 {"family": family, "priors": priors, "link": link,
                  "known_sigma": known_sigma, **sampler_options})
    results = run_all(_fit_one, jobs, n_jobs=n_jobs, client=client, progressbar=progressbar,
                      label="agreement fits")
    parts = [r["rows"] for r in results if len(r["rows"])]
    table = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
        columns=[c for c in TABLE_COLUMNS if c != "agree"])
    table.insert(TABLE_COLUMNS.index("agree"), "agree", table["std_diff"].abs() < tol)
    fits = pd.DataFrame([r["fit"] for r in results])
    return Agreement(formula, ":".join(factors), table, fits, tol, share,
                     {"seed": seed, "reps": reps, "family": family, **sampler_options})


def _factors(design, group) -> tuple[str, ...]:
    if group is None and not design.blocks:
        raise HierbayesError(f"The formula {design.formula!r} has no group-level term: there "
                             "are no groups to subsample.")
    if group is None:
        return design.blocks[0].factors
    factors = (group,) if isinstance(group, str) else tuple(group)
    missing = [f for f in factors if f not in design.data.columns]
    if missing or not factors:
        raise HierbayesError(
            f"group={group!r} must name the column(s) to subsample by, among the formula's "
            f"columns: {', '.join(map(repr, design.data.columns))}."
        )
    return factors


def _sizes(n_groups, per_group, reps) -> list[tuple[int, int]]:
    def whole(values, name, least):
        values = (values,) if isinstance(values, int | np.integer) else tuple(values)
        if not values or any(isinstance(v, bool) or not isinstance(v, int | np.integer)
                             or v < least for v in values):
            raise HierbayesError(f"{name} must be whole numbers >= {least}, got {values!r}.")
        return sorted({int(v) for v in values})

    if isinstance(reps, bool) or not isinstance(reps, int) or reps < 1:
        raise HierbayesError(f"reps must be a whole number >= 1, got {reps!r}.")
    return [(g, k) for k in whole(per_group, "per_group", 1)
            for g in whole(n_groups, "n_groups", 2)]


def subsample(labels: np.ndarray, n_groups: int, per_group: int,
              rng: np.random.Generator) -> np.ndarray:
    """Row positions of `n_groups` groups drawn among those with at least `per_group` rows,
    `per_group` rows drawn in each; in the data's order."""
    levels, counts = np.unique(labels, return_counts=True)
    eligible = levels[counts >= per_group]
    if len(eligible) < n_groups:
        raise HierbayesError(
            f"Only {len(eligible)} groups have at least {per_group} rows; a subsample of "
            f"{n_groups} groups × {per_group} rows needs {n_groups}. Choose smaller sizes."
        )
    chosen = rng.choice(eligible, size=n_groups, replace=False)
    rows = [rng.choice(np.flatnonzero(labels == level), size=per_group, replace=False)
            for level in chosen]
    return np.sort(np.concatenate(rows))


def _jobs(formula, data, labels, sizes, reps, seed, options) -> list[dict]:
    streams = np.random.SeedSequence(seed).spawn(len(sizes) * reps)
    jobs = []
    for k, ((g, m), rep) in enumerate((s, r) for s in sizes for r in range(reps)):
        rng = np.random.default_rng(streams[k])
        rows = subsample(labels, g, m, rng)
        jobs.append({"formula": formula, "data": data.iloc[rows], "n_groups": g,
                     "per_group": m, "rep": rep, "seed": int(rng.integers(2**31)),
                     "options": options})
    return jobs


def _fit_one(job: dict) -> dict:
    """One subsample fitted both ways: its rows of the table and its line of `fits`."""
    from ..bayes import fit_bayes
    from ..compare import compare
    from ..reml import fit_reml

    size = {k: job[k] for k in ("n_groups", "per_group", "rep")}
    options = dict(job["options"])
    shared = {k: options.pop(k) for k in ("family", "link", "known_sigma")}
    start = time.perf_counter()
    info = {**size, "n_obs": len(job["data"]), "seed": job["seed"], "singular": np.nan,
            "sampler_ok": np.nan, "failed_checks": "", "divergences": np.nan,
            "seconds": np.nan, "error": None}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # recorded below, not shown once per subsample
            reml = fit_reml(job["formula"], job["data"], check_within=False, **shared)
            bayes = fit_bayes(job["formula"], job["data"], progressbar=False,
                              random_seed=job["seed"], warn=False, check_within=False,
                              **shared, **options)
            cmp = compare(bayes, reml)
    except Exception as err:  # one subsample that cannot be fitted must not end the study
        info["error"] = f"{type(err).__name__}: {' '.join(str(err).split())}"
        return {"rows": pd.DataFrame(), "fit": info}
    checks = cmp.diagnostics
    failed = checks.loc[~checks["ok"].astype(bool), "check"]
    info.update(singular=bool(reml.singular), sampler_ok=failed.empty,
                failed_checks=", ".join(failed),
                divergences=int(bayes.idata["sample_stats"]["diverging"].sum()),
                seconds=time.perf_counter() - start)
    columns = [c for c in TABLE_COLUMNS if c != "agree"]
    return {"rows": quantity_rows(cmp).assign(**size)[columns], "fit": info}


def quantity_rows(cmp) -> pd.DataFrame:
    """class, quantity, std_diff and both estimates, from one comparison's fixed, variance and
    groups tables."""
    fixed = cmp.fixed.assign(**{"class": "fixed effects", "quantity": cmp.fixed["term"]})
    var = cmp.variance
    var = var.assign(**{"class": np.where(var["term2"].isna(), "SDs", "correlations"),
                        "quantity": [row_name(r) for r in var.to_dict("records")],
                        "std_diff": (var["bayes_estimate"] - var["reml_estimate"])
                        / var["bayes_std_error"]})
    g = cmp.groups
    groups = g.assign(**{"class": "group effects",
                         "quantity": g["group"] + "[" + g["level"] + "]: " + g["term"]})
    columns = ["class", "quantity", "std_diff", "reml_estimate", "bayes_estimate",
               "bayes_std_error"]
    return pd.concat([f[columns] for f in (fixed, var, groups)], ignore_index=True)
