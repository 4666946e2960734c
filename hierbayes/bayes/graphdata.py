"""The data of a PyMC model as named shared variables, so that the graph does not depend on them.

Every array the builders (`hierbayes.bayes.builder`, `hierbayes.bayes.marginal.model`) put into a
model — the response, the predictors, level indices, the cross-products of the marginal path and
the numbers of the priors — enters as a PyTensor shared variable named ``hierbayes.<what>``.
Two models of the same structure (family, link, blocks and their sizes, kinds of priors) then
have the same graph and differ only in the values of these variables. That is what lets a
compiled model be reused (`hierbayes.bayes.compiled`): its code is exactly the code a new
compilation would produce, and the new values are swapped in.

No static shapes are declared: the sizes that matter (levels, rows, terms) reach the graph through
PyMC's dimension lengths, and the compiled-model key records those.
"""

from __future__ import annotations

import numpy as np
import pytensor
from pytensor.compile.sharedvalue import SharedVariable
from pytensor.graph.traversal import ancestors

PREFIX = "hierbayes."


def shared(name: str, value, dtype=None) -> SharedVariable:
    """A shared variable ``hierbayes.<name>`` holding `value` (float64 unless `dtype`)."""
    array = np.array(value, dtype=dtype or np.float64, copy=True)
    return pytensor.shared(array, name=PREFIX + name, borrow=True)


def prior_params(name: str, params: dict) -> dict:
    """A prior's numeric parameters as shared variables ``hierbayes.prior.<name>.<param>``."""
    out = {}
    for key, value in params.items():
        numeric = np.asarray(value).dtype.kind in "biuf"
        out[key] = shared(f"prior.{name}.{key}", value) if numeric else value
    return out


def is_data(variable) -> bool:
    return isinstance(variable, SharedVariable) and str(variable.name).startswith(PREFIX)


def data_variables(model) -> dict[str, SharedVariable]:
    """Name -> shared variable, for every `shared` variable the model's graphs read."""
    roots = [*model.basic_RVs, *model.deterministics, *model.potentials]
    roots += [model.rvs_to_values[rv] for rv in model.observed_RVs]
    found = {}
    for variable in ancestors(roots):
        if is_data(variable):
            found.setdefault(variable.name, variable)
    return dict(sorted(found.items()))


def data_values(model) -> dict[str, np.ndarray]:
    """Name -> current value of every data variable of the model."""
    return {name: var.get_value(borrow=True) for name, var in data_variables(model).items()}
