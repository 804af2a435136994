"""The ruleset file and score arithmetic, with every worked example of DOMAIN.md §2."""

from __future__ import annotations

import copy
from fractions import Fraction

import orjson
import pytest

from scoring.ruleset import RulesetError, parse_ruleset, round2
from support.resources import read_json


def group_of(ruleset, counts, group):
    return float(ruleset.score(counts).groups[group])


def test_payment_worked_example_commune_7_00(ruleset):
    counts = {"PAY_DOSSIER_ONLINE": (1608, 1733), "PAY_FORMALITY_WITH_ONLINE_TX": (18, 42),
              "PAY_FORMALITY_WITH_FEE_DOSSIER": (6, 42)}
    card = ruleset.score(counts)
    assert [float(card.indicators[c]) for c in counts] == [5.57, 1.07, 0.36]
    assert float(card.groups["TTTT"]) == 7.00


def test_payment_worked_example_commune_0_26(ruleset):
    counts = {"PAY_DOSSIER_ONLINE": (3, 99), "PAY_FORMALITY_WITH_ONLINE_TX": (1, 31),
              "PAY_FORMALITY_WITH_FEE_DOSSIER": (0, 31)}
    assert group_of(ruleset, counts, "TTTT") == 0.26


def test_online_worked_examples_province_8_47_then_9_14(ruleset):
    first = {"ONLINE_PROVISION": (26, 47), "ONLINE_SERVICE_USED": (535, 1970), "ONLINE_DOSSIER_SHARE": (339933, 345350)}
    card = ruleset.score(first)
    assert [float(card.indicators[c]) for c in first] == [1.38, 1.09, 6.0]
    assert float(card.groups["CLGQ"]) == 8.47
    later = {"ONLINE_PROVISION": (46, 47), "ONLINE_SERVICE_USED": (566, 1993), "ONLINE_DOSSIER_SHARE": (410872, 417627)}
    assert group_of(ruleset, later, "CLGQ") == 9.14


@pytest.mark.parametrize(("counts", "expected"), [((742, 756), 19.63), ((1384, 1439), 19.24), ((0, 0), 0.0)])
def test_progress_worked_examples(ruleset, counts, expected):
    assert float(ruleset.score({"ON_TIME": counts}).indicators["ON_TIME"]) == expected


@pytest.mark.parametrize(("code", "counts", "expected"), [
    ("REUSED_DIGITIZED_DATA", (249, 1000), 0.62),
    ("ORIGINAL_RESULT_AVAILABLE", (8011, 10000), 4.81),
    ("CITIZEN_DATA_CONNECTED_FORMALITY", (935, 10000), 0.19),
])
def test_digitisation_worked_examples(ruleset, code, counts, expected):
    assert float(ruleset.score({code: counts}).indicators[code]) == expected


def test_zero_over_zero_rules(ruleset):
    card = ruleset.score({})
    assert float(card.indicators["ELECTRONIC_CERTIFIED_COPY"]) == 2  # not applicable: full
    assert float(card.indicators["PETITION_PROCESSING_ON_TIME"]) == 6
    assert float(card.indicators["PETITION_HANDLING_SATISFACTION"]) == 6
    assert float(card.indicators["ON_TIME"]) == 0
    assert float(card.total) == 14
    assert ruleset.score({"ELECTRONIC_CERTIFIED_COPY": None}).indicators["ELECTRONIC_CERTIFIED_COPY"] == 2


def test_targets_cap_at_the_maximum(ruleset):
    assert float(ruleset.score({"ONLINE_DOSSIER_SHARE": (60, 100)}).indicators["ONLINE_DOSSIER_SHARE"]) == 6
    assert float(ruleset.score({"ONLINE_DOSSIER_SHARE": (40, 100)}).indicators["ONLINE_DOSSIER_SHARE"]) == 4.8


def test_satisfaction_target_0_9(ruleset):
    assert float(ruleset.score({"DOSSIER_RECEIVING_SATISFACTION": (81, 100)})
                 .indicators["DOSSIER_RECEIVING_SATISFACTION"]) == 5.4


def test_tracking_indicators_score_nothing(ruleset):
    card = ruleset.score({"PETITION_CLASSIFICATION_TTHC": (5, 10), "PETITION_CLASSIFICATION_STAFF": (5, 10)})
    assert card.indicators["PETITION_CLASSIFICATION_TTHC"] == 0


