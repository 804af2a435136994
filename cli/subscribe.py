"""`chiso766 alerts`: deadline alerts through a Redis consumer group — printed, or forwarded to a
webhook (signed, retried, dead-lettered) — and `chiso766 acknowledge`: an overdue dossier taken in
hand. An alert is acked in the group only once it was printed, delivered or dead-lettered, so a
failing endpoint or a crash loses none."""

from __future__ import annotations

import asyncio
import contextlib
import os
import smtplib
import socket
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import orjson
import typer
from rich.text import Text

from cli.common import console, err, fail
from cli.current import CURRENT, Namespace

KINDS = ("approaching", "apology_due", "overdue")
out = console(width=None if sys.stdout.isatty() else 160)


async def _alert_stream_or_fail(client, key: str, namespace: str) -> None:
    """A subscriber of a namespace with no alert stream (a typo, no worker ever ran there) is told so,
    with the namespaces that have one, instead of creating the stream and waiting on it in silence."""
    if await client.exists(key):
        return
    known = sorted({name.decode().removesuffix(":alerts")
                    async for name in client.scan_iter(match="*:alerts", count=1000, _type="stream")})
    fail(f"namespace {namespace} has no alert stream ({key}): no worker has written alerts there"
         + (f"; namespaces with alerts: {', '.join(known)}" if known else "")
         + " (choose one with --namespace, or make it current: chiso766 namespace NS)")


def _redis_url_or_fail() -> str:
    from support.endpoints import redis_url

    try:
        return redis_url()
    except RuntimeError as error:  # no stack and nothing configured: says what to do
        fail(str(error))


class StakeFiller:
    """An alert raised before its unit was first scored carries no points at stake; the unit's stake
    of the alert's month, as the projection has it now, fills the gap (kept null only if still unknown)."""

    def __init__(self, client, keys):
        self.client, self.keys, self.months = client, keys, {}

    async def fill(self, alert: dict) -> dict:
        if alert.get("points_at_stake") is not None or not alert.get("unit") or not alert.get("at"):
            return alert
        month = f"month:{alert['at'][:7]}"
        if month not in self.months:
            raw = await self.client.hgetall(self.keys.stake(month))
            self.months[month] = {unit.decode(): float(value) for unit, value in raw.items()}
        return {**alert, "points_at_stake": self.months[month].get(alert["unit"])}


def _webhook_sink(url: str, max_attempts: int):
    from api.webhook import WebhookSink

    try:
        return WebhookSink(url, os.environ.get("CHISO766_WEBHOOK_SECRET", "").encode(), max_attempts,
                           backoff=float(os.environ.get("CHISO766_WEBHOOK_BACKOFF", "1")))
    except ValueError as error:
        fail(str(error))


