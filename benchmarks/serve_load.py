"""Load test of `takeoff serve` on loopback: latency, throughput and errors, next to in-process
`Model.predict` on the same rows in the same run.

    python benchmarks/serve_load.py [--requests 20000] [--concurrency 8] [--workdir DIR]

Trains a LightGBM and an MLP bundle on the credit-risk table, serves both from one
`takeoff serve` process (a child, bound to 127.0.0.1), and for each model sends N single-record
requests at concurrency C from a separate client process, then timed 1,000-record requests.
Every loop is bounded in count and time; nothing leaves the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

CLIENT = r'''
import asyncio, json, sys, time
import httpx

url, n, concurrency, records_file = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
records = json.load(open(records_file))

async def main():
    latencies, errors, statuses = [], 0, {}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        queue = iter(range(n))
        async def worker():
            nonlocal errors
            for i in queue:
                body = {"records": [records[i % len(records)]]}
                t = time.perf_counter()
                try:
                    r = await client.post(url, json=body)
                    code = r.status_code
                except httpx.HTTPError:
                    code = -1
                latencies.append(time.perf_counter() - t)
                statuses[code] = statuses.get(code, 0) + 1
                if code != 200:
                    errors += 1
        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        wall = time.perf_counter() - started
    print(json.dumps({"latencies": latencies, "errors": errors, "statuses": statuses, "wall": wall}))

asyncio.run(main())
'''


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(base: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited: {proc.stderr.read()}")
        try:
            if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise TimeoutError("server did not become ready")


def pct(values, q) -> float:
    return float(np.percentile(np.asarray(values) * 1000, q))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()

    import httpx

    import takeoff
    from takeoff.demo import demo_data

    work = args.workdir or Path(tempfile.mkdtemp(prefix="takeoff-serve-bench-"))
    models_dir = work / "models"
    models_dir.mkdir(parents=True, exist_ok=True)
    credit = pd.read_csv(demo_data())
    for name, family in (("credit-lightgbm", "lightgbm"), ("credit-mlp", "mlp")):
        if not (models_dir / name / "takeoff.json").exists():
            takeoff.train(credit, target="Status", family=family, out=models_dir / name, time_budget=60)
    rows = credit.drop(columns=["Status"]).sample(2000, random_state=0).reset_index(drop=True)
    records = json.loads(rows.to_json(orient="records"))
    records_file = work / "records.json"
    records_file.write_text(json.dumps(records))

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("takeoff")), "-q", "serve", str(models_dir), "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    results = []
    try:
        wait_ready(base, server)
        for name in ("credit-lightgbm", "credit-mlp"):
            model = takeoff.load(models_dir / name)
            # in-process baseline: one record at a time, same rows
            n_inproc = 2000
            t = time.perf_counter()
            inproc = []
            for i in range(n_inproc):
                s = time.perf_counter()
                model.predict(rows.iloc[[i % len(rows)]])
                inproc.append(time.perf_counter() - s)
            url = f"{base}/v1/models/{name}/predict"
            client = subprocess.run(
                [sys.executable, "-c", CLIENT, url, str(args.requests), str(args.concurrency), str(records_file)],
                capture_output=True, text=True, timeout=900, check=True,
            )
            load = json.loads(client.stdout)
            # 1,000-record requests, sequential, and the same 1,000 rows in process
            batch = {"records": records[:1000]}
            big = []
            with httpx.Client(timeout=60) as http:
                for _ in range(20):
                    s = time.perf_counter()
                    response = http.post(url, json=batch)
                    big.append(time.perf_counter() - s)
                    assert response.status_code == 200, response.text
            big_inproc = []
            for _ in range(20):
                s = time.perf_counter()
                model.predict(rows.head(1000))
                big_inproc.append(time.perf_counter() - s)
            row = {
                "model": name,
                "requests": args.requests,
                "concurrency": args.concurrency,
                "errors": load["errors"],
                "statuses": load["statuses"],
                "p50_ms": pct(load["latencies"], 50),
                "p95_ms": pct(load["latencies"], 95),
                "p99_ms": pct(load["latencies"], 99),
                "throughput_rps": args.requests / load["wall"],
                "inprocess_p50_ms": pct(inproc, 50),
                "inprocess_p99_ms": pct(inproc, 99),
                "batch1000_p50_ms": pct(big, 50),
                "batch1000_max_ms": max(big) * 1000,
                "batch1000_inprocess_p50_ms": pct(big_inproc, 50),
            }
            results.append(row)
            print(json.dumps(row), flush=True)
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()

    print(f"\n{args.requests:,} single-record requests per model at concurrency {args.concurrency}, "
          f"client in a separate process on the same {os.cpu_count()} cores:\n")
    print("| model | errors | p50 ms | p95 ms | p99 ms | req/s | in-process p50 ms | p50 overhead (HTTP / in-process) | 1,000-record request p50 ms (max) | 1,000 rows in-process ms |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['model']} | {r['errors']} | {r['p50_ms']:.1f} | {r['p95_ms']:.1f} | {r['p99_ms']:.1f} | {r['throughput_rps']:.0f} | "
              f"{r['inprocess_p50_ms']:.2f} | {r['p50_ms'] / r['inprocess_p50_ms']:.1f}x | {r['batch1000_p50_ms']:.0f} ({r['batch1000_max_ms']:.0f}) | "
              f"{r['batch1000_inprocess_p50_ms']:.0f} |")


if __name__ == "__main__":
    main()
