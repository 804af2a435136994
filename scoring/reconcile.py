"""Reconciliation: our scores against what the portal published, and the dossiers behind the gap.

For every unit in both, every indicator: ours and the published numerator / denominator / score, and
the difference in points. Then explanations from the dossier states we hold, each a hypothesis
scored with the same engine: "if the portal does not count the dossiers it was never told about",
"if it judges re-appointed dossiers by the re-appointed due that was synced", "if the procedures
missing from our catalogue were in it". Each gives its dossiers, their count and, per indicator,
the points it accounts for — only on indicators where the two sides differ, only in the direction
of the gap and never past it; the gap left after all of them together is said to be unexplained.
Dossiers judged late here are listed too (with the rule that made them late), as candidates for
what is left, never as accounted for. No I/O and no clock: the caller passes the engine and "as of".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from difflib import SequenceMatcher
from fractions import Fraction

from schemas import events as ev
from scoring import lifecycle as lc
from scoring.directory import Directory, procedure_from_event
from scoring.engine import Engine
from scoring.lifecycle import DossierState, Outcome
from scoring.periods import Period
from scoring.portal import Publication, PublishedUnit
from scoring.rollup import UnitScore
from scoring.ruleset import GROUP_CODES, Ruleset, as_number

HUNDREDTH = Fraction(1, 100)
GUESS_TIME = datetime(2000, 1, 1, tzinfo=UTC)  # a guessed catalogue entry is older than any real one
# What a sync acknowledgement does not carry, so no explanation can be built from it.
NOT_KEPT = {
    "vi": "xác nhận đồng bộ không kèm bản sao dữ liệu đã gửi: thời điểm trạng thái hay hạn trả khác với dữ liệu đã "
          "đồng bộ (ngoài hạn hẹn lại) không tìm được từ dữ liệu của hệ thống",
    "en": "the sync acknowledgement carries no copy of what was sent: status times or dues that differ from what "
          "was synced (other than a re-appointed due) cannot be found from our data"}
RENAMED = {
    "vi": "{code} trên Cổng là {published!r}, ở đây là {ours!r}: chỉ khớp theo mã, cần kiểm tra mã có cùng chỉ một "
          "đơn vị",
    "en": "{code} is {published!r} in the publication and {ours!r} here: matched by code alone, check that the code "
          "means the same unit"}
ACCOUNTED = ("unsynced", "reappointed_due", "unknown_procedure")
LABELS = {
    "unsynced": ("Hồ sơ chưa được Cổng DVCQG xác nhận đồng bộ", "received dossiers with no portal-sync "
                                                                "acknowledgement: the portal cannot count them"),
    "reappointed_due": ("Hồ sơ hẹn lại ngày trả: trễ theo hạn gốc, đúng hạn theo hạn hẹn lại đã đồng bộ",
                        "dossiers with a re-appointed due: late against the original due (scored here), on time "
                        "against the re-appointed due that was synced"),
    "unknown_procedure": ("Hồ sơ của thủ tục không có trong danh mục", "dossiers of procedures missing from our "
                                                                        "catalogue (indicators that count procedures "
                                                                        "miss them; estimated from the dossiers)"),
    "late_here": ("Hồ sơ bị tính trễ/quá hạn ở đây (kèm quy tắc)", "dossiers judged late or overdue here, with "
                                                                   "the rule: candidates for a gap in 2.1 / 5.4 the "
                                                                   "other explanations leave, not counted as "
                                                                   "accounted for"),
}
LATE_RULES = {  # rule → (Vietnamese, English)
    "multiple_supplements": ("yêu cầu bổ sung hồ sơ quá một lần", "more than one supplement request (DOMAIN.md §3.3)"),
    "completed_after_due": ("hoàn thành sau hạn trả (NgayHenTra)", "completed after its due (NgayHenTra)"),
    "open_past_due": ("chưa xong khi đã quá hạn tại thời điểm tính", "still open after its due at the cutoff"),
    "legal_limit_due": ("không gửi hạn trả: tính theo thời hạn giải quyết của thủ tục",
                        "no due date was sent: judged against the procedure's legal time limit"),
}


@dataclass(frozen=True)
class Ours:
    """One unit as we score it: the `score --json` unit shape, from the batch engine or the projection."""

    code: str
    name: str
    total: Fraction
    groups: dict[str, Fraction]
    counts: dict[str, tuple[int, int]]
    scores: dict[str, Fraction]

    @classmethod
    def from_json(cls, unit: Mapping) -> Ours:
        indicators = unit.get("indicators", {})
        return cls(unit["code"], unit.get("name", unit["code"]), Fraction(str(unit["total"])),
                   {g: Fraction(str(v)) for g, v in unit.get("groups", {}).items()},
                   {c: (int(v["numerator"]), int(v["denominator"])) for c, v in indicators.items()},
                   {c: Fraction(str(v["score"])) for c, v in indicators.items()})

    @classmethod
    def from_score(cls, unit: UnitScore) -> Ours:
        return cls(unit.code, unit.name, unit.card.total, dict(unit.card.groups), dict(unit.counts),
                   dict(unit.card.indicators))


@dataclass
class Explanation:
    kind: str
    dossiers: list[str]  # codes, sorted
    points: dict[str, Fraction]  # indicator (or group, for groups published as a bare score) → points
    rules: dict[str, int] | None = None  # late_here: how many dossiers each rule made late

    @property
    def total(self) -> Fraction:
        return sum(self.points.values(), Fraction(0))

    def as_json(self, page: int, size: int, language: str = "vi") -> dict:
        start = (page - 1) * size
        label_vi, label_en = LABELS[self.kind]
        return {"kind": self.kind, "label": label_vi if language == "vi" else label_en, "label_en": label_en,
                "accounted": self.kind in ACCOUNTED, "count": len(self.dossiers),
                "points": {code: as_number(value) for code, value in self.points.items() if value},
                "total_points": as_number(self.total),
                "rules": {LATE_RULES[rule][0 if language == "vi" else 1]: count for rule, count in self.rules.items()}
                if self.rules else None,
                "dossiers": self.dossiers[start:start + size], "page": page, "size": size,
                "pages": max(1, -(-len(self.dossiers) // size))}


# --- the comparison ------------------------------------------------------------------------------


def _published_scores(unit: PublishedUnit, ruleset: Ruleset) -> dict[str, tuple[tuple[int, int] | None, Fraction]]:
    """Published indicators with a score: the published one, or recomputed from the published counts
    where the portal publishes counts only (payment)."""
    found = {}
    for code, published in unit.indicators.items():
        score = published.score if published.score is not None else \
            ruleset.by_code[code].score(*(published.counts or (0, 0)))
        found[code] = (published.counts, score)
    return found


def compare_unit(ours: Ours, published: PublishedUnit, ruleset: Ruleset) -> dict:
    """Ours against published, per group and indicator, sorted by the points at stake."""
    indicators = []
    for code, (counts, score) in _published_scores(published, ruleset).items():
        indicator = ruleset.by_code[code]
        if indicator.tracking_only:
            continue
        numerator, denominator = ours.counts.get(code, (0, 0))
        points = score - ours.scores.get(code, Fraction(0))
        indicators.append({"code": code, "ref": indicator.ref, "group": indicator.group,
                           "published": {"numerator": counts[0] if counts else None,
                                         "denominator": counts[1] if counts else None, "score": as_number(score)},
                           "ours": {"numerator": numerator, "denominator": denominator,
                                    "score": as_number(ours.scores.get(code, Fraction(0)))},
                           "points": as_number(points)})
    indicators.sort(key=lambda row: (-abs(row["points"]), row["code"]))
    groups = [{"code": group, "published": as_number(published.groups[group]),
               "ours": as_number(ours.groups.get(group, Fraction(0))),
               "points": as_number(published.groups[group] - ours.groups.get(group, Fraction(0)))}
              for group in GROUP_CODES if group in published.groups]
    published_total = published.total if published.total is not None else sum(published.groups.values(), Fraction(0))
    return {"code": ours.code, "name": ours.name, "published_name": published.name,
            "published_total": as_number(published_total), "our_total": as_number(ours.total),
            "points": as_number(published_total - ours.total), "groups": groups, "indicators": indicators}


def gaps(ours: Ours, published: PublishedUnit, ruleset: Ruleset) -> dict[str, Fraction]:
    """Published minus ours per indicator, and per group where the group is published as a bare score."""
    found: dict[str, Fraction] = {}
    scores = _published_scores(published, ruleset)
    for code, (_, score) in scores.items():
        if not ruleset.by_code[code].tracking_only:
            found[code] = score - ours.scores.get(code, Fraction(0))
    for group, value in published.groups.items():
        members = [i.code for i in ruleset.indicators if i.group == group and not i.tracking_only]
        if not any(code in scores for code in members):
            found[group] = value - ours.groups.get(group, Fraction(0))
    return found


# --- explanations --------------------------------------------------------------------------------


class Hypotheses:
    """Scores of the same states under what-ifs (dossiers left out, another due rule, a fuller catalogue)."""

    def __init__(self, engine: Engine, period: Period, as_of: int):
        self.engine, self.period, self.as_of = engine, period, as_of
        self.baseline = {unit.code: unit for unit in engine.score_units(period, as_of)}

    def score(self, without: frozenset[str] = frozenset(), ruleset: Ruleset | None = None,
              directory: Directory | None = None) -> dict[str, UnitScore]:
        context = self.engine.context
        what_if = Engine(ruleset or context.ruleset, context.calendar, directory or context.directory)
        what_if.dossiers = {code: state for code, state in self.engine.dossiers.items() if code not in without}
        what_if.petitions = self.engine.petitions
        return {unit.code: unit for unit in what_if.score_units(self.period, self.as_of)}


def _relevant(state: DossierState, period: Period, as_of: int) -> bool:
    """Received by `as_of` and counted in the period: received in it, or still open or closed in it."""
    received = state.received_at
    if received is None or received > as_of or state.unit is None:
        return False
    end = lc.end_time(state, as_of)
    return received >= period.start or end is None or end >= period.start


def guessed_procedures(states: Iterable[DossierState], directory: Directory,
                       authority: str) -> list[ev.ProcedureUpserted]:
    """Catalogue entries for procedures our catalogue lacks, guessed from their dossiers: handled by
    the units that received them, offered online if any came online, fee-bearing if any carried a
    fee, for citizens, returning a document if a result said so."""
    seen: dict[str, list[DossierState]] = {}
    for state in states:
        if state.procedure is not None and state.procedure not in directory.procedures:
            seen.setdefault(state.procedure, []).append(state)
    guesses = []
    for code, members in sorted(seen.items()):
        guesses.append(ev.ProcedureUpserted(
            event_id=f"reconcile-guess-{code}", occurred_at=GUESS_TIME, procedure_code=code, name=code,
            authority_unit=authority, handled_by=sorted({s.unit for s in members if s.unit}),
            online_level="partial" if any(s.channel == 2 for s in members) else "none",
            fee_bearing=any(s.fee > 0 or s.flags & lc.FEE_SET for s in members), for_citizens=True,
            returns_document=any(s.flags & lc.RETURNS_DOCUMENT for s in members) or not any(
                s.flags & lc.RESULT_ISSUED for s in members)))
    return guesses


def _late_rule(state: DossierState, outcome: Outcome, context) -> str:
    if len(lc.supplement_requests(state)) > 1 and context.ruleset.lifecycle.multiple_supplements_late:
        return "multiple_supplements"
    if state.due_at is None:
        return "legal_limit_due"
    return "open_past_due" if outcome is Outcome.OVERDUE else "completed_after_due"


def _points(before: UnitScore | None, after: UnitScore | None, keys: Iterable[str], ruleset: Ruleset
            ) -> dict[str, Fraction]:
    found = {}
    for key in keys:
        if key in ruleset.groups:
            old = before.card.groups.get(key, Fraction(0)) if before else Fraction(0)
            new = after.card.groups.get(key, Fraction(0)) if after else Fraction(0)
        else:
            old = before.card.indicators.get(key, Fraction(0)) if before else Fraction(0)
            new = after.card.indicators.get(key, Fraction(0)) if after else Fraction(0)
        found[key] = new - old
    return found


def explain(hypotheses: Hypotheses, units: Mapping[str, Iterable[str]]) -> dict[str, list[Explanation]]:
    """Explanations for each unit (code → the indicator / group keys its gap is measured on)."""
    engine, period, as_of = hypotheses.engine, hypotheses.period, hypotheses.as_of
    context = engine.context
    directory, ruleset = context.directory, context.ruleset
    switches = ruleset.lifecycle
    relevant = [s for s in engine.dossiers.values() if _relevant(s, period, as_of)]
    unsynced = frozenset(s.code for s in relevant if not s.flags & lc.SYNCED)
    reappointed = set()
    late: dict[str, tuple[str, str]] = {}  # code → (unit, rule)
    against_reappointed = replace(switches, score_against_due="reappointed")
    for state in relevant:
        outcome = lc.classify(state, as_of, switches, context.fallback_due(state))
        if outcome not in (Outcome.LATE, Outcome.OVERDUE):
            continue
        if state.reappointed is not None and state.code not in unsynced and lc.classify(
                state, as_of, against_reappointed, context.fallback_due(state)) in lc.GOOD_OUTCOMES:
            reappointed.add(state.code)
        elif state.code not in unsynced:
            late[state.code] = (state.unit, _late_rule(state, outcome, context))  # type: ignore[assignment]
    unknown = {s.code for s in relevant if s.procedure is not None and s.procedure not in directory.procedures}
    top_units = [code for code, unit in directory.units.items() if unit.parent is None]
    fuller = Directory()
    for unit_code in directory.units:  # a copy: the engine's own directory stays as it is
        fuller.units[unit_code] = directory.units[unit_code]
    fuller.procedures = dict(directory.procedures)
    for guess in guessed_procedures(relevant, directory, top_units[0] if top_units else ""):
        fuller.procedures[guess.procedure_code] = procedure_from_event(guess)
    reappointed_rules = replace(ruleset, lifecycle=against_reappointed)
    scenarios = {
        "unsynced": hypotheses.score(without=unsynced) if unsynced else None,
        "reappointed_due": hypotheses.score(ruleset=reappointed_rules) if reappointed else None,
        "unknown_procedure": hypotheses.score(directory=fuller) if unknown else None,
    }
    combined = hypotheses.score(without=unsynced, ruleset=reappointed_rules if reappointed else None,
                                directory=fuller if unknown else None)
    members = {"unsynced": unsynced, "reappointed_due": reappointed, "unknown_procedure": unknown}
    found: dict[str, list[Explanation]] = {}
    for unit_code, keys in units.items():
        keys = list(keys)
        subtree = {code for code in directory.units if unit_code in (code, *directory.ancestors(code))} | {unit_code}
        before = hypotheses.baseline.get(unit_code)
        explanations = []
        for kind in ACCOUNTED:
            scenario = scenarios[kind]
            dossiers = sorted(code for code in members[kind] if engine.dossiers[code].unit in subtree)
            if scenario is None or not dossiers:
                continue
            explanations.append(Explanation(kind, dossiers, _points(before, scenario.get(unit_code), keys, ruleset)))
        late_here = sorted(code for code, (unit, _) in late.items() if unit in subtree)
        if late_here and before is not None:
            rules: dict[str, int] = {}
            for code in late_here:
                rules[late[code][1]] = rules.get(late[code][1], 0) + 1
            explanations.append(Explanation("late_here", late_here, _on_time_points(before, len(late_here), keys,
                                                                                     ruleset), rules))
        explanations.append(Explanation("combined", [], _points(before, combined.get(unit_code), keys, ruleset)))
        found[unit_code] = explanations
    return found


def _on_time_points(unit: UnitScore, count: int, keys: list[str], ruleset: Ruleset) -> dict[str, Fraction]:
    """Points 2.1 and 5.4 would gain if `count` of the unit's late dossiers counted as on time."""
    found = {}
    for code in ("ON_TIME", "DOSSIER_RECEIVING_SATISFACTION"):
        numerator, denominator = unit.counts.get(code, (0, 0))
        indicator = ruleset.by_code[code]
        gain = (indicator.score(min(denominator, numerator + count), denominator)
                - indicator.score(numerator, denominator))
        key = code if code in keys else indicator.group
        found[key] = found.get(key, Fraction(0)) + gain
    return found


