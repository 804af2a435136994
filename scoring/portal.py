"""What the national portal publishes (PORTAL.md), read and recomputed with the ruleset.

Two shapes: a province table (`provinces`: six group scores, total and ranks per province) and a
province snapshot (the province's own indicators and each unit's `indicatorDetails`). Both are
mapped to ruleset codes; every published indicator score is recomputed from its published numerator
and denominator, every group from those, every total from the published groups, and every rank with
the competition rule from the published scores — so the day the portal changes a weight, a target
or its ranking rule, `check` and `rank` say which number moved. No I/O: callers pass parsed JSON.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from fractions import Fraction

from scoring.ranking import competition_ranks
from scoring.ruleset import GROUP_CODES, Ruleset, as_number

# Snapshot group keys → ruleset group codes (PORTAL.md).
GROUP_KEYS = {"transparency": "CKMB", "progress": "TDGQ", "onlineService": "CLGQ", "digitized": "MDSH",
              "payment": "TTTT", "satisfaction": "MDHL"}
# `payment.metrics` carry names but no codes: they come in this order.
PAYMENT_ORDER = ("PAY_DOSSIER_ONLINE", "PAY_FORMALITY_WITH_ONLINE_TX", "PAY_FORMALITY_WITH_FEE_DOSSIER")
LEVELS = {"PROVINCE": "agency", "COMMUNE": "commune"}  # a snapshot unit's departmentLevel → our level


class PortalFormatError(ValueError):
    """A file that is not a portal publication this module knows; the message says where."""


@dataclass(frozen=True)
class PublishedIndicator:
    code: str
    numerator: int | None  # None and None: not applicable (the ruleset's 0/0 rule)
    denominator: int | None
    score: Fraction | None  # None when the portal publishes no score for it (payment)

    @property
    def counts(self) -> tuple[int, int] | None:
        if self.numerator is None and self.denominator is None:
            return None
        return self.numerator or 0, self.denominator or 0


@dataclass
class PublishedUnit:
    code: str
    name: str
    level: str  # province, agency, commune, or the portal's own word when unknown
    total: Fraction | None
    groups: dict[str, Fraction]
    indicators: dict[str, PublishedIndicator] = field(default_factory=dict)
    rank: int | None = None
    group_ranks: dict[str, int] = field(default_factory=dict)
    band: str | None = None

    def as_json(self) -> dict:
        return {
            "code": self.code, "name": self.name, "level": self.level,
            "total": None if self.total is None else as_number(self.total),
            "groups": {code: as_number(value) for code, value in self.groups.items()},
            "indicators": {code: {"numerator": i.numerator, "denominator": i.denominator,
                                  "score": None if i.score is None else as_number(i.score)}
                           for code, i in self.indicators.items()},
            "rank": self.rank, "group_ranks": self.group_ranks, "band": self.band,
        }


@dataclass
class Publication:
    kind: str  # "provinces" or "snapshot"
    date: str
    collected_at: str | None
    year: int | None
    province: str | None  # the snapshot's province
    units: list[PublishedUnit]
    all_units_listed: bool  # False when a snapshot lists fewer units than it counts (a trimmed copy)
    problems: list[str] = field(default_factory=list)  # published values that could not be used, and why

    @property
    def period(self) -> str | None:
        """Both shapes are year-to-date figures."""
        return f"year:{self.year}" if self.year else None


# --- reading -------------------------------------------------------------------------------------


def _object(value: object, where: str) -> Mapping:
    if not isinstance(value, Mapping):
        raise PortalFormatError(f"{where}: expected an object, got {type(value).__name__}")
    return value


def _score(value: object, where: str, problems: list[str]) -> Fraction | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        problems.append(f"{where}: a score must be a number, got {value!r}")
        return None
    return Fraction(str(value))  # the decimal as written, not its binary approximation


def _count(value: object, where: str, problems: list[str]) -> int | None:
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        problems.append(f"{where}: a count must be a whole number ≥ 0, got {value!r}")
        return None
    return value


def _indicator(code: str, raw: Mapping, where: str, problems: list[str]) -> PublishedIndicator:
    return PublishedIndicator(code, _count(raw.get("numerator"), f"{where}.numerator", problems),
                              _count(raw.get("denominator"), f"{where}.denominator", problems),
                              _score(raw.get("score"), f"{where}.score", problems))


def _details(details: Mapping, where: str, ruleset: Ruleset, problems: list[str]
             ) -> tuple[dict[str, Fraction], dict[str, PublishedIndicator]]:
    """Group scores and indicators of one unit's `indicators` / `indicatorDetails` block."""
    known = ruleset.by_code
    groups: dict[str, Fraction] = {}
    indicators: dict[str, PublishedIndicator] = {}
    for key, raw_group in details.items():
        group = GROUP_KEYS.get(key)
        if group is None:
            problems.append(f"{where}.{key}: unknown group key, left out")
            continue
        block = _object(raw_group, f"{where}.{key}")
        score = _score(block.get("score"), f"{where}.{key}.score", problems)
        if score is not None:
            groups[group] = score
        metrics = block.get("metrics")
        if key == "progress":
            # A province's `metrics` object, or a unit's block itself, holds {onTime, overdue}.
            holder = metrics if isinstance(metrics, Mapping) else block
            on_time = holder.get("onTime")
            if isinstance(on_time, Mapping):
                indicators["ON_TIME"] = _indicator("ON_TIME", on_time, f"{where}.progress.onTime", problems)
            continue
        if not isinstance(metrics, list):
            continue
        for index, raw in enumerate(metrics):
            place = f"{where}.{key}.metrics[{index}]"
            if not isinstance(raw, Mapping):
                problems.append(f"{place}: not an object, left out")
                continue
            code = raw.get("code")
            if key == "payment" and code is None:
                if index >= len(PAYMENT_ORDER):
                    problems.append(f"{place}: a payment metric past the three PORTAL.md names, left out")
                    continue
                code = PAYMENT_ORDER[index]
            if code is None:
                continue  # `onlineService` for a unit: one uncoded entry repeating the group score
            if code not in known:
                problems.append(f"{place}: metric code {code!r} is not in ruleset {ruleset.id}, left out")
                continue
            if known[code].group != group:
                problems.append(f"{place}: {code} is published under {group}, the ruleset has it in "
                                f"{known[code].group}")
            indicators[code] = _indicator(code, raw, place, problems)
    return groups, indicators


