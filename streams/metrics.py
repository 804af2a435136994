"""Prometheus metrics of a worker. Labels are bounded sets (topic kind, reason, table, kind) —
never an officer, dossier or unit id."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

EVENTS_IN = Counter("chiso766_events_in_total", "Valid events folded into state", ["topic"])
REJECTED = Counter("chiso766_events_rejected_total", "Messages sent to dead-letter, by reason", ["reason"])
BATCH_SIZE = Histogram("chiso766_batch_size_messages", "Messages per consumed batch",
                       buckets=(1, 10, 50, 100, 500, 1000, 2000, 5000, 10000))
TABLE_WRITES = Counter("chiso766_table_writes_total", "Table keys written (once per key per batch)", ["table"])
PROJECTION_SECONDS = Histogram("chiso766_projection_seconds", "Time to project a tally batch into Redis")
ALERTS = Counter("chiso766_alerts_emitted_total", "Deadline alerts published (after de-duplication)")
CONSUMER_LAG = Gauge("chiso766_consumer_lag_messages", "End offset minus position, per input topic kind",
                     ["topic"])
EVENT_AGE = Histogram("chiso766_event_age_seconds", "Age of the oldest message of a batch once it is handled "
                      "(Kafka timestamp to state, tallies and lists written)",
                      buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30))
ADVANCING = Gauge("chiso766_worker_advancing", "1 while the worker advances or is idle with nothing to read, "
                  "0 when it is stalled (a batch waiting, or messages waiting and no batch handled)")
LAST_BATCH_AGE = Gauge("chiso766_last_batch_age_seconds", "Seconds since the worker last finished a batch")
REDIS_RETRIES = Counter("chiso766_redis_retries_total", "Redis calls retried after a connection error or timeout")
