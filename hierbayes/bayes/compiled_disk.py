"""Compiled nutpie models on disk, so that a new process skips numba's compilation.

nutpie compiles a PyMC model in two steps: PyTensor turns the log-density and its gradient into a
numba function (which PyTensor already caches on disk), then numba compiles a C callback around it
that unpacks the model's data. That callback is most of the time of a compilation, and nutpie's
version cannot be cached: it holds the data arrays themselves as constants. Ours
(`_callback_source`) reads every array through pointers in a small table (`_data_table`), so its
machine code depends on the model's structure only: numba caches it on disk (PyTensor's cache
folder and locator, under a key made of the model's fingerprint, `hierbayes.bayes.compiled`).
A small JSON file beside it records what the callbacks need to be rebuilt without PyTensor (the
layout of the parameters and of the data). A later process with the same structure loads the
callbacks, in place of seconds of compilation; the layout file also keeps the support points the
chains start from (`hierbayes.bayes.initial_points`), per data set seen.

Everything here leans on nutpie's internals (version pinned in the key): if anything fails, the
model is compiled by ``nutpie.compile_pymc_model`` as before, and the failure is logged.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import tempfile
from pathlib import Path

import numba
import numpy as np
from numba.core import cgutils, types
from numba.extending import intrinsic

from .initial_points import InitialPoints, support_point_inputs

LOG = logging.getLogger("hierbayes")
FORMAT = 3  # of the JSON file and the generated callbacks


@intrinsic
def _pointer(typingctx, address):
    """A void pointer from an integer address (the data table holds addresses)."""
    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], cgutils.voidptr_t)

    return types.voidptr(address), codegen


def load_or_compile(model, key: str):
    """(nutpie compiled model, "disk" | "compiled") for `model`, whose cache key is `key`."""
    layout = _read_layout(key)
    if layout is not None:
        try:
            return _assemble(model, key, layout, inner=None), "disk"
        except Exception as error:
            LOG.info("hierbayes: the compiled model on disk is unusable (%s); compiling", error)
    try:
        return _compile(model, key), "compiled"
    except Exception as error:
        LOG.warning("hierbayes: cached compilation unavailable (%s: %s); compiling with nutpie",
                    type(error).__name__, error, exc_info=True)
        import nutpie

        return nutpie.compile_pymc_model(model), "compiled"


def cache_folder() -> Path:
    from pytensor.configdefaults import config

    folder = Path(os.environ.get("HIERBAYES_CACHE", config.base_compiledir / "hierbayes"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _compile(model, key: str):
    """Compile `model` with PyTensor, then our cacheable callbacks; write the layout file."""
    from nutpie.compile_pymc import _make_functions

    n_dim, n_expanded, logp_pt, expand_pt, _, shape_info, reparameterized = _make_functions(
        model, mode="NUMBA", compute_grad=True, join_expanded=True,
        pymc_initial_point_fn=lambda seed: {}, var_names=None,
    )  # fmt: skip
    arrays = {}
    for var in [*logp_pt.get_shared(), *expand_pt.get_shared()]:
        if var.name is None or (var.name in arrays and arrays[var.name][0] is not var):
            raise ValueError(f"shared variable without a unique name: {var}")
        arrays[var.name] = (var, np.asarray(var.get_value(borrow=True)))
    layout = {
        "format": FORMAT,
        "n_dim": int(n_dim),
        "n_expanded": int(n_expanded),
        "names": list(shape_info[0]),
        "slices": [[int(s.start), int(s.stop)] for s in shape_info[1]],
        "shapes": [list(map(int, s)) for s in shape_info[2]],
        "reparameterized": list(reparameterized),
        "data": [[name, v.dtype.str, v.ndim] for name, (_, v) in sorted(arrays.items())],
        "logp_args": [var.name for var in logp_pt.get_shared()],
        "expand_args": [var.name for var in expand_pt.get_shared()],
        "initial_inputs": support_point_inputs(model),
    }
    inner = (logp_pt.vm.jit_fn, expand_pt.vm.jit_fn)
    compiled = _assemble(model, key, layout, inner)
    _write_layout(key, layout)
    return compiled


def _assemble(model, key: str, layout: dict, inner):
    """The nutpie model from the callbacks of `layout` (loaded from disk when `inner` is None)."""
    from nutpie.compile_pymc import _prepare_dims_and_coords

    logp = _callback("logp", key, layout, None if inner is None else inner[0])
    expand = _callback("expand", key, layout, None if inner is None else inner[1])
    if inner is None and not (logp.cache_hits and expand.cache_hits):
        raise FileNotFoundError("the cached callbacks are gone; compiling again")
    shape_info = (layout["names"], [slice(a, b) for a, b in layout["slices"]],
                  [tuple(s) for s in layout["shapes"]])
    values = _model_values(model, layout)
    dims, coords = _prepare_dims_and_coords(model, shape_info, layout["reparameterized"])
    return DiskCompiledModel(
        _n_dim=layout["n_dim"], dims=dims, _coords=coords,
        _shapes={n: tuple(s) for n, s in zip(layout["names"], layout["shapes"], strict=True)},
        compiled_logp_func=logp, compiled_expand_func=expand,
        initial_point_func=InitialPoints(model, layout, lambda lay: _write_layout(key, lay)),
        shared_data=values, shared_var_keys={}, user_data=_data_table(layout, values),
        n_expanded=layout["n_expanded"], shape_info=shape_info, logp_func=None,
        expand_func=None, reparameterized_names=layout["reparameterized"],
        layout=layout,
    )  # fmt: skip


def _dataclass_base():
    from nutpie.compile_pymc import CompiledPyMCModel

    return CompiledPyMCModel


@dataclasses.dataclass(frozen=True)
class DiskCompiledModel(_dataclass_base()):
    """nutpie's compiled model with our callbacks: data by name, in a table of pointers."""

    layout: dict = dataclasses.field(default_factory=dict, kw_only=True)

    def with_data(self, **updates):
        values = dict(self.shared_data)
        types = {name: (np.dtype(dtype), ndim) for name, dtype, ndim in self.layout["data"]}
        for name, value in updates.items():
            if name not in values:
                raise KeyError(f"Unknown shared variable: {name}")
            dtype, ndim = types[name]  # what the compiled callbacks read
            new = np.array(value, dtype=dtype, order="C", copy=True)
            if new.ndim != ndim:
                raise ValueError(f"Shared variable {name} must have rank {ndim}")
            new.flags.writeable = False
            values[name] = new
        table = _data_table(self.layout, values)
        return dataclasses.replace(self, shared_data=values, user_data=table)


