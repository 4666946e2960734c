"""Ctrl-C during NUTS aborts the fit instead of returning part of it as if it were whole.

nutpie and PyMC both catch the `KeyboardInterrupt` of a SIGINT and return the draws so far:
nutpie (``nutpie.sample``: ``except KeyboardInterrupt: result = background_sampler.abort()``) pads
the shorter chains with NaN up to the longest; PyMC (``_mp_sample`` / ``_sample_many``:
``except KeyboardInterrupt: pass``) cuts every chain to the shortest. Either way `pm.sample`
returns normally. So `run_interruptibly` records SIGINT while sampling runs, and also checks that
every chain holds the requested number of finite draws (what an interrupt in a thread without
our handler would leave); if either says the run stopped early it raises `SamplingInterrupted`,
a `KeyboardInterrupt` whose ``partial`` is the draws so far as a fit flagged
``settings["interrupted"] = True`` with its real chain and draw counts (None when there are
none; built only when asked for), never a normal return.
"""

from __future__ import annotations

import contextlib
import functools
import signal
import threading

import numpy as np
import xarray as xr

from .. import naming
from .fit import BayesFit
from .marginal import complete_posterior


class SamplingInterrupted(KeyboardInterrupt):
    """NUTS stopped early (Ctrl-C). ``partial``: a `BayesFit` of the draws so far, flagged by
    ``settings["interrupted"]``, or None."""

    def __init__(self, message: str, make_partial=None):
        super().__init__(message)
        self._make_partial = make_partial
        self._partial = None

    @property
    def partial(self) -> BayesFit | None:
        """Built on first access, not when raised: completing a marginal posterior of many
        draws takes seconds, and whoever pressed Ctrl-C wants out now."""
        if self._make_partial is not None:
            self._partial, self._make_partial = self._make_partial(), None
        return self._partial


@contextlib.contextmanager
def recording_sigint():
    """Yield a dict whose ``"interrupted"`` turns True when SIGINT arrives; the signal still
    raises `KeyboardInterrupt` (what the samplers listen for). Outside the main thread, or when
    SIGINT is ignored, nothing is installed."""
    state = {"interrupted": False}
    previous = signal.getsignal(signal.SIGINT)
    if threading.current_thread() is not threading.main_thread() or previous == signal.SIG_IGN:
        yield state
        return

    def handler(signum, frame):
        state["interrupted"] = True
        if callable(previous):
            previous(signum, frame)  # Python's default raises KeyboardInterrupt
        raise KeyboardInterrupt

    signal.signal(signal.SIGINT, handler)
    try:
        yield state
    finally:
        signal.signal(signal.SIGINT, previous)


def run_interruptibly(run, spec, settings: dict, plan) -> xr.DataTree:
    """``run()`` (which calls `pm.sample`) with SIGINT recorded; its DataTree if sampling ran to
    the end, else `SamplingInterrupted` carrying the partial fit."""
    with recording_sigint() as state:
        idata = run()
    counts = finite_draws(idata["posterior"].to_dataset())
    wanted = [settings["draws"]] * settings["chains"]
    if state["interrupted"] or counts != wanted:
        got = ", ".join(map(str, counts)) or "none"
        raise SamplingInterrupted(
            f"Sampling was interrupted: finite draws per chain {got} of {settings['draws']} "
            "requested. The exception's .partial holds the draws so far (settings "
            "'interrupted': True), or None.",
            functools.partial(_partial_fit, idata, counts, spec, settings, plan),
        )
    return idata


def finite_draws(posterior: xr.Dataset) -> list[int]:
    """Per chain, the number of leading draws in which every variable is finite."""
    if not all(d in posterior.sizes for d in naming.SAMPLE_DIMS):
        return []
    chains, draws = (posterior.sizes[d] for d in naming.SAMPLE_DIMS)
    ok = np.ones((chains, draws), dtype=bool)
    for var in posterior.data_vars.values():
        values = var.transpose(*naming.SAMPLE_DIMS, ...).values
        if values.dtype.kind in "fc":
            ok &= np.isfinite(values.reshape(chains, draws, -1)).all(axis=-1)
    # The first non-finite draw ends a chain: argmin finds it, a fully finite chain has none.
    return [int(row.argmin()) if not row.all() else draws for row in ok]


def _partial_fit(idata: xr.DataTree, counts, spec, settings: dict, plan) -> BayesFit | None:
    kept = [c for c, n in enumerate(counts) if n > 0]
    if not kept:
        return None
    n = min(counts[c] for c in kept)
    pick = {"chain": kept, "draw": slice(0, n)}
    groups = {}
    for name in ("posterior", "sample_stats"):
        if name in idata.children:
            ds = idata[name].to_dataset().isel({d: v for d, v in pick.items()
                                                if d in idata[name].dims})
            groups[f"/{name}"] = ds.assign_coords(chain=np.arange(len(kept)), draw=np.arange(n))
    part = xr.DataTree.from_dict(groups)
    real = {**settings, **plan.settings(), "chains": len(kept), "draws": n, "interrupted": True,
            "requested": {"chains": settings["chains"], "draws": settings["draws"]}}
    if plan.active:
        try:
            part = complete_posterior(part, spec.design, plan, settings["random_seed"])
        except Exception:  # a partial fit is a courtesy: none rather than a second failure
            return None
    return BayesFit(spec, part, real)