def test_round_half_up_each_indicator_before_summing(ruleset):
    assert round2(Fraction(1, 200)) == Fraction(1, 100)  # 0.005 → 0.01, not banker's 0.00
    assert round2(Fraction(2675, 1000)) == Fraction(268, 100)  # float rounding would give 2.67
    # Two indicators of 0.4966… each: rounded first (0.50 + 0.50), not summed first (0.99).
    card = ruleset.score({"REUSED_DIGITIZED_DATA": (1987, 10000), "CITIZEN_DATA_CONNECTED_DOSSIER": (2483, 10000)})
    assert float(card.indicators["REUSED_DIGITIZED_DATA"]) == 0.50
    assert float(card.indicators["CITIZEN_DATA_CONNECTED_DOSSIER"]) == 0.50
    assert float(card.groups["MDSH"]) == 1.00 + 2  # + the not-applicable certified copy


def test_full_marks_total_100(ruleset):
    counts = {i.code: (1, 1) for i in ruleset.indicators}
    assert float(ruleset.score(counts).total) == 100


def test_bands(ruleset):
    assert ruleset.band(90).vi == "Xuất sắc" and ruleset.band(89.99).vi == "Tốt"
    assert ruleset.band(50).en == "Average" and ruleset.band(49.99).vi == "Yếu"


@pytest.fixture
def raw_ruleset():
    return read_json(None, "rulesets/766-2026.json")


def test_bundled_ruleset_is_versioned(raw_ruleset):
    parsed = parse_ruleset(raw_ruleset)
    assert parsed.id == "766-2026.1" and str(parsed.effective_from) == "2026-01-01"
    assert len([i for i in parsed.indicators if not i.tracking_only]) == 21
    assert len([i for i in parsed.indicators if i.tracking_only]) == 2


def test_loader_rejects_maxima_not_summing_to_100(raw_ruleset):
    broken = copy.deepcopy(raw_ruleset)
    broken["indicators"][0]["max"] = 7
    with pytest.raises(RulesetError, match="sum to 101"):
        parse_ruleset(broken)


def test_loader_rejects_unknown_code(raw_ruleset):
    broken = copy.deepcopy(raw_ruleset)
    broken["indicators"][0]["code"] = "PUBLISH_EARLY"
    with pytest.raises(RulesetError, match=r"indicators\[0\].code: unknown indicator code 'PUBLISH_EARLY'"):
        parse_ruleset(broken)


@pytest.mark.parametrize(("field", "value", "message"), [
    ("target", 0, "target must be positive"),
    ("zero_over_zero", "half", "zero_over_zero must be"),
    ("group", "XYZ", "unknown group"),
    ("max", "six", "must be a number"),
])
def test_loader_rejects_bad_fields(raw_ruleset, field, value, message):
    broken = copy.deepcopy(raw_ruleset)
    broken["indicators"][3][field] = value
    with pytest.raises(RulesetError, match=message):
        parse_ruleset(broken)


def test_loader_rejects_bad_switch_and_missing_id(raw_ruleset):
    broken = copy.deepcopy(raw_ruleset)
    broken["lifecycle"]["compare"] = "vibes"
    with pytest.raises(RulesetError, match=r"lifecycle\.compare"):
        parse_ruleset(broken)
    del broken["id"]
    with pytest.raises(RulesetError, match="missing `id`"):
        parse_ruleset(broken)


def test_weights_are_data_not_code(raw_ruleset):
    changed = copy.deepcopy(raw_ruleset)
    for indicator in changed["indicators"]:
        if indicator["code"] == "ONLINE_DOSSIER_SHARE":
            indicator["target"] = 1
    ruleset = parse_ruleset(changed)
    assert float(ruleset.score({"ONLINE_DOSSIER_SHARE": (1, 2)}).indicators["ONLINE_DOSSIER_SHARE"]) == 3


def test_score_rejects_codes_not_in_the_ruleset(ruleset):
    with pytest.raises(RulesetError, match="NOPE"):
        ruleset.score({"NOPE": (1, 1)})


def test_json_round_trip_of_a_card(ruleset):
    body = orjson.loads(orjson.dumps(ruleset.score({"ON_TIME": (742, 756)}).as_json()))
    assert body["indicators"]["ON_TIME"] == 19.63 and set(body["groups"]) == {"CKMB", "TDGQ", "CLGQ", "TTTT",
                                                                              "MDSH", "MDHL"}