def _rank(value: object, where: str, problems: list[str]) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        problems.append(f"{where}: a rank must be a whole number ≥ 1, got {value!r}")
        return None
    return value


def _code(raw: Mapping, name: str, where: str) -> str:
    code = raw.get(name)
    if not isinstance(code, str) or not code:
        raise PortalFormatError(f"{where}.{name}: expected a unit code, got {code!r}")
    return code


def _province_table(data: Mapping, ruleset: Ruleset) -> Publication:
    problems: list[str] = []
    rows = data["provinces"]
    if not isinstance(rows, list):
        raise PortalFormatError("provinces: expected a list of provinces")
    if not rows:
        raise PortalFormatError("the file has no units (`provinces` is empty)")
    units = []
    for where, row, code in _distinct_rows(rows, "provinces", "province", set(), problems):
        if "scores" not in row:
            problems.append(f"{where}: {code} has no `scores`: its group scores are unknown (ranked as 0)")
        scores = _object(row.get("scores", {}), f"{where}.scores")
        groups = {}
        for group in GROUP_CODES:
            value = _score(scores.get(group), f"{where}.scores.{group}", problems)
            if value is not None:
                groups[group] = value
        ranks = {group: rank for group in GROUP_CODES
                 if (rank := _rank(row.get(f"rank_{group}"), f"{where}.rank_{group}", problems)) is not None}
        units.append(PublishedUnit(
            code=code, name=str(row.get("departmentName") or ""), level="province",
            total=_score(row.get("totalScore"), f"{where}.totalScore", problems), groups=groups,
            rank=_rank(row.get("rank"), f"{where}.rank", problems), group_ranks=ranks))
    count = data.get("totalCount")
    return Publication("provinces", _date(data), _instant(data, "updatedAt"), _year(data), None,
                       units, count is None or count == len(units), problems)


def _distinct_rows(rows: list, name: str, noun: str, seen: set[str],
                   problems: list[str]) -> Iterator[tuple[str, Mapping, str]]:
    """Each row of `name` as (where, row, its departmentCode); a code in `seen` already is reported
    and skipped (the first row kept), and each one yielded joins `seen`."""
    for index, raw in enumerate(rows):
        where = f"{name}[{index}]"
        row = _object(raw, where)
        code = _code(row, "departmentCode", where)
        if code in seen:
            problems.append(f"{where}: {noun} {code} is listed twice, the first kept")
            continue
        seen.add(code)
        yield where, row, code


