"""Micro-batching: concurrent small requests to a neural model are predicted together.

A network predicts 64 rows in about the time it predicts one, so requests that arrive within
``max_wait`` of each other are predicted in one call (up to ``max_size`` rows) and the result
is split back. Requests are validated before they are queued, so one bad request cannot fail
the others; should a batch fail anyway, each request is retried on its own and gets its own
result or error.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections import deque
from collections.abc import Callable, Sized
from typing import Any

log = logging.getLogger("takeoff.serving")

# the parts of several requests -> one result per part, in order
PredictParts = Callable[[list[Any]], list[Any]]


class MicroBatcher:
    """Queue request parts, predict them in batches on a worker thread, hand each caller its result.

    Args:
        predict: a list of parts (each with a length: its rows) → one result per part, in
            order; called from a thread. Parts are whatever the caller batches (features).
        max_size: most rows in one batch (a single larger request is predicted alone).
        max_wait_s: how long the first request of a batch waits for others to join.
        on_batch: called with the number of rows of each batch (for metrics).
    """

    def __init__(self, predict: PredictParts, max_size: int = 64, max_wait_s: float = 0.002,
                 on_batch: Callable[[int], None] | None = None):
        self.predict_parts, self.max_size, self.max_wait_s = predict, max_size, max_wait_s
        self.on_batch = on_batch or (lambda n: None)
        self._pending: deque[tuple[Sized, asyncio.Future]] = deque()
        self._wakeup: asyncio.Event | None = None
        self._worker: asyncio.Task | None = None

    async def predict(self, part: Sized) -> Any:
        """The result for ``part``, predicted together with concurrent callers' parts."""
        loop = asyncio.get_running_loop()
        if self._worker is None or self._worker.done() or self._worker.get_loop() is not loop:
            self._wakeup = asyncio.Event()
            # a context of its own: not the deadline (or anything else) of the request that started it
            self._worker = contextvars.Context().run(loop.create_task, self._run(), name="takeoff-micro-batcher")
        future = loop.create_future()
        self._pending.append((part, future))
        self._wakeup.set()
        return await future

    async def close(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            try:
                await self._worker
            except (asyncio.CancelledError, RuntimeError):
                pass
            self._worker = None

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._pending:
                if self.max_wait_s > 0 and sum(len(p) for p, _ in self._pending) < self.max_size:
                    await asyncio.sleep(self.max_wait_s)  # let concurrent requests join
                batch = self._take()
                if not batch:
                    continue
                try:
                    results = await asyncio.to_thread(self._predict_all, [part for part, _ in batch])
                except Exception as exc:  # noqa: BLE001 (handed to every caller; never kill the worker)
                    results = [exc] * len(batch)
                for (_, future), result in zip(batch, results):
                    if future.done():  # the caller timed out or went away
                        continue
                    if isinstance(result, BaseException):
                        future.set_exception(result)
                    else:
                        future.set_result(result)

    def _take(self) -> list[tuple[Sized, asyncio.Future]]:
        batch, rows = [], 0
        while self._pending:
            part, future = self._pending[0]
            if batch and rows + len(part) > self.max_size:
                break
            self._pending.popleft()
            if not future.done():
                batch.append((part, future))
                rows += len(part)
        return batch

    def _predict_all(self, parts: list[Sized]) -> list[Any]:
        self.on_batch(sum(len(p) for p in parts))
        if len(parts) > 1:
            try:
                return self.predict_parts(parts)
            except Exception:  # noqa: BLE001 (isolate the failure to the request that causes it)
                log.info("a batch of %d requests failed; predicting them one by one", len(parts))
        return [self._predict_one(p) for p in parts]

    def _predict_one(self, part: Sized) -> Any:
        try:
            return self.predict_parts([part])[0]
        except Exception as exc:  # noqa: BLE001
            return exc
