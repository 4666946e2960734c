"""Compiled nutpie samplers, built once per model structure and reused.

Compiling a model for nutpie (PyTensor's rewrites, then numba) takes seconds; sampling a
hierarchical model of a few thousand rows takes well under one. A fit therefore looks up its
model's structure (`hierbayes.bayes.fingerprint`: the graph up to the values of its data) in an
in-process cache, and on a hit swaps the new data into the compiled model
(`hierbayes.bayes.graphdata`) instead of compiling again. Across processes,
`hierbayes.bayes.compiled_disk` keeps compiled code on disk.

Bit-for-bit reproducibility. PyTensor compiles a freshly built graph to the same code every time,
but compiling a model object a second time can differ in the last bit of a gradient (its graph was
rewritten the first time), and NUTS turns such a bit into different draws. So a cache entry is
always compiled from a fresh build that only the cache holds, and a reused entry runs the very
code a fresh compilation would produce: the same seed gives the same draws whether the model was
compiled for this fit or reused. The initial points come from the entry's own model with the new
data set into it, as a fresh compilation's would; an entry is used by one sampler at a time.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from importlib import metadata

import pytensor

from ..blas import one_blas_thread
from .fingerprint import fingerprint
from .graphdata import data_values, data_variables
from .progress import Progress, seconds

MAX_ENTRIES = 16  # compiled models kept per process (a few MB of machine code each)


@dataclass
class Entry:
    """One compiled model: nutpie's `CompiledPyMCModel` and the fresh build it came from."""

    compiled: object
    model: object  # pm.Model, private to the cache: its data are overwritten on reuse
    seconds: float  # what compiling it took
    source: str  # "compiled" or "disk"
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)


_CACHE: OrderedDict[str, Entry] = OrderedDict()
_CACHE_LOCK = threading.Lock()


def clear() -> None:
    """Forget every compiled model of this process (the disk cache is kept)."""
    with _CACHE_LOCK:
        _CACHE.clear()


def cache_key(model, *extra: str) -> str:
    """The key of `model`'s compiled sampler: its structure, the libraries that compile it and
    the settings that change the code."""
    versions = [f"{name}={_version(name)}" for name in ("nutpie", "pymc", "pytensor", "numba")]
    config = f"{pytensor.config.floatX} fastmath={pytensor.config.numba__fastmath}"
    return fingerprint(model, *extra, *versions, config)


@contextlib.contextmanager
def nutpie_model(
    key: str,
    build: Callable[[], object],
    values: dict,
    coords: dict,
    progress: Progress,
) -> Iterator[tuple[object, dict]]:
    """The compiled model of `key`, holding the data `values`, while the caller samples it.

    `build()` makes a fresh model of that structure, compiled on a miss. `coords` label the
    model's dimensions (the level and term names of this fit). Yields the nutpie model and what
    happened (``{"reused": bool, "compile_s": float, "source": ...}``).
    """
    entry, info = _entry(key, build, progress)
    with entry.lock:
        private = data_variables(entry.model)
        for name, value in values.items():
            if name in private:
                private[name].set_value(value, borrow=True)  # the initial points read these
        yield _with_data(entry, values, coords), info


def _entry(key: str, build, progress: Progress) -> tuple[Entry, dict]:
    with _CACHE_LOCK:
        entry = _CACHE.get(key)
        if entry is not None:
            _CACHE.move_to_end(key)
    if entry is not None:
        progress.stage(f"reusing the compiled model (compiled once in {seconds(entry.seconds)})")
        return entry, {"reused": True, "compile_s": 0.0, "source": "memory"}
    entry = _compile(key, build, progress)
    with _CACHE_LOCK:
        _CACHE[key] = entry
        while len(_CACHE) > MAX_ENTRIES:
            _CACHE.popitem(last=False)
    return entry, {"reused": False, "compile_s": entry.seconds, "source": entry.source}


def _compile(key: str, build, progress: Progress) -> Entry:
    from . import compiled_disk

    start = time.perf_counter()
    progress.stage("compiling the model…")
    ticker = _Ticker(progress, start)
    try:
        model = build()
        compiled, source = compiled_disk.load_or_compile(model, key)
    finally:
        ticker.stop()
    elapsed = time.perf_counter() - start
    verb = "loaded the compiled model from disk" if source == "disk" else "compiled the model"
    progress.stage(f"{verb} in {seconds(elapsed)}")
    return Entry(compiled, model, elapsed, source)


class _Ticker:
    """Rewrites "compiling the model… 3.2 s" every second while numba works."""

    def __init__(self, progress: Progress, start: float):
        self._done = threading.Event()
        self._thread = None
        if progress.live:
            self._thread = threading.Thread(target=self._run, args=(progress, start), daemon=True)
            self._thread.start()

    def _run(self, progress: Progress, start: float) -> None:
        while not self._done.wait(1.0):
            progress.stage(f"compiling the model… {time.perf_counter() - start:.0f} s", log=False)

    def stop(self) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join()


def _with_data(entry: Entry, values: dict, labels: dict):
    """The entry's compiled model holding `values`, its dimensions labelled by `labels`."""
    import pandas as pd

    from .compiled_disk import data_names

    compiled = entry.compiled
    known = data_names(compiled)
    compiled = compiled.with_data(**{k: v for k, v in values.items() if k in known})
    coords = dict(compiled.coords or {})
    for dim, names in labels.items():
        if dim in coords and len(coords[dim]) == len(names):
            coords[dim] = pd.Index(names)
    return dataclasses.replace(compiled, _coords=coords)


def run_nutpie(*, model, build, progress: Progress, record: dict, draws: int, tune: int,
               chains: int, random_seed: int, target_accept: float, progressbar: bool,
               nuts_sampler: str = "nutpie", cores: int | None = None, nuts: dict | None = None):
    """nutpie's NUTS on the cached compiled model of `model` (keywords as `pymc.sample`'s);
    returns the DataTree `pm.sample` would and records the stages' times in `record`.

    `build()` gives a fresh model of `model`'s structure (None: `model` is one), compiled once.
    """
    import nutpie
    from pymc.backends.arviz import patch_nutpie_idata

    options = dict(nuts or {})
    if "max_treedepth" in options:
        options["maxdepth"] = options.pop("max_treedepth")
    options.setdefault("target_accept", target_accept)
    key = cache_key(model, nuts_sampler)
    labels = {dim: list(values) for dim, values in model.coords.items() if values is not None}
    with nutpie_model(key, build or (lambda: model), data_values(model), labels,
                      progress) as (compiled, info):
        start = time.perf_counter()
        with one_blas_thread():
            idata = nutpie.sample(
                compiled, draws=draws, tune=max(tune, 1), chains=chains,
                cores=cores or min(4, os.cpu_count() or 1), seed=random_seed, save_warmup=False,
                progress_bar=False, progress_rate=250,
                progress_callback=progress.sampling if progressbar else None, **options,
            )  # fmt: skip
        elapsed = time.perf_counter() - start
    patch_nutpie_idata(idata, model, sampling_time=elapsed)
    record.update({"compile_s": info["compile_s"], "sampling_s": elapsed,
                   "compiled": info["source"]})  # fmt: skip
    progress.stage(f"sampled {chains} chains × {draws:,} draws in {seconds(elapsed)}", final=True)
    return idata


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "none"
