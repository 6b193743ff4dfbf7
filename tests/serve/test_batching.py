"""The batcher alone: concurrent submissions share a batch up to max_batch, each gets its own answer,
max_batch=1 never batches, a failing batch fails its own requests only, closing answers what is queued."""

from __future__ import annotations

import threading
import time

import pytest

from dcvkit.serve.batching import Batcher


class Recorder:
    def __init__(self, delay: float = 0.02, fail_on: int | None = None):
        self.sizes: list[int] = []
        self.delay, self.fail_on = delay, fail_on

    def __call__(self, items):
        self.sizes.append(len(items))
        time.sleep(self.delay)  # a forward pass: requests arriving meanwhile queue up for the next batch
        if self.fail_on is not None and self.fail_on in items:
            raise RuntimeError(f"bad item {self.fail_on}")
        return [x * 10 if x != 7 else ValueError("seven") for x in items]


def _submit_all(b: Batcher, items) -> list:
    futures = []
    threads = [threading.Thread(target=lambda i=i: futures.append((i, b.submit(i)))) for i in items]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return futures


def test_concurrent_requests_share_batches_and_get_their_own_answers():
    rec = Recorder()
    b = Batcher(rec, max_batch=4, max_wait_ms=20)
    futures = _submit_all(b, list(range(12)))
    for i, f in futures:
        if i == 7:
            with pytest.raises(ValueError, match="seven"):  # one item's error is its own
                f.result(5)
        else:
            assert f.result(5) == i * 10
    b.close()
    assert sum(rec.sizes) == 12 and max(rec.sizes) <= 4 and max(rec.sizes) > 1
    s = b.stats()
    assert s["requests"] == 12 and s["batches"] == len(rec.sizes) and s["largest_batch"] == max(rec.sizes)


def test_max_batch_1_serves_one_request_per_pass():
    rec = Recorder(delay=0.002)
    b = Batcher(rec, max_batch=1, max_wait_ms=50)
    for i, f in _submit_all(b, list(range(6))):
        assert f.result(5) == i * 10 or i == 7
    b.close()
    assert rec.sizes == [1] * 6


def test_a_failing_batch_fails_its_requests_and_the_worker_goes_on():
    rec = Recorder(delay=0.0, fail_on=3)
    b = Batcher(rec, max_batch=1)
    with pytest.raises(RuntimeError, match="bad item 3"):
        b.submit(3).result(5)
    assert b.submit(4).result(5) == 40 and b.alive
    b.close()
    assert not b.alive
    with pytest.raises(RuntimeError, match="shutting down"):
        b.submit(5).result(5)


def test_the_wait_is_bounded_when_alone():
    b = Batcher(Recorder(delay=0.0), max_batch=64, max_wait_ms=30)
    t0 = time.perf_counter()
    assert b.submit(2).result(5) == 20
    assert time.perf_counter() - t0 < 1.0  # the first request waits max_wait_ms for company, not for 64 others
    b.close()


def test_bad_settings_are_refused():
    with pytest.raises(ValueError):
        Batcher(lambda xs: xs, max_batch=0)
    with pytest.raises(ValueError):
        Batcher(lambda xs: xs, max_wait_ms=-1)
