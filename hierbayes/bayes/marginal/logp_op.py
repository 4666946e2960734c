"""A marginal log-likelihood with its analytic gradient as one PyTensor operation.

The grouped and Schur layouts (`hierbayes.bayes.marginal.grouped`, `.schur`) compute
``(log p(y | β, T, σ²), ∂/∂δ, ∂/∂σ², ∂/∂T)`` in one numba kernel. The operation takes δ = β − β̂,
σ², T and then the layout's statistics (data: no gradient), and its `pullback` hands PyTensor the
gradient outputs, so that PyMC's transforms and priors chain onto them.
"""

from __future__ import annotations

import numpy as np
import pytensor.tensor as pt
from pytensor.gradient import DisconnectedType
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op


class LogpWithGradient(Op):
    """Outputs: the log-likelihood, then its gradient in δ, σ² and T (`T_TYPE`). Only the first
    output is meant to be used; the others serve `pullback`."""

    __props__ = ("version",)
    T_TYPE = pt.dmatrix

    def __init__(self, version: str):
        self.version = version  # of the kernels' source: a new version is a new compiled model

    def make_node(self, delta, var, T, *data):
        inputs = [pt.as_tensor(delta, dtype="float64"), pt.as_tensor(var, dtype="float64"),
                  pt.as_tensor(T, dtype="float64"), *map(pt.as_tensor, data)]
        outputs = [pt.dscalar(), pt.dvector(), pt.dscalar(), self.T_TYPE()]
        return Apply(self, inputs, outputs)

    def perform(self, node, inputs, outputs):
        for out, value in zip(outputs, self.evaluate(*inputs), strict=True):
            out[0] = np.asarray(value)

    def evaluate(self, delta, var, T, *data) -> tuple:
        """(value, ∂/∂δ, ∂/∂σ², ∂/∂T) from the inputs as numpy arrays (PyTensor's Python mode)."""
        raise NotImplementedError

    def connection_pattern(self, node):
        params = [[True, True, True, True]] * 3
        return params + [[False] * 4 for _ in node.inputs[3:]]

    def pullback(self, inputs, outputs, cotangents):
        if not all(isinstance(g.type, DisconnectedType) for g in cotangents[1:]):
            raise NotImplementedError(f"{type(self).__name__} has no second derivatives.")
        g = cotangents[0]
        params = [g * outputs[1], g * outputs[2], g * outputs[3]]
        return params + [DisconnectedType()() for _ in inputs[3:]]


def offset(beta, beta_hat):
    """δ = β − β̂ (p,); with no fixed effects an empty vector, as the kernels expect."""
    return beta_hat * 0.0 if beta is None else beta - beta_hat
