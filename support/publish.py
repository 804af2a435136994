"""A province snapshot in the portal's published shape (PORTAL.md), made from `score --json` units.

The reconciliation test and the demo derive a "published" snapshot from a simulated province this
way; `scoring.portal.parse_publication` reads it back like the real one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from scoring.portal import GROUP_KEYS, PAYMENT_ORDER

KEY_OF = {group: key for key, group in GROUP_KEYS.items()}
LEVELS = {"agency": ("PROVINCIAL_DEPARTMENT", "PROVINCE"), "commune": ("COMMUNE_PEOPLE_COMMITTEE", "COMMUNE")}


def _metric(code: str, counts: Mapping) -> dict:
    return {"code": code, "numerator": counts["numerator"], "denominator": counts["denominator"],
            "score": counts["score"]}


def _details(unit: Mapping, groups_of: Mapping[str, str], province: bool) -> dict:
    indicators = unit["indicators"]
    details: dict[str, dict] = {}
    for group, key in KEY_OF.items():
        block: dict = {"score": unit["groups"][group]}
        if group == "TDGQ":
            on_time = indicators["ON_TIME"]
            progress = {"totalReceived": on_time["denominator"],
                        "onTime": {"numerator": on_time["numerator"], "denominator": on_time["denominator"],
                                   "score": on_time["score"]}}
            if province:
                block["metrics"] = progress
            else:
                block.update(progress)
        elif group == "CLGQ":
            block["metrics"] = [] if province else [{"numerator": None, "denominator": None,
                                                     "score": unit["groups"][group]}]
        elif group == "TTTT":
            block["metrics"] = [{"numerator": indicators[code]["numerator"],
                                 "denominator": indicators[code]["denominator"]} for code in PAYMENT_ORDER]
        else:
            block["metrics"] = [_metric(code, indicators[code]) for code, owner in groups_of.items()
                                if owner == group and code in indicators]
        details[key] = block
    return details


def portal_snapshot(units: Sequence[Mapping], province: str, date: str, collected_at: str, year: int,
                    groups_of: Mapping[str, str]) -> dict:
    """`units`: `score --json` units (the province and those below it); `groups_of`: indicator code →
    group, from the ruleset."""
    top = next(unit for unit in units if unit["code"] == province)
    members = [unit for unit in units if unit["code"] != province and unit.get("level") in LEVELS]
    listed = []
    for unit in members:
        kind, level = LEVELS[unit["level"]]
        listed.append({"departmentName": unit["name"], "departmentCode": unit["code"], "departmentType": kind,
                       "departmentLevel": level, "scores": {KEY_OF[g]: v for g, v in unit["groups"].items()},
                       "indicatorDetails": _details(unit, groups_of, False), "totalScore": unit["total"],
                       "rank": unit.get("rank")})
    return {"date": date, "timestamp": collected_at, "year": year,
            "department": {"name": top["name"], "code": province},
            "overview": {"totalScore": top["total"]}, "indicators": _details(top, groups_of, True),
            "unitsSummary": {"totalUnits": len(listed)}, "units": listed}