def alerts(
    consumer_group: Annotated[str, typer.Option("--consumer-group", help="Subscriber name: where it left off is "
                                                                         "kept per group.")],
    follow: Annotated[bool, typer.Option("--follow", help="Keep waiting for new alerts.")] = False,
    unit: Annotated[str | None, typer.Option("--unit", help="Only alerts of this unit.")] = None,
    kind: Annotated[list[str] | None, typer.Option("--kind", help="approaching, apology_due, overdue (repeat).")]
    = None,
    from_start: Annotated[bool, typer.Option("--from-start", help="A new group starts at the oldest alert kept "
                                                                  "(default: only new alerts).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    webhook: Annotated[str | None, typer.Option(
        "--webhook", help="POST each alert here, signed (HMAC-SHA256 with CHISO766_WEBHOOK_SECRET).")] = None,
    max_attempts: Annotated[int, typer.Option(min=1, max=20, help="With --webhook: tries before an alert goes "
                                                                  "to the group's dead letter.")] = 5,
    retry_dead: Annotated[bool, typer.Option("--retry-dead", help="With --webhook: deliver the group's dead "
                                                                  "letters again (those delivered leave it).")]
    = False,
    duration: Annotated[float | None, typer.Option(help="With --follow: stop after this many seconds.")] = None,
    namespace: Namespace = CURRENT,
) -> None:
    """Deadline alerts through a Redis consumer group: acks what it printed or delivered, resumes after a
    restart; --webhook forwards them to a gateway (retries, then a dead letter: none is lost)."""
    import redis.asyncio as aioredis
    from redis.exceptions import ResponseError

    from api.store import alert_entry_wanted
    from contracts.keys import RedisKeys

    kinds = set(kind or ())
    unknown = kinds - set(KINDS)
    if unknown:
        fail(f"unknown alert kind(s): {', '.join(sorted(unknown))}")
    if retry_dead and webhook is None:
        fail("--retry-dead needs --webhook: where to deliver the dead letters")
    sink = _webhook_sink(webhook, max_attempts) if webhook else None
    keys = RedisKeys(namespace)
    key, dead_key = keys.alerts, keys.alerts_dead(consumer_group)
    consumer = f"{socket.gethostname()}-{consumer_group}"
    tally = {"delivered": 0, "dead": 0}

    def show(alert: dict) -> None:
        if as_json:
            sys.stdout.write(orjson.dumps(alert).decode() + "\n")
            sys.stdout.flush()
        else:
            out.print(Text.assemble((alert["kind"], "bold"), f" {alert['dossier']} · {alert['unit']} · "
                                    f"{alert.get('officer') or '—'} · due {alert['due']} · stake "
                                    f"{alert.get('points_at_stake')}"))

    async def handle(client, stakes: StakeFiller, entry_id: bytes, alert: dict) -> None:
        alert = await stakes.fill(alert)
        if sink is None:
            show(alert)
            return
        delivery = await sink.deliver(alert, namespace)
        if delivery.ok:
            tally["delivered"] += 1
            return
        await client.xadd(dead_key, {"alert": orjson.dumps(alert), "error": delivery.error,
                                     "attempts": delivery.attempts, "entry": entry_id,
                                     "at": datetime.now(UTC).isoformat(timespec="seconds")})
        tally["dead"] += 1
        err.print(f"not delivered after {delivery.attempts} attempt(s): {alert.get('dossier')} "
                  f"({delivery.error}) → {dead_key}", soft_wrap=True)

    async def redeliver(client, stakes: StakeFiller) -> None:
        for entry_id, fields in await client.xrange(dead_key):
            alert = await stakes.fill(orjson.loads(fields[b"alert"]))
            delivery = await sink.deliver(alert, namespace)
            if delivery.ok:
                await client.xdel(dead_key, entry_id)
                tally["delivered"] += 1
            else:
                tally["dead"] += 1
        err.print(f"dead letters: {tally['delivered']:,} delivered, {tally['dead']:,} still failing", soft_wrap=True)

    async def run() -> None:
        client = aioredis.from_url(_redis_url_or_fail())
        stakes = StakeFiller(client, keys)
        try:
            if retry_dead:
                await redeliver(client, stakes)
                return
            await _alert_stream_or_fail(client, key, namespace)
            try:
                await client.xgroup_create(key, consumer_group, id="0" if from_start else "$")
            except ResponseError as error:
                if "BUSYGROUP" not in str(error):
                    raise
            else:
                kept = await client.xlen(key)
                err.print(f"new subscriber group {consumer_group}: " + (
                    f"starts at the oldest of the {kept:,} alerts kept" if from_start else
                    f"starts at new alerts ({kept:,} older alerts kept; --from-start reads them)"), soft_wrap=True)
            deadline = time.monotonic() + duration if duration else None
            cursor = "0"  # first what this consumer was given but never acked (a crash), then new entries
            while True:
                block = 1000 if follow and cursor == ">" else None
                answer = await client.xreadgroup(consumer_group, consumer, {key: cursor}, count=200, block=block)
                entries = answer[0][1] if answer else []
                for entry_id, fields in entries:
                    if alert_entry_wanted(fields, unit, kinds):
                        await handle(client, stakes, entry_id, orjson.loads(fields[b"alert"]))
                    await client.xack(key, consumer_group, entry_id)  # printed, delivered or dead-lettered
                if cursor == "0" and not entries:
                    cursor = ">"
                elif cursor == ">" and not entries and not follow:
                    break
                if deadline is not None and time.monotonic() > deadline:
                    break
            if sink is not None:
                err.print(f"webhook: {tally['delivered']:,} delivered, {tally['dead']:,} dead-lettered"
                          + (f" (retry: chiso766 alerts --consumer-group {consumer_group} --webhook URL "
                             "--retry-dead)" if tally["dead"] else ""), soft_wrap=True)
        finally:
            await client.aclose()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())


def acknowledge(
    dossier: Annotated[list[str], typer.Argument(help="Dossier code(s) taken in hand.")],
    by: Annotated[str, typer.Option("--by", help="Who takes them in hand (officer id or name).")],
    undo: Annotated[bool, typer.Option("--undo", help="Withdraw the acknowledgement.")] = False,
    namespace: Namespace = CURRENT,
) -> None:
    """Mark overdue dossiers as taken in hand: the e-mail digest stops escalating them to the agency head."""
    from cli.readside import read_projection

    async def write(projection) -> int:
        key = projection.keys.acknowledged
        if undo:
            return await projection.client.hdel(key, *dossier)
        stamp = orjson.dumps({"by": by, "at": datetime.now(UTC).isoformat(timespec="seconds")})
        return await projection.client.hset(key, mapping=dict.fromkeys(dossier, stamp)) or len(dossier)

    changed = read_projection(namespace, write)
    err.print(f"{'withdrawn' if undo else 'acknowledged'}: {changed} dossier(s) in {namespace}")


