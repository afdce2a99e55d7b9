"""Training on several processes with ``torch.distributed``: launching them, joining the process
group, and the few collectives the trainer needs.

Two ways in, one process group:

* :func:`launch` starts ``nprocs`` processes on this machine with torchrun's elastic launcher,
  programmatically; each runs a function that joins the group (:func:`process_group`).
* ``torchrun --nproc-per-node N [--nnodes M ...] -m takeoff train ...``: torchrun starts the
  processes (on one machine or several) and sets ``RANK``/``WORLD_SIZE``/``MASTER_ADDR``;
  :func:`process_group` joins from those variables.

NCCL on GPUs (one GPU per process, ``cuda:LOCAL_RANK``), gloo on CPUs (one process per core at
most). Every rank runs the same code on the same data; the trainer takes this rank's share of
each epoch, DistributedDataParallel averages the gradients, and the decisions that must agree
(stop now, how many epochs, skip a candidate) are taken on rank 0 and broadcast
(:func:`agree`). Only rank 0 writes files.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import os
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from takeoff.errors import ConfigError, DistributedError

log = logging.getLogger("takeoff")

# Seconds a collective waits for a peer before failing (a hung rank; a dead one is noticed by
# the launcher within a second). Overridden by $TAKEOFF_DIST_TIMEOUT.
DEFAULT_TIMEOUT_S = 600.0
# how often the launcher polls its workers: a killed rank is noticed within this many seconds
MONITOR_INTERVAL_S = 0.25
# stop reasons as broadcast between ranks (index in this tuple; an unknown reason is "callback")
_REASONS = (None, "early_stopping", "time_budget", "diverged", "max", "interrupted", "error", "callback")


def rank_and_world() -> tuple[int, int]:
    """(rank, world size) of this process: from ``torch.distributed`` when its process group is
    initialised, else (0, 1)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return int(dist.get_rank()), int(dist.get_world_size())
    return 0, 1


def is_main_process() -> bool:
    """Whether this process is rank 0 (the one that writes files and draws progress)."""
    return rank_and_world()[0] == 0


def launched_rank() -> int:
    """This process's rank as its launcher set it (``$RANK``; 0 when not launched), readable
    before the process group is joined and after it is left."""
    return int(os.environ.get("RANK", "0") or 0)


def launched_world() -> int:
    """The world size the launcher set (``$WORLD_SIZE``), 1 when not launched."""
    return int(os.environ.get("WORLD_SIZE", "1") or 1)


def uses_cuda(device: str = "auto") -> bool:
    """Whether a run with this device setting computes on GPUs."""
    import torch

    name = str(device).strip().lower()
    return name.startswith("cuda") or (name == "auto" and torch.cuda.is_available())


def backend_for(device: str = "auto") -> str:
    """"nccl" where the run computes on GPUs, else "gloo"."""
    return "nccl" if uses_cuda(device) else "gloo"


def available_devices(device: str = "auto") -> tuple[int, str]:
    """(how many devices a run may use here, their noun): GPUs, or CPU cores (one process each)."""
    import torch

    if uses_cuda(device):
        return (torch.cuda.device_count() if torch.cuda.is_available() else 0), "GPU(s)"
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    return cores, "CPU core(s)"


def check_devices(devices: int, device: str = "auto") -> None:
    """Refuse a process count this machine cannot hold.

    Raises:
        ConfigError: ``devices`` below 1, or more than the GPUs (with CUDA) or CPU cores here.

    Example:
        >>> check_devices(1, "cpu")
    """
    if devices < 1:
        raise ConfigError(f"--devices must be at least 1; received {devices}", path="devices")
    count, noun = available_devices(device)
    if devices > count:
        where = ("on CPU each device is one training process (gloo), at most one per core"
                 if noun.startswith("CPU") else "each device is one GPU, one process each (NCCL)")
        raise ConfigError(
            f"--devices {devices} asks for {devices} devices, but this machine has {count} {noun} "
            f"(device '{device}'; {where}). Fix: use --devices {max(count, 1)} or fewer, or spread "
            "the processes over machines with torchrun --nnodes (docs/distributed.md).",
            path="devices",
        )


def timeout_s() -> float:
    """Seconds a collective waits for a peer: ``$TAKEOFF_DIST_TIMEOUT`` or the default (600)."""
    try:
        return float(os.environ.get("TAKEOFF_DIST_TIMEOUT", DEFAULT_TIMEOUT_S))
    except ValueError:
        raise ConfigError(f"TAKEOFF_DIST_TIMEOUT must be a number of seconds; received "
                          f"{os.environ['TAKEOFF_DIST_TIMEOUT']!r}", path="TAKEOFF_DIST_TIMEOUT") from None


@contextlib.contextmanager
def process_group(device: str = "auto") -> Iterator[bool]:
    """Join the process group a launcher set up (``$WORLD_SIZE`` > 1) for the block, and leave it
    after; yields whether this process is one of several.

    Sets this rank's GPU (``cuda:LOCAL_RANK``), or on CPU its share of the cores as torch's
    thread count, and logs only warnings and errors on ranks other than 0. A group that is
    already initialised (by the caller) is used as it is.
    """
    import torch
    import torch.distributed as dist

    if dist.is_initialized():
        yield dist.get_world_size() > 1
        return
    if launched_world() <= 1:
        yield False
        return
    backend = backend_for(device)
    local_rank = int(os.environ.get("LOCAL_RANK", "0") or 0)
    if backend == "nccl":
        torch.cuda.set_device(local_rank)
    else:
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1)
        torch.set_num_threads(max(1, available_devices("cpu")[0] // local_world))
    dist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout_s()))
    level = log.level
    if dist.get_rank() != 0:
        log.setLevel(logging.ERROR)  # one voice: rank 0 reports
    try:
        yield True
    finally:
        log.setLevel(level)
        with contextlib.suppress(Exception):
            dist.destroy_process_group()


