"""Prometheus metrics of one editor server, in a registry of its own (no process-wide globals)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

#: Error kinds counted by ``thinkedit_editor_errors_total``.
ERROR_KINDS = (
    "bad_image",
    "bad_request",
    "too_large",
    "validation",
    "queue_full",
    "not_ready",
    "unauthorized",
    "cancelled",
    "backend",
    "disconnected",
    "timeout",
    "slow_headers",
    "forbidden_host",
    "forbidden_origin",
)


class EditorMetrics:
    """Count requests, errors and batches; time edits; expose queue depth."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self, model: str, replica: str) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.queue_depth = Gauge(
            "thinkedit_editor_queue_depth", "Requests waiting for the pipeline.", registry=self.registry
        )
        self.running = Gauge(
            "thinkedit_editor_running_requests", "Requests in the pipeline call now running.", registry=self.registry
        )
        self.batch_size = Histogram(
            "thinkedit_editor_batch_size",
            "Requests per pipeline batch.",
            buckets=(1, 2, 3, 4, 6, 8, 12, 16, 32),
            registry=self.registry,
        )
        self.batch_seconds = Histogram(
            "thinkedit_editor_batch_seconds", "Wall time of one batch in the pipeline.", registry=self.registry
        )
        self.latency = Histogram(
            "thinkedit_editor_request_seconds",
            "Time from a request's arrival to its response, for successful edits.",
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
            registry=self.registry,
        )
        self.queue_wait = Histogram(
            "thinkedit_editor_queue_wait_seconds", "Time requests spent queued.", registry=self.registry
        )
        self.requests = Counter(
            "thinkedit_editor_requests", "Edit requests answered, by HTTP status.", ["status"], registry=self.registry
        )
        self.errors = Counter(
            "thinkedit_editor_errors", "Failed edit requests, by kind.", ["kind"], registry=self.registry
        )
        for kind in ERROR_KINDS:
            self.errors.labels(kind=kind)
        self.info = Gauge(
            "thinkedit_editor_replica_info",
            "Always 1; labels name the served model and this replica.",
            ["model", "replica"],
            registry=self.registry,
        )
        self.info.labels(model=model, replica=replica).set(1)

    def error(self, kind: str) -> None:
        """Count one failed request of ``kind``."""
        self.errors.labels(kind=kind).inc()

    def render(self) -> bytes:
        """Return the text exposition format."""
        return generate_latest(self.registry)
