"""Abuse of `takeoff serve` on loopback, bounded in count and time: what a few clients can make
the server do, and whether `/healthz` keeps answering meanwhile.

    python benchmarks/server_abuse.py [--bundle DIR] [--columns 1000000] [--idle 1000] [--slow 500]
                                      [--before-src /path/to/other/src]

Starts `takeoff serve` over a LightGBM credit-risk bundle (trained here unless --bundle is
given) in a child process with a 5 s header timeout, then in turn:

1. 10,000 valid rows to a server with a 0.02 s timeout: the 504, and the server's CPU seconds in
   the 2 s after it (work that goes on after its answer);
then, on one server with the default 30 s timeout:
2. `/healthz` latency on the idle server (the baseline of every later latency);
3. a CSV body of `--columns` columns (10 MB at 1M columns): its status, how long the answer took,
   and the server's CPU seconds in the 3 s after the answer;
4. `--idle` idle connections and two 10,000-row requests in flight: `/healthz` latency meanwhile;
5. `--slow` connections sending their headers one line a second: how many are still open after
   2, 6 and 10 s, and `/healthz` latency meanwhile;
6. the server's resident memory at the start (after one valid 10,000-row request has warmed it)
   and at the end (after a 3 s pause), and its peak.

With `--before-src`, the same abuse is run first against the server of another checkout's `src`
(e.g. the previous release) so that the two runs compare in the same conditions.
Nothing leaves the machine; every loop is bounded.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(port: int, raw: bytes, timeout: float = 30.0) -> tuple[int, float]:
    """Send ``raw`` on a new connection; (status, seconds to the whole answer); status 0 on no answer."""
    started = time.perf_counter()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(raw)
            reply = b""
            while chunk := sock.recv(1 << 16):
                reply += chunk
    except OSError:
        return 0, time.perf_counter() - started
    status = int(reply[9:12]) if reply[:5] == b"HTTP/" else 0
    return status, time.perf_counter() - started


def healthz(port: int, timeout: float = 10.0) -> float:
    status, seconds = request(port, b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", timeout)
    return seconds if status == 200 else float("inf")


def post(path: str, body: bytes, media: str) -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {media}\r\nContent-Length: {len(body)}\r\n"
            "Connection: close\r\n\r\n").encode() + body


def probe_during(port: int, seconds: float) -> list[float]:
    """/healthz latencies, one probe every 50 ms for ``seconds``."""
    out, end = [], time.monotonic() + seconds
    while time.monotonic() < end:
        out.append(healthz(port, timeout=5))
        time.sleep(0.05)
    return out


def cpu(proc: psutil.Process) -> float:
    times = [proc.cpu_times()] + [c.cpu_times() for c in proc.children(recursive=True)]
    return sum(t.user + t.system for t in times)


def rss(proc: psutil.Process) -> int:
    return proc.memory_info().rss


def watch(server: psutil.Process, stop: threading.Event, peak: list[int]) -> None:
    """Sample the server's resident memory every 50 ms until ``stop``."""
    while not stop.is_set():
        try:
            peak.append(rss(server))
        except psutil.Error:
            return
        time.sleep(0.05)


