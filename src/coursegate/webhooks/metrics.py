"""What the worker's `/metrics` says about outbound webhooks."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

DELIVERY_OUTCOMES = Counter(
    "coursegate_webhook_deliveries_total",
    "Delivery attempts by what they led to: delivered, retrying, failed (schedule spent), "
    "gone (410, endpoint disabled), canceled (endpoint disabled before the attempt)",
    ["outcome"],
)
ATTEMPT_SECONDS = Histogram(
    "coursegate_webhook_attempt_seconds",
    "Time from sending a delivery to the receiver's answer (or the error)",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 15),
)
DUE_BACKLOG = Gauge(
    "coursegate_webhook_due_backlog", "Deliveries due now and not yet claimed by a worker"
)
OLDEST_DUE_SECONDS = Gauge(
    "coursegate_webhook_oldest_due_seconds", "How long the oldest due delivery has waited"
)
