"""Dynamic batching: requests that wait while the model runs are merged into one call."""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from .model import Flat, ModelRunner, Share

__all__ = ["Batcher", "Done"]

Done = Callable[[Any, "BaseException | None"], None]
_Queued = tuple[dict[str, Any], int, Done]


class Batcher:
    """Merge requests that wait while the model runs into one ONNX Runtime call.

    Greedy: a batch takes every request queued by the time the event loop gets to it (the
    requests that arrived in the same loop turn, or while the previous batch ran), optionally
    after waiting ``delay`` seconds for more, up to ``max_rows`` rows. A slow model runs in a
    worker thread (ONNX Runtime releases the GIL), so the event loop keeps accepting requests
    meanwhile; a model whose batches take under ``INLINE_SECONDS`` runs on the loop itself, since
    handing it to a thread would cost more than the run, and waits one extra loop turn for
    requests already sent (one ``select`` call, microseconds) before it runs.

    Each request comes with a callback, called on the loop with ``(outputs, None)`` or
    ``(None, exception)`` once its batch has run (no future or task per request: this path is hot).
    """

    INLINE_SECONDS = 0.0002

    def __init__(
        self,
        runner: ModelRunner,
        max_rows: int,
        delay: float,
        observe: Callable[[int, list[Flat]], None],
    ) -> None:
        self.runner = runner
        self.max_rows = max(1, max_rows)
        self.delay = delay
        self.observe = observe
        self.pending: collections.deque[_Queued] = collections.deque()
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="onnxruntime")
        self.loop: asyncio.AbstractEventLoop | None = None
        self.scheduled = False  # a batch is due on the loop
        self.gathered = False  # the due batch has waited its extra loop turn
        self.running = False  # a batch runs in the worker thread
        self.closed = False
        self.seconds = 1.0  # running average of a batch's run time; starts "slow"

    def start(self) -> None:
        self.loop = asyncio.get_running_loop()

    @property
    def alive(self) -> bool:
        return self.loop is not None and not self.closed and not self.loop.is_closed()

    def submit(self, feeds: dict[str, Any], n: int, done: Done) -> None:
        """Queue a request; ``done`` gets its outputs when its batch has run."""
        self.pending.append((feeds, n, done))
        if not self.scheduled and not self.running:
            self._schedule()

    def _schedule(self) -> None:
        assert self.loop is not None  # noqa: S101 - a type the caller guarantees
        self.scheduled = True
        if self.delay:
            self.loop.call_later(self.delay, self._next)
        else:
            self.loop.call_soon(self._next)

    def _next(self) -> None:
        self.scheduled = False
        if self.running or not self.pending or self.closed:
            return
        if (
            not self.gathered
            and not self.delay
            and self.seconds < self.INLINE_SECONDS
            and len(self.pending) < self.max_rows
        ):
            # A fast model waits one more loop turn (one select call) for the requests already
            # on their way: fewer, larger batches, and the run costs the same for 1 row or 16.
            self.gathered = True
            self._schedule()
            return
        self.gathered = False
        pending = self.pending
        first = pending.popleft()
        batch, rows = [first], first[1]
        while pending and rows < self.max_rows:
            item = pending.popleft()
            batch.append(item)
            rows += item[1]
        if self.seconds < self.INLINE_SECONDS:
            try:
                shares, flats = self._run(batch)
            except Exception as exc:
                self._fail(batch, exc)
            else:
                self._deliver(batch, rows, shares, flats)
            if pending and not self.scheduled:
                self._schedule()
            return
        assert self.loop is not None  # noqa: S101 - a type the caller guarantees
        self.running = True
        future = self.loop.run_in_executor(self.executor, self._run, batch)
        future.add_done_callback(lambda f: self._ran(f, batch, rows))

    def _ran(self, future: asyncio.Future[Any], batch: list[_Queued], rows: int) -> None:
        self.running = False
        if future.cancelled():  # the server is shutting down
            return
        # The requests that came in meanwhile go to the worker first: it computes the next
        # batch while this one's responses are encoded and sent.
        if self.pending and not self.scheduled:
            if self.delay:
                self._schedule()
            else:
                self._next()
        error = future.exception()
        if error is not None:
            self._fail(batch, error)
        else:
            shares, flats = future.result()
            self._deliver(batch, rows, shares, flats)

    def _deliver(
        self, batch: list[_Queued], rows: int, shares: list[Share], flats: list[Flat]
    ) -> None:
        self.observe(rows, flats)
        for (_, _, done), share in zip(batch, shares, strict=True):
            self._call(done, share, None)

    def _fail(self, batch: list[_Queued], error: BaseException) -> None:
        for _, _, done in batch:
            self._call(done, None, error)

    def _call(self, done: Done, result: Any, error: BaseException | None) -> None:
        """One request's callback; its failure must not keep the others of the batch waiting."""
        try:
            done(result, error)
        except Exception as exc:
            assert self.loop is not None  # noqa: S101 - a type the caller guarantees
            self.loop.call_exception_handler(
                {"message": "a batched request's callback failed", "exception": exc}
            )

    def _run(self, batch: list[_Queued]) -> tuple[list[Share], list[Flat]]:
        """Each request's share of the outputs, and the whole batch's (for the metrics)."""
        started = time.perf_counter()
        if len(batch) == 1:
            feeds = batch[0][0]
        else:
            concatenate = self.runner.np.concatenate
            feeds = {n: concatenate([b[0][n] for b in batch], axis=0) for n in batch[0][0]}
        flats, shares = self.runner.predict(feeds, [n for _, n, _ in batch])
        self.seconds = 0.8 * self.seconds + 0.2 * (time.perf_counter() - started)
        return shares, flats