def start(bundle: Path, src: Path, timeout: str) -> tuple[subprocess.Popen, int]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "TAKEOFF_API_KEY"}
    env.update(PYTHONPATH=str(src), TAKEOFF_SERVE_HEADER_TIMEOUT_S="5")
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen([sys.executable, "-m", "takeoff.cli", "serve", str(bundle), "--port", str(port),
                             "--timeout", timeout, "--no-access-log"], stdout=log, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 120
    while healthz(port, timeout=2) == float("inf"):
        if proc.poll() is not None or time.monotonic() > deadline:
            log.seek(0)
            raise SystemExit(f"the server did not start: {log.read().decode(errors='replace')[-2000:]}")
        time.sleep(0.3)
    return proc, port


def run(bundle: Path, src: Path, args, rows_csv: bytes) -> dict:
    out: dict = {}
    # a server whose deadline every large request passes: does the work stop with the 504?
    proc, port = start(bundle, src, "0.02")
    server = psutil.Process(proc.pid)
    try:
        status, seconds = request(port, post("/v1/predict", rows_csv, "text/csv"), timeout=60)
        before = cpu(server)
        time.sleep(2)
        out["past_deadline"] = {"status": status, "answer_s": round(seconds, 2), "cpu_s_in_2s_after": round(cpu(server) - before, 2)}
    finally:
        proc.terminate()
        proc.wait(timeout=60)

    proc, port = start(bundle, src, "30")
    server = psutil.Process(proc.pid)
    peak, stop = [rss(server)], threading.Event()
    threading.Thread(target=watch, args=(server, stop, peak), daemon=True).start()
    try:
        for _ in range(20):
            healthz(port)
        request(port, post("/v1/predict", rows_csv, "text/csv"), timeout=60)  # warm: lazy imports, parser buffers
        time.sleep(1)
        out["rss_start_mb"] = round(rss(server) / 1e6, 1)
        out["healthz_idle_ms"] = round(1000 * statistics.median([healthz(port) for _ in range(50)]), 2)

        header = ",".join(f"c{i}" for i in range(args.columns)).encode()
        wide = header + b"\n" + b"1," * (args.columns - 1) + b"1\n"
        status, seconds = request(port, post("/v1/predict", wide, "text/csv"), timeout=60)
        before = cpu(server)
        time.sleep(3)
        out["wide_csv"] = {"columns": args.columns, "mb": round(len(wide) / 1e6, 1), "status": status,
                           "answer_s": round(seconds, 2), "cpu_s_in_3s_after": round(cpu(server) - before, 2)}

        idle_socks = []
        for _ in range(args.idle):
            try:
                idle_socks.append(socket.create_connection(("127.0.0.1", port), timeout=5))
            except OSError:
                break
        work = [threading.Thread(target=request, args=(port, post("/v1/predict", rows_csv, "text/csv"), 60)) for _ in range(2)]
        for t in work:
            t.start()
        during = probe_during(port, 3.0)
        for t in work:
            t.join(timeout=60)
        out["idle_connections"] = {"opened": len(idle_socks), "healthz_ms_median": round(1000 * statistics.median(during), 1),
                                   "healthz_ms_max": round(1000 * max(during), 1), "probes": len(during),
                                   "failed": sum(d == float("inf") for d in during)}
        for s in idle_socks:
            s.close()

        slow = []
        opened = time.monotonic()
        for _ in range(args.slow):
            try:
                s = socket.create_connection(("127.0.0.1", port), timeout=5)
                s.sendall(b"GET /healthz HTTP/1.1\r\n")
                slow.append(s)
            except OSError:
                break
        during = []
        open_after: dict[float, int] = {}
        for mark in (2.0, 6.0, 10.0):
            while time.monotonic() - opened < mark:
                for s in slow:  # one header line each, every second
                    try:
                        s.sendall(b"X-Slow: 1\r\n")
                    except OSError:
                        pass
                during += probe_during(port, 1.0)
            open_after[mark] = sum(_is_open(s) for s in slow)
        out["slow_headers"] = {"opened": len(slow), "still_open_after_s": open_after,
                               "healthz_ms_median": round(1000 * statistics.median(during), 1),
                               "healthz_ms_max": round(1000 * max(during), 1)}
        for s in slow:
            s.close()
        time.sleep(3)
        out["rss_end_mb"] = round(rss(server) / 1e6, 1)
        out["rss_peak_mb"] = round(max(peak) / 1e6, 1)
    finally:
        stop.set()
        proc.terminate()
        proc.wait(timeout=60)
    return out


def _is_open(sock: socket.socket) -> bool:
    """Whether the server still holds ``sock`` open (what it sent, e.g. a 408, is read past)."""
    sock.setblocking(False)
    try:
        while sock.recv(1 << 16):
            pass
        return False  # end of stream: the server closed it
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        sock.setblocking(True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path)
    parser.add_argument("--columns", type=int, default=1_000_000)
    parser.add_argument("--idle", type=int, default=1_000)
    parser.add_argument("--slow", type=int, default=500)
    parser.add_argument("--before-src", type=Path)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    import pandas as pd

    datasets = Path(os.environ.get("TAKEOFF_DATASETS", ROOT.parent / "shared" / "datasets"))
    credit = pd.read_csv(datasets / "credit_risk.csv")
    bundle = args.bundle
    if bundle is None:
        import takeoff

        bundle = Path(tempfile.mkdtemp(prefix="takeoff-abuse-")) / "credit"
        takeoff.train(credit.sample(1200, random_state=0), target="Status", family="lightgbm", time_budget=30, seed=0, out=bundle)
    rows = pd.concat([credit.drop(columns=["Status"])] * 3).head(10_000)
    rows_csv = rows.to_csv(index=False).encode()
    results = {}
    if args.before_src:
        results["before"] = run(bundle, args.before_src, args, rows_csv)
    results["this checkout"] = run(bundle, ROOT / "src", args, rows_csv)
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
