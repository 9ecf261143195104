"""Progress bars for long work (drift on large data, export, image build, push), TTY only.

Dependency-free and silent unless the stream is an interactive terminal, so logs, CI output and
pytest's captured output never fill with carriage returns. ``PYTEST_MLOPS_PROGRESS=0`` switches
bars off everywhere, ``=1`` forces them on (e.g. under a pseudo-terminal that reports no TTY).

Use it around any loop whose size is known (or not)::

    from pytest_mlops._progress import Progress, progress

    for chunk in progress(chunks, total=n_chunks, label="drift"):
        ...

    with Progress(total=size, label="push", unit="B") as bar:
        for block in blocks:
            send(block)
            bar.update(len(block))

    with Progress(total=3) as steps:  # a few named steps: ``[2/3] exporting to m.onnx (1.3s)``
        steps.step("loading the model")
        ...
        steps.step("parity: batch size 64", advance=False)  # a note within the current step

A bar redraws at most every ``interval`` seconds, writes to ``sys.stderr`` by default, and clears
its line when closed.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Iterator
from types import TracebackType
from typing import TextIO, TypeVar

__all__ = ["Progress", "progress", "progress_enabled"]

T = TypeVar("T")

_BAR_WIDTH = 24


def progress_enabled(stream: TextIO) -> bool:
    """Whether a bar would draw on *stream*: a TTY, unless ``PYTEST_MLOPS_PROGRESS`` says."""
    setting = os.environ.get("PYTEST_MLOPS_PROGRESS", "").strip().lower()
    if setting in ("0", "false", "no", "off"):
        return False
    if setting in ("1", "true", "yes", "on"):
        return True
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # closed or not a real stream
        return False


def _human(value: float, unit: str) -> str:
    if unit != "B":
        return f"{value:,.0f}{unit and ' ' + unit}"
    for prefix in ("", "Ki", "Mi", "Gi", "Ti"):
        if abs(value) < 1024 or prefix == "Ti":
            return f"{value:.0f} B" if not prefix else f"{value:.1f} {prefix}B"
        value /= 1024
    return f"{value:.1f} TiB"  # pragma: no cover


class Progress:
    """A one-line progress bar; a no-op unless the stream is a TTY.

    Parameters
    ----------
    total:
        The amount of work, or ``None`` when unknown (a counter is shown instead of a bar).
    label:
        What is being done, shown first.
    unit:
        ``"B"`` for bytes (shown as KiB, MiB...), else a word such as ``"rows"``.
    stream:
        Where to draw; ``sys.stderr`` by default.
    interval:
        Minimum seconds between redraws.
    """

    def __init__(
        self,
        total: float | None = None,
        label: str = "",
        *,
        unit: str = "",
        stream: TextIO | None = None,
        interval: float = 0.1,
    ) -> None:
        self.total = total
        self.label = label
        self.unit = unit
        self.stream = stream if stream is not None else sys.stderr
        self.interval = interval
        self.done = 0.0
        self.enabled = progress_enabled(self.stream)
        self._start = time.monotonic()
        self._last = 0.0
        self._drawn = False
        self._step_text: str | None = None

    def update(self, amount: float = 1) -> None:
        """Add *amount* of work done and redraw if the interval has passed."""
        self.done += amount
        if self.enabled and time.monotonic() - self._last >= self.interval:
            self._draw()

    def set(self, done: float) -> None:
        """Set the amount of work done."""
        self.update(done - self.done)

    def step(self, text: str, *, advance: bool = True) -> None:
        """Show *text* as the current step, ``[2/4] exporting to m.onnx (1.3s)``, and redraw.

        Parameters
        ----------
        text:
            What is being done now.
        advance:
            Count a new step (``False`` for a note within the current one).
        """
        if advance:
            self.done += 1
        self._step_text = text
        if self.enabled:
            self._draw()

    def line(self) -> str:
        """The text of the bar as it would be drawn now."""
        elapsed = time.monotonic() - self._start
        if self._step_text is not None:
            count = f"{self.done:.0f}/{self.total:.0f}" if self.total else f"{self.done:.0f}"
            return f"[{count}] {self._step_text} ({elapsed:.1f}s)"
        head = f"{self.label} " if self.label else ""
        if self.total:
            share = min(max(self.done / self.total, 0.0), 1.0)
            filled = round(share * _BAR_WIDTH)
            bar = "#" * filled + "-" * (_BAR_WIDTH - filled)
            return (
                f"{head}[{bar}] {share:4.0%} {_human(self.done, self.unit)}"
                f"/{_human(self.total, self.unit)} {elapsed:5.1f}s"
            )
        return f"{head}{_human(self.done, self.unit)} {elapsed:5.1f}s"

    def _draw(self) -> None:
        self._last = time.monotonic()
        self.stream.write("\r\x1b[2K" + self.line())
        self.stream.flush()
        self._drawn = True

    def close(self) -> None:
        """Clear the bar's line (nothing is left behind in the terminal)."""
        if self.enabled and self._drawn:
            self.stream.write("\r\x1b[2K")
            self.stream.flush()
            self._drawn = False

    def __enter__(self) -> Progress:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def progress(
    items: Iterable[T],
    *,
    total: float | None = None,
    label: str = "",
    unit: str = "",
    stream: TextIO | None = None,
) -> Iterator[T]:
    """Yield *items*, drawing a bar on a TTY (``total`` defaults to ``len(items)`` if known)."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with Progress(total, label, unit=unit, stream=stream) as bar:
        for item in items:
            yield item
            bar.update(1)
