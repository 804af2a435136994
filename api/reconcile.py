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


# The snapshot first: it carries the indicators; the province table has group scores only.
PUBLICATION_KINDS = ("snapshot", "provinces")


async def published_row(client, keys, period: str, unit: str) -> tuple[bytes, dict[str, str]] | None:
    """The unit's stored published JSON and the meta of the publication it comes from, the most
    detailed kind that has it."""
    for kind in PUBLICATION_KINDS:
        raw = await client.hget(keys.portal(period, kind), unit)
        if raw is not None:
            meta = await client.hgetall(keys.portal_meta(period, kind))
            return raw, {key.decode(): value.decode() for key, value in meta.items()}
    return None


async def reconcile_unit(projection: ProjectionReader, period: str, unit: str) -> dict:
    """One unit's published against projected scores, per group and indicator (no dossier states in
    the projection: the gap is shown, not explained)."""
    from scoring.portal import Publication

    found = await published_row(projection.client, projection.keys, period, unit)
    if found is None:
        raise NotFound("not_published", f"no published figures for {unit} in {period}: load the portal's file with "
                                        "chiso766 portal load FILE")
    raw, info = found
    ours = Ours.from_json(await projection.unit(period, unit))
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
            accounted = ("có" if vi else "yes") if item["accounted"] else ("không" if vi else "no")
            explanations.rows.append([row["code"], item["label"], item["count"], item["total_points"], accounted,
                                      ", ".join(item["dossiers"])])
    return [units, indicators, explanations]


async def reconciliation(projection: ProjectionReader, period: str, unit: str) -> dict:
    """The unit's stored reconciliation (explanations included, from `reconcile … HISTORY --store`), else
    its published against projected scores with no explanations."""
    stored = await projection.client.hget(projection.keys.reconciliation(period), unit)
    if stored is not None:
        return orjson.loads(stored)
    result = await reconcile_unit(projection, period, unit)
    if not result["units"]:
        raise NotFound("unknown_unit", f"no unit {unit!r} in both the publication and the projection of {period}")
    return {**{key: value for key, value in result.items() if key != "units"}, **result["units"][0]}


async def stored_plan(projection: ProjectionReader, period: str, unit: str, target: str) -> dict:
    raw = await projection.client.hget(projection.keys.plans(period), f"{unit}|{target}")
    if raw is None:
        raise NotFound("no_plan", f"no plan of {unit} for {target} in {period}: a plan names dossiers, which only the "
                                  f"event history holds; make it with chiso766 plan HISTORY --unit {unit} --period "
                                  f"{period} --target {target} --store NAMESPACE")
    return orjson.loads(raw)


async def plan_sheet(projection: ProjectionReader, period: str, members: list[dict], lang: str = "vi") -> Sheet:
    """The monthly notice's sheet: each agency's and commune's plan to the next band (stored with
    `chiso766 plan HISTORY --unit all --period P --target next-band --store NS`)."""
    vi = lang == "vi"
    sheet = Sheet("plans", "Kế hoạch lên hạng" if vi else "Plans to the next band", [
        "Mã đơn vị" if vi else "Unit", "Đơn vị" if vi else "Name", "Điểm dự kiến cuối kỳ" if vi else "Projected",
        "Cần đạt" if vi else "Needed", "Đạt được" if vi else "Reachable", "Số việc cần làm" if vi else "Actions",
        "Điểm sau kế hoạch" if vi else "After the plan", "Việc cần làm" if vi else "What to do"],
        score_columns=frozenset({2, 3, 6}),
        caption=(f"{period}: chiso766 plan HISTORY --unit all --period {period} --target next-band --store NS"))
    wanted = [unit for unit in members if unit.get("level") in ("agency", "commune")]
    if not wanted:
        return sheet
    raw = await projection.client.hmget(projection.keys.plans(period), [f"{u['code']}|next-band" for u in wanted])
    for unit, value in zip(wanted, raw, strict=True):
        if value is None:
            sheet.rows.append([unit["code"], unit["name"], None, None, None, None, None,
                               "chưa lập kế hoạch" if vi else "no plan stored"])
            continue
        plan = orjson.loads(value)
        steps = "; ".join(f"{a['label' if vi else 'label_en']} {a['dossier']} ({a['officer'] or '—'}, "
                          f"+{a['points']:.2f})" for a in plan["actions"])
        sheet.rows.append([unit["code"], unit["name"], plan["baseline_total"], plan["target_total"],
                           plan["reachable"], len(plan["actions"]), plan["total_after"], steps or plan["note"]])
    return sheet
