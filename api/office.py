"""What a provincial office reads beyond the raw scores, as API routes: human names from one place,
dossier lists rolled up over a unit's children, why a unit lost points, how fresh the figures are,
and the monthly notice to download. Mounted by `api.app`."""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse, Response

from api.export import monthly_notice, peer_group_name, write_xlsx
from api.store import Page, ProjectionReader, under, unknown_unit
from contracts.keys import OPEN_LISTS, UNIT
from scoring.indicator_labels import INDICATOR_LABELS
from scoring.periods import PeriodError, parse_period, period_label

CODE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
CodeParam = Annotated[str, PathParam(pattern=CODE_PATTERN)]
PeriodParam = Annotated[str, Query(max_length=32, description="month:YYYY-MM, Tháng 9/2026, Quý III/2026, …")]
STALE_AFTER_SECONDS = 120  # a live namespace whose newest figures are older than this is "late"


class BadRequest(Exception):
    def __init__(self, error: str, detail: str):
        super().__init__(detail)
        self.error, self.detail = error, detail


def _period(text: str) -> str:
    try:
        return parse_period(text).key
    except PeriodError as error:
        raise BadRequest("malformed_period", str(error)) from error


async def _latest_month(projection: ProjectionReader) -> str | None:
    months = [key for key in await projection.periods() if key.startswith("month:")]
    return max(months, key=lambda key: parse_period(key).end) if months else None


async def rolled_up(projection: ProjectionReader, which: str, code: str, page: Page) -> dict:
    """The open dossiers of `code` and of every unit below it, by due: a province's page lists what
    its agencies and communes hold (their own lists, merged)."""
    month = await _latest_month(projection)
    if month is None:
        raise unknown_unit(code, "the projection")
    units = await projection.units(month)
    if code not in units:
        raise unknown_unit(code, "the projection")
    members = sorted(unit["code"] for unit in under(units, code))
    pipe = projection.client.pipeline(transaction=False)
    for member in members:
        pipe.zrange(projection.keys.dossier_list(which, UNIT, member), 0, -1, withscores=True)
    merged = sorted((score, dossier.decode()) for entries in await pipe.execute() for dossier, score in entries)
    start, end = page.slice(len(merged))
    pipe = projection.client.pipeline(transaction=False)
    for _, dossier in merged[start:end]:
        pipe.hgetall(projection.keys.dossier(dossier))
    details = await pipe.execute()
    stakes = await projection.stakes(month)
    rows = []
    for (_, dossier), fields in zip(merged[start:end], details, strict=True):
        info = {name.decode(): value.decode() for name, value in fields.items()}
        unit = info.get("unit") or None
        rows.append({"dossier": dossier, "procedure": info.get("procedure") or None, "unit": unit,
                     "unit_name": units.get(unit, {}).get("name") if unit else None,
                     "officer": info.get("officer") or None,
                     "due": _iso(info.get("due")), "points_at_stake": stakes.get(unit) if unit else None})
    return {"list": which, "unit": code, "units": len(members), "total": len(merged), "page": page.number,
            "size": page.size, "dossiers": rows}


def _number(value: object) -> float | None:
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _iso(epoch: str | None) -> str | None:
    from scoring.calendar import iso

    return iso(int(epoch)) if epoch else None


async def why_points_lost(projection: ProjectionReader, period: str, code: str) -> dict:
    """Points lost per indicator (max − score) under its official name, largest first, each with what
    is behind it where the projection knows: open overdue dossiers (ON_TIME, 5.4), petitions."""
    page = await projection.unit_page(period, code)
    overdue = await rolled_up(projection, "overdue", code, Page(1, 1))
    stake = page["points_at_stake"]
    rows = []
    for indicator in page["indicators"]:
        lost = round(indicator["max"] - indicator["score"], 2)
        if indicator["max"] == 0 or lost <= 0:
            continue
        names = INDICATOR_LABELS.get(indicator["code"], {})
        cause: dict = {"numerator": indicator["numerator"], "denominator": indicator["denominator"]}
        if indicator["code"] in ("ON_TIME", "DOSSIER_RECEIVING_SATISFACTION"):
            cause.update({"kind": "overdue_dossiers", "count": overdue["total"],
                          "next_one_costs": stake, "link": f"#/unit/{code}/overdue"})
        elif indicator["code"].startswith("PETITION_"):
            cause.update({"kind": "petitions", "count": indicator["denominator"] - indicator["numerator"]})
        else:
            cause.update({"kind": "ratio", "count": indicator["denominator"] - indicator["numerator"]})
        rows.append({"code": indicator["code"], "ref": indicator["ref"], "name_vi": names.get("vi", indicator["code"]),
                     "name_en": names.get("en", indicator["code"]), "group": indicator["group"],
                     "max": indicator["max"], "score": indicator["score"], "lost": lost, "cause": cause})
    rows.sort(key=lambda row: (-row["lost"], row["ref"]))
    return {"period": period, "unit": code, "as_of": page["as_of"], "lost": round(sum(r["lost"] for r in rows), 2),
            "indicators": rows}


