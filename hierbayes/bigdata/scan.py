"""The first pass: what the design needs to know of all rows before any matrix is formed.

Per partition (a pandas frame) a `Scan`: rows, missing values per used column and rows with one,
then on the rows kept: infinite values per column (the first one's row label), the distinct
values of every grouping factor (combinations for ``a:b``) and of every categorical predictor, a
non-integer example of a float grouping column, and the first few rows as samples. `combine`
merges them in partition order, so "the first" is the first in the frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .moments import used_rows

SAMPLE_ROWS = 50  # rows of the first partitions kept to fix the encoding (formulaic's spec)


@dataclass(eq=False)
class Scan:
    n_rows: int
    missing: pd.Series  # missing values per used column
    n_missing_rows: int
    infinite: dict = field(default_factory=dict)  # column -> [count, first row label]
    groups: dict = field(default_factory=dict)  # factors (tuple) -> frame of distinct rows
    categories: dict = field(default_factory=dict)  # column -> Series of distinct values
    non_integer: dict = field(default_factory=dict)  # float grouping column -> an example
    sample: pd.DataFrame | None = None


def scan_partition(part: pd.DataFrame, columns, group_factors, categorical) -> Scan:
    from ..validation import string_columns

    frame = string_columns(part).loc[:, list(columns)]
    isna = frame.isna()
    scan = Scan(len(frame), isna.sum(), int(isna.any(axis=1).sum()))
    kept = used_rows(part, columns)
    for name in kept.columns:
        column = kept[name]
        if pd.api.types.is_float_dtype(column) or pd.api.types.is_complex_dtype(column):
            inf = np.isinf(column.to_numpy())
            if inf.any():
                scan.infinite[name] = [int(inf.sum()), kept.index[np.argmax(inf)]]
    for factors in group_factors:
        scan.groups[factors] = kept.loc[:, list(factors)].drop_duplicates()
        if len(factors) == 1 and pd.api.types.is_float_dtype(kept[factors[0]]):
            values = kept[factors[0]].to_numpy(dtype=float)
            odd = values[values != np.round(values)]
            if odd.size:
                scan.non_integer[factors[0]] = float(odd[0])
    for name in categorical:
        scan.categories[name] = kept[name].drop_duplicates()
    scan.sample = kept.head(SAMPLE_ROWS)
    return scan


def combine(scans: list[Scan]) -> Scan:
    """One `Scan` of all partitions, `scans` in partition order."""
    out = Scan(sum(s.n_rows for s in scans), sum(s.missing for s in scans),
               sum(s.n_missing_rows for s in scans))
    for s in scans:
        for name, (count, first) in s.infinite.items():
            if name in out.infinite:
                out.infinite[name][0] += count
            else:
                out.infinite[name] = [count, first]
        for name, value in s.non_integer.items():
            out.non_integer.setdefault(name, value)
    for key in scans[0].groups:
        out.groups[key] = pd.concat([s.groups[key] for s in scans]).drop_duplicates()
    for key in scans[0].categories:
        out.categories[key] = pd.concat([s.categories[key] for s in scans]).drop_duplicates()
    samples = [s.sample for s in scans if s.sample is not None and len(s.sample)]
    out.sample = pd.concat(samples).head(SAMPLE_ROWS) if samples else scans[0].sample
    return out