def data_names(compiled) -> set[str]:
    """Names of the data a compiled model (ours or nutpie's own) reads."""
    if isinstance(compiled, DiskCompiledModel):
        return set(compiled.shared_data)
    return {var.name for var in compiled.shared_var_keys}


def _model_values(model, layout: dict) -> dict[str, np.ndarray]:
    from pytensor.compile.sharedvalue import SharedVariable
    from pytensor.graph.traversal import ancestors

    wanted = {name: (np.dtype(dtype), ndim) for name, dtype, ndim in layout["data"]}
    roots = [*model.basic_RVs, *model.deterministics, *model.potentials, *model.value_vars]
    roots += [model.rvs_to_values[rv] for rv in model.observed_RVs]  # the observed data
    found = {}
    for var in ancestors(roots):
        if isinstance(var, SharedVariable) and var.name in wanted:
            value = np.array(var.get_value(borrow=True), dtype=wanted[var.name][0], order="C")
            value.flags.writeable = False
            found[var.name] = value
    for name, (dtype, ndim) in wanted.items():
        found.setdefault(name, np.zeros((0,) * ndim, dtype))  # read by no graph of this model
    return found


def _data_table(layout: dict, values: dict) -> np.ndarray:
    """uint64 table, per array in layout order: address, then its shape."""
    table = []
    for name, _, ndim in layout["data"]:
        value = values[name]
        assert value.ndim == ndim and value.flags.c_contiguous
        table += [value.ctypes.data, *value.shape]
    return np.array(table or [0], dtype=np.uint64)


