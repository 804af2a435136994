"""Reconciliation on the read side: our projected scores against the portal's stored publication
(`chiso766 portal load`), for `/api/reconcile`, and the reconciliation as spreadsheet sheets."""

from __future__ import annotations

from fractions import Fraction

import orjson

from api.export import Sheet
from api.store import NotFound, ProjectionReader
from scoring.portal import PublishedIndicator, PublishedUnit
from scoring.reconcile import Ours, reconcile

NO_DOSSIERS = ("Giải thích theo từng hồ sơ cần lịch sử sự kiện: chạy chiso766 reconcile --portal FILE HISTORY. / "
               "Dossier-level explanations need the event history: run chiso766 reconcile --portal FILE HISTORY.")


def published_unit(data: dict) -> PublishedUnit:
    """A published unit back from its stored JSON (`PublishedUnit.as_json`)."""
    def score(value: object) -> Fraction | None:
        return None if value is None else Fraction(str(value))

    return PublishedUnit(
        code=data["code"], name=data.get("name", ""), level=data.get("level", ""), total=score(data.get("total")),
        groups={g: Fraction(str(v)) for g, v in data.get("groups", {}).items()},
        indicators={c: PublishedIndicator(c, v.get("numerator"), v.get("denominator"), score(v.get("score")))
                    for c, v in data.get("indicators", {}).items()},
        rank=data.get("rank"), group_ranks=data.get("group_ranks", {}), band=data.get("band"))


async def reconcile_unit(projection: ProjectionReader, period: str, unit: str) -> dict:
    """One unit's published against projected scores, per group and indicator (no dossier states in
    the projection: the gap is shown, not explained)."""
    from scoring.portal import Publication

    raw = await projection.client.hget(projection.keys.portal(period), unit)
    meta = await projection.client.hgetall(projection.keys.portal_meta(period))
    if raw is None:
        raise NotFound("not_published", f"no published figures for {unit} in {period}: load the portal's file with "
                                        "chiso766 portal load FILE")
    ours = Ours.from_json(await projection.unit(period, unit))
    info = {key.decode(): value.decode() for key, value in meta.items()}
    publication = Publication(info.get("kind", ""), info.get("date", ""), info.get("collected_at") or None,
                              int(period[5:9]) if period.startswith("year:") else None, None,
                              [published_unit(orjson.loads(raw))], True)
    result = reconcile(publication, {unit: ours}, projection.ruleset, None)
    result["period"], result["source"] = period, info.get("source")
    result["notes"] = [NO_DOSSIERS]
    return result


def reconcile_sheets(result: dict, lang: str = "vi") -> list[Sheet]:
    vi = lang == "vi"
    caption = f"{result['period']} — {result['published']['kind']} {result['published']['date']}"
    units = Sheet("units", "Đối soát đơn vị" if vi else "Units", [
        "Mã đơn vị" if vi else "Unit", "Đơn vị" if vi else "Name", "Điểm Cổng" if vi else "Published",
        "Điểm hệ thống" if vi else "Ours", "Chênh lệch" if vi else "Points", "Đã giải thích" if vi else "Explained",
        "Chưa giải thích" if vi else "Unexplained"], score_columns=frozenset({2, 3, 4, 5, 6}), caption=caption)
    indicators = Sheet("indicators", "Chỉ tiêu" if vi else "Indicators", [
        "Mã đơn vị" if vi else "Unit", "Chỉ tiêu" if vi else "Indicator", "Tử số Cổng" if vi else "Published n",
        "Mẫu số Cổng" if vi else "Published d", "Điểm Cổng" if vi else "Published", "Tử số" if vi else "Our n",
        "Mẫu số" if vi else "Our d", "Điểm" if vi else "Ours", "Chênh lệch" if vi else "Points"],
        score_columns=frozenset({4, 7, 8}), caption=caption)
    explanations = Sheet("explanations", "Giải thích" if vi else "Explanations", [
        "Mã đơn vị" if vi else "Unit", "Giải thích" if vi else "Explanation", "Số hồ sơ" if vi else "Dossiers",
        "Điểm" if vi else "Points", "Tính vào phần đã giải thích" if vi else "Accounted",
        "Mã hồ sơ (trang này)" if vi else "Dossier codes (this page)"], score_columns=frozenset({3}), caption=caption)
    for row in result["units"]:
        units.rows.append([row["code"], row["name"], row["published_total"], row["our_total"], row["points"],
                           row.get("explained_points", 0), row.get("unexplained_points", 0)])
        for line in row["indicators"]:
            p, o = line["published"], line["ours"]
            indicators.rows.append([row["code"], f"{line['ref']} {line['code']}", p["numerator"], p["denominator"],
                                    p["score"], o["numerator"], o["denominator"], o["score"], line["points"]])
        for item in row["explanations"]:
            explanations.rows.append([row["code"], item["label"], item["count"], item["total_points"],
                                      item["accounted"], ", ".join(item["dossiers"])])
    return [units, indicators, explanations]
