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
# A light load client: pre-encoded HTTP/1.1 requests on C keep-alive connections, responses
# read by Content-Length. A full client library (httpx) spends ~2 ms of CPU per request, which
# on a 2-core machine would take the CPU the server needs and measure the client instead.
import asyncio, json, sys, time

host, port, path, n, concurrency, records_file = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), sys.argv[6]
records = json.load(open(records_file))

def encode(record):
    body = json.dumps({"records": [record]}).encode()
    head = (f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    return head + body

requests = [encode(r) for r in records]

async def main():
    latencies, statuses = [], {}
    queue = iter(range(n))
    async def worker():
        reader, writer = await asyncio.open_connection(host, port)
        try:
            for i in queue:
                t = time.perf_counter()
                try:
                    writer.write(requests[i % len(requests)])
                    head = await reader.readuntil(b"\r\n\r\n")
                    code = int(head[9:12])
                    length = 0
                    for line in head.split(b"\r\n")[1:]:
                        if line[:15].lower() == b"content-length:":
                            length = int(line[15:])
                    body = await reader.readexactly(length)
                    if code == 200 and not body.startswith(b'{"model"'):
                        code = -2  # a 200 that is not a prediction
                except (OSError, asyncio.IncompleteReadError, ValueError):
                    code = -1
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, port)
                latencies.append(time.perf_counter() - t)
                statuses[code] = statuses.get(code, 0) + 1
        finally:
            writer.close()
    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = time.perf_counter() - started
    errors = sum(v for k, v in statuses.items() if k != 200)
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
    parser.add_argument("--workers", type=int, default=1, help="server worker processes")
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
        [str(Path(sys.executable).with_name("takeoff")), "-q", "serve", str(models_dir), "--port", str(port), "--no-access-log",
         "--workers", str(args.workers)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )
    results = []
    try:
        wait_ready(base, server)
        for name in ("credit-lightgbm", "credit-mlp"):
            model = takeoff.load(models_dir / name)
            # in-process baseline: Model.predict on the same records, one at a time
            inproc = []
            for i in range(2000):
                s = time.perf_counter()
                model.predict(records[i % len(records)])
                inproc.append(time.perf_counter() - s)
            def load_run(n: int, concurrency: int) -> dict:
                client = subprocess.run(
                    [sys.executable, "-c", CLIENT, "127.0.0.1", str(port), f"/v1/models/{name}/predict",
                     str(n), str(concurrency), str(records_file)],
                    capture_output=True, text=True, timeout=900, check=True,
                )
                return json.loads(client.stdout)

            url = f"{base}/v1/models/{name}/predict"
            sequential = load_run(2000, 1)  # one request at a time: the per-request latency
            load = load_run(args.requests, args.concurrency)
            # 1,000-record requests, sequential, and the same 1,000 rows in process
            batch = {"records": records[:1000]}
            big = []
            with httpx.Client(timeout=60) as http:
                http.post(url, json=batch)  # warm-up (thread pool, caches), not timed
                for _ in range(20):
                    s = time.perf_counter()
                    response = http.post(url, json=batch)
                    big.append(time.perf_counter() - s)
                    assert response.status_code == 200, response.text
            big_inproc = []
            for _ in range(20):
                s = time.perf_counter()
                model.predict(records[:1000])
                big_inproc.append(time.perf_counter() - s)
            row = {
                "model": name,
                "requests": args.requests,
                "concurrency": args.concurrency,
                "errors": load["errors"] + sequential["errors"],
                "sequential_p50_ms": pct(sequential["latencies"], 50),
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

    print(f"\n{args.requests:,} single-record requests per model at concurrency {args.concurrency} "
          f"({args.workers} server worker(s)), client in a separate process on the same {os.cpu_count()} cores; "
          "then 2,000 one at a time, and 20 requests of 1,000 records:\n")
    print("| model | errors | p50 ms | p95 ms | p99 ms | req/s | one at a time p50 ms | in-process p50 ms | "
          "overhead (one at a time / in-process) | 1,000-record request p50 ms (max) | 1,000 rows in-process ms |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['model']} | {r['errors']} | {r['p50_ms']:.1f} | {r['p95_ms']:.1f} | {r['p99_ms']:.1f} | {r['throughput_rps']:.0f} | "
              f"{r['sequential_p50_ms']:.2f} | {r['inprocess_p50_ms']:.2f} | {r['sequential_p50_ms'] / r['inprocess_p50_ms']:.1f}x | "
              f"{r['batch1000_p50_ms']:.0f} ({r['batch1000_max_ms']:.0f}) | {r['batch1000_inprocess_p50_ms']:.0f} |")


if __name__ == "__main__":
    main()
