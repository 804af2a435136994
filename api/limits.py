"""What the API allows one client and all clients together. Each limit has an environment variable;
README's "Security" section lists them with what happens past each."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields


@dataclass(frozen=True)
class ApiLimits:
    live_total: int = 1000  # open /api/live streams, all clients (past it: 503 live_full)
    live_per_client: int = 50  # open /api/live streams from one client address (past it: 429 too_many_streams)
    live_buffer: int = 256  # events waiting for one stream; past it the oldest are skipped (and it is told)
    live_send_timeout: float = 30.0  # seconds one write to a stream may wait on a client that reads nothing
    header_timeout: float = 10.0  # seconds from connecting (or from the last response) to a complete request
    keep_alive: int = 5  # seconds an idle keep-alive connection stays open
    max_connections: int = 2048  # open connections and requests (uvicorn limit_concurrency; past it: 503)
    redis_timeout: float = 2.0  # seconds to connect, to answer, and to wait for a free pooled connection
    redis_connections: int = 64  # pooled Redis connections for requests (the live streams share one more)
    rebuild_interval: float = 60.0  # seconds between two accepted rebuild requests (past it: 429 rate_limited)
    trusted_proxies: str = ""  # addresses whose X-Forwarded-For is believed ("" none: the peer is the client)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> ApiLimits:
        """The defaults, with each `CHISO766_API_<NAME>` set in `environ`; a value that is not a
        positive number is a ValueError naming the variable."""
        values: dict[str, object] = {}
        for spec in fields(cls):
            name = env_name(spec.name)
            text = environ.get(name)
            if text is None or text == "":
                continue
            if spec.type == "str":
                values[spec.name] = text.strip()
                continue
            try:
                number = (int if spec.type == "int" else float)(text)
            except ValueError:
                raise ValueError(f"{name}={text!r} is not a number") from None
            if number <= 0:
                raise ValueError(f"{name}={text!r} must be above 0")
            values[spec.name] = number
        return cls(**values)  # type: ignore[arg-type]


def env_name(field_name: str) -> str:
    return f"CHISO766_API_{field_name.upper()}"
