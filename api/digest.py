"""The e-mail digest: per agency and per officer, the open overdue and approaching dossiers, one line
each with the due, the officer and the points at stake, in Vietnamese; and per agency head, the
overdue dossiers nobody acknowledged within N working hours of their due (escalation).

Addresses are not in the events (they carry no personal data): a recipients file maps unit codes
and officer ids to addresses. Whoever has no address is counted and named in the summary.
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from dataclasses import dataclass, field
from datetime import datetime
from email.message import EmailMessage
from pathlib import Path

import orjson

from api.store import Page, ProjectionReader, under
from contracts.keys import UNIT
from scoring.calendar import WorkingCalendar, local
from scoring.periods import parse_period

ALL = Page(1, 10**9)
SUBJECT_TAG = "[Chỉ số 766]"


@dataclass(frozen=True)
class DigestLine:
    kind: str  # overdue | approaching
    dossier: str
    procedure: str | None
    unit: str
    officer: str | None
    due: int | None  # epoch seconds
    points: float | None
    overdue_working_hours: float | None = None  # for escalated lines


@dataclass
class Digest:
    audience: str  # unit | officer | head
    owner: str  # unit code or officer id
    owner_name: str
    address: str
    lines: list[DigestLine] = field(default_factory=list)


@dataclass
class Recipients:
    """{"units": {CODE: {"email": ADDRESS, "head": ADDRESS}}, "officers": {ID: ADDRESS}}"""

    units: dict[str, dict[str, str]]
    officers: dict[str, str]

    @classmethod
    def load(cls, path: Path) -> Recipients:
        try:
            data = orjson.loads(path.read_bytes())
        except (OSError, orjson.JSONDecodeError) as error:
            raise ValueError(f"cannot read recipients from {path}: {error}") from error
        units = data.get("units", {}) if isinstance(data, dict) else None
        officers = data.get("officers", {}) if isinstance(data, dict) else None
        if not isinstance(units, dict) or not isinstance(officers, dict) or not all(
                isinstance(entry, dict) and all(isinstance(v, str) for v in entry.values()) for entry in units.values()
        ) or not all(isinstance(address, str) for address in officers.values()):
            raise ValueError(f"{path}: expected {{\"units\": {{CODE: {{\"email\": ..., \"head\": ...}}}}, "
                             "\"officers\": {ID: ADDRESS}}")
        return cls(units, officers)


@dataclass
class DigestPlan:
    as_of: int
    digests: list[Digest]
    no_address: dict[str, list[str]]  # audience → owners with lines but no address


def vietnamese_time(ts: int | None) -> str:
    return local(ts).strftime("%d/%m/%Y %H:%M") if ts is not None else "không có hạn"


def vietnamese_points(points: float | None) -> str:
    return "chưa tính điểm" if points is None else f"−{points:.2f}".replace(".", ",") + " điểm"


async def plan_digests(projection: ProjectionReader, root: str, recipients: Recipients, calendar: WorkingCalendar,
                       escalate_after_hours: float) -> DigestPlan:
    """Who gets which lines, as of the projection's latest "as of"."""
    periods = [key for key in await projection.periods() if key.startswith("month:")]
    if not periods:
        raise ValueError("no monthly scores in this namespace yet")
    month = max(periods, key=lambda key: parse_period(key).end)
    meta = await projection.meta(month)
    as_of = int(datetime.fromisoformat(meta["as_of"]).timestamp())
    await projection.unit(month, root)  # an unknown root is NotFound
    units = {unit["code"]: unit for unit in under(await projection.units(month), root)}
    stake_period = parse_period(month)
    acknowledged = {code.decode() for code in await projection.client.hkeys(projection.keys.acknowledged)}
    digests: list[Digest] = []
    no_address: dict[str, list[str]] = {"unit": [], "officer": [], "head": []}
    by_officer: dict[str, list[DigestLine]] = {}
    for code in sorted(units):
        lines: list[DigestLine] = []
        for which in ("overdue", "approaching"):
            rows = (await projection.dossiers(which, UNIT, code, ALL, stake_period))["dossiers"]
            for row in rows:
                due = int(datetime.fromisoformat(row["due"]).timestamp()) if row["due"] else None
                lines.append(DigestLine(which, row["dossier"], row["procedure"], code, row["officer"], due,
                                        row["points_at_stake"]))
        if not lines:
            continue
        for line in lines:
            if line.officer:
                by_officer.setdefault(line.officer, []).append(line)
        entry = recipients.units.get(code, {})
        _add(digests, no_address, Digest("unit", code, units[code]["name"], entry.get("email", ""), lines))
        escalated = []
        for line in lines:
            if line.kind != "overdue" or line.due is None or line.dossier in acknowledged:
                continue
            hours = calendar.working_minutes_between(line.due, as_of) / 60
            if hours >= escalate_after_hours:
                escalated.append(DigestLine(**{**line.__dict__, "overdue_working_hours": hours}))
        if escalated:
            _add(digests, no_address, Digest("head", code, units[code]["name"], entry.get("head", ""), escalated))
    for officer in sorted(by_officer):
        _add(digests, no_address, Digest("officer", officer, officer, recipients.officers.get(officer, ""),
                                         by_officer[officer]))
    return DigestPlan(as_of, digests, no_address)


def _add(digests: list[Digest], no_address: dict[str, list[str]], digest: Digest) -> None:
    if digest.address:
        digests.append(digest)
    else:
        no_address[digest.audience].append(digest.owner)


