"""Which backend factors M = ΛᵀZᵀZΛ + I for a design: one place for the LMM and the GLMM."""

from __future__ import annotations

from .blockdiag import BlockDiagBackend
from .layout import Layout
from .schur import SchurBackend, dense_schur_fits
from .sparse import SparseBackend


def choose_backend(layout: Layout):
    """Block diagonal for one grouping factor; else the dense Schur complement of the smaller
    factors when it fits in memory, else the sparse Cholesky (sparse.py, optional qdldl)."""
    if len(layout.groups) == 1:
        return BlockDiagBackend
    return SchurBackend if dense_schur_fits(layout) else SparseBackend
