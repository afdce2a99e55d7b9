"""Run by the lite-runtime tests in a fresh interpreter (not collected by pytest).

    python lite_check.py REFUSED MODELS ROWS_CSV WORK_DIR PORT [LABELLED_CSV]

Refuses to import the top-level packages in REFUSED (comma-separated), then, for every bundle
in the directory MODELS: loads it and predicts ROWS_CSV with the Python API, predicts the file
with the batch path (WORK_DIR/<name>-batch.csv) and with `takeoff predict`
(WORK_DIR/<name>-cli.csv); then serves MODELS with `takeoff serve` on PORT, posts the first 8
rows to each model, and stops the server with SIGINT. With LABELLED_CSV (rows with the target), also
runs `takeoff inspect --json` on it and `takeoff evaluate --json` with every bundle. Prints one
line: "RESULT " + JSON with the outputs, the imports refused ("attempts") and any refused package
loaded anyway ("loaded"). REFUSED may be empty (a real `takeoff[lite]` install, .ci/lite_venv.py).
"""

import contextlib
import io
import json
import os
import signal
import socket
import sys
import threading
import time
import urllib.request

REFUSED = set(sys.argv[1].split(",")) - {""}
attempts: list[str] = []


class Refuse:
    """A meta path finder that says no to REFUSED, before any other finder is asked."""

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in REFUSED:
            attempts.append(name)
            raise ModuleNotFoundError(f"No module named {name!r} (refused by the lite test)", name=name)
        return None


sys.meta_path.insert(0, Refuse())


def cli_json(app, args: list[str]) -> dict:
    """Run a `takeoff ... --json` command in this process; its stdout parsed."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = app(args, standalone_mode=False)
    if code not in (None, 0):
        raise SystemExit(f"takeoff {' '.join(args)} exited {code}")
    return json.loads(buffer.getvalue())


def main(models: str, rows_csv: str, work: str, port: int, labelled: str | None = None) -> dict:
    import pandas as pd

    import takeoff
    from takeoff.pipelines.prediction.batch import predict_file
    from takeoff.cli import app

    result: dict = {"api": {}, "http": {}}
    names = sorted(os.listdir(models))
    rows = pd.read_csv(rows_csv)
    records = json.loads(rows.head(8).to_json(orient="records"))
    for name in names:
        bundle = os.path.join(models, name)
        model = takeoff.load(bundle)
        result["api"][name] = {"runtime": model.runtime, "outputs": model.predict_outputs(rows)[0].tolist(),
                               "labels": model.predict(records).tolist()}
        predict_file(model, rows_csv, os.path.join(work, f"{name}-batch.csv"))
        app(["predict", bundle, rows_csv, "-o", os.path.join(work, f"{name}-cli.csv")], standalone_mode=False)
        if labelled:
            result.setdefault("evaluate", {})[name] = cli_json(app, ["evaluate", bundle, labelled, "--json"])
    if labelled:
        result["inspect"] = cli_json(app, ["inspect", labelled, "--target", "Status", "--json"])

    def client() -> None:
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
            for name in names:
                request = urllib.request.Request(
                    f"http://127.0.0.1:{port}/v1/models/{name}/predict", data=json.dumps({"records": records}).encode(),
                    headers={"Content-Type": "application/json"})
                with urllib.request.urlopen(request, timeout=30) as response:
                    result["http"][name] = json.loads(response.read())
        finally:
            os.kill(os.getpid(), signal.SIGINT)  # `takeoff serve` stops cleanly on it

    threading.Thread(target=client, daemon=True).start()
    app(["--quiet", "serve", models, "--port", str(port), "--no-access-log"], standalone_mode=False)
    seen = list(attempts)
    try:  # training is refused with the extra to install, before anything is read
        takeoff.train(rows_csv, target="Status", out=os.path.join(work, "never"))
    except ImportError as error:
        result["train_error"] = str(error)
    attempts[:] = seen
    return result


if __name__ == "__main__":
    out = main(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), sys.argv[6] if len(sys.argv) > 6 else None)
    out["attempts"] = sorted(set(attempts))
    out["loaded"] = sorted(m for m in sys.modules if m.split(".")[0] in REFUSED)
    print("RESULT " + json.dumps(out))