def launch(entrypoint: Callable[..., Any], args: Sequence[Any], nprocs: int) -> dict[int, Any]:
    """Run ``entrypoint(*args)`` in ``nprocs`` new processes on this machine under torchrun's
    elastic launcher (rendezvous on 127.0.0.1 at a free port), and return each rank's return
    value. Several machines: ``torchrun`` (docs/distributed.md).

    ``entrypoint`` must be importable by name (the processes are spawned) and join the group
    with :func:`process_group`. No restarts: a rank that fails or is killed stops the others.

    Raises:
        DistributedError: a rank failed or was killed (names it, its exit, and its error).
    """
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    config = LaunchConfig(
        min_nodes=1, max_nodes=1, nproc_per_node=nprocs,
        run_id=uuid.uuid4().hex,
        rdzv_backend="c10d",
        rdzv_endpoint="127.0.0.1:0",  # port 0: the launcher takes a free one
        rdzv_configs={"timeout": int(timeout_s())},
        local_addr="127.0.0.1",
        max_restarts=0,
        monitor_interval=MONITOR_INTERVAL_S,
        start_method="spawn",
        shutdown_timeout=5,
    )
    # the launcher's own logs repeat, as tracebacks, what the DistributedError says in one line
    quiet = [logging.getLogger(name) for name in ("torch.distributed.elastic", "torch.multiprocessing")]
    levels = [logger.level for logger in quiet]
    for logger in quiet:
        logger.setLevel(logging.CRITICAL)
    try:
        return elastic_launch(config, entrypoint)(*args)
    except ChildFailedError as error:
        raise _failure(error, nprocs) from None
    finally:
        for logger, level in zip(quiet, levels):
            logger.setLevel(level)


def _failure(error: Any, world: int) -> DistributedError:
    """A DistributedError naming the rank that failed first, how, and its error message."""
    rank, failure = error.get_first_failure()
    if failure.exitcode < 0:
        how = f"was killed by {failure.signal_name()}"
    else:
        how = f"exited with code {failure.exitcode}"
    cause = None
    message = failure.message  # from the rank's error file: {"message": "Type: text", ...}, or a string
    if isinstance(message, dict):
        message = message.get("message", "")
    message = str(message or "").strip()
    if message and not message.startswith("Signal"):
        cause = message.splitlines()[0]
    return DistributedError(rank=rank, world=world, how=how, cause=cause, pid=failure.pid,
                            killed=failure.exitcode < 0)


def lost_peers(error: BaseException) -> bool:
    """Whether ``error`` may have ended this rank because the run lost another rank, not because
    of this rank's own work: in a run of several processes, any error but takeoff's own (bad
    data, config, budget). A collective whose peer died raises a plain RuntimeError (gloo: "Connection
    reset by peer"), NCCL a DistBackendError. The run directory then stays resumable."""
    from takeoff.errors import TakeoffError

    return launched_world() > 1 and isinstance(error, Exception) and not isinstance(error, TakeoffError)


# ------------------------------------------------------------------- collectives
def _comm_device() -> Any:
    import torch
    import torch.distributed as dist

    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def agree(value: int | bool) -> int:
    """Rank 0's ``value`` on every rank (an int; bools as 0/1). Unchanged in one process.

    Every rank must call it at the same point: it is how decisions that depend on a rank's own
    clock (stop now, epochs that fit the budget, skip a candidate) stay the same everywhere.
    """
    import torch
    import torch.distributed as dist

    if rank_and_world()[1] <= 1:
        return int(value)
    box = torch.tensor([int(value)], dtype=torch.int64, device=_comm_device())
    dist.broadcast(box, src=0)
    return int(box.item())


def agree_stop(reason: str | None) -> str | None:
    """Rank 0's stop reason on every rank (None: go on)."""
    code = _REASONS.index(reason) if reason in _REASONS else _REASONS.index("callback")
    return _REASONS[agree(code)]


def all_sum(values: Sequence[float]) -> list[float]:
    """Each of ``values`` summed over the ranks (float64)."""
    import torch
    import torch.distributed as dist

    if rank_and_world()[1] <= 1:
        return [float(v) for v in values]
    box = torch.tensor([float(v) for v in values], dtype=torch.float64, device=_comm_device())
    dist.all_reduce(box)
    return box.tolist()


def shard_bounds(n_rows: int, rank: int, world: int) -> tuple[int, int]:
    """(start, stop) of rank ``rank``'s contiguous block of ``n_rows`` rows: blocks in rank
    order whose sizes differ by one at most (none empty when ``n_rows >= world``)."""
    return rank * n_rows // world, (rank + 1) * n_rows // world


def gather_rows(part: Any, n_rows: int) -> Any:
    """Every rank's block of rows (see :func:`shard_bounds`), concatenated in rank order:
    the outputs for all ``n_rows`` rows on every rank. ``part`` is this rank's block."""
    import torch
    import torch.distributed as dist

    rank, world = rank_and_world()
    if world <= 1:
        return part
    size = -(-n_rows // world)  # every block padded to the largest
    padded = torch.zeros((size, *part.shape[1:]), dtype=part.dtype, device=_comm_device())
    padded[: part.shape[0]] = part.to(padded.device)
    blocks = [torch.empty_like(padded) for _ in range(world)]
    dist.all_gather(blocks, padded)
    pieces = [block[: stop - start] for block, (start, stop) in
              zip(blocks, (shard_bounds(n_rows, r, world) for r in range(world)))]
    return torch.cat(pieces).to(part.device)
