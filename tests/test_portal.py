"""`chiso766 portal check|rank` on trimmed copies of real portal publications (tests/fixtures/portal,
source and date in its README): every published number and rank is reproduced; a changed weight, a
changed rank, N/A counts and malformed files are each reported, never a traceback."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
from typer.testing import CliRunner

from cli.app import app
from scoring.portal import check_publication, parse_publication, rank_publication

FIXTURES = Path(__file__).parent / "fixtures" / "portal"
SNAPSHOT = FIXTURES / "snapshot-H15-2026-10-06.json"
PROVINCES = FIXTURES / "provinces-2026-10-06.json"
runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, list(args))


def test_check_reproduces_every_published_number_of_the_snapshot():
    result = invoke("portal", "check", str(SNAPSHOT), "--json")
    assert result.exit_code == 0, result.output
    body = orjson.loads(result.stdout)
    # Province + 5 units: 17 scored indicators each; 5 recomputable groups each (CLGQ is a bare score).
    assert body["checked"] == {"indicator": 102, "group": 30, "total": 6, "band": 6}
    assert body["differences"] == [] and body["problems"] == []
    assert any("CLGQ" in note for note in body["notes"])


def test_check_and_rank_reproduce_the_province_table_ties_included():
    assert invoke("portal", "check", str(PROVINCES)).exit_code == 0
    result = invoke("portal", "rank", str(PROVINCES), "--json")
    assert result.exit_code == 0, result.output
    body = orjson.loads(result.stdout)
    assert body["mismatches"] == []
    ranks = {row["code"]: row for row in body["units"]}
    assert len(ranks) == 34
    # CKMB 8.00 is shared by seven provinces at 25; the next (7.96) is 32. TDGQ 17.73: two at 16.
    assert sorted(code for code, row in ranks.items() if row["group_ranks"]["CKMB"] == 25) == \
        ["H01", "H29", "H36", "H38", "H48", "H50", "H52"]
    assert ranks["H44"]["group_ranks"]["CKMB"] == 32
    assert ranks["H24"]["group_ranks"]["TDGQ"] == ranks["H57"]["group_ranks"]["TDGQ"] == 16
    assert ranks["H15"] == {"code": "H15", "total": 65.08, "rank": 7, "group_ranks": {
        "CKMB": 9, "TDGQ": 18, "CLGQ": 10, "TTTT": 11, "MDSH": 28, "MDHL": 13}}


def test_a_changed_weight_is_the_drift_alarm(tmp_path, ruleset):
    bundled = json.loads((Path(__file__).parents[1] / "scoring" / "rulesets" / "766-2026.json").read_text())
    for indicator in bundled["indicators"]:  # the portal moved one point from 4.3 to 4.1
        if indicator["code"] == "ORIGINAL_RESULT_AVAILABLE":
            indicator["max"] = 7
        if indicator["code"] == "REUSED_DIGITIZED_DATA":
            indicator["max"] = 1
    drifted = tmp_path / "drifted.json"
    drifted.write_text(json.dumps(bundled))
    result = invoke("portal", "check", str(SNAPSHOT), "--json", "--ruleset", str(drifted))
    assert result.exit_code == 1
    moved = {(d["unit"], d["code"]) for d in orjson.loads(result.stdout)["differences"] if d["what"] == "indicator"}
    assert ("H15", "ORIGINAL_RESULT_AVAILABLE") in moved and ("H15.15", "REUSED_DIGITIZED_DATA") in moved


def test_a_changed_published_rank_or_score_is_reported(tmp_path):
    data = json.loads(PROVINCES.read_text())
    data["provinces"][5]["rank"] = 5  # Quảng Ninh published as tied with Tây Ninh
    data["provinces"][0]["totalScore"] = 68.27  # Đồng Tháp's total no longer the sum of its groups
    changed = tmp_path / "changed.json"
    changed.write_text(json.dumps(data))
    ranked = invoke("portal", "rank", str(changed), "--json")
    assert ranked.exit_code == 1
    assert {"unit": "H49", "what": "rank", "code": "total", "published": "5", "recomputed": "6"} in \
        orjson.loads(ranked.stdout)["mismatches"]
    checked = invoke("portal", "check", str(changed), "--json")
    assert checked.exit_code == 1
    assert orjson.loads(checked.stdout)["differences"] == [
        {"unit": "H20", "what": "total", "code": "total", "published": "68.27", "recomputed": "68.26"}]


def test_not_applicable_counts_follow_the_zero_over_zero_rule(ruleset):
    publication = parse_publication(json.loads(SNAPSHOT.read_text()), ruleset)
    police = next(unit for unit in publication.units if unit.code == "H15.39")
    assert police.indicators["ELECTRONIC_CERTIFIED_COPY"].counts is None  # null/null: full marks
    assert police.indicators["DOSSIER_SYNC"].counts == (0, 0)  # 0/0: zero
    assert check_publication(publication, ruleset).differences == []
    # A trimmed snapshot does not rank its units against the published ranks.
    assert rank_publication(publication).mismatches == [] and rank_publication(publication).notes


def test_malformed_publications_are_one_clear_line(tmp_path):
    cases = {"not-json.json": b"{", "array.json": b"[]", "unknown.json": b'{"hello": 1}',
             "bad-unit.json": b'{"provinces": [{"departmentCode": 7}]}'}
    for name, content in cases.items():
        path = tmp_path / name
        path.write_bytes(content)
        result = invoke("portal", "check", str(path))
        assert result.exit_code == 2, (name, result.output)
        assert "error:" in result.output and "Traceback" not in result.output
    assert invoke("portal", "check", str(tmp_path / "missing.json")).exit_code == 2


def test_unusable_values_and_unknown_codes_are_listed_not_fatal(tmp_path):
    data = json.loads(SNAPSHOT.read_text())
    metrics = data["units"][0]["indicatorDetails"]["digitized"]["metrics"]
    metrics[0]["numerator"] = "465"
    metrics.append({"code": "NEW_PORTAL_METRIC", "numerator": 1, "denominator": 2, "score": 1})
    odd = tmp_path / "odd.json"
    odd.write_text(json.dumps(data))
    result = invoke("portal", "check", str(odd), "--json")
    assert result.exit_code == 1
    problems = orjson.loads(result.stdout)["problems"]
    assert any("NEW_PORTAL_METRIC" in p for p in problems) and any("a count must be" in p for p in problems)


def edited(tmp_path, source: Path, edit) -> Path:
    data = json.loads(source.read_text())
    edit(data)
    path = tmp_path / f"edited-{source.name}"
    path.write_text(json.dumps(data))
    return path


BAD_SHAPES = {
    "no units": (PROVINCES, lambda d: d.update(provinces=[]), "the file has no units"),
    "impossible date": (SNAPSHOT, lambda d: d.update(date="2026-13-01"), "date: expected a day as YYYY-MM-DD"),
    "no date": (PROVINCES, lambda d: d.pop("date"), "date: missing"),
    "units not a list": (SNAPSHOT, lambda d: d.update(units="x"), "units: expected a list of units"),
    "bad collection time": (SNAPSHOT, lambda d: d.update(timestamp="yesterday"), "timestamp: expected an ISO-8601"),
}


def test_a_file_of_the_wrong_shape_is_one_line_and_exit_2_for_every_command(tmp_path):
    for name, (source, edit, message) in BAD_SHAPES.items():
        path = edited(tmp_path, source, edit)
        # `load` refuses before it looks for Redis: the same line, whatever the store.
        for command in (["check"], ["rank"], ["rank", "--json"], ["load", "--namespace", "never-written"]):
            result = invoke("portal", *command, str(path))
            assert result.exit_code == 2 and message in result.output, (name, command, result.output)
            assert "Traceback" not in result.output and result.output.count("\n") == 1, (name, result.output)


def test_unusable_rows_are_warned_counted_and_fail_check_and_rank_alike(tmp_path):
    def duplicate(data):
        data["provinces"].append(dict(data["provinces"][0]))

    def no_scores(data):
        del data["provinces"][1]["scores"]

    def bad_score(data):
        data["provinces"][1]["scores"]["CKMB"] = "x"

    for edit, warning in [(duplicate, "H20 is listed twice, the first kept"), (no_scores, "H19 has no `scores`"),
                          (bad_score, "a score must be a number, got 'x'")]:
        path = edited(tmp_path, PROVINCES, edit)
        checked = invoke("portal", "check", str(path), "--lang", "en")
        assert checked.exit_code == 1 and warning in checked.output, checked.output
        assert "every published number is reproduced" not in checked.output
        assert "1 published value could not be used" in checked.output and "(34 units)" in checked.output
        ranked = invoke("portal", "rank", str(path), "--lang", "en")
        assert ranked.exit_code == 1 and warning in ranked.output, ranked.output
        assert "1 published value could not be used" in ranked.output
        body = orjson.loads(invoke("portal", "rank", str(path), "--json").stdout)
        assert len(body["units"]) == 34


def test_labels_are_vietnamese_by_default_and_english_on_request():
    vi = invoke("portal", "rank", str(PROVINCES))
    assert vi.exit_code == 0 and "Hạng công bố" in vi.output and "published #" not in vi.output
    assert "0 hạng khác với hạng công bố" in vi.output
    en = invoke("portal", "rank", str(PROVINCES), "--lang", "en")
    assert "published #" in en.output and "0 ranks differ from the published ones" in en.output
    trimmed = invoke("portal", "rank", str(SNAPSHOT))  # the note about a trimmed file comes before the table
    assert trimmed.output.index("ghi chú:") < trimmed.output.index("Hạng công bố")
    assert "mọi số công bố đều tính lại đúng" in invoke("portal", "check", str(PROVINCES)).output
