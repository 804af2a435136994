"""Forwarding alerts to a province's own gateway (SMS, Zalo, e-mail) over HTTP: a signed POST per alert,
retried with backoff, and after the last attempt a dead letter — never a lost alert.

The signature lets the receiver check that the body came from this deployment and is fresh:
`X-Chiso766-Signature: t=UNIX_SECONDS,v1=HEX` where HEX is HMAC-SHA256 over `"{t}.{body}"` with the
shared secret (CHISO766_WEBHOOK_SECRET). `X-Chiso766-Alert-Id` lets it drop a repeat: delivery is at
least once (an alert whose delivery was cut by a crash is sent again after the restart).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import random
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import orjson

SIGNATURE_HEADER = "X-Chiso766-Signature"
ALERT_ID_HEADER = "X-Chiso766-Alert-Id"
KIND_LABELS = {"overdue": {"vi": "Quá hạn", "en": "Overdue"},
               "approaching": {"vi": "Sắp đến hạn", "en": "Approaching due"},
               "apology_due": {"vi": "Cần gửi thư xin lỗi", "en": "Apology letter due"}}
# A 4xx other than these says the request itself is wrong: trying it again cannot help.
RETRYABLE_4XX = frozenset({408, 409, 425, 429})


def signature(secret: bytes, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret, str(timestamp).encode() + b"." + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify(secret: bytes, header: str, body: bytes, now: int, tolerance: int = 300) -> bool:
    """What a receiver does (and the tests): the HMAC matches and the timestamp is recent."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
    except (ValueError, KeyError):
        return False
    return abs(now - timestamp) <= tolerance and hmac.compare_digest(signature(secret, timestamp, body), header)


@dataclass(frozen=True)
class Attempt:
    ok: bool
    retry: bool  # worth trying again (a network error, a 5xx, a 429…)
    error: str


@dataclass(frozen=True)
class Delivery:
    ok: bool
    attempts: int
    error: str


class WebhookSink:
    """POSTs alerts to `url`. `post` and `sleep` are the network and the clock, replaceable in tests."""

    def __init__(self, url: str, secret: bytes, max_attempts: int = 5, backoff: float = 1.0, cap: float = 60.0,
                 timeout: float = 10.0, clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep):
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"--webhook must be an http:// or https:// URL, got {url!r}")
        if not secret:
            raise ValueError("the webhook secret is empty: set CHISO766_WEBHOOK_SECRET")
        self.url, self.secret, self.max_attempts = url, secret, max_attempts
        self.backoff, self.cap, self.timeout, self.clock, self.sleep = backoff, cap, timeout, clock, sleep

    def request(self, alert: dict, namespace: str) -> urllib.request.Request:
        kind = alert.get("kind", "")
        body = orjson.dumps({**alert, "namespace": namespace, "kind_label": KIND_LABELS.get(kind, {}).get("vi", kind)})
        headers = {"Content-Type": "application/json; charset=utf-8", "User-Agent": "chiso766-webhook/1",
                   SIGNATURE_HEADER: signature(self.secret, int(self.clock()), body),
                   ALERT_ID_HEADER: str(alert.get("alert_id", ""))}
        return urllib.request.Request(self.url, data=body, headers=headers, method="POST")

    def post_once(self, request: urllib.request.Request) -> Attempt:
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return Attempt(True, False, f"HTTP {response.status}")
        except urllib.error.HTTPError as error:
            retry = error.code >= 500 or error.code in RETRYABLE_4XX
            return Attempt(False, retry, f"HTTP {error.code} {error.reason}")
        except (urllib.error.URLError, OSError) as error:  # refused, unreachable, timed out, TLS
            reason = getattr(error, "reason", error)
            return Attempt(False, True, f"{type(reason).__name__}: {reason}")

    async def deliver(self, alert: dict, namespace: str) -> Delivery:
        """Up to `max_attempts` tries (re-signed each time), waiting backoff · 2^n (capped, jittered)
        between them; a 4xx that no retry can fix stops at once."""
        last = Attempt(False, True, "not tried")
        for attempt in range(1, self.max_attempts + 1):
            last = await asyncio.to_thread(self.post_once, self.request(alert, namespace))
            if last.ok:
                return Delivery(True, attempt, "")
            if not last.retry or attempt == self.max_attempts:
                return Delivery(False, attempt, last.error)
            pause = min(self.cap, self.backoff * 2 ** (attempt - 1))
            await self.sleep(pause * random.uniform(0.8, 1.2))
        return Delivery(False, self.max_attempts, last.error)
