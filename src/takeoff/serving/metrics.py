"""Prometheus metrics of the server, in the app's own registry (no global state), with the
standard ``process_*`` and ``python_*`` series.

With several worker processes (``takeoff serve --workers N``), :func:`takeoff.serving.server.serve`
gives them one fresh directory in ``PROMETHEUS_MULTIPROC_DIR`` (removed when the server stops);
prometheus_client then keeps every worker's values in memory-mapped files there, and whichever
worker answers ``/metrics`` sums them all (prometheus_client's multiprocess mode): one scrape
sees the whole server. ``process_*`` series then come once per live worker, labelled ``pid``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable

from prometheus_client import (GC_COLLECTOR, PLATFORM_COLLECTOR, CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector,
                               generate_latest)
from prometheus_client.metrics_core import Metric
from prometheus_client.samples import Sample

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
GENERATION_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
TOKENS_PER_S_BUCKETS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def multiprocess_dir() -> str | None:
    """The directory of prometheus_client's multiprocess mode, when this process is in it."""
    path = os.environ.get(MULTIPROC_ENV)
    return path if path and os.path.isdir(path) else None


class Metrics:
    """Request counts and latency by route template, rows by model, errors by code, batch sizes;
    for generative models, tokens, generations by finish reason, time to first token and speed."""

    def __init__(self):
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter("takeoff_http_requests_total", "HTTP requests by method, route template and status code.",
                                ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram("takeoff_http_request_duration_seconds", "Time to answer an HTTP request, by route template.",
                                 ["route"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.rows = Counter("takeoff_rows_predicted_total", "Rows predicted, by model.", ["model"], registry=self.registry)
        self.errors = Counter("takeoff_errors_total", "Error responses by error code.", ["code"], registry=self.registry)
        self.batch_rows = Histogram("takeoff_batch_rows", "Rows per micro-batch (neural families), by model.",
                                    ["model"], buckets=BATCH_BUCKETS, registry=self.registry)
        self.prompt_tokens = Counter("takeoff_prompt_tokens_total", "Prompt tokens read by generative models, by model.",
                                     ["model"], registry=self.registry)
        self.generated_tokens = Counter("takeoff_generated_tokens_total", "Tokens generated, by model.", ["model"],
                                        registry=self.registry)
        self.generations = Counter("takeoff_generations_total", "Generations ended, by model and finish reason (stop, "
                                   "length, cancelled: the client went away, error).", ["model", "finish_reason"],
                                   registry=self.registry)
        self.first_token = Histogram("takeoff_time_to_first_token_seconds", "Time from a generation's start to its first "
                                     "token, by model.", ["model"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.generation_time = Histogram("takeoff_generation_seconds", "Time from a generation's start to its end, by model.",
                                         ["model"], buckets=GENERATION_BUCKETS, registry=self.registry)
        self.tokens_per_second = Histogram("takeoff_generation_tokens_per_second", "Tokens generated per second of each "
                                           "generation, by model.", ["model"], buckets=TOKENS_PER_S_BUCKETS,
                                           registry=self.registry)
        self.registry.register(ProcessCollector(registry=None))
        for standard in (PLATFORM_COLLECTOR, GC_COLLECTOR):  # python_info, python_gc_*: stateless readers
            self.registry.register(standard)
        self.drift_psi = Gauge("takeoff_drift_psi", "PSI of each input column and of the predictions over the last "
                               "requests, against the training profile, by model and column (with --workers: the worker that "
                               "updated it last).", ["model", "column"], registry=self.registry,
                               multiprocess_mode="livemostrecent")

    def render(self) -> bytes:
        """The Prometheus text: this process's metrics, or, in multiprocess mode, every worker's summed."""
        path = multiprocess_dir()
        if path is None:
            return generate_latest(self.registry)
        from prometheus_client.multiprocess import MultiProcessCollector

        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=path)
        registry.register(WorkersProcessCollector(path))
        registry.register(PLATFORM_COLLECTOR)
        registry.register(GC_COLLECTOR)  # of the worker answering
        return generate_latest(registry)


class WorkersProcessCollector:
    """``process_*`` of every live worker that wrote metrics into the multiprocess directory,
    each series labelled with the worker's ``pid`` (read from ``/proc``; Linux only, as
    prometheus_client's own process collector)."""

    FILE = re.compile(r"_(\d+)\.db$")

    def __init__(self, path: str):
        self.path = path

    def collect(self) -> Iterable[Metric]:
        pids = sorted({int(m.group(1)) for f in os.listdir(self.path) if (m := self.FILE.search(f))})
        merged: dict[str, Metric] = {}
        for pid in pids:
            if not os.path.exists(f"/proc/{pid}"):
                continue  # a worker that stopped: its counts stay in the sums, its process series go
            for family in ProcessCollector(pid=lambda pid=pid: pid, registry=None).collect():
                target = merged.setdefault(family.name, Metric(family.name, family.documentation, family.type))
                target.samples.extend(Sample(s.name, {**s.labels, "pid": str(pid)}, s.value, s.timestamp, s.exemplar)
                                      for s in family.samples)
        return list(merged.values())
