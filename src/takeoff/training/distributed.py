"""Which process this is when training runs under ``torch.distributed`` (torchrun, accelerate).

Nothing here launches processes: a launcher initialises the process group, and the trainer
reads its rank from it to take its slice of each epoch and to let only rank 0 write
checkpoints and draw progress.
"""

from __future__ import annotations


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
