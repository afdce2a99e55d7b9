"""Prometheus metrics of one server process, in the app's own registry (no global state)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


class Metrics:
    """Request counts and latency by route template, rows by model, errors by code, batch sizes."""

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
        self.drift_psi = Gauge("takeoff_drift_psi", "PSI of each input column and of the predictions over the last "
                               "requests, against the training profile, by model and column.", ["model", "column"],
                               registry=self.registry)

    def render(self) -> bytes:
        return generate_latest(self.registry)
