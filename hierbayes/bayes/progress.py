"""What the user sees while `fit_bayes` works: compiling or reusing the model, then sampling.

One status line, rewritten in place: ``compiling the model… 4.1 s``, ``reusing the compiled
model``, then the draws of all chains, divergences and elapsed time, from nutpie's progress
callback. It is plain text everywhere: in a Jupyter notebook an ``IPython.display`` handle updated
in place (no ipywidgets needed, unlike rich's live display, which then asks to install them), in
a terminal a carriage-return line on stderr, elsewhere (a log file, a pipe) one line per stage.
Every stage is also logged (logger ``hierbayes``) whether or not the line is shown.
"""

from __future__ import annotations

import logging
import sys
import threading
import time

LOG = logging.getLogger("hierbayes")


class _Text:
    """A display object whose only representation is plain text."""

    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return self.text


def in_notebook() -> bool:
    """True inside a Jupyter kernel (IPython's ZMQ shell)."""
    shell = sys.modules.get("IPython")
    if shell is None:
        return False
    try:
        return type(shell.get_ipython()).__name__ == "ZMQInteractiveShell"
    except AttributeError:
        return False


class Progress:
    """The status line of one `sample` call; silent (logging only) unless `show`."""

    def __init__(self, show: bool):
        self.show = bool(show)
        self._handle = None
        self._lock = threading.Lock()
        self._start = time.perf_counter()
        self._tty = self.show and not in_notebook() and sys.stderr.isatty()
        self.live = self.show and (self._tty or in_notebook())  # a line that can be rewritten

    def stage(self, text: str, final: bool = False, log: bool = True) -> None:
        """Show `text` as the current status (and log it)."""
        if log:
            LOG.info(text)
        if self.show:
            self._write(text, final)

    def sampling(self, chain_progress) -> None:
        """nutpie's ``progress_callback``: called from a sampler thread every few 100 ms."""
        done = sum(p.finished_draws for p in chain_progress)
        total = sum(p.total_draws for p in chain_progress) or 1
        divergences = sum(p.divergences for p in chain_progress)
        phase = "tuning" if any(p.tuning for p in chain_progress) else "drawing"
        seconds = max((p.runtime_ms for p in chain_progress), default=0) / 1000
        text = (f"sampling {len(chain_progress)} chains: {done:,}/{total:,} iterations "
                f"({100 * done // total} %, {phase}), {divergences} divergences, {seconds:.1f} s")
        if self.show:
            self._write(text, final=False)

    def _write(self, text: str, final: bool) -> None:
        with self._lock:
            if in_notebook():
                self._notebook(text)
            elif self._tty:
                end = "\n" if final else ""
                sys.stderr.write(f"\r\033[K{text}{end}")
                sys.stderr.flush()
            elif final or not text.startswith("sampling "):
                sys.stderr.write(text + "\n")  # a log or pipe: one line per stage, no ticker

    def _notebook(self, text: str) -> None:
        from IPython.display import display

        if self._handle is None:
            self._handle = display(_Text(text), display_id=True)
        else:
            self._handle.update(_Text(text))


def seconds(value: float) -> str:
    return f"{value:.1f} s" if value >= 0.1 else f"{value * 1000:.0f} ms"
