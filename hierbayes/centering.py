"""The formula helpers ``within(x, g)`` and ``between(x, g)``: a predictor split into its group
means and the deviations from them (Mundlak 1978; Bell & Jones 2015).

``y ~ within(x, g) + between(x, g) + (1 | g)`` estimates the within-group slope (how y changes
with x inside a group) and the between-group slope (how group means of y change with group means
of x) separately; ``y ~ x + (1 | g)`` forces them to be equal, and when they are not, its slope is
a mix of the two (`hierbayes.within.within_between` tests for that).

Both are formulaic stateful transforms: the group means are computed once, on the training
data, and kept in the design's model spec, so new data (prediction) are centred on the training
means of their groups. A group that the training data did not have has no training mean: its
mean is taken from the new data themselves (the best available value of that group's mean of x;
for one new row, ``within`` is then 0). Missing values of x or g give missing values.

Group labels follow `hierbayes.grouping` (numbers without a trailing ".0", strings as they are);
several columns, ``within(x, a, b)``, group by their combination, as ``(1 | a:b)`` does.
Spec layer: numpy and pandas only.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from formulaic.utils.stateful_transforms import stateful_transform

from .grouping import labels_of


def _labels(groups: tuple) -> np.ndarray:
    frame = pd.DataFrame({f"g{k}": pd.Series(np.asarray(g)) if not isinstance(g, pd.Series)
                          else g.reset_index(drop=True) for k, g in enumerate(groups)})
    return labels_of(frame, tuple(frame.columns))


def group_means(x, *groups, _state: dict) -> np.ndarray:
    """Each row's group mean of `x`: training means kept in `_state`, unseen groups' own."""
    if not groups:
        raise TypeError("within()/between() need the grouping column(s) after x, e.g. "
                        "within(x, g).")
    values = np.asarray(x, dtype=float).reshape(-1)
    labels = _labels(groups)
    series = pd.Series(values)
    own = series.groupby(labels).transform("mean").to_numpy()
    if "means" not in _state:
        means = series.groupby(labels).mean()
        _state["means"] = {str(k): float(v) for k, v in means.items()}
    known = _state["means"]
    out = np.array([known.get(label, np.nan) for label in labels], dtype=float)
    unseen = ~np.isin(labels, list(known))
    out[unseen] = own[unseen]
    out[np.isnan(values)] = np.nan
    return out


@stateful_transform
def between(x, *groups, _state={}):  # noqa: B006 - formulaic replaces the default state
    """The group mean of `x` (training means kept for new data)."""
    return group_means(x, *groups, _state=_state)


@stateful_transform
def within(x, *groups, _state={}):  # noqa: B006 - formulaic replaces the default state
    """`x` minus its group mean (training means kept for new data)."""
    return np.asarray(x, dtype=float).reshape(-1) - group_means(x, *groups, _state=_state)
