"""`takeoff[lite]` alone, installed as a user installs it: run by .ci/run (not collected by pytest).

    python tests/compression/lite_venv.py [WORK_DIR]

With the project's own venv (this interpreter) it trains a small LightGBM model on the credit
table shipped with takeoff and exports it to an ONNX bundle; then it makes a fresh venv
(``python -m venv``), installs ``.[lite]`` from this checkout into it with pip (from the package
index the machine is set up with), checks that no training library came along, and there runs
lite_check.py (inspect, evaluate, predict through the API, the batch path and the CLI, serve over
HTTP; training refused with the extra to install) and the ``takeoff`` console script itself.
Every output is compared with what this venv computes for the same bundle. Exits 1 with the
reason on any difference; prints one summary line otherwise.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
HEAVY = ("torch", "lightgbm", "sklearn", "scipy", "matplotlib", "captum", "transformers", "onnx", "peft")
TOLERANCE = 1e-4


def fail(message: str) -> None:
    print(f"lite venv check FAILED: {message}", file=sys.stderr)
    sys.exit(1)


def make_bundle(work: Path) -> tuple[Path, Path, Path, object]:
    """An ONNX bundle (in WORK/models/credit), unlabelled rows and labelled rows, made here."""
    import takeoff
    from takeoff.compression.onnx import write_onnx_bundle
    from takeoff.demo import DEMO_TARGET, demo_data

    data = pd.read_csv(demo_data()).sample(1000, random_state=0).reset_index(drop=True)
    train, rows = data.iloc[:800], data.iloc[800:].reset_index(drop=True)
    config = {"refit": False, "models": {"lightgbm": {"max_rounds": 60}}}
    model = takeoff.train(train, target=DEMO_TARGET, family="lightgbm", time_budget=30, seed=0, config=config)
    bundle = work / "models" / "credit"
    write_onnx_bundle(model, bundle, frame=rows)
    labelled, unlabelled = work / "labelled.csv", work / "rows.csv"
    rows.to_csv(labelled, index=False)
    rows.drop(columns=[DEMO_TARGET]).to_csv(unlabelled, index=False)
    return bundle, unlabelled, labelled, takeoff.load(bundle)


def make_venv(work: Path) -> Path:
    venv = work / "lite"
    log = work / "pip.log"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    with log.open("w") as handle:
        proc = subprocess.run([str(python), "-m", "pip", "install", "--disable-pip-version-check", "--no-compile", "-q",
                               f"{ROOT}[lite]"], stdout=handle, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        fail(f"pip install '.[lite]' exited {proc.returncode}:\n" + log.read_text()[-3000:])
    found = subprocess.run([str(python), "-c", "import importlib.util as u, sys; "
                            f"print(','.join(m for m in {HEAVY!r} if u.find_spec(m)))"],
                           capture_output=True, text=True, check=True).stdout.strip()
    if found:
        fail(f"takeoff[lite] pulled in training libraries: {found}")
    return python


def main(work: Path) -> None:
    started = time.monotonic()
    bundle, rows_csv, labelled_csv, onnx_model = make_bundle(work)
    made = time.monotonic()
    python = make_venv(work)
    installed = time.monotonic()

    with socket.socket() as probe:  # a free port for `takeoff serve`
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.run([str(python), str(HERE / "lite_check.py"), "", str(bundle.parent), str(rows_csv), str(work),
                           str(port), str(labelled_csv)], capture_output=True, text=True, timeout=180)
    if proc.returncode != 0:
        fail(f"lite_check.py exited {proc.returncode}:\n{proc.stderr[-4000:]}")
    result = json.loads(next(x for x in proc.stdout.splitlines() if x.startswith("RESULT "))[len("RESULT "):])

    rows = pd.read_csv(rows_csv)
    expected = onnx_model.predict_proba(rows).to_numpy()
    labels = onnx_model.predict(rows).tolist()
    api = result["api"]["credit"]
    if api["runtime"] != "onnx" or not np.allclose(api["outputs"], expected, atol=TOLERANCE):
        fail("the Python API's probabilities differ from the main venv's")
    for kind in ("batch", "cli"):
        if pd.read_csv(work / f"credit-{kind}.csv")["prediction"].tolist() != labels:
            fail(f"`{kind}` predictions differ from the main venv's")
    served = [p["prediction"] for p in result["http"]["credit"]["predictions"]]
    if served != labels[:8]:
        fail(f"`takeoff serve` answered {served}, expected {labels[:8]}")
    metrics = result["evaluate"]["credit"]["metrics"]
    if abs(metrics["roc_auc"] - onnx_model.evaluate(labelled_csv)["roc_auc"]) > 1e-6:
        fail(f"`takeoff evaluate` gave {metrics}")
    if result["inspect"]["rows"] != len(rows) or result["inspect"]["task"]["kind"] != "binary":
        fail(f"`takeoff inspect` gave {result['inspect']}")
    if "takeoff[train]" not in result.get("train_error", ""):
        fail(f"training in a lite install did not name the extra: {result.get('train_error')!r}")

    # the console script a user types, in its own process
    script = python.parent / "takeoff"
    shown = subprocess.run([str(script), "inspect", str(labelled_csv), "-t", "Status", "--json", "-q"],
                           capture_output=True, text=True, timeout=60)
    if shown.returncode != 0 or json.loads(shown.stdout)["rows"] != len(rows):
        fail(f"`takeoff inspect` (console script) exited {shown.returncode}: {shown.stderr[-2000:]}")
    out_csv = work / "script.csv"
    done = subprocess.run([str(script), "predict", str(bundle), str(rows_csv), "-o", str(out_csv), "--json"],
                          capture_output=True, text=True, timeout=60)
    if done.returncode != 0 or pd.read_csv(out_csv)["prediction"].tolist() != labels:
        fail(f"`takeoff predict` (console script) exited {done.returncode}: {done.stderr[-2000:]}")
    print(f"lite venv check ok: takeoff[lite] alone ran inspect, evaluate, predict (API, batch, CLI) and serve on an "
          f"ONNX bundle, as the main venv predicts; bundle {made - started:.0f}s, install {installed - made:.0f}s, "
          f"commands {time.monotonic() - installed:.0f}s")


if __name__ == "__main__":
    if len(sys.argv) > 1:
        Path(sys.argv[1]).mkdir(parents=True, exist_ok=True)
        main(Path(sys.argv[1]))
    else:
        with tempfile.TemporaryDirectory(prefix="takeoff-lite-") as tmp:
            main(Path(tmp))
