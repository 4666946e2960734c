"""LAPACK's Cholesky factorization and inverse (dpotrf, dpotri) callable from numba kernels.

The Schur kernels need S⁻¹ itself (its diagonal blocks and its entries at the partner pairs):
dpotri turns the Cholesky factor into it in 2n³/3 flops, a third of what numba's np.linalg offers
(an LU inverse). The routines come from scipy's LAPACK through PyTensor's cached function pointers
(`pytensor.link.numba.cache._call_cached_ptr`), so that the compiled kernels stay cacheable.
The inverse may be taken in single precision (spotri: half the time), for the gradient alone.

Both routines see a C-ordered matrix as its transpose (Fortran order): for a symmetric S, asking
for the upper factor U (S = UᵀU) of that view writes L = Uᵀ into the lower triangle of the C
array, and dpotri's upper triangle of S⁻¹ lands in its lower triangle.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import njit, types
from pytensor.link.numba.cache import _call_cached_ptr
from pytensor.link.numba.dispatch.linalg._LAPACK import (
    _LAPACK,
    get_lapack_ptr,
    int_ptr_to_val,
    nb_f32p,
    nb_f64p,
    nb_i32p,
    val_to_int_ptr,
)

_FLOAT64 = types.float64
_potrf = _LAPACK().numba_xpotrf(_FLOAT64)
_POTRI_TYPE = types.FunctionType(types.void(nb_i32p, nb_i32p, nb_f64p, nb_i32p, nb_i32p))
_SPOTRI_TYPE = types.FunctionType(types.void(nb_i32p, nb_i32p, nb_f32p, nb_i32p, nb_i32p))
_UPPER = ord("U")


@njit
def _potri_pointer():
    with numba.objmode(pointer=types.intp):
        pointer = get_lapack_ptr(_FLOAT64, "potri")
    return pointer


@njit
def _potri(uplo, n, a, lda, info):
    function = _call_cached_ptr(get_ptr_func=_potri_pointer, func_type_ref=_POTRI_TYPE,
                                unique_func_name_lit="hierbayes.lapack.dpotri")
    function(uplo, n, a, lda, info)


@njit
def _spotri_pointer():
    with numba.objmode(pointer=types.intp):
        pointer = get_lapack_ptr(types.float32, "potri")
    return pointer


@njit
def _spotri(uplo, n, a, lda, info):
    function = _call_cached_ptr(get_ptr_func=_spotri_pointer, func_type_ref=_SPOTRI_TYPE,
                                unique_func_name_lit="hierbayes.lapack.spotri")
    function(uplo, n, a, lda, info)


@njit(nogil=True)
def cholesky_in_place(S):
    """Overwrite S (C-ordered, symmetric) with its lower Cholesky factor L, S = L Lᵀ; all NaN
    when S is not positive definite. In place: a fresh 10 MB array per call (InstEval) costs
    page faults once the allocator hands the memory back to the system."""
    n = S.shape[0]
    if n == 0:
        return S
    info = val_to_int_ptr(np.int32(0))
    _potrf(val_to_int_ptr(np.int32(_UPPER)), val_to_int_ptr(np.int32(n)), S.ctypes,
           val_to_int_ptr(np.int32(n)), info)
    if int_ptr_to_val(info) != 0:
        S[:, :] = np.nan
        return S
    for i in range(n):
        for j in range(i + 1, n):
            S[i, j] = 0.0
    return S


@njit(nogil=True)
def invert_in_place(L, single):
    """Overwrite the lower Cholesky factor L of S with S⁻¹ (full, symmetric); `single`: computed
    in single precision from L rounded to float32 (half the time; relative error about
    cond(S) × 6e-8)."""
    n = L.shape[0]
    if n == 0:
        return L
    info = val_to_int_ptr(np.int32(0))
    if single:
        low = L.astype(np.float32)
        _spotri(val_to_int_ptr(np.int32(_UPPER)), val_to_int_ptr(np.int32(n)), low.ctypes,
                val_to_int_ptr(np.int32(n)), info)
        for i in range(n):
            for j in range(i + 1):
                L[i, j] = low[i, j]
    else:
        _potri(val_to_int_ptr(np.int32(_UPPER)), val_to_int_ptr(np.int32(n)), L.ctypes,
               val_to_int_ptr(np.int32(n)), info)
    if int_ptr_to_val(info) != 0:
        L[:, :] = np.nan
        return L
    for i in range(n):
        for j in range(i + 1, n):
            L[i, j] = L[j, i]
    return L
