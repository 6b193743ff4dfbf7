"""Progress on long work, wherever the output goes.

On a terminal: rich's transient bar (count, rate, time left). Anywhere else (a log file, CI, ``make demo >
log``): rich draws nothing there, so :class:`Bar` prints a plain line every ``DCV_PROGRESS_EVERY`` seconds
(default 30; 0 turns the lines off) with the count, the percentage, what the caller adds (running loss,
frames/s) and the time taken and left, the way tqdm behaves when it is not on a terminal. Every long loop of
the package (training epochs, evaluations, drawing datasets, proposals) reports through here.
"""

from __future__ import annotations

import os
import time
from typing import Callable, Iterable, Iterator, TypeVar

from rich.console import Console

T = TypeVar("T")

_console = Console(stderr=True)


def every_seconds() -> float:
    """Seconds between plain progress lines (``DCV_PROGRESS_EVERY``; 0: none)."""
    value = os.environ.get("DCV_PROGRESS_EVERY", "30")
    try:
        return max(0.0, float(value))
    except ValueError:
        return 30.0


def duration(seconds: float) -> str:
    """``41 s``, ``3 min 20 s``, ``2 h 05 min``."""
    s = int(round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


class Bar:
    """``with Bar(total, "epoch 1/10") as bar: ... bar.update(done, info)``. A rich bar on a terminal, plain
    lines at intervals elsewhere (see the module), and a last line when it has printed any (``final_line``);
    nothing with ``enabled=False``. ``total`` may be None (unknown length: no percentage or time left)."""

    def __init__(self, total: int | None, desc: str, enabled: bool = True, console: Console | None = None,
                 unit: str = "", final_line: bool = True):
        self.total, self.desc, self.unit, self.final_line = total, desc, unit, final_line
        self.console = console or _console
        self.enabled = enabled
        self.terminal = enabled and self.console.is_terminal
        self.every = every_seconds() if enabled and not self.terminal else 0.0
        self._progress = None
        self._t0 = self._last_draw = self._last_line = time.perf_counter()
        self._lines = 0
        self._done = 0

    def __enter__(self) -> "Bar":
        self._t0 = self._last_line = time.perf_counter()
        if self.terminal:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                      TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                                      console=self.console, transient=True)
            self._progress.start()
            self._task = self._progress.add_task(self.desc, total=self.total, info="")
        return self

    def update(self, done: int, info: str | Callable[[], str] = "") -> None:
        """``done`` of ``total`` finished; ``info``: what else to show (a running loss), or a function making it,
        called only when something is drawn (reading a CUDA loss every step would make it wait for the GPU)."""
        self._done = done
        now = time.perf_counter()
        if self._progress is not None:
            if now - self._last_draw >= 0.1 or done == self.total:  # rich redraws at most ~10 times a second
                self._last_draw = now
                self._progress.update(self._task, completed=done, info=info() if callable(info) else info)
        elif self.every and now - self._last_line >= self.every:
            self._last_line = now
            self._print(done, info() if callable(info) else info, now)

    def _print(self, done: int, info: str, now: float) -> None:
        took = now - self._t0
        parts = [self.desc, f"{done:,}/{self.total:,}{self.unit}" if self.total else f"{done:,}{self.unit}"]
        if self.total:
            parts[-1] += f" ({100 * done / self.total:.0f}%)"
        if info:
            parts.append(info)
        left = ""
        if self.total and 0 < done < self.total:
            left = f", ~{duration(took * (self.total - done) / done)} left"
        parts.append(f"{duration(took)}{left}")
        self.console.print("  ".join(parts), highlight=False, soft_wrap=True, markup=False)
        self._lines += 1

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()
        elif self._lines and self.final_line and exc[0] is None:  # a long job that printed lines says it ended
            self._print(self._done, "done", time.perf_counter())


def track(iterable: Iterable[T], total: int | None = None, description: str = "", console: Console | None = None,
          enabled: bool = True) -> Iterator[T]:
    """rich's ``track`` (a transient bar) on a terminal; plain lines at intervals elsewhere."""
    if total is None and hasattr(iterable, "__len__"):
        total = len(iterable)  # type: ignore[arg-type]
    with Bar(total, description, enabled=enabled, console=console) as bar:
        for i, item in enumerate(iterable, 1):
            yield item
            bar.update(i)


__all__ = ["Bar", "track", "every_seconds", "duration"]
