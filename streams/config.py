"""Worker settings: where Kafka and Redis are, the namespace, partitions, batching and time mode."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from contracts.keys import RedisKeys
from schemas.decode import FUTURE_TOLERANCE_SECONDS
from support.endpoints import bootstrap_and_redis


@dataclass(frozen=True)
class Settings:
    bootstrap: str
    redis_url: str
    namespace: str = "chiso766"
    partitions: int = 4
    # Copies of each topic; None: from the cluster's size (`streams.topics.replication_for`).
    replication: int | None = None
    mode: Literal["live", "replay"] = "live"
    store: str = "memory://"  # or rocksdb:// (rocksdict): tables survive a restart on local disk
    batch_max: int = 5000
    batch_within: float = 0.05
    score_every: float = 1.0  # seconds between rescoring the periods that tally batches touched
    tick_seconds: float = 5.0
    alert_stream_maxlen: int = 100_000
    metrics_port: int | None = None
    data_dir: str = field(default_factory=lambda: os.environ.get("CHISO766_DATA", "/tmp/chiso766-data"))
    # "Now" for refusing events from the future: the wall clock, or CHISO766_NOW (an ISO instant) to
    # replay a simulated history dated ahead of today.
    now_override: str | None = field(default_factory=lambda: os.environ.get("CHISO766_NOW") or None)
    future_tolerance: int = FUTURE_TOLERANCE_SECONDS
    # How long the dead-letter topic keeps a record (its retention.ms, set on every start). A record
    # holds no personal data (streams.scorer.DeadLetter), but no reason to keep it for ever either.
    dead_letter_retention_hours: float = field(default_factory=lambda: dead_letter_retention_from_env())

    def now(self) -> int:
        """The moment of processing, epoch seconds: the wall clock, or CHISO766_NOW."""
        return int(datetime.fromisoformat(self.now_override).timestamp() if self.now_override else time.time())

    def not_after(self) -> int:
        """Epoch seconds after which an event is from the future."""
        return self.now() + self.future_tolerance

    @property
    def dead_letter_retention_ms(self) -> int:
        return round(self.dead_letter_retention_hours * 3_600_000)

    def topic(self, name: str) -> str:
        return f"{self.namespace}.{name}"

    @property
    def app_id(self) -> str:
        return f"chiso766-{self.namespace}"

    @property
    def redis_prefix(self) -> str:
        return self.namespace

    @property
    def keys(self) -> RedisKeys:
        return RedisKeys(self.redis_prefix)


DEAD_LETTER_RETENTION = "CHISO766_DEAD_LETTER_RETENTION_HOURS"
DEFAULT_DEAD_LETTER_RETENTION_HOURS = 168.0  # 7 days


def dead_letter_retention_from_env() -> float:
    text = os.environ.get(DEAD_LETTER_RETENTION) or str(DEFAULT_DEAD_LETTER_RETENTION_HOURS)
    try:
        hours = float(text)
    except ValueError:
        raise ValueError(f"{DEAD_LETTER_RETENTION}={text!r} is not a number of hours") from None
    if not hours > 0:
        raise ValueError(f"{DEAD_LETTER_RETENTION}={text!r} must be above 0")
    return hours


DOSSIER_TOPIC, PETITION_TOPIC, CATALOG_TOPIC = "dossier-events", "petition-events", "catalog-events"
DEAD_LETTER_TOPIC, TALLY_TOPIC = "dead-letter", "tallies"


def resolve(namespace: str = "chiso766", bootstrap: str | None = None, redis_url: str | None = None,
            **overrides) -> Settings:
    """Settings from arguments, else CHISO766_BOOTSTRAP / CHISO766_REDIS_URL, else the local stack."""
    bootstrap, redis_url = bootstrap_and_redis(bootstrap, redis_url)
    return Settings(bootstrap=bootstrap, redis_url=redis_url, namespace=namespace, **overrides)