def office_router(projection: ProjectionReader) -> APIRouter:
    router = APIRouter()

    @router.get("/api/names", summary="Human names of periods, peer groups, indicators and bands (vi, en)")
    async def names(period: Annotated[str | None, Query(max_length=32)] = None) -> dict:
        periods = await projection.periods()
        chosen = _period(period) if period else (periods[-1] if periods else None)
        units = await projection.units(chosen) if chosen else {}
        groups = sorted({unit["peer_group"] for unit in units.values()})
        return {"periods": {key: {"vi": period_label(key, "vi"), "en": period_label(key, "en")} for key in periods},
                "groups": {group: {"vi": peer_group_name(group, units, "vi"), "en": peer_group_name(group, units, "en")}
                           for group in groups},
                "indicators": {code: {"ref": next((i.ref for i in projection.ruleset.indicators if i.code == code), ""),
                                      **labels} for code, labels in INDICATOR_LABELS.items()},
                "bands": [{"min": band.min, "vi": band.vi, "en": band.en} for band in projection.ruleset.bands],
                "units": {code: unit["name"] for code, unit in sorted(units.items())},
                "root": next((code for code, unit in sorted(units.items()) if unit.get("parent") not in units), None)}

    @router.get("/api/units/{code}/rollup", summary="Open dossiers of a unit and every unit below it, by due")
    async def rollup(code: CodeParam, which: Annotated[Literal["overdue", "approaching"], Query(alias="list")]
                     = "overdue", page: Annotated[int, Query(ge=1, le=10_000)] = 1,
                     size: Annotated[int, Query(ge=1, le=500)] = 50) -> dict:
        assert which in OPEN_LISTS
        return await rolled_up(projection, which, code, Page(page, size))

    @router.get("/api/units/{code}/why", summary="Why a unit lost points: per indicator, with what is behind it")
    async def why(code: CodeParam, period: PeriodParam) -> dict:
        return await why_points_lost(projection, _period(period), code)

    @router.get("/api/freshness", summary="How fresh the figures are: newest as of, the worker's heartbeat")
    async def freshness() -> dict:
        """Late when no worker runs (its heartbeat expired), when it is stalled, or when messages wait
        and no batch has finished for STALE_AFTER_SECONDS; an idle worker (nothing waits) is current."""
        month = await _latest_month(projection)
        meta = await projection.meta(month) if month else {}
        beat = await projection.worker_heartbeat()
        now = time.time()
        updated = _number(meta.get("updated_at"))
        state = beat.get("state") if beat else None
        last_batch = _number(beat.get("last_batch_at")) if beat else None
        waiting = bool(beat) and (beat.get("behind") or 0) > 0
        if not beat:
            late = now - updated if updated else None
        elif state == "stalled" or (waiting and last_batch is not None and now - last_batch > STALE_AFTER_SECONDS):
            late = now - (last_batch or updated or now)
        else:
            late = None
        return {"as_of": meta.get("as_of"), "updated_at": updated, "worker": beat.get("mode") if beat else None,
                "worker_state": state, "advancing": bool(beat) and state != "stalled",
                "stale": late is not None, "late_seconds": round(late) if late is not None else None}

    @router.get("/api/notice", summary="The monthly notice to download: PDF or XLSX",
                response_class=Response, responses={200: {"content": {"application/pdf": {}}}})
    async def notice(period: PeriodParam, unit: Annotated[str, Query(pattern=CODE_PATTERN)],
                     format: Annotated[Literal["pdf", "xlsx"], Query()] = "pdf",
                     lang: Annotated[Literal["vi", "en"], Query()] = "vi") -> Response:
        try:
            built = await monthly_notice(projection, _period(period), unit, lang)
        except ValueError as error:  # not a month
            raise BadRequest("not_a_month", str(error)) from error
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / f"notice.{format}"
            if format == "pdf":
                from api.notice_pdf import write_pdf

                await asyncio.to_thread(write_pdf, built, path)
                media = "application/pdf"
            else:
                await asyncio.to_thread(write_xlsx, built.sheets, path, built.heading)
                media = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
            body = path.read_bytes()
        name = f"thong-bao-{unit}-{_period(period).removeprefix('month:')}.{format}"
        return Response(body, media_type=media, headers={"Content-Disposition": f'attachment; filename="{name}"'})

    return router



def install_office(app: FastAPI, projection: ProjectionReader) -> None:
    """The routes above, and their 400s in the API's error shape."""
    app.include_router(office_router(projection))

    @app.exception_handler(BadRequest)
    async def bad_request(_: Request, error: BadRequest) -> JSONResponse:
        return JSONResponse({"error": error.error, "detail": error.detail}, status_code=400)
