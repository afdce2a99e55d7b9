"""Fits AutoGluon on one split; run by the AutoGluon virtual environment's Python, never
imported by the suite (AutoGluon stays out of takeoff's environment).

    <autogluon venv>/bin/python autogluon_worker.py WORKDIR

WORKDIR holds ``job.json`` (target, problem_type, eval_metric, time_limit, presets),
``train.parquet`` and ``test.parquet`` (no target); this writes ``predictions.parquet``
(``label`` or ``value``, plus ``proba:<class>`` columns) and ``result.json``.
"""

import json
import os
import sys
import time
from pathlib import Path

# This folder holds the suite's own modules (datasets.py, ...): keep them from shadowing
# packages that AutoGluon imports.
sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import pandas as pd  # noqa: E402


def main(work: Path) -> None:
    import autogluon.tabular
    from autogluon.tabular import TabularPredictor

    job = json.loads((work / "job.json").read_text())
    train = pd.read_parquet(work / "train.parquet")
    test = pd.read_parquet(work / "test.parquet")
    predictor = TabularPredictor(label=job["target"], problem_type=job["problem_type"], eval_metric=job["eval_metric"],
                                 path=str(work / "model"), verbosity=job.get("verbosity", 1))
    started = time.perf_counter()
    cpus = os.environ.get("TAKEOFF_BENCH_CPUS")  # a worker pinned to its own core(s) says how many
    predictor.fit(train, time_limit=job["time_limit"], presets=job["presets"], **({"num_cpus": int(cpus)} if cpus else {}))
    fit_seconds = time.perf_counter() - started
    if job["problem_type"] == "regression":
        out = pd.DataFrame({"value": predictor.predict(test).to_numpy(dtype=float)})
    else:
        proba = predictor.predict_proba(test)
        out = pd.DataFrame({"label": predictor.predict(test).astype(str).to_numpy()})
        for col in proba.columns:
            out[f"proba:{col}"] = proba[col].to_numpy(dtype=float)
    out.to_parquet(work / "predictions.parquet")
    result = {"fit_seconds": fit_seconds, "best_model": predictor.model_best,
              "models": len(predictor.model_names()), "version": autogluon.tabular.__version__}
    (work / "result.json").write_text(json.dumps(result))


if __name__ == "__main__":
    main(Path(sys.argv[1]))
