"""Data-parallel training: the MLP on N processes against one process, in the same run.

    python benchmarks/distributed.py [--data credit_risk.csv --target Status] [--devices 2]
        [--seeds 3] [--epochs 20] [--batch-size 256] [--device cpu|cuda] [--threads T] [--json out.json]

For each seed, the same table is split and featurised the same way, and the MLP is fitted for a
fixed number of epochs (no early stopping, so both do the same optimizer steps: under
``torch.distributed`` each step's batch is split across the ranks) once in one process and once
on ``--devices`` processes (gloo on CPU, one process per core; NCCL on GPUs, one per GPU),
each launched by torchrun's elastic launcher. Reported per seed and on average:

* the validation metric (ROC-AUC, or R² for regression) of each, and the seed-to-seed spread of
  the one-process metric (the noise the difference is judged against);
* training throughput, samples/s = training rows x epochs / fit seconds (timed inside rank 0,
  after the processes started and read the data), and the scaling efficiency:
  samples/s with N processes / samples/s with one.

On CPU one process uses every core (torch's threads) and N processes a share each, so the
efficiency answers "does splitting the cores into ranks cost or gain"; ``--threads T`` gives
every process T threads instead (1 process x T threads against N x T: how DDP scales with cores).
On GPUs it is the usual multi-GPU scaling. The same command runs on a GPU machine with ``--device cuda``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

DATA = Path(os.environ.get("TAKEOFF_DATASETS", Path(__file__).resolve().parents[2] / "shared" / "datasets"))


def fit_once(path: str, target: str, seed: int, epochs: int, batch_size: int, device: str,
             threads: int | None = None) -> dict | None:
    """One rank: join the process group (if several), prepare the table, fit the MLP, and on
    rank 0 return its validation metric and throughput."""
    import numpy as np

    from takeoff import registry
    from takeoff.config import load_config
    from takeoff.data.sources import read_table
    from takeoff.pipelines.prediction.prepare import prepare
    from takeoff.training.context import FitContext
    from takeoff.training.distributed import launched_rank, process_group, rank_and_world

    with process_group(device):
        if threads:
            import torch

            torch.set_num_threads(threads)
        cfg = load_config(None, target=target, seed=seed, device=device)
        prep = prepare(read_table(path), cfg, Path(path).name)
        family = registry.get("mlp")(prep.task, {"epochs": epochs, "batch_size": batch_size})
        world = rank_and_world()[1]
        started = time.perf_counter()
        family.fit(prep.train, prep.valid, FitContext(seed=seed, progress=False, device=device))
        seconds = time.perf_counter() - started
        pred = family.predict(prep.valid.X)
        if launched_rank() != 0:
            return None
        if prep.task.kind == "regression":
            from sklearn.metrics import r2_score

            name, value = "r2", float(r2_score(prep.valid.y, pred))
        else:
            from sklearn.metrics import roc_auc_score

            y = prep.valid.y.astype(int)
            name = "roc_auc"
            value = float(roc_auc_score(y, pred[:, 1]) if pred.shape[1] == 2 else
                          roc_auc_score(y, pred, multi_class="ovr", labels=np.arange(pred.shape[1])))
        return {"world": world, "metric": name, "value": value, "seconds": seconds, "rows": len(prep.train),
                "samples_per_s": len(prep.train) * epochs / seconds, "threads": _threads()}


def _threads() -> int:
    import torch

    return torch.get_num_threads()


def run(nprocs: int, args: argparse.Namespace, seed: int) -> dict:
    from takeoff.training.distributed import launch

    results = launch(fit_once, (str(args.data), args.target, seed, args.epochs, args.batch_size, args.device,
                                args.threads), nprocs)
    return results[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DATA / "credit_risk.csv")
    parser.add_argument("--target", default="Status")
    parser.add_argument("--devices", type=int, default=2)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--device", default="cpu", help="cpu (gloo) or cuda (NCCL, one GPU per process)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads in every process (default: one process takes all cores, N processes a share each)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    from takeoff.training.distributed import check_devices

    check_devices(args.devices, args.device)
    rows = []
    for seed in range(args.seeds):
        one = run(1, args, seed)
        many = run(args.devices, args, seed) if args.devices > 1 else None
        rows.append({"seed": seed, "one": one, "many": many})
        line = f"seed {seed}: 1 process {one['metric']} {one['value']:.4f}, {one['samples_per_s']:,.0f} samples/s"
        if many:
            line += (f" | {args.devices} processes {many['value']:.4f}, {many['samples_per_s']:,.0f} samples/s "
                     f"(efficiency {many['samples_per_s'] / one['samples_per_s']:.2f})")
        print(line, flush=True)

    metric = rows[0]["one"]["metric"]
    ones = [r["one"]["value"] for r in rows]
    spread = statistics.stdev(ones) if len(ones) > 1 else float("nan")
    summary = {"data": args.data.name, "device": args.device, "devices": args.devices, "epochs": args.epochs,
               "batch_size": args.batch_size, "rows_train": rows[0]["one"]["rows"], "metric": metric,
               "one_mean": statistics.mean(ones), "one_seed_std": spread,
               "one_samples_per_s": statistics.mean(r["one"]["samples_per_s"] for r in rows),
               "machine": f"{platform.machine()}, {os.cpu_count()} logical CPU(s)", "rows": rows}
    print(f"\n{args.data.name}: {summary['rows_train']} training rows, MLP {args.epochs} epochs, batch "
          f"{args.batch_size}, device {args.device}, {args.seeds} seed(s)")
    print(f"| processes | torch threads each | {metric} (mean over seeds) | seed std | samples/s | scaling efficiency |")
    print("| --- | --- | --- | --- | --- | --- |")
    print(f"| 1 | {rows[0]['one']['threads']} | {summary['one_mean']:.4f} | {spread:.4f} | "
          f"{summary['one_samples_per_s']:,.0f} | 1.00 |")
    if args.devices > 1:
        manys = [r["many"]["value"] for r in rows]
        diffs = [r["many"]["value"] - r["one"]["value"] for r in rows]
        speed = statistics.mean(r["many"]["samples_per_s"] for r in rows)
        summary.update(many_mean=statistics.mean(manys), many_samples_per_s=speed,
                       mean_difference=statistics.mean(diffs),
                       efficiency=speed / summary["one_samples_per_s"])
        print(f"| {args.devices} | {rows[0]['many']['threads']} | {summary['many_mean']:.4f} | {statistics.stdev(manys) if len(manys) > 1 else float('nan'):.4f} "
              f"| {speed:,.0f} | {summary['efficiency']:.2f} |")
        print(f"\n{args.devices} processes - 1 process, paired by seed: mean {summary['mean_difference']:+.4f} "
              f"(per seed: {', '.join(f'{d:+.4f}' for d in diffs)}); seed-to-seed std of one process: {spread:.4f}")
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
