"""Bounds on what one request may make the server do: a deadline that the work itself checks,
the JSON nesting depth, the number of columns and cells, and memory handed back afterwards.

Why a deadline checked between chunks, and not a worker process per request: the work of a
prediction request is Python and numpy code in a thread, which cannot be interrupted from the
outside. A child process could be killed, but each would need its own copy of every model
(loaded again, or sent over without pickling) and every request's rows sent across, which
costs more than most requests. Instead each step that cannot stop on its own is bounded by the
limits below (a body of at most ``max_body_bytes``, at most ``max_columns`` columns and
``max_cells`` values), and the steps that grow with the request (reading a CSV, validating
records, predicting) run in chunks of rows with :func:`check_deadline` between them: work
past its deadline stops within one chunk's time (milliseconds) instead of running on.

:func:`within` sets the deadline in a context variable; ``asyncio.to_thread`` copies the
context into the worker thread, so the thread sees the deadline of the request it works for.
"""

from __future__ import annotations

import contextvars
import ctypes
import ctypes.util
import json
import logging
import time
from typing import Any

import numpy as np

from takeoff.serving.errors import ApiError

log = logging.getLogger("takeoff.serving")

CHUNK_ROWS = 2_048  # rows read, validated or predicted between two deadline checks

_deadline: contextvars.ContextVar[float | None] = contextvars.ContextVar("takeoff_deadline", default=None)


class DeadlinePassed(Exception):
    """The request's deadline passed while its work was still running (the route answers 504)."""


def start_deadline(seconds: float) -> contextvars.Token:
    """Set the deadline of the current request: ``seconds`` from now."""
    return _deadline.set(time.monotonic() + seconds)


def reset_deadline(token: contextvars.Token) -> None:
    _deadline.reset(token)


def check_deadline() -> None:
    """Raise :class:`DeadlinePassed` when the current request's deadline has passed (in the
    worker thread doing its work: the work stops there)."""
    deadline = _deadline.get()
    if deadline is not None and time.monotonic() > deadline:
        raise DeadlinePassed


# ---------------------------------------------------------------------------- JSON
def load_json(body: bytes, max_depth: int) -> Any:
    """A JSON body parsed, refused (400 ``invalid_json``) when it is not JSON, holds NaN or
    Infinity, or is nested deeper than ``max_depth`` levels."""
    too_deep = ApiError(400, f"the body is not valid JSON: nested too deeply (limit {max_depth} levels; setting "
                        "max_json_depth). Fix: send records as flat objects", code="invalid_json")
    try:
        data = json.loads(body, parse_constant=_reject_constant)
    except RecursionError:  # deeper than the interpreter decodes: far past the limit
        raise too_deep from None
    except ValueError as exc:
        raise ApiError(400, f"the body is not valid JSON: {exc}", code="invalid_json") from None
    # Bracket depth counted over the bytes (strings included) is at least the real depth, and
    # costs a tenth of the decoding; only a body it cannot clear is walked.
    if body.count(b"[") + body.count(b"{") > max_depth and _bracket_depth(body) > max_depth and _depth_exceeds(data, max_depth):
        raise too_deep
    return data


def _bracket_depth(body: bytes) -> int:
    """The deepest running count of opening minus closing brackets in ``body``."""
    raw = np.frombuffer(body, dtype=np.uint8)
    step = ((raw == 91) | (raw == 123)).view(np.int8) - ((raw == 93) | (raw == 125)).view(np.int8)  # [{ minus ]}
    return int(np.cumsum(step, dtype=np.int32).max()) if len(step) else 0


def _depth_exceeds(data: Any, limit: int) -> bool:
    """Whether ``data`` holds containers more than ``limit`` levels deep (level by level, so
    the walk only touches containers and stops as soon as the limit is passed)."""
    level, depth = [data] if isinstance(data, (dict, list)) else [], 1
    while level:
        if depth > limit:
            return True
        below = []
        for container in level:
            values = container.values() if isinstance(container, dict) else container
            below.extend(v for v in values if isinstance(v, (dict, list)))
        level, depth = below, depth + 1
    return False


def _reject_constant(token: str):
    raise ValueError(f"{token} is not valid JSON; send null for a missing number")


# ---------------------------------------------------------------------------- columns and cells
def check_columns(count: int, max_columns: int, what: str) -> None:
    """413 ``too_many_columns`` when ``what`` (e.g. "the CSV", "record 3") has more than ``max_columns``."""
    if count > max_columns:
        raise ApiError(413, f"{what} has {count:,} columns; the limit is {max_columns:,} (setting max_columns). "
                       "Fix: send only the model's input fields", code="too_many_columns")


def check_cells(count: int, max_cells: int) -> None:
    """413 ``too_many_cells`` when a request holds more than ``max_cells`` values."""
    if count > max_cells:
        raise ApiError(413, f"the request holds more than {max_cells:,} values (records x fields; setting "
                       "max_cells). Fix: send fewer records per request, or only the model's input fields",
                       code="too_many_cells")


# ---------------------------------------------------------------------------- memory
_libc = None
RETURN_MEMORY_BYTES = 256 * 1024  # after a request body of at least this size (a trim costs a few ms)
_trimming: set = set()  # holds a marker while a trim is pending or running


def schedule_return_memory(delay_s: float = 0.5) -> None:
    """:func:`return_memory` in a worker thread ``delay_s`` after a large request ended: after
    its answer, and after what it left to free (its body, its work in a thread past a 504) is
    freed. One at a time: a pending trim covers the requests that end meanwhile."""
    import asyncio

    if _trimming:
        return
    loop = asyncio.get_running_loop()
    _trimming.add(True)

    def start() -> None:
        task = loop.create_task(asyncio.to_thread(return_memory))
        task.add_done_callback(lambda _: _trimming.clear())

    loop.call_later(delay_s, start)


def return_memory() -> None:
    """Hand freed heap memory back to the operating system (glibc's ``malloc_trim``).

    glibc keeps the memory a large request freed in its arenas (one per worker thread) for
    reuse; the process's resident size then stays at its peak. Trimming takes about a
    millisecond and is done after large requests only. A no-op where glibc is not the allocator.
    """
    global _libc
    if _libc is None:
        name = ctypes.util.find_library("c")
        try:
            libc = ctypes.CDLL(name) if name else False
            _libc = libc if libc and hasattr(libc, "malloc_trim") else False
        except OSError:
            _libc = False
    if _libc:
        _libc.malloc_trim(0)