def _snapshot(data: Mapping, ruleset: Ruleset) -> Publication:
    problems: list[str] = []
    department = _object(data.get("department"), "department")
    province = _code(department, "code", "department")
    overview = _object(data.get("overview", {}), "overview")
    groups, indicators = _details(_object(data["indicators"], "indicators"), "indicators", ruleset, problems)
    units = [PublishedUnit(province, str(department.get("name") or ""), "province",
                           _score(overview.get("totalScore"), "overview.totalScore", problems), groups, indicators,
                           band=_label(overview))]
    seen = {province}
    raw_units = data.get("units")
    if raw_units is None:
        raw_units = []
    if not isinstance(raw_units, list):
        raise PortalFormatError(f"units: expected a list of units, got {type(raw_units).__name__}")
    for where, row, code in _distinct_rows(raw_units, "units", "unit", seen, problems):
        unit_groups, unit_indicators = _details(_object(row.get("indicatorDetails", {}), f"{where}.indicatorDetails"),
                                                f"{where}.indicatorDetails", ruleset, problems)
        level = str(row.get("departmentLevel") or "")
        units.append(PublishedUnit(code, str(row.get("departmentName") or ""), LEVELS.get(level, level.lower()),
                                   _score(row.get("totalScore"), f"{where}.totalScore", problems), unit_groups,
                                   unit_indicators, rank=_rank(row.get("rank"), f"{where}.rank", problems),
                                   band=_label(row)))
    summary = data.get("unitsSummary")
    expected = summary.get("totalUnits") if isinstance(summary, Mapping) else None
    return Publication("snapshot", _date(data), _instant(data, "timestamp"), _year(data), province,
                       units, expected is None or expected == len(units) - 1, problems)


def _label(row: Mapping) -> str | None:
    classification = row.get("classification")
    return _text(classification.get("label")) if isinstance(classification, Mapping) else None


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _date(data: Mapping) -> str:
    """The publication's day: required, a real YYYY-MM-DD date (it names what is compared and stored)."""
    value = data.get("date")
    if value is None:
        raise PortalFormatError("date: missing: a publication names its day (YYYY-MM-DD)")
    try:
        if not isinstance(value, str) or len(value) != 10:
            raise ValueError
        date.fromisoformat(value)
    except ValueError:
        raise PortalFormatError(f"date: expected a day as YYYY-MM-DD, got {value!r}") from None
    return value


def _instant(data: Mapping, name: str) -> str | None:
    """When the copy was collected (the default "as of" of a reconciliation): absent, or an ISO-8601
    instant with its UTC offset."""
    value = data.get(name)
    if value is None or value == "":
        return None
    try:
        if not isinstance(value, str) or datetime.fromisoformat(value).tzinfo is None:
            raise ValueError
    except ValueError:
        raise PortalFormatError(f"{name}: expected an ISO-8601 instant with its offset, got {value!r}") from None
    return value


def _year(data: Mapping) -> int | None:
    year = data.get("year")
    if isinstance(year, int) and not isinstance(year, bool):
        return year
    date = data.get("date")
    return int(date[:4]) if isinstance(date, str) and date[:4].isdigit() else None


def parse_publication(data: object, ruleset: Ruleset) -> Publication:
    """A province table or a province snapshot, mapped to the ruleset's codes. Values that cannot be
    used are listed in `problems`; a file of neither shape raises PortalFormatError."""
    document = _object(data, "the file")
    if "provinces" in document:
        return _province_table(document, ruleset)
    if "indicators" in document and "department" in document:
        return _snapshot(document, ruleset)
    raise PortalFormatError("neither a province table (`provinces`) nor a province snapshot "
                            "(`department` and `indicators`): see PORTAL.md")


# --- recomputing ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Difference:
    unit: str
    what: str  # "indicator", "group", "total", "band", "rank"
    code: str  # indicator or group code, "total", "band", or the rank's group ("total" for the overall rank)
    published: str
    recomputed: str

    def as_json(self) -> dict:
        return {"unit": self.unit, "what": self.what, "code": self.code, "published": self.published,
                "recomputed": self.recomputed}


@dataclass
class CheckResult:
    checked: dict[str, int]  # how many numbers of each kind were recomputed
    differences: list[Difference]
    notes: list[str]  # what could not be recomputed, and why


def _fmt(value: Fraction) -> str:
    return f"{float(value):.2f}"


