"""Progress on stderr for `latentexp report` and `analyze`: tqdm bars while runs are read, tables
computed, figures drawn and latents clustered or embedded, where stderr is a terminal (they vanish
once done, leave=False). Elsewhere (a log file, a pipe, a CI job) each step is one plain line as it
starts, ``report: figures 3/7: t-SNE``, so that minutes of work are never silent."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterable, Iterator
from typing import TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")

# A step can take minutes (a t-SNE embedding): its bar is redrawn this often, so its clock moves.
REDRAW_SECONDS = 1.0


def shown() -> bool:
    return sys.stderr.isatty()


def each(items: Iterable[T], what: str, unit: str) -> Iterator[T]:
    """``items`` behind a bar that counts them (``what``: what is being done to them)."""
    yield from tqdm(items, desc=what, unit=unit, disable=not shown(), leave=False)


class Steps:
    """A bar over the named steps of one stage, ``with Steps("figures", 3) as step: step("t-SNE")
    ...``: each call ends the step before and names the one now running; the elapsed time is
    redrawn every REDRAW_SECONDS while a step runs."""

    def __init__(self, stage: str, total: int):
        self.bar = tqdm(total=total, desc=stage, unit="step", disable=not shown(), leave=False)
        self.stage, self.total, self.started = stage, total, 0
        self._running = False
        self._done = threading.Event()
        self._redraw = threading.Thread(target=self._redraw_until_done, daemon=True)

    def __enter__(self) -> Steps:
        if not self.bar.disable:
            self._redraw.start()
        return self

    def __call__(self, name: str) -> None:
        if self._running:
            self.bar.update()
        self._running = True
        self.started += 1
        self.bar.set_postfix_str(name)
        if self.bar.disable:  # no terminal: a line per step instead of a bar
            step = f"{min(self.started, self.total)}/{self.total}"
            print(f"{self.stage} {step}: {name}", file=sys.stderr, flush=True)

    def __exit__(self, *exc) -> None:
        self._done.set()
        if self._redraw.is_alive():
            self._redraw.join()
        self.bar.close()

    def _redraw_until_done(self) -> None:
        while not self._done.wait(REDRAW_SECONDS):
            self.bar.refresh()
