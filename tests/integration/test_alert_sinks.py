"""Alerts that reach people, against local servers: a webhook (a real HTTP server in this process)
receiving signed alerts through `chiso766 alerts --webhook`, failing on purpose, down for good, and
back; and the e-mail digest through a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import orjson
import pytest
import redis

from api.webhook import ALERT_ID_HEADER, SIGNATURE_HEADER, verify
from support.stack import free_port
from tests.integration.conftest import chiso766

pytestmark = pytest.mark.integration
SECRET = "webhook-secret-for-tests"


@dataclass
class Gateway:
    """A province's gateway: answers `fail_first[alert_id]` requests for an alert with 503, then 200."""

    url: str
    received: list[dict] = field(default_factory=list)
    signatures_ok: list[bool] = field(default_factory=list)
    fail_first: dict[str, int] = field(default_factory=dict)
    attempts: dict[str, int] = field(default_factory=dict)


@pytest.fixture
def gateway() -> Iterator[Gateway]:
    port = free_port()
    state = Gateway(f"http://127.0.0.1:{port}/hook")

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if self.path != "/hook":
                self.send_response(404)
                self.end_headers()
                return
            alert_id = self.headers[ALERT_ID_HEADER]
            state.attempts[alert_id] = state.attempts.get(alert_id, 0) + 1
            if state.attempts[alert_id] <= state.fail_first.get(alert_id, 0):
                self.send_response(503)
                self.end_headers()
                return
            state.signatures_ok.append(verify(SECRET.encode(), self.headers[SIGNATURE_HEADER], body, int(time.time())))
            state.received.append(orjson.loads(body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *_: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def alert(number: int, unit: str = "H15.01", kind: str = "overdue", stake: float | None = 1.26) -> dict:
    return {"alert_id": f"al-{number}", "kind": kind, "dossier": f"H15.01-{number:07d}", "procedure": "1.000123",
            "unit": unit, "officer": "H15.01-CB02", "due": "2026-10-02T17:00:00+07:00",
            "at": "2026-10-02T17:00:00+07:00", "threshold_working_minutes": 0, "points_at_stake": stake}


def publish(client: redis.Redis, namespace: str, alerts: list[dict]) -> None:
    for item in alerts:
        client.xadd(f"{namespace}:alerts", {"alert": orjson.dumps(item), "kind": item["kind"], "unit": item["unit"]})


def webhook_env(gateway_url: str) -> list[str]:
    return ["--webhook", gateway_url, "--max-attempts", "3"]


def test_the_webhook_gets_every_alert_signed_retries_and_dead_letters_lose_none(local_stack, gateway, monkeypatch):
    monkeypatch.setenv("CHISO766_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("CHISO766_WEBHOOK_BACKOFF", "0.05")
    namespace = "sinks-webhook"
    client = redis.Redis.from_url(local_stack.redis_url)
    client.hset(f"{namespace}:stake:month:2026-10", "H15.01", "1.26")
    first = [alert(1), alert(2, stake=None), alert(3, kind="approaching")]
    publish(client, namespace, first)
    gateway.fail_first = {"al-2": 2}  # two 503s, then accepted: within 3 attempts
    done = chiso766("alerts", "--consumer-group", "gw", "--from-start", "--namespace", namespace,
                    *webhook_env(gateway.url))
    assert "3 delivered, 0 dead-lettered" in done.stderr, done.stderr
    assert [item["alert_id"] for item in gateway.received] == ["al-1", "al-2", "al-3"]
    assert all(gateway.signatures_ok) and gateway.attempts["al-2"] == 3
    assert gateway.received[1]["points_at_stake"] == 1.26  # filled from the unit's stake, never null
    assert gateway.received[0]["kind_label"] == "Quá hạn" and gateway.received[0]["namespace"] == namespace

    # The gateway goes down for good: every alert ends in the dead letter, none is dropped.
    down = f"http://127.0.0.1:{free_port()}/hook"
    publish(client, namespace, [alert(4), alert(5)])
    failed = chiso766("alerts", "--consumer-group", "gw", "--namespace", namespace, *webhook_env(down))
    assert "0 delivered, 2 dead-lettered" in failed.stderr, failed.stderr
    dead = client.xrange(f"{namespace}:alerts:dead:gw")
    assert [orjson.loads(fields[b"alert"])["alert_id"] for _, fields in dead] == ["al-4", "al-5"]
    assert all(int(fields[b"attempts"]) == 3 and b"Connection" in fields[b"error"] for _, fields in dead)
    assert client.xpending(f"{namespace}:alerts", "gw")["pending"] == 0  # acked: delivered or dead-lettered

    # A 4xx that no retry can fix goes to the dead letter at the first answer.
    publish(client, namespace, [alert(6)])
    rejected = chiso766("alerts", "--consumer-group", "gw", "--namespace", namespace,
                        *webhook_env(gateway.url.replace("/hook", "/missing")))
    assert "0 delivered, 1 dead-lettered" in rejected.stderr, rejected.stderr
    _, last = client.xrange(f"{namespace}:alerts:dead:gw")[-1]
    assert last[b"attempts"] == b"1" and last[b"error"].startswith(b"HTTP 404")

    # Back up: the dead letters are delivered and leave the dead-letter stream.
    retried = chiso766("alerts", "--consumer-group", "gw", "--namespace", namespace, "--retry-dead",
                       *webhook_env(gateway.url))
    assert "3 delivered, 0 still failing" in retried.stderr, retried.stderr
    assert [item["alert_id"] for item in gateway.received][-3:] == ["al-4", "al-5", "al-6"]
    assert client.xlen(f"{namespace}:alerts:dead:gw") == 0


def test_the_webhook_needs_its_secret(local_stack, gateway, monkeypatch):
    monkeypatch.delenv("CHISO766_WEBHOOK_SECRET", raising=False)
    done = chiso766("alerts", "--consumer-group", "gw", "--namespace", "sinks-webhook", "--webhook", gateway.url,
                    check=False)
    assert done.returncode == 2 and "CHISO766_WEBHOOK_SECRET" in done.stderr


@pytest.fixture
def smtp_server() -> Iterator[tuple[int, list]]:
    from aiosmtpd.controller import Controller

    received: list = []

    class Keep:
        async def handle_DATA(self, server, session, envelope) -> str:
            received.append(envelope)
            return "250 OK"

    port = free_port()
    controller = Controller(Keep(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, received
    finally:
        controller.stop()


def test_the_email_digest_reaches_agencies_officers_and_heads_in_vietnamese(office_namespace, local_stack,
                                                                            smtp_server, tmp_path, monkeypatch):
    from email import message_from_bytes, policy

    port, received = smtp_server
    client = redis.Redis.from_url(local_stack.redis_url)
    overdue = {key.decode().rsplit(":", 1)[1]: client.zcard(key)
               for key in client.scan_iter(match=f"{office_namespace}:overdue:unit:*")}
    agency = max(sorted(overdue), key=lambda code: overdue[code])
    assert overdue[agency] > 0
    officers = {client.hget(f"{office_namespace}:dossier:{code.decode()}", "officer").decode()
                for code in client.zrange(f"{office_namespace}:overdue:unit:{agency}", 0, -1)}
    officer = sorted(officers)[0]
    recipients = tmp_path / "recipients.json"
    recipients.write_bytes(orjson.dumps({"units": {agency: {"email": "so@h15.gov.vn", "head": "giamdoc@h15.gov.vn"}},
                                         "officers": {officer: "canbo@h15.gov.vn"}}))
    monkeypatch.setenv("CHISO766_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("CHISO766_SMTP_PORT", str(port))
    monkeypatch.setenv("CHISO766_SMTP_FROM", "chiso766@h15.gov.vn")
    done = chiso766("digest", "--recipients", str(recipients), "--namespace", office_namespace,
                    "--escalate-after", "0")
    assert "sent 3 digest(s): 1 agencies, 1 officers, 1 escalations to heads" in done.stderr, done.stderr
    assert "no officer address" in done.stderr  # the officers without one are named
    messages = {envelope.rcpt_tos[0]: message_from_bytes(envelope.content, policy=policy.default)
                for envelope in received}
    assert set(messages) == {"so@h15.gov.vn", "giamdoc@h15.gov.vn", "canbo@h15.gov.vn"}
    agency_mail = messages["so@h15.gov.vn"]
    assert agency_mail["Subject"].startswith(f"[Chỉ số 766] {overdue[agency]} hồ sơ quá hạn")
    body = agency_mail.get_content()
    lines = [line for line in body.splitlines() if line.startswith("- ")]
    assert body.startswith("Kính gửi: ") and "HỒ SƠ QUÁ HẠN" in body
    approaching = client.zcard(f"{office_namespace}:approaching:unit:{agency}")
    assert len(lines) == overdue[agency] + approaching  # one line per dossier
    first = lines[0]
    assert " · hạn " in first and " · cán bộ " in first and (" điểm" in first)
    assert "/20" in first  # dates as dd/mm/yyyy
    officer_lines = [line for line in messages["canbo@h15.gov.vn"].get_content().splitlines() if line.startswith("- ")]
    assert officer_lines and all(" · cán bộ " not in line for line in officer_lines)  # his own: no officer column
    head = messages["giamdoc@h15.gov.vn"]
    assert "Chuyển lãnh đạo" in head["Subject"]
    escalated = [line.split(" · ")[0][2:] for line in head.get_content().splitlines() if line.startswith("- ")]
    assert len(escalated) == overdue[agency]

    # Acknowledged dossiers are no longer escalated; the agency's own digest still lists them.
    received.clear()
    chiso766("acknowledge", *escalated, "--by", officer, "--namespace", office_namespace)
    again = chiso766("digest", "--recipients", str(recipients), "--namespace", office_namespace,
                     "--escalate-after", "0")
    assert "0 escalations to heads" in again.stderr, again.stderr
    assert {envelope.rcpt_tos[0] for envelope in received} == {"so@h15.gov.vn", "canbo@h15.gov.vn"}

    # An SMTP server that does not answer is one line; the next run builds the digest again.
    monkeypatch.setenv("CHISO766_SMTP_PORT", str(free_port()))
    down = chiso766("digest", "--recipients", str(recipients), "--namespace", office_namespace, check=False)
    assert down.returncode == 2 and "cannot send through the SMTP server" in down.stderr
    assert "Traceback" not in down.stderr
