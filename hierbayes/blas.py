"""One BLAS thread for the engines' many small linear-algebra calls.

Each REML θ step and each marginal NUTS step is many small LAPACK/BLAS calls; OpenBLAS threads
spin-waiting between them cost 2-10× on a busy 2-core machine (measurements in
benchmarks/README.md). threadpoolctl's scan of the loaded libraries costs a few ms, so it is done
once per process.
"""

from __future__ import annotations

import contextlib

_CONTROLLER: list = []


def one_blas_thread():
    """A context manager that limits BLAS to one thread (a no-op without threadpoolctl)."""
    if not _CONTROLLER:
        try:
            from threadpoolctl import ThreadpoolController
        except ImportError:  # pragma: no cover - threadpoolctl is a dependency
            _CONTROLLER.append(None)
        else:
            _CONTROLLER.append(ThreadpoolController())
    controller = _CONTROLLER[0]
    if controller is None:  # pragma: no cover
        return contextlib.nullcontext()
    return controller.limit(limits=1, user_api="blas")