def _callback_source(kind: str, name: str, layout: dict) -> str:
    """The C callback nutpie calls: unpack x and the data arrays, call the PyTensor function."""
    offsets, position = {}, 0
    for data_name, dtype, ndim in layout["data"]:
        offsets[data_name] = (position, np.dtype(dtype).name, ndim)
        position += 1 + ndim
    lines = [f"        table = numba.carray(table_, ({max(position, 1)},), np.uint64)"]
    args = []
    for k, data_name in enumerate(layout[f"{kind}_args"]):
        at, dtype, ndim = offsets[data_name]
        shape = "".join(f"int(table[{at + 1 + d}]), " for d in range(ndim))
        lines.append(f"        a{k} = numba.carray(_pointer(table[{at}]), ({shape}), np.{dtype})")
        args.append(f"a{k}")
    call = ", ".join(["x", *args])
    n, e = layout["n_dim"], layout["n_expanded"]
    unpack = "\n".join(lines)
    if kind == "logp":  # the return codes of nutpie's own callback
        head = f"def {name}(dim, x_, out_, logp_, table_):\n    if dim != {n}:\n        return -1"
        body = (f"        x = numba.carray(x_, ({n},))\n        out = numba.carray(out_, ({n},))\n"
                f"        logp = numba.carray(logp_, ())\n{unpack}\n"
                f"        value, grad = inner({call})\n"
                "        logp[()] = value\n        out[...] = grad\n"
                "        if not np.all(np.isfinite(out)):\n            return 3\n"
                "        if not np.isfinite(value):\n            return 4\n"
                "    except Exception:\n        return 1\n    return 0")
    else:
        head = (f"def {name}(dim, expanded, x_, out_, table_):\n"
                f"    if dim != {n} or expanded != {e}:\n        return -1")
        body = (f"        x = numba.carray(x_, ({n},))\n        out = numba.carray(out_, ({e},))\n"
                f"{unpack}\n        (values,) = inner({call})\n        out[...] = values\n"
                "    except Exception:\n        return -2\n    return 0")
    return f"{head}\n    try:\n{body}\n"


_SIGNATURES = {
    "logp": types.int64(types.uint64, types.CPointer(types.double), types.CPointer(types.double),
                        types.CPointer(types.double), types.voidptr),
    "expand": types.int64(types.uint64, types.uint64, types.CPointer(types.double),
                          types.CPointer(types.double), types.voidptr),
}


def _callback(kind: str, key: str, layout: dict, inner):
    from pytensor.link.numba.cache import compile_numba_function_src

    name = f"hierbayes_{kind}"
    source = _callback_source(kind, name, layout)
    # __name__: numba rebuilds a cached function's environment by importing its module.
    env = {"__name__": __name__, "numba": numba, "np": np, "_pointer": _pointer, "inner": inner}
    function = compile_numba_function_src(source, name, env,
                                          cache_key=f"hierbayes{FORMAT}-{kind}-{key}")
    return numba.cfunc(_SIGNATURES[kind], cache=True)(function)


def _layout_path(key: str) -> Path:
    return cache_folder() / f"{key}.json"


def _read_layout(key: str) -> dict | None:
    path = _layout_path(key)
    if not path.is_file():
        return None
    layout = json.loads(path.read_text())
    return layout if layout.get("format") == FORMAT else None


def _write_layout(key: str, layout: dict) -> None:
    """Write atomically: a reader sees the old file, the new one, or none."""
    path = _layout_path(key)
    text = json.dumps(layout)  # fails before any file is touched
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".layout-", suffix=".json")
    try:
        with os.fdopen(handle, "w") as file:
            file.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