def check_publication(publication: Publication, ruleset: Ruleset) -> CheckResult:
    """Recompute every indicator from its counts, every group from its indicators (when all of them
    are published), every total from its groups and every band from its total."""
    checked = dict.fromkeys(("indicator", "group", "total", "band"), 0)
    differences: list[Difference] = []
    notes: list[str] = []
    by_group: dict[str, list[str]] = {}
    for indicator in ruleset.indicators:
        by_group.setdefault(indicator.group, []).append(indicator.code)
    group_only: dict[str, int] = {}
    for unit in publication.units:
        recomputed: dict[str, Fraction] = {}
        for code, published in unit.indicators.items():
            indicator = ruleset.by_code[code]
            value = indicator.score(*(published.counts or (0, 0)))
            recomputed[code] = value
            if published.score is not None:
                checked["indicator"] += 1
                if value != published.score:
                    differences.append(Difference(unit.code, "indicator", code, _fmt(published.score), _fmt(value)))
        for group, published_group in unit.groups.items():
            members = by_group[group]
            missing = [code for code in members if code not in recomputed and not ruleset.by_code[code].tracking_only]
            if missing:
                if publication.kind == "snapshot":
                    group_only[group] = group_only.get(group, 0) + 1
                continue
            value = sum((recomputed.get(code, Fraction(0)) for code in members), Fraction(0))
            checked["group"] += 1
            if value != published_group:
                differences.append(Difference(unit.code, "group", group, _fmt(published_group), _fmt(value)))
        if unit.total is not None and set(unit.groups) == set(GROUP_CODES):
            value = sum(unit.groups.values(), Fraction(0))
            checked["total"] += 1
            if value != unit.total:
                differences.append(Difference(unit.code, "total", "total", _fmt(unit.total), _fmt(value)))
        if unit.band is not None and unit.total is not None:
            band = ruleset.band(float(unit.total))
            checked["band"] += 1
            # The portal writes "Yếu / Kém" where the ruleset says "Yếu": compare the first name.
            if band is None or unit.band.split("/")[0].strip().casefold() != band.vi.casefold():
                differences.append(Difference(unit.code, "band", "band", unit.band, band.vi if band else "—"))
    for group, count in sorted(group_only.items()):
        notes.append(f"{group}: published as a group score only for {count} unit(s): the group score is taken "
                     "as published (it adds into the total) and cannot be recomputed")
    if publication.kind == "snapshot":
        notes.append("unit ranks in a snapshot are over every unit of the province: recomputed by `portal rank` "
                     "only when the file lists all of them")
    return CheckResult(checked, differences, notes)


@dataclass
class RankResult:
    units: list[dict]
    mismatches: list[Difference]
    notes: list[str]


def rank_publication(publication: Publication) -> RankResult:
    """Overall and per-group competition ranks recomputed from the published scores (never copied
    from the published ranks), compared with the published ranks."""
    notes: list[str] = []
    units = [unit for unit in publication.units if not (publication.kind == "snapshot" and unit.level == "province")]
    if not publication.all_units_listed:
        notes.append("the file lists only some of the units it ranks: the recomputed ranks are among the listed "
                     "units and are not compared with the published ones")
    totals = [unit.total if unit.total is not None else sum(unit.groups.values(), Fraction(0)) for unit in units]
    overall = competition_ranks(totals)
    per_group = {group: competition_ranks([unit.groups.get(group, Fraction(0)) for unit in units])
                 for group in GROUP_CODES if any(group in unit.groups for unit in units)}
    rows, mismatches = [], []
    compare = publication.all_units_listed
    for index, unit in enumerate(units):
        group_ranks = {group: ranks[index] for group, ranks in per_group.items()}
        rows.append({"code": unit.code, "name": unit.name, "total": as_number(totals[index]), "rank": overall[index],
                     "group_ranks": group_ranks, "groups": {g: as_number(v) for g, v in unit.groups.items()},
                     "published_rank": unit.rank, "published_group_ranks": unit.group_ranks})
        if not compare:
            continue
        if unit.rank is not None and unit.rank != overall[index]:
            mismatches.append(Difference(unit.code, "rank", "total", str(unit.rank), str(overall[index])))
        for group, rank in group_ranks.items():
            published = unit.group_ranks.get(group)
            if published is not None and published != rank:
                mismatches.append(Difference(unit.code, "rank", group, str(published), str(rank)))
    rows.sort(key=lambda row: (row["rank"], row["code"]))
    return RankResult(rows, mismatches, notes)