def _line(line: DigestLine, with_officer: bool = True) -> str:
    parts = [line.dossier, f"hạn {vietnamese_time(line.due)}"]
    if with_officer:
        parts.append(f"cán bộ {line.officer or 'chưa phân công'}")
    parts.append(vietnamese_points(line.points))
    if line.overdue_working_hours is not None:
        parts.append(f"đã quá hạn {line.overdue_working_hours:.0f} giờ làm việc")
    if line.procedure:
        parts.append(f"thủ tục {line.procedure}")
    return "- " + " · ".join(parts)


def render(digest: Digest, as_of: int, escalate_after_hours: float, sender: str) -> EmailMessage:
    """The message in Vietnamese: a heading, then one line per dossier under each list."""
    overdue = [line for line in digest.lines if line.kind == "overdue"]
    approaching = [line for line in digest.lines if line.kind == "approaching"]
    day = local(as_of).strftime("%d/%m/%Y")
    who = f"cán bộ {digest.owner}" if digest.audience == "officer" else f"{digest.owner_name} ({digest.owner})"
    message = EmailMessage()
    message["From"], message["To"] = sender, digest.address
    if digest.audience == "head":
        message["Subject"] = (f"{SUBJECT_TAG} Chuyển lãnh đạo: {len(overdue)} hồ sơ quá hạn chưa được xác nhận — "
                              f"{digest.owner_name} — {day}")
        body = [f"Kính gửi: Lãnh đạo {who}", "",
                f"Tính đến {vietnamese_time(as_of)}, {len(overdue)} hồ sơ đã quá hạn hơn "
                f"{escalate_after_hours:g} giờ làm việc mà chưa được cán bộ xác nhận xử lý:", "",
                "HỒ SƠ QUÁ HẠN CHƯA ĐƯỢC XÁC NHẬN", *(_line(line) for line in overdue)]
    else:
        message["Subject"] = (f"{SUBJECT_TAG} {len(overdue)} hồ sơ quá hạn, {len(approaching)} hồ sơ sắp đến hạn — "
                              f"{'cán bộ ' + digest.owner if digest.audience == 'officer' else digest.owner_name} "
                              f"— {day}")
        body = [f"Kính gửi: {who}", "",
                f"Tính đến {vietnamese_time(as_of)}: {len(overdue)} hồ sơ quá hạn, {len(approaching)} hồ sơ "
                "sắp đến hạn.", ""]
        with_officer = digest.audience != "officer"
        if overdue:
            body += [f"HỒ SƠ QUÁ HẠN ({len(overdue)})", *(_line(line, with_officer) for line in overdue), ""]
        if approaching:
            body += [f"HỒ SƠ SẮP ĐẾN HẠN ({len(approaching)})", *(_line(line, with_officer) for line in approaching),
                     ""]
    body += ["", "Thư tự động của hệ thống chỉ số 766 (chiso766); điểm là số điểm đơn vị có thể mất thêm "
                 "với mỗi hồ sơ quá hạn. Xác nhận đã xử lý: chiso766 acknowledge MÃ_HỒ_SƠ --by CÁN_BỘ."]
    message.set_content("\n".join(body), charset="utf-8")
    return message


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int = 25
    user: str | None = None
    password: str | None = None
    sender: str = "chiso766@localhost"
    security: str = "none"  # none | starttls | ssl
    timeout: float = 30.0

    @classmethod
    def from_env(cls, env: dict[str, str]) -> SmtpSettings:
        host = env.get("CHISO766_SMTP_HOST")
        if not host:
            raise ValueError("CHISO766_SMTP_HOST is not set (and CHISO766_SMTP_PORT, _USER, _PASSWORD, _FROM, "
                             "_SECURITY=none|starttls|ssl as needed)")
        security = env.get("CHISO766_SMTP_SECURITY", "starttls" if env.get("CHISO766_SMTP_USER") else "none")
        if security not in ("none", "starttls", "ssl"):
            raise ValueError(f"CHISO766_SMTP_SECURITY is none, starttls or ssl, got {security!r}")
        try:
            port = int(env.get("CHISO766_SMTP_PORT", "465" if security == "ssl" else "25"))
        except ValueError as error:
            raise ValueError(f"CHISO766_SMTP_PORT must be a number: {error}") from error
        return cls(host, port, env.get("CHISO766_SMTP_USER"), env.get("CHISO766_SMTP_PASSWORD"),
                   env.get("CHISO766_SMTP_FROM", "chiso766@localhost"), security)


def _send_all(settings: SmtpSettings, messages: list[EmailMessage]) -> list[tuple[str, str]]:
    """One connection for the batch; a recipient the server refuses is reported, the rest still go."""
    failures: list[tuple[str, str]] = []
    context = ssl.create_default_context()
    if settings.security == "ssl":
        server: smtplib.SMTP = smtplib.SMTP_SSL(settings.host, settings.port, timeout=settings.timeout,
                                                context=context)
    else:
        server = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
    with server:
        if settings.security == "starttls":
            server.starttls(context=context)
        if settings.user:
            server.login(settings.user, settings.password or "")
        for message in messages:
            try:
                server.send_message(message)
            except smtplib.SMTPRecipientsRefused as error:
                failures.append((message["To"], str(error.recipients)))
            except smtplib.SMTPDataError as error:
                failures.append((message["To"], f"{error.smtp_code} {error.smtp_error!r}"))
    return failures


async def send(settings: SmtpSettings, messages: list[EmailMessage]) -> list[tuple[str, str]]:
    return await asyncio.to_thread(_send_all, settings, messages)