def toward(gap: Mapping[str, Fraction], moves: Mapping[str, Fraction]) -> dict[str, Fraction]:
    """The part of each move that closes the gap: none where there is no gap (under half a hundredth,
    the published rounding) or where the move goes the other way, and never more than the gap."""
    found = {}
    for key, wanted in gap.items():
        move = moves.get(key, Fraction(0))
        if abs(wanted) < HUNDREDTH / 2 or move * wanted <= 0:
            continue
        found[key] = move if abs(move) <= abs(wanted) else wanted
    return found


def reconcile(publication: Publication, ours: Mapping[str, Ours], ruleset: Ruleset,
              explanations: Mapping[str, list[Explanation]] | None, page: int = 1, size: int = 50,
              language: str = "vi") -> dict:
    """The reconciliation report: units in both sorted by points at stake, with explanations where
    the dossier states were at hand; units on one side only listed."""
    published = {unit.code: unit for unit in publication.units}
    rows = []
    for code in sorted(published.keys() & ours.keys()):
        row = compare_unit(ours[code], published[code], ruleset)
        gap = gaps(ours[code], published[code], ruleset)
        if explanations is None:
            row["explanations"] = []
            row["explained_points"] = 0.0
            leftover = gap
        else:
            found = explanations.get(code, [])
            combined = next((e for e in found if e.kind == "combined"), None)
            accounted = toward(gap, combined.points if combined else {})
            leftover = {key: value - accounted.get(key, Fraction(0)) for key, value in gap.items()}
            # Each explanation is shown only where it moves our score toward the published one, by no
            # more than the gap; the late-here candidates only against what the others leave.
            kept = [replace(e, points=toward(leftover if e.kind == "late_here" else gap, e.points))
                    for e in found if e.kind != "combined"]
            row["explanations"] = [e.as_json(page, size, language) for e in kept if any(e.points.values())]
            row["explained_points"] = as_number(sum(accounted.values(), Fraction(0)))
        row["unexplained"] = [{"code": key, "points": as_number(value)}
                              for key, value in sorted(leftover.items(), key=lambda item: -abs(item[1]))
                              if abs(value) >= HUNDREDTH]
        row["unexplained_points"] = as_number(sum(leftover.values(), Fraction(0)))
        rows.append(row)
    rows.sort(key=lambda row: (-abs(row["points"]), row["code"]))
    words = "vi" if language == "vi" else "en"
    renamed = [RENAMED[words].format(code=row["code"], published=row["published_name"], ours=row["name"])
               for row in rows if not same_name(row["name"], row["published_name"])]
    return {"period": publication.period, "published": {"kind": publication.kind, "date": publication.date,
                                                        "collected_at": publication.collected_at},
            "units": rows, "only_published": sorted(published.keys() - ours.keys()),
            "only_ours": sorted(ours.keys() - published.keys()),
            "explained_from": "dossier states" if explanations is not None else None,
            "notes": [*renamed, *([NOT_KEPT[words]] if explanations is not None else [])]}


def same_name(ours: str, published: str) -> bool:
    """Whether two names plausibly name one unit: either is missing, one holds the other ("Sở Tư
    pháp" in "Sở Tư pháp tỉnh Đắk Lắk"), or they are mostly the same letters."""
    a, b = " ".join(ours.casefold().split()), " ".join(published.casefold().split())
    if not a or not b or a in b or b in a:
        return True
    return SequenceMatcher(None, a, b).ratio() >= 0.6
