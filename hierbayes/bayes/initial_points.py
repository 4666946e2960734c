"""Initial points of NUTS chains without compiling PyMC's initial-point function every process.

nutpie starts each chain at PyMC's support points of the free variables, in the sampler's space,
plus U(-1, 1) jitter. PyMC builds and compiles a function for that (0.25-0.5 s: graph rewrites),
which used to be the largest fixed cost of a fit whose compiled model is loaded from disk. The
support points depend on the data only through the numbers the graph of the support points reads
(the data-scaled priors' parameters): they are kept, per digest of those numbers, in the compiled
model's layout file, and the function is compiled only for numbers not seen before.

The jitter is drawn here, from ``numpy.random.default_rng(seed)``, whether the support points were
computed or read, so that a seed gives the same chains whatever the compiled model's history.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable

import numpy as np
from pytensor.compile.sharedvalue import SharedVariable
from pytensor.graph.traversal import ancestors
from pytensor.tensor.random.type import RandomType

from .graphdata import data_variables, is_data

KEPT = 64  # support points remembered per compiled model (one per data set fitted)


def support_point_inputs(model) -> list[str] | None:
    """Names of the data variables the support points read, sorted; None if they read another
    shared variable (a user's), whose values the digest would not see. The dimensions' lengths
    are part of the compiled model's key; random generators feed the random variables the graph
    names but no support point draws from."""
    names = set()
    for var in ancestors(_expression(model)):  # (PyMC copies the lengths: matched by name)
        if not isinstance(var, SharedVariable) or var.name in model.dim_lengths:
            continue
        if isinstance(var.type, RandomType):
            continue
        if not is_data(var):
            return None
        names.add(var.name)
    return sorted(names)


class InitialPoints:
    """``seed -> flat initial point`` for nutpie (`layout`: the compiled model's layout file,
    whose ``initial_inputs`` and ``initial_points`` it reads and extends; `save(layout)` writes
    it)."""

    def __init__(self, model, layout: dict, save: Callable[[dict], None]):
        self._model, self._layout, self._save = model, layout, save
        self._n = int(layout["n_dim"])
        self._function = None
        self._lock = threading.Lock()

    def __call__(self, seed=None) -> np.ndarray:
        base = self.support_point()
        return base + np.random.default_rng(seed).uniform(-1.0, 1.0, self._n)

    def support_point(self) -> np.ndarray:
        """The support points of the free variables in the sampler's space, flat."""
        with self._lock:
            inputs = self._layout.get("initial_inputs")
            if inputs is None:  # a support point that reads other variables: always computed
                return self._compute()
            digest = _digest(self._model, inputs)
            if digest is None:
                return self._compute()
            known = self._layout.setdefault("initial_points", {})
            if digest not in known:
                known[digest] = self._compute().tolist()
                while len(known) > KEPT:
                    known.pop(next(iter(known)))
                self._save(self._layout)
            return np.array(known[digest], dtype=np.float64)

    def _compute(self) -> np.ndarray:
        if self._function is None:
            from pymc.pytensorf import compile as compile_pymc
            from pytensor.compile.mode import FAST_COMPILE

            self._function = compile_pymc([], _expression(self._model), mode=FAST_COMPILE)
        values = [np.asarray(v, dtype=np.float64).ravel() for v in self._function()]
        flat = np.concatenate(values) if values else np.zeros(0)
        if flat.size != self._n:
            raise ValueError(f"support points of size {flat.size}, the model has {self._n}")
        return flat


def _expression(model) -> list:
    """PyMC's support points of the free variables, transformed, without jitter."""
    from pymc.initial_point import make_initial_point_expression

    return make_initial_point_expression(
        free_rvs=model.free_RVs, rvs_to_transforms=model.rvs_to_transforms,
        initval_strategies=model.rvs_to_initial_values, jitter_rvs=set(),
        default_strategy="support_point", return_transformed=True,
    )  # fmt: skip


def _digest(model, names: list[str]) -> str | None:
    variables = data_variables(model)
    if not set(names) <= set(variables):
        return None
    digest = hashlib.sha256()
    for name in names:
        value = np.ascontiguousarray(variables[name].get_value(borrow=True))
        digest.update(f"{name} {value.dtype.str} {value.shape}".encode())
        digest.update(value.tobytes())
    return digest.hexdigest()[:32]
