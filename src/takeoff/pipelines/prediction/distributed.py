"""A prediction run on several processes: ``takeoff train ... --devices N`` on one machine, and
``torchrun -m takeoff train ...`` (one machine or several).

Every rank runs the same run on the same data (the same split and features: all seeded); the
torch family's :class:`~takeoff.training.loop.Trainer` trains data-parallel across the ranks,
and rank 0 alone writes the run directory: checkpoints, the report and the bundle.

What ``--devices`` means: N processes training one torch family (``--family mlp``,
``image-cnn``, ``image-finetune``, ``text-finetune``, ...). ``auto`` and the other families
(LightGBM, linear models) are refused: their engines scale in their own way (see
docs/distributed.md), and fitting them N times over would only take cores from each other.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from torch.distributed.elastic.multiprocessing.errors import record

from takeoff import registry
from takeoff.errors import ConfigError
from takeoff.training import distributed


def wanted(cfg) -> bool:
    """Whether this call must start the processes (not when it is one of them already)."""
    return cfg.devices > 1 and distributed.launched_world() <= 1


def check(cfg, out: str | Path | None, resume: bool = False) -> None:
    """Refuse what a distributed run cannot do, before any process starts.

    Raises:
        ConfigError: ``auto`` or a family that is not a torch family; a recommendation run; no
            output directory; an output directory that holds something already.
        UnknownNameError: an unknown family.
    """
    from takeoff.models.torch_family import TorchFamily

    torch_families = [n for n in registry.names() if issubclass(registry.get(n), TorchFamily)]
    fix = f"name one of the torch families with --family ({', '.join(torch_families)}), or train in one process"
    if cfg.task == "recommend" or (cfg.target is None and cfg.recommend.user and cfg.recommend.item):
        raise ConfigError("--devices trains prediction models (tables, text, images); recommendation runs train in "
                          "one process. Fix: drop --devices", path="devices")
    if cfg.family == "auto":
        raise ConfigError("--devices trains one torch family on several processes; 'auto' also fits families that "
                          f"do not train on a process group (LightGBM, linear models). Fix: {fix}", path="family")
    if not issubclass(registry.get(cfg.family), TorchFamily):
        raise ConfigError(f"--devices trains torch families only; '{cfg.family}' is not one (see docs/distributed.md "
                          f"for the engines that scale it). Fix: {fix}", path="family")
    if out is None:
        raise ConfigError("a distributed run writes its bundle from rank 0: give an output directory (--out DIR, "
                          "or out= in Python)", path="out")
    target = Path(out)
    if not resume and target.exists() and any(target.iterdir()):
        raise ConfigError(f"output directory {target} already exists and is not empty. Fix: choose another --out, "
                          "or remove it.", path="out")


def launch(data, cfg, out: str | Path | None, table: str | None, sql: str | None, encoding: str | None,
           resume: bool):
    """Start ``cfg.devices`` processes on this machine for the run, wait for them, and load the
    bundle rank 0 wrote (several machines: ``torchrun``, see docs/distributed.md).

    Raises:
        ConfigError: see :func:`check`; more devices than this machine has.
        DistributedError: a rank failed or was killed (the others are stopped).
    """
    from takeoff.pipelines import dispatch

    check(cfg, out, resume)
    distributed.check_devices(cfg.devices, cfg.device)
    source = str(data) if isinstance(data, Path) else data
    logger = logging.getLogger("takeoff")
    shown = logger.getEffectiveLevel() if logger.handlers else None  # rank 0 logs as this process would
    distributed.launch(_worker, (source, cfg.model_dump(mode="json"), str(out), table, sql, encoding, resume, shown),
                       cfg.devices)
    return dispatch.load(out)


def train_in_group(data, cfg, out, table, sql, encoding, state: dict[str, Any] | None):
    """The run as one rank of a process group a launcher set up (torchrun, or :func:`launch`)."""
    from takeoff.pipelines.prediction import train as prediction

    # rank 0 may have created the output directory already: only the launcher checks it is empty
    check(cfg, out, resume=state is not None or distributed.launched_rank() != 0)
    with distributed.process_group(cfg.device):
        return prediction.train(data, cfg, out, table, sql, encoding, state)


@record  # a rank's exception reaches the launcher's error (its type and message)
def _worker(data, cfg_json: dict[str, Any], out: str, table, sql, encoding, resume: bool,
            shown: int | None) -> str | None:
    """One spawned rank of :func:`launch`; ``shown`` is the launcher's log level (None: no
    handler there)."""
    from takeoff.config import make_config
    from takeoff.pipelines.run_dir import resume_state

    if shown is not None and distributed.launched_rank() == 0:
        from rich.console import Console
        from rich.logging import RichHandler

        logger = logging.getLogger("takeoff")
        logger.handlers[:] = [RichHandler(console=Console(stderr=True), show_time=False, show_path=False, markup=False)]
        logger.setLevel(shown)
        logger.propagate = False
    cfg = make_config(cfg_json)
    state = resume_state(Path(out)) if resume else None
    train_in_group(data, cfg, out, table, sql, encoding, state)
    return out if distributed.launched_rank() == 0 else None
