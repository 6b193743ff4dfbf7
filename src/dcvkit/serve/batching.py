"""Dynamic batching: one worker thread per served run gathers the requests that arrive together into one
forward pass (TorchServe's ``batch_size`` / ``max_batch_delay``, Triton's ``max_queue_delay``).

The worker takes the first waiting request, then waits at most ``max_wait_ms`` for more, up to ``max_batch``
(requests already queued are taken at once, so a busy server batches with no wait at all). ``max_batch=1``
is batch-1 serving: the same worker, one request per forward pass (``dcv bench serve``'s baseline). One
worker per run also means one model is never run by two threads at once, and torch's intra-op threads are
the run's own.

Hand-written rather than a dependency: TorchServe and Triton are servers of their own (Java, C++), not a
library an ASGI app can call; the asyncio-side of a request only awaits a ``concurrent.futures.Future``.
"""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import Future
from typing import Any, Callable, Sequence


class Batcher:
    """``submit(item)`` -> a Future of ``run_batch([... item ...])``'s answer for it. ``run_batch`` takes a
    list of items and returns one answer (or exception) per item, in order."""

    def __init__(self, run_batch: Callable[[Sequence[Any]], Sequence[Any]], max_batch: int = 32,
                 max_wait_ms: float = 2.0, name: str = "batcher"):
        if max_batch < 1 or max_wait_ms < 0:
            raise ValueError(f"max_batch {max_batch} must be >= 1 and max_wait_ms {max_wait_ms} >= 0")
        self.run_batch, self.max_batch, self.max_wait = run_batch, int(max_batch), max_wait_ms / 1000
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._closed = False
        self.batches = self.requests = self.largest = 0
        self._thread = threading.Thread(target=self._loop, name=f"dcv-serve-{name}", daemon=True)
        self._thread.start()

    @property
    def alive(self) -> bool:
        return self._thread.is_alive() and not self._closed

    def submit(self, item: Any) -> Future:
        fut: Future = Future()
        if self._closed:
            fut.set_exception(RuntimeError("the server is shutting down"))
        else:
            self._queue.put((item, fut))
        return fut

    def stats(self) -> dict[str, Any]:
        return {"max_batch": self.max_batch, "max_wait_ms": self.max_wait * 1000, "batches": self.batches,
                "requests": self.requests, "largest_batch": self.largest,
                "mean_batch": round(self.requests / self.batches, 3) if self.batches else 0.0}

    def close(self, timeout: float = 5.0) -> None:
        self._closed = True
        self._queue.put(None)
        self._thread.join(timeout)

    def _gather(self, first: tuple) -> list[tuple]:
        batch = [first]
        deadline = time.monotonic() + self.max_wait
        while len(batch) < self.max_batch:
            try:
                nxt = self._queue.get_nowait()  # already waiting: no delay
            except queue.Empty:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    nxt = self._queue.get(timeout=left)
                except queue.Empty:
                    break
            if nxt is None:  # closing: answer what is here, then stop
                self._queue.put(None)
                break
            batch.append(nxt)
        return batch

    def _loop(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                break
            batch = self._gather(first)
            items, futures = [b[0] for b in batch], [b[1] for b in batch]
            try:
                answers = list(self.run_batch(items))
            except BaseException as e:  # noqa: BLE001 - every request of the batch learns of it
                answers = [e] * len(items)
            self.batches += 1
            self.requests += len(items)
            self.largest = max(self.largest, len(items))
            for fut, a in zip(futures, answers):
                if isinstance(a, BaseException):
                    fut.set_exception(a)
                else:
                    fut.set_result(a)
        while True:  # closed: whatever is still queued gets an answer, not a hang
            try:
                rest = self._queue.get_nowait()
            except queue.Empty:
                return
            if rest is not None:
                rest[1].set_exception(RuntimeError("the server is shutting down"))


__all__ = ["Batcher"]
