"""A model's structure as a hash: equal hashes mean equal graphs, up to the values of the data.

`fingerprint` walks the graphs of a PyMC model's random variables, deterministics and potentials
in topological order and hashes every operation (its type and parameters), the types of all
variables, the values of constants and of PyMC's dimension lengths, and the names of the data
variables (`hierbayes.bayes.graphdata`) — but not their values. Two models with the same
fingerprint compile to the same code; a compiled model of one serves the other once the data are
swapped (`hierbayes.bayes.compiled`). Anything the hash cannot read reliably (an operation's
parameter printed with a memory address) makes the hash differ between builds: a needless
compilation, never a wrong reuse.
"""

from __future__ import annotations

import hashlib

import numpy as np
from pytensor.compile.sharedvalue import SharedVariable
from pytensor.graph.basic import Constant
from pytensor.graph.traversal import toposort
from pytensor.tensor.random.type import RandomType

from .graphdata import is_data


def fingerprint(model, *extra: str) -> str:
    """Hex digest of `model`'s structure (and of the `extra` strings, e.g. a sampler)."""
    digest = hashlib.sha256()
    outputs = [*model.free_RVs, *model.observed_RVs, *model.deterministics, *model.potentials]
    outputs += [model.rvs_to_values[rv] for rv in model.observed_RVs]
    ids: dict = {}
    for node in toposort(outputs):
        inputs = tuple(_identify(var, ids, digest) for var in node.inputs)
        digest.update(f"{_describe_op(node.op)}{inputs}".encode())
        for k, out in enumerate(node.outputs):
            ids[out] = f"n{len(ids)}.{k}:{out.type}"
    for var in outputs:
        _identify(var, ids, digest)  # roots among the outputs (an observed shared variable)
    for rv in model.free_RVs:
        transform = model.rvs_to_transforms.get(rv)
        value = model.rvs_to_values[rv]
        digest.update(f"free {rv.name} {ids[rv]} {value.name} {value.type} "
                      f"{_describe_transform(transform)}".encode())
    for kind, variables in (("observed", model.observed_RVs), ("deterministic",
                            model.deterministics), ("potential", model.potentials)):
        for var in variables:
            digest.update(f"{kind} {var.name} {ids[var]}".encode())
    digest.update(repr(sorted(model.named_vars_to_dims.items())).encode())
    digest.update(repr((model.check_bounds, sorted(
        (rv.name, repr(v)) for rv, v in model.rvs_to_initial_values.items()))).encode())
    for text in extra:
        digest.update(text.encode())
    return digest.hexdigest()


def _identify(var, ids: dict, digest) -> str:
    """The id of `var` in the walk; roots (no owner) are described into the digest once."""
    if var in ids:
        return ids[var]
    if isinstance(var, Constant):
        text = f"const {var.type} {_array_hash(var.data)}"
    elif is_data(var):
        text = f"data {var.name} {var.type}"  # the values are swapped, not compiled in
    elif isinstance(var, SharedVariable) and isinstance(var.type, RandomType):
        text = f"rng {var.type}"
    elif isinstance(var, SharedVariable):  # PyMC's dimension lengths: the shapes
        text = f"shared {var.name} {var.type} {_array_hash(var.get_value(borrow=True))}"
    else:
        text = f"input {var.name} {var.type}"
    ids[var] = f"r{len(ids)}"
    digest.update(f"{ids[var]}={text};".encode())
    return ids[var]


def _describe_op(op) -> str:
    name = f"{type(op).__module__}.{type(op).__qualname__}"
    props = getattr(op, "__props__", None)
    if props:
        return f"{name}{sorted((k, repr(v)) for k, v in op._props_dict().items())}"
    return f"{name}({op})"


def _describe_transform(transform) -> str:
    if transform is None:
        return "none"
    simple = {k: v for k, v in vars(transform).items() if isinstance(v, int | float | str | tuple)}
    return f"{type(transform).__qualname__}{sorted(simple.items())}"


def _array_hash(value) -> str:
    array = np.asarray(value)
    if array.dtype == object:
        return repr(value)
    raw = np.ascontiguousarray(array).tobytes()
    return f"{array.dtype.str}{array.shape}" + hashlib.sha256(raw).hexdigest()[:16]
