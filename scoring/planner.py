"""The what-if planner: the fewest actions that bring a unit to a target by the end of a period.

The projection is the period's end with nothing else happening: every open dossier nobody finishes
turns overdue at its due (the engine does that by itself as "as of" passes), every other unit stands
still. Actions are events that could still happen before their dues — finish an open dossier with an
electronic result, issue an electronic result for a completed one, digitise a dossier, take a fee
online — each scored exactly by folding its events into a copy of the dossier's state and
re-contributing it (2.1 and 5.4 move together because the engine moves them together). A greedy
pass takes the action that adds the most points (the unrounded gain breaks ties in rounding's flat
steps) until the target is met, then every action whose removal still meets the target is dropped,
so the plan is minimal: without any one of its actions the target is missed.
No I/O and no clock: "now" is the caller's.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from fractions import Fraction

import msgspec

from schemas import events as ev
from scoring import contributions as contrib
from scoring import lifecycle as lc
from scoring.calendar import VIETNAM
from scoring.engine import Engine
from scoring.lifecycle import DossierState
from scoring.periods import Period
from scoring.rollup import UnitScore, own_counts, split_by_owner
from scoring.ruleset import Ruleset

ACTION_KINDS = ("finish", "e_result", "digitise", "pay_online")
ACTION_LABELS = {
    "finish": ("Hoàn thành trước hạn, trả kết quả điện tử", "finish before its due, with an electronic result"),
    "e_result": ("Cấp kết quả điện tử", "issue the electronic result"),
    "digitise": ("Số hóa thành phần hồ sơ (và kết quả)", "digitise the dossier's components (and result)"),
    "pay_online": ("Thu phí trực tuyến", "take the fee online"),
}
LEAD_SECONDS = 3600  # an action happens an hour after "now" (earlier when the due is nearer)
_copier = msgspec.msgpack.Encoder()
_copy_decoder = msgspec.msgpack.Decoder(DossierState)


class PlanError(ValueError):
    """A target, unit or period the planner cannot work with; the message says why."""


@dataclass(frozen=True)
class Target:
    kind: str  # rank, band, total, next-band
    value: str  # as given
    text: str

    def threshold(self, ruleset: Ruleset, others: list[Fraction], baseline: Fraction = Fraction(0)) -> Fraction:
        """The total that meets the target, others standing still."""
        if self.kind == "next-band":
            above = [Fraction(str(band.min)) for band in ruleset.bands if Fraction(str(band.min)) > baseline]
            return min(above) if above else baseline  # already in the top band: stay there
        if self.kind == "total":
            return Fraction(self.value)
        if self.kind == "band":
            wanted = self.value.casefold()
            for band in ruleset.bands:
                if wanted in (band.vi.casefold(), band.en.casefold()):
                    return Fraction(str(band.min))
            raise PlanError(f"unknown band {self.value!r}: " + ", ".join(b.vi for b in ruleset.bands))
        rank = int(self.value)
        ordered = sorted(others, reverse=True)
        # Rank N with the competition rule: at most N - 1 others strictly higher, so a total equal
        # to the N-th highest other shares its rank.
        return ordered[rank - 1] if rank - 1 < len(ordered) else Fraction(0)


def parse_target(text: str) -> Target:
    if text == "next-band":
        return Target("next-band", "", text)
    kind, _, value = text.partition(":")
    if kind == "rank" and value.isdigit() and int(value) >= 1:
        return Target(kind, value, text)
    if kind == "band" and value:
        return Target(kind, value, text)
    if kind == "total":
        try:
            number = Fraction(value)
        except (ValueError, ZeroDivisionError):
            number = None
        if number is not None and 0 <= number <= 100:
            return Target(kind, value, text)
    raise PlanError(f"target must be rank:N (N ≥ 1), band:NAME, total:X (0-100) or next-band, got {text!r}")


@dataclass
class Action:
    kind: str
    dossier: str
    unit: str
    procedure: str | None
    due: int | None
    officer: str | None
    at: int
    events: tuple[ev.DossierEvent, ...]
    points: Fraction = Fraction(0)  # what it adds, in the plan's order

    def as_json(self) -> dict:
        from scoring.calendar import iso

        return {"kind": self.kind, "label": ACTION_LABELS[self.kind][0], "label_en": ACTION_LABELS[self.kind][1],
                "dossier": self.dossier, "unit": self.unit, "procedure": self.procedure, "due": iso(self.due),
                "officer": self.officer, "at": iso(self.at), "points": float(self.points)}


@dataclass
class Plan:
    unit: str
    name: str
    period: str
    target: Target
    peer_group: str
    now: int
    projected_at: int
    threshold: Fraction
    baseline_total: Fraction
    baseline_rank: int
    total_after: Fraction
    rank_after: int
    reachable: bool
    actions: list[Action]
    ties: list[str] = field(default_factory=list)  # units sharing rank_after
    candidates: int = 0
    note: str = ""  # English; `note_vi` the same in Vietnamese
    note_vi: str = ""

    def as_json(self) -> dict:
        from scoring.calendar import iso

        return {"unit": self.unit, "name": self.name, "period": self.period, "target": self.target.text,
                "peer_group": self.peer_group, "now": iso(self.now), "projected_at": iso(self.projected_at),
                "reachable": self.reachable, "target_total": float(self.threshold),
                "actions": [action.as_json() for action in self.actions],
                "baseline_total": float(self.baseline_total), "baseline_rank": self.baseline_rank,
                "total_after": float(self.total_after), "rank_after": self.rank_after, "ties": self.ties,
                "candidates": self.candidates, "note": self.note, "note_vi": self.note_vi}


def _copy(state: DossierState) -> DossierState:
    return _copy_decoder.decode(_copier.encode(state))


def _at(moment: int) -> datetime:
    return datetime.fromtimestamp(moment, VIETNAM)


class Planner:
    def __init__(self, engine: Engine, period: Period, now: int):
        if now >= period.end:
            raise PlanError(f"{period.key} ended before {_at(now).isoformat()}: nothing done now can change it")
        if now < period.start:
            raise PlanError(f"{period.key} has not begun at {_at(now).isoformat()} (the history's last event, or "
                            "--as-of): the history holds nothing of it to plan from")
        self.engine, self.period, self.now = engine, period, now
        self.projected_at = period.end
        self.context = engine.context
        self.baseline = engine.score_units(period, self.projected_at)
        self.by_code = {unit.code: unit for unit in self.baseline}
        owners = split_by_owner(engine.full_tallies(self.projected_at), period.key)
        self.counters = {owner: dict(values) for owner, values in owners.items() if "|" not in owner}

    # --- candidates ------------------------------------------------------------------------------

    def _due(self, state: DossierState) -> int | None:
        due = lc.due_for_scoring(state, self.context.ruleset.lifecycle)
        return due if due is not None else self.context.fallback_due(state)

    def candidates(self, units: set[str]) -> list[Action]:
        directory, now, period = self.context.directory, self.now, self.period
        found: list[Action] = []
        for state in self.engine.dossiers.values():
            if state.unit not in units or state.received_at is None or state.received_at > now:
                continue
            end = lc.end_time(state, now)
            if end is not None and end < period.start:
                continue
            due = self._due(state)
            officer = contrib.holder_at(state, now)
            document = contrib.returns_document(state, directory)
            make = _Maker(state, due, officer, state.procedure)
            if end is None:
                # None while the applicant holds it (the clock is stopped) or once it is overdue already.
                overdue_at = lc.turns_overdue_at(state, now, self.context.ruleset.lifecycle,
                                                 self.context.fallback_due(state))
                if overdue_at is not None and now < overdue_at <= self.projected_at:
                    at = min(now + LEAD_SECONDS, overdue_at - 1)
                    events: list[ev.DossierEvent] = [ev.DossierStatusChanged(
                        event_id=f"plan-{state.code}-finish", occurred_at=_at(at), source="chiso766-plan",
                        dossier_code=state.code, status=9, officer_id=officer)]
                    if document:
                        events += _result_events(state.code, at + 60)
                    found.append(make("finish", at, events))
                # The fee of a financial obligation is not kept in the state: only a receipt's fee is offered.
                if state.fee > 0 and not state.flags & lc.FEE_PAID:
                    at = now + LEAD_SECONDS // 2
                    found.append(make("pay_online", at, [ev.PaymentMade(
                        event_id=f"plan-{state.code}-pay", occurred_at=_at(at), source="chiso766-plan",
                        dossier_code=state.code, amount=state.fee, online=True)]))
            elif document and not state.flags & lc.RESULT_ELECTRONIC and end >= period.start \
                    and (state.status_at.get(9) or state.status_at.get(10)):
                found.append(make("e_result", now + 600, _result_events(state.code, now + 600)))
            if state.received_at >= period.start and not state.flags & lc.COMPONENTS_DIGITISED:
                found.append(make("digitise", now + 900, [ev.DigitisationRecorded(
                    event_id=f"plan-{state.code}-digitise", occurred_at=_at(now + 900), source="chiso766-plan",
                    dossier_code=state.code, components_digitised=True, result_digitised=document)]))
        return found

    # --- scoring ---------------------------------------------------------------------------------

    def _delta(self, state: DossierState, after: DossierState, unit: str) -> dict[str, int]:
        """How the unit's own counters of the period change from `state` to `after`."""
        blocks: dict = {}
        context, at = self.context, self.projected_at
        contrib.diff(contrib.dossier_contribution(state, at, context),
                     contrib.dossier_contribution(after, at, context), blocks)
        delta: dict[str, int] = {}
        for (owner, periods, names), count in blocks.items():
            if owner != unit or self.period.key not in periods or not count:
                continue
            for name in names:
                delta[name] = delta.get(name, 0) + count
        return {name: value for name, value in delta.items() if value}

    def plan(self, unit_code: str, target: Target) -> Plan:
        unit = self.by_code.get(unit_code)
        if unit is None or unit.level == "unregistered":
            raise PlanError(f"no unit {unit_code!r} in the registry")
        directory, ruleset = self.context.directory, self.context.ruleset
        peers = [u for u in self.baseline if u.peer_group == unit.peer_group and u.code != unit.code]
        if target.kind == "rank" and int(target.value) > len(peers) + 1:
            raise PlanError(f"{target.text} is beyond the peer group {unit.peer_group}: it has {len(peers) + 1} "
                            "units")
        threshold = target.threshold(ruleset, [u.card.total for u in peers], unit.card.total)
        subtree = {code for code in directory.units if unit_code in (code, *directory.ancestors(code))}
        candidates = self.candidates(subtree)
        chosen = self._greedy(unit, candidates, threshold)
        reachable = self._total(unit, chosen) >= threshold
        if reachable:
            chosen = self._prune(unit, chosen, threshold)
        total = self._score_in_order(unit, chosen)
        rank = 1 + sum(1 for peer in peers if peer.card.total > total)
        ties = sorted(peer.code for peer in peers if peer.card.total == total)
        note = note_vi = ""
        if not reachable:
            note = (f"{target.text} cannot be reached in {self.period.key}: with every action that adds points "
                    f"the unit reaches {float(total):.2f} (rank {rank}), {float(threshold):.2f} is needed")
            note_vi = (f"không thể đạt {target.text} trong {self.period.key}: làm mọi việc có thêm điểm, đơn vị đạt "
                       f"{float(total):.2f} (hạng {rank}), cần {float(threshold):.2f}")
        elif not chosen:
            note = "the projection already meets the target: nothing needs doing"
            note_vi = "dự kiến cuối kỳ đã đạt mục tiêu: không cần làm gì thêm"
        return Plan(unit.code, unit.name, self.period.key, target, unit.peer_group, self.now, self.projected_at,
                    threshold, unit.card.total, unit.rank, total, rank, reachable, chosen, ties, len(candidates), note,
                    note_vi)

    def _apply(self, states: dict[str, DossierState], action: Action) -> tuple[DossierState, DossierState]:
        before = states.get(action.dossier) or self.engine.dossiers[action.dossier]
        after = _copy(before)
        for event in action.events:
            lc.reduce(after, event)
        states[action.dossier] = after
        return before, after

    def _unit_total(self, unit: UnitScore, counters: dict[str, dict[str, int]]) -> tuple[Fraction, Fraction]:
        """The unit's total (and its unrounded sum, for ties in rounding) with `counters` replacing the
        own counters of the units they name."""
        directory, ruleset = self.context.directory, self.context.ruleset
        pooled = {code: list(pair) for code, pair in unit.counts.items()}
        for owner, values in counters.items():
            for code, (n, d) in own_counts(owner, self.counters.get(owner, {}), directory, ruleset).items():
                pooled[code][0] -= n
                pooled[code][1] -= d
            for code, (n, d) in own_counts(owner, values, directory, ruleset).items():
                pair = pooled.setdefault(code, [0, 0])
                pair[0] += n
                pair[1] += d
        card = ruleset.score({code: (n, d) for code, (n, d) in pooled.items()})
        raw = Fraction(0)
        for indicator in ruleset.indicators:
            n, d = pooled.get(indicator.code, (0, 0))
            if d > 0 and not indicator.tracking_only:
                raw += indicator.max * min(indicator.cap, Fraction(n, d) / indicator.target)
        return card.total, raw

    def _run(self, actions: Iterable[Action]) -> dict[str, dict[str, int]]:
        states: dict[str, DossierState] = {}
        counters: dict[str, dict[str, int]] = {}
        for action in actions:
            before, after = self._apply(states, action)
            own = counters.setdefault(action.unit, dict(self.counters.get(action.unit, {})))
            for name, value in self._delta(before, after, action.unit).items():
                own[name] = own.get(name, 0) + value
        return counters

    def _total(self, unit: UnitScore, actions: list[Action]) -> Fraction:
        return self._unit_total(unit, self._run(actions))[0]

    def _score_in_order(self, unit: UnitScore, actions: list[Action]) -> Fraction:
        """The total after the actions, setting each action's points to what it adds in order."""
        total = unit.card.total
        for index, action in enumerate(actions):
            after = self._total(unit, actions[:index + 1])
            action.points = after - total
            total = after
        return total

    def _greedy(self, unit: UnitScore, candidates: list[Action], threshold: Fraction) -> list[Action]:
        states: dict[str, DossierState] = {}
        counters: dict[str, dict[str, int]] = {}
        current, current_raw = self._unit_total(unit, counters)
        remaining = list(candidates)
        chosen: list[Action] = []
        deltas: dict[int, dict[str, int]] = {}
        while current < threshold and remaining:
            best: tuple | None = None
            evaluated: dict[tuple, tuple[Fraction, Fraction]] = {}
            for index, action in enumerate(remaining):
                key = id(action)
                if key not in deltas:
                    before = states.get(action.dossier) or self.engine.dossiers[action.dossier]
                    after = _copy(before)
                    for event in action.events:
                        lc.reduce(after, event)
                    deltas[key] = self._delta(before, after, action.unit)
                delta = deltas[key]
                if not delta:
                    continue
                signature = (action.unit, tuple(sorted(delta.items())))
                if signature not in evaluated:
                    trial = {owner: dict(values) for owner, values in counters.items()}
                    own = trial.setdefault(action.unit, dict(self.counters.get(action.unit, {})))
                    for name, value in delta.items():
                        own[name] = own.get(name, 0) + value
                    evaluated[signature] = self._unit_total(unit, trial)
                total, raw = evaluated[signature]
                # Most points first; the unrounded gain breaks ties; then the earliest due.
                rank_key = (total - current, raw - current_raw, -(action.due or 0))
                if best is None or rank_key > best[0]:
                    best = (rank_key, index)
            if best is None or (best[0][0] <= 0 and best[0][1] <= 0):
                break
            action = remaining.pop(best[1])
            chosen.append(action)
            before, after = self._apply(states, action)
            own = counters.setdefault(action.unit, dict(self.counters.get(action.unit, {})))
            for name, value in deltas.pop(id(action)).items():
                own[name] = own.get(name, 0) + value
            # The dossier's other actions start from its new state.
            for other in remaining:
                if other.dossier == action.dossier:
                    deltas.pop(id(other), None)
            current, current_raw = self._unit_total(unit, counters)
        return chosen

    def _prune(self, unit: UnitScore, chosen: list[Action], threshold: Fraction) -> list[Action]:
        """Drop every action the target does not need, the smallest contributions first."""
        kept = list(chosen)
        for action in list(reversed(chosen)):
            trial = [a for a in kept if a is not action]
            if self._total(unit, trial) >= threshold:
                kept = trial
        return kept


@dataclass
class _Maker:
    state: DossierState
    due: int | None
    officer: str | None
    procedure: str | None

    def __call__(self, kind: str, at: int, events: list) -> Action:
        return Action(kind, self.state.code, self.state.unit or "", self.procedure, self.due, self.officer, at,
                      tuple(events))


def _result_events(code: str, at: int) -> list[ev.DossierEvent]:
    return [ev.ResultIssued(event_id=f"plan-{code}-result", occurred_at=_at(at), source="chiso766-plan",
                            dossier_code=code, electronic=True, returns_document=True),
            ev.DigitisationRecorded(event_id=f"plan-{code}-result-digitised", occurred_at=_at(at),
                                    source="chiso766-plan", dossier_code=code, result_digitised=True)]


def plan_events(plan: Plan) -> list[ev.DossierEvent]:
    """The hypothetical events a plan assumes, in time order."""
    return sorted((event for action in plan.actions for event in action.events),
                  key=lambda event: (event.occurred_at, event.event_id))

