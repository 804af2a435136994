"""Where Kafka and Redis are, for whatever is not configured: CHISO766_BOOTSTRAP / CHISO766_REDIS_URL,
else the running local stack (`CHISO766_STACK`, default "default")."""

from __future__ import annotations

import os

from support import stack


def local_stack() -> stack.StackInfo:
    """The running local stack; RuntimeError (saying what to do) when there is none."""
    info = stack.read_info(os.environ.get("CHISO766_STACK", "default"))
    if info is None:
        raise RuntimeError("no Kafka/Redis configured: run `chiso766 stack up` or set "
                           "CHISO766_BOOTSTRAP and CHISO766_REDIS_URL")
    return info


def bootstrap_and_redis(bootstrap: str | None = None, redis_url: str | None = None) -> tuple[str, str]:
    """The given addresses, else the environment's, else the local stack's."""
    bootstrap = bootstrap or os.environ.get("CHISO766_BOOTSTRAP")
    redis_url = redis_url or os.environ.get("CHISO766_REDIS_URL")
    if not bootstrap or not redis_url:
        info = local_stack()
        bootstrap, redis_url = bootstrap or info.bootstrap, redis_url or info.redis_url
    return bootstrap, redis_url


def redis_url() -> str:
    """CHISO766_REDIS_URL, else the local stack's Redis (the read side needs no Kafka)."""
    return os.environ.get("CHISO766_REDIS_URL") or local_stack().redis_url


def wait_for_health(url: str, attempts: int = 300, pause: float = 0.1) -> bool:
    """Until `URL/health` says ok (a gateway listens before it reaches Kafka, and says
    `waiting_for_kafka` meanwhile); False when it never does."""
    import time

    import httpx

    for _ in range(attempts):
        try:
            if httpx.get(f"{url}/health").json()["status"] == "ok":
                return True
        except httpx.HTTPError:
            pass
        time.sleep(pause)
    return False
