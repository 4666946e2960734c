"""A design from a Dask frame in rescaled units (`hierbayes.reml.scaling`): its sums rescaled.

Dividing y by c, column j of X by d_j and term t of block b by e_bt divides each sum of products
by the product of the two factors; the shift of y is divided by c, the column of ones is not.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import scipy.sparse as sp

from ..design import Design


def scaled_design(design: Design, c: float, d: np.ndarray, e: tuple[np.ndarray, ...]) -> Design:
    dm = design.moments
    m = dm.sums
    z = np.ones(m.ZtZ.shape[0])  # the factor of every moment-order column of Z
    for b, factors in enumerate(e):
        z[dm.block_columns(b)] = factors
    r = np.array([c, 1.0])  # R = [y − shift, 1]
    Dz = sp.diags(1.0 / z)
    sums = replace(
        m, XtX=m.XtX / np.outer(d, d), XtR=m.XtR / np.outer(d, r), RtR=m.RtR / np.outer(r, r),
        ZtZ=(Dz @ m.ZtZ @ Dz).tocsr(), ZtX=m.ZtX / np.outer(z, d), ZtR=m.ZtR / np.outer(z, r),
        x_min=m.x_min / d, x_max=m.x_max / d,
    )
    moments = replace(dm, sums=sums, shift=dm.shift / c)
    blocks = tuple(replace(block, rms=block.rms / factors)
                   for block, factors in zip(design.blocks, e, strict=True))
    return replace(design, moments=moments, blocks=blocks)
