"""Run many independent fits: in this process, in local worker processes, or on a cluster.

`run_all(function, jobs, n_jobs=1, client=None)` calls ``function(job)`` for every job and returns
the results in job order, with a progress bar on stderr.

- ``client``: any object with a ``submit(function, job)`` method returning futures that have
  ``result()`` and ``done()``: a ``dask.distributed.Client`` (``pip install hierbayes[dask]``;
  a local cluster is ``Client(n_workers=4)``) or a ``concurrent.futures`` executor, so a study can
  run on a cluster. Its workers need hierbayes installed.
- ``n_jobs > 1`` (no client): that many local processes (``concurrent.futures``, spawned: each
  worker imports hierbayes afresh, so nothing of this process's PyMC state is shared or forked).
- ``n_jobs = 1``: one after another, here.

Each worker runs with one BLAS thread (NUTS chains are already parallel inside nutpie, and several
workers each using all cores would fight over them).
"""

from __future__ import annotations

import multiprocessing
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait

from ..blas import one_blas_thread
from ..errors import HierbayesError

_POLL = 0.25  # seconds between looks at futures that are not concurrent.futures futures


def run_all(function: Callable, jobs: Sequence, n_jobs: int = 1, client=None,
            progressbar: bool = True, label: str = "fits") -> list:
    """``[function(job) for job in jobs]``, run as the module docstring says."""
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs < 1:
        raise HierbayesError(f"n_jobs must be a whole number >= 1, got {n_jobs!r}.")
    if client is not None and not callable(getattr(client, "submit", None)):
        raise HierbayesError(
            f"client must have a submit(function, job) method (a dask.distributed.Client or a "
            f"concurrent.futures executor), got {type(client).__name__}."
        )
    bar = Progress(len(jobs), label, progressbar)
    if client is not None:
        return _gather([client.submit(in_one_thread, function, job) for job in jobs], bar)
    if n_jobs == 1 or len(jobs) <= 1:
        out = []
        for job in jobs:
            out.append(in_one_thread(function, job))
            bar.advance()
        bar.close()
        return out
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=min(n_jobs, len(jobs)), mp_context=context) as pool:
        return _gather([pool.submit(in_one_thread, function, job) for job in jobs], bar)


def in_one_thread(function: Callable, job):
    """`function(job)` with one BLAS thread (see the module docstring)."""
    with one_blas_thread():
        return function(job)


def _gather(futures: list, bar: Progress) -> list:
    pending = set(range(len(futures)))
    try:
        while pending:
            done = _wait(futures, pending)
            for i in done:
                pending.discard(i)
                bar.advance()
        bar.close()
        return [f.result() for f in futures]
    except BaseException:
        for f in futures:
            cancel = getattr(f, "cancel", None)
            if cancel is not None:
                cancel()
        raise


def _wait(futures: list, pending: set) -> list[int]:
    waiting = [futures[i] for i in pending]
    if all(isinstance(f, Future) for f in waiting):
        wait(waiting, return_when=FIRST_COMPLETED)
    else:
        time.sleep(_POLL)
    return [i for i in pending if futures[i].done()]


class Progress:
    """``label: 3/12 (25%), 0:42`` on stderr: redrawn in place on a terminal, one line per
    tenth of the work otherwise (logs), nothing when switched off."""

    def __init__(self, total: int, label: str, on: bool = True):
        self.total, self.label, self.on = total, label, on and total > 0
        self.count, self.start, self.shown = 0, time.perf_counter(), -1
        self.tty = sys.stderr.isatty()
        if self.on:
            self._show()

    def advance(self) -> None:
        self.count += 1
        if self.on:
            self._show()

    def close(self) -> None:
        if self.on and self.tty:
            print(file=sys.stderr, flush=True)

    def _show(self) -> None:
        tenth = 10 * self.count // self.total
        if not self.tty and tenth == self.shown:
            return
        self.shown = tenth
        seconds = int(time.perf_counter() - self.start)
        width = 24
        filled = width * self.count // self.total
        line = (f"{self.label}: [{'#' * filled}{'.' * (width - filled)}] {self.count}/"
                f"{self.total} ({100 * self.count // self.total}%), {seconds // 60}:"
                f"{seconds % 60:02d}")
        print(("\r" if self.tty else "") + line, end="" if self.tty else "\n", file=sys.stderr,
              flush=True)
