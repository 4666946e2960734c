"""What stands in for the n rows of a design built from a Dask frame: its shape, nothing more.

Anything that would read the values (residuals, the pointwise log-likelihood, the bootstrap,
fitted values) raises `RowsNotInMemory` naming what to do instead, never a deep numpy error or a
silently empty answer.
"""

from __future__ import annotations

from ..errors import HierbayesError


class RowsNotInMemory(HierbayesError):
    """An operation needs the rows of a design fitted from a Dask frame."""


MESSAGE = (
    "This fit was made from a Dask frame: only the cross-products of its rows were read, and the "
    "rows stay in the frame; this step reads {what}. Compute what needs the rows partition by "
    "partition (fit.predict(ddf) gives a Dask result), or fit a pandas frame (e.g. a sample of "
    "the Dask frame)."
)


class Rows:
    """(n,) or (n, k) values that were never loaded: `shape`, `len` and `ndim` only."""

    __array_priority__ = 1000

    def __init__(self, shape: tuple[int, ...], what: str = "the rows"):
        self.shape, self.what = tuple(int(s) for s in shape), what

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        out = 1
        for s in self.shape:
            out *= s
        return out

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        return f"Rows(shape={self.shape}: not in memory)"

    def _refuse(self, *args, **kwargs):
        raise RowsNotInMemory(MESSAGE.format(what=self.what))

    __array__ = __getitem__ = __iter__ = __array_ufunc__ = __array_function__ = _refuse
    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _refuse
    __truediv__ = __rtruediv__ = __matmul__ = __rmatmul__ = __pow__ = __neg__ = _refuse
    __eq__ = __ne__ = __lt__ = __gt__ = __le__ = __ge__ = _refuse
    __hash__ = None

    def __getattr__(self, name):
        if name.startswith("__"):
            raise AttributeError(name)
        self._refuse()
