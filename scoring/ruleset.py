"""The versioned ruleset (weights, targets, caps, 0/0 rules, switches) and the score arithmetic.

Every weight and target is data: a ruleset file has an id and an effective date, and the loader
refuses a file whose maxima do not add up to 100 or that names a code the scorer does not compute.
Scores use exact fractions and round half up to 2 decimals, each indicator before summing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from fractions import Fraction
from math import floor
from typing import Literal

GROUP_CODES = ("CKMB", "TDGQ", "CLGQ", "TTTT", "MDSH", "MDHL")

# The indicators the tally engine computes; a ruleset may weight them but not invent new ones.
KNOWN_INDICATORS = frozenset({
    "PUBLISH_ON_TIME", "PUBLIC_UPDATE_ON_TIME", "PUBLIC_CONTENT_FULL", "DOSSIER_SYNC", "ON_TIME",
    "ONLINE_PROVISION", "ONLINE_SERVICE_USED", "ONLINE_DOSSIER_SHARE", "PAY_DOSSIER_ONLINE",
    "PAY_FORMALITY_WITH_ONLINE_TX", "PAY_FORMALITY_WITH_FEE_DOSSIER", "ORIGINAL_RESULT_AVAILABLE",
    "SO_HOA_GIAY_TO_GIAI_QUYET", "REUSED_DIGITIZED_DATA", "SYNCED_WITH_DVCQG_PERSONAL_STORAGE",
    "CITIZEN_DATA_CONNECTED_DOSSIER", "CITIZEN_DATA_CONNECTED_FORMALITY", "ELECTRONIC_CERTIFIED_COPY",
    "DOSSIER_RECEIVING_SATISFACTION", "PETITION_PROCESSING_ON_TIME", "PETITION_HANDLING_SATISFACTION",
    "PETITION_CLASSIFICATION_TTHC", "PETITION_CLASSIFICATION_STAFF",
})
BASES = frozenset({"catalogue", "received", "active", "completed", "procedures", "units",
                   "petitions_active", "petitions_received"})
HUNDREDTH = Fraction(1, 100)
SCORE_MEMO_LIMIT = 100_000  # (numerator, denominator) pairs per indicator


class RulesetError(ValueError):
    """A ruleset file that cannot be used; the message says which field and why."""


def round2(value: Fraction) -> Fraction:
    """Round half up to 2 decimals, exactly."""
    return Fraction(floor(value * 100 + Fraction(1, 2)), 100)


def as_number(value: Fraction) -> float:
    return float(value)


@dataclass(frozen=True)
class Indicator:
    code: str
    ref: str
    group: str
    max: Fraction
    target: Fraction
    cap: Fraction
    zero_over_zero: Literal["zero", "full"]
    basis: str
    tracking_only: bool = False
    # Units and periods share most (numerator, denominator) pairs, and exact fractions are slow.
    _scores: dict[tuple[int, int], Fraction] = field(default_factory=dict, init=False, repr=False,
                                                     compare=False, hash=False)

    def score(self, numerator: int, denominator: int) -> Fraction:
        """max × min(cap, ratio / target), rounded half up to 2 decimals."""
        key = (numerator, denominator)
        found = self._scores.get(key)
        if found is None:
            if len(self._scores) >= SCORE_MEMO_LIMIT:
                self._scores.clear()
            found = self._scores[key] = self._score(numerator, denominator)
        return found

    def _score(self, numerator: int, denominator: int) -> Fraction:
        if self.tracking_only:
            return Fraction(0)
        if denominator <= 0:
            return self.max if self.zero_over_zero == "full" else Fraction(0)
        ratio = Fraction(numerator, denominator)
        return round2(self.max * min(self.cap, ratio / self.target))


@dataclass(frozen=True)
class LifecycleSwitches:
    """The disputed on-time choices of DOMAIN.md §3, with its defaults."""

    financial_obligation_clock: Literal["running", "paused"] = "running"
    score_against_due: Literal["original", "reappointed"] = "original"
    compare: Literal["timestamp", "date"] = "timestamp"
    multiple_supplements_late: bool = True

    def __post_init__(self) -> None:
        allowed = {"financial_obligation_clock": ("running", "paused"),
                   "score_against_due": ("original", "reappointed"), "compare": ("timestamp", "date")}
        for name, options in allowed.items():
            if getattr(self, name) not in options:
                raise RulesetError(f"lifecycle.{name} must be one of {options}, got {getattr(self, name)!r}")


@dataclass(frozen=True)
class Band:
    min: float
    vi: str
    en: str


@dataclass(frozen=True)
class Ruleset:
    id: str
    effective_from: date
    groups: Mapping[str, Mapping[str, object]]
    indicators: tuple[Indicator, ...]
    lifecycle: LifecycleSwitches = field(default_factory=LifecycleSwitches)
    publish_lead_working_days: Mapping[str, int] = field(default_factory=lambda: {"province": 5, "ministry": 20})
    publish_within_working_days: Mapping[str, int] = field(default_factory=lambda: {"province": 5, "ministry": 10})
    mandatory_content_parts: int = 7
    petition_answer_working_days: int = 15
    petition_refusal_working_days: int = 2  # refuse within 2 working days of receipt (DOMAIN.md §6)
    petition_supplement_working_days: int = 5  # first supplement request within 5
    petition_publication_working_days: int = 2  # publish within 2 after "waiting to publish"
    bands: tuple[Band, ...] = ()

    @property
    def by_code(self) -> dict[str, Indicator]:
        return {indicator.code: indicator for indicator in self.indicators}

    def band(self, total: float) -> Band | None:
        return next((band for band in self.bands if total >= band.min), None)

    def score(self, counts: Mapping[str, tuple[int, int] | None]) -> ScoreCard:
        """Indicator, group and total scores from {code: (numerator, denominator)}.

        A missing code or a None (not applicable) counts as 0/0 under the indicator's 0/0 rule.
        """
        unknown = set(counts) - {indicator.code for indicator in self.indicators}
        if unknown:
            raise RulesetError(f"counts name codes this ruleset does not have: {sorted(unknown)}")
        indicator_scores: dict[str, Fraction] = {}
        groups = dict.fromkeys(self.groups, Fraction(0))
        for indicator in self.indicators:
            pair = counts.get(indicator.code) or (0, 0)
            value = indicator.score(*pair)
            indicator_scores[indicator.code] = value
            groups[indicator.group] += value
        return ScoreCard(indicator_scores, groups, sum(groups.values(), Fraction(0)))


@dataclass(frozen=True)
class ScoreCard:
    indicators: dict[str, Fraction]
    groups: dict[str, Fraction]
    total: Fraction

    def as_json(self) -> dict:
        return {
            "indicators": {code: as_number(value) for code, value in self.indicators.items()},
            "groups": {code: as_number(value) for code, value in self.groups.items()},
            "total": as_number(self.total),
        }


def _working_days(section: Mapping[str, object], name: str, default: int) -> int:
    value = section.get(name, default)
    if type(value) is not int or not 1 <= value <= 366:
        raise RulesetError(f"petitions.{name} must be a whole number of working days from 1 to 366, got {value!r}")
    return value


def _fraction(value: object, where: str) -> Fraction:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise RulesetError(f"{where} must be a number, got {value!r}")
    try:
        return Fraction(str(value))
    except ValueError as error:
        raise RulesetError(f"{where} must be a number, got {value!r}") from error


def _indicator(raw: Mapping, index: int, groups: Mapping) -> Indicator:
    where = f"indicators[{index}]"
    code = raw.get("code")
    if code not in KNOWN_INDICATORS:
        raise RulesetError(f"{where}.code: unknown indicator code {code!r}")
    group = raw.get("group")
    if group not in groups:
        raise RulesetError(f"{where} ({code}).group: unknown group {group!r}")
    zero_rule = raw.get("zero_over_zero", "zero")
    if zero_rule not in ("zero", "full"):
        raise RulesetError(f"{where} ({code}).zero_over_zero must be 'zero' or 'full', got {zero_rule!r}")
    basis = raw.get("basis")
    if basis not in BASES:
        raise RulesetError(f"{where} ({code}).basis must be one of {sorted(BASES)}, got {basis!r}")
    target = _fraction(raw.get("target", 1), f"{where} ({code}).target")
    if target <= 0:
        raise RulesetError(f"{where} ({code}).target must be positive")
    maximum = _fraction(raw.get("max"), f"{where} ({code}).max")
    if maximum < 0:
        raise RulesetError(f"{where} ({code}).max must not be negative")
    return Indicator(
        code=code, ref=str(raw.get("ref", "")), group=group, max=maximum, target=target,
        cap=_fraction(raw.get("cap", 1), f"{where} ({code}).cap"), zero_over_zero=zero_rule,
        basis=basis, tracking_only=bool(raw.get("tracking_only", False)),
    )


def parse_ruleset(data: Mapping) -> Ruleset:
    """Validate a parsed ruleset file; raise RulesetError with the field at fault."""
    for required in ("id", "effective_from", "groups", "indicators"):
        if required not in data:
            raise RulesetError(f"ruleset is missing `{required}`")
    groups = data["groups"]
    if set(groups) != set(GROUP_CODES):
        raise RulesetError(f"groups must be exactly {list(GROUP_CODES)}, got {sorted(groups)}")
    indicators = tuple(_indicator(raw, i, groups) for i, raw in enumerate(data["indicators"]))
    seen: set[str] = set()
    for indicator in indicators:
        if indicator.code in seen:
            raise RulesetError(f"indicator {indicator.code} is listed twice")
        seen.add(indicator.code)
    missing = KNOWN_INDICATORS - seen
    if missing:
        raise RulesetError(f"ruleset does not list indicators {sorted(missing)}")
    total = sum((indicator.max for indicator in indicators), Fraction(0))
    if total != 100:
        raise RulesetError(f"indicator maxima sum to {float(total):g}, not 100")
    for code, group in groups.items():
        group_max = _fraction(group.get("max"), f"groups.{code}.max")
        members = sum((i.max for i in indicators if i.group == code), Fraction(0))
        if members != group_max:
            raise RulesetError(f"group {code}: indicators sum to {float(members):g}, group max is {group_max}")
    try:
        effective = date.fromisoformat(str(data["effective_from"]))
    except ValueError as error:
        raise RulesetError(f"effective_from is not an ISO date: {data['effective_from']!r}") from error
    try:
        lifecycle = LifecycleSwitches(**data.get("lifecycle", {}))
    except TypeError as error:
        raise RulesetError(f"lifecycle: {error}") from error
    catalogue = data.get("catalogue", {})
    petitions = data.get("petitions", {})
    return Ruleset(
        id=str(data["id"]),
        effective_from=effective,
        groups=groups,
        indicators=indicators,
        lifecycle=lifecycle,
        publish_lead_working_days=catalogue.get("publish_lead_working_days", {"province": 5, "ministry": 20}),
        publish_within_working_days=catalogue.get("publish_within_working_days", {"province": 5, "ministry": 10}),
        mandatory_content_parts=int(catalogue.get("mandatory_content_parts", 7)),
        petition_answer_working_days=_working_days(petitions, "answer_working_days", 15),
        petition_refusal_working_days=_working_days(petitions, "refusal_working_days", 2),
        petition_supplement_working_days=_working_days(petitions, "supplement_working_days", 5),
        petition_publication_working_days=_working_days(petitions, "publication_working_days", 2),
        # Highest first, whatever order the file lists them in: a total takes the first band it reaches.
        bands=tuple(sorted((Band(float(b["min"]), b["vi"], b["en"]) for b in data.get("bands", ())),
                           key=lambda band: -band.min)),
    )