def digest(
    recipients_path: Annotated[Path, typer.Option("--recipients", help="JSON: {\"units\": {CODE: {\"email\", "
                                                                        "\"head\"}}, \"officers\": {ID: ADDRESS}}.")],
    unit: Annotated[str, typer.Option("--unit", help="The province (or any unit): it and every unit below it.")]
    = "H15",
    escalate_after: Annotated[float, typer.Option(
        "--escalate-after", min=0, help="Working hours past due after which an unacknowledged overdue dossier "
                                        "goes to the agency head's digest too.")] = 8.0,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the messages instead of sending them.")] = False,
    daily: Annotated[str | None, typer.Option("--daily", help="Keep running and send every day at HH:MM "
                                                              "(Vietnam time).")] = None,
    namespace: Namespace = CURRENT,
) -> None:
    """E-mail digests in Vietnamese: per agency and officer, the overdue and approaching dossiers (due,
    officer, points at stake); per agency head, the overdue ones nobody acknowledged in time.
    SMTP from CHISO766_SMTP_HOST, _PORT, _USER, _PASSWORD, _FROM, _SECURITY."""
    from api.digest import Recipients, SmtpSettings, plan_digests, render, send
    from cli.readside import read_projection
    from support.resources import load_calendar

    try:
        recipients = Recipients.load(recipients_path)
        settings = None if dry_run else SmtpSettings.from_env(dict(os.environ))
    except ValueError as error:
        fail(str(error))
    if daily is not None and not _valid_hhmm(daily):
        fail(f"--daily is HH:MM, got {daily!r}")
    calendar = load_calendar()

    async def once(projection) -> None:
        try:
            plan = await plan_digests(projection, unit, recipients, calendar, escalate_after)
        except ValueError as error:
            fail(str(error))
        sender = settings.sender if settings else "chiso766@localhost"
        messages = [render(item, plan.as_of, escalate_after, sender) for item in plan.digests]
        if dry_run:
            for message in messages:
                sys.stdout.write(f"To: {message['To']}\nSubject: {message['Subject']}\n\n{message.get_content()}\n"
                                 + "-" * 72 + "\n")
            failures = []
        else:
            try:
                failures = await send(settings, messages)
            except (OSError, smtplib.SMTPException) as error:  # refused, unreachable, TLS, login
                # Nothing is lost: the next run builds the digest again from the projection.
                fail(f"cannot send through the SMTP server {settings.host}:{settings.port}: "
                     f"{error or type(error).__name__}")
        counts = {audience: sum(1 for item in plan.digests if item.audience == audience)
                  for audience in ("unit", "officer", "head")}
        err.print(f"{'would send' if dry_run else 'sent'} {len(messages) - len(failures)} digest(s): "
                  f"{counts['unit']} agencies, {counts['officer']} officers, {counts['head']} escalations to heads",
                  soft_wrap=True)
        for audience, owners in plan.no_address.items():
            if owners:
                err.print(f"no {audience} address in {recipients_path} for: {', '.join(owners[:20])}"
                          + (f" and {len(owners) - 20} more" if len(owners) > 20 else ""), soft_wrap=True)
        for address, why in failures:
            err.print(f"refused by the SMTP server: {address} ({why})", soft_wrap=True)

    while True:
        if daily is not None:
            _sleep_until(daily)
        read_projection(namespace, once)
        if daily is None:
            return


def _valid_hhmm(text: str) -> bool:
    hours, _, minutes = text.partition(":")
    return hours.isdigit() and minutes.isdigit() and int(hours) < 24 and int(minutes) < 60 and len(minutes) == 2


def _sleep_until(hhmm: str) -> None:
    from datetime import timedelta

    from scoring.calendar import VIETNAM

    now = datetime.now(VIETNAM)
    hours, minutes = (int(part) for part in hhmm.split(":"))
    target = now.replace(hour=hours, minute=minutes, second=0, microsecond=0)
    if target <= now:
        target += timedelta(days=1)
    err.print(f"next digest at {target:%d/%m/%Y %H:%M}")
    time.sleep((target - now).total_seconds())
