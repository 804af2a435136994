"""Nothing schema-valid may crash a run: events generated across the schema's full value ranges go
through decode, the engine (with alerts, as the workers run it), scoring and the data-quality
report, and none of them raises. The same for `chiso766 score` on a file mixing them with good lines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from cli.app import app
from schemas import Rejection, decode_message
from schemas.events import EARLIEST_YEAR, LATEST_YEAR, MAX_MONEY, MAX_TIME_LIMIT
from scoring.alerts import AlertPolicy
from scoring.engine import Engine
from scoring.periods import periods_of
from scoring.quality import check_units

FIRST = datetime(EARLIEST_YEAR, 1, 1, tzinfo=UTC)
LAST = datetime(LATEST_YEAR, 12, 31, 12, tzinfo=UTC)
UNITS = ["H15", "H15.01", "H15.X01", "B01"]
DOSSIERS = ["D1", "D2", "D3"]

offsets = st.integers(-12 * 60, 14 * 60).map(lambda minutes: timezone(timedelta(minutes=minutes)))
instants = st.builds(lambda at, zone: at.astimezone(zone).isoformat(),
                     st.datetimes(min_value=FIRST.replace(tzinfo=None), max_value=LAST.replace(tzinfo=None),
                                  timezones=st.just(UTC)), offsets)
# Most of a history happens within months, so that dossiers meet their dues and each other.
near = st.builds(lambda day, minute: (datetime(2026, 1, 1, tzinfo=UTC) + timedelta(days=day, minutes=minute))
                 .isoformat(), st.integers(-400, 400), st.integers(0, 1439))
moments = st.one_of(near, near, instants)
codes = st.sampled_from(["P1", "P2", "Q-9", "Thủ tục 1", "x" * 128])
limits = st.sampled_from(sorted(MAX_TIME_LIMIT)).flatmap(
    lambda unit: st.builds(lambda value, channel: {"value": value, "unit": unit, **channel},
                           st.floats(min_value=1e-6, max_value=MAX_TIME_LIMIT[unit], allow_nan=False),
                           st.sampled_from([{}, {"channel": 1}, {"channel": 2}, {"channel": 3}])))
hhmm = st.integers(0, 23 * 60 + 59).map(lambda m: f"{m // 60:02d}:{m % 60:02d}")
windows = st.lists(st.integers(0, 24 * 60 - 1), min_size=2, max_size=6, unique=True).map(sorted).map(
    lambda points: [[f"{a // 60:02d}:{a % 60:02d}", f"{b // 60:02d}:{b % 60:02d}"]
                    for a, b in zip(points[::2], points[1::2], strict=False)])


def event(kind: str, **fields) -> st.SearchStrategy[dict]:
    return st.fixed_dictionaries({"event_type": st.just(kind), "event_id": st.uuids().map(str),
                                  "occurred_at": moments, **fields})


dossier = {"dossier_code": st.sampled_from(DOSSIERS)}
petition = {"petition_id": st.sampled_from(["PA1", "PA2"])}
EVENTS = st.one_of(
    event("dossier.received", **dossier, unit_code=st.sampled_from(UNITS), procedure_code=codes,
          channel=st.sampled_from([1, 2, 3]), received_at=moments, due_at=st.one_of(st.none(), moments),
          time_limit=st.one_of(st.none(), limits), fee_amount=st.integers(0, MAX_MONEY),
          officer_id=st.sampled_from(["O1", "O2"])),
    event("dossier.status_changed", **dossier, status=st.integers(1, 10)),
    event("dossier.supplement_requested", **dossier),
    event("dossier.supplement_received", **dossier),
    event("dossier.financial_obligation_requested", **dossier, amount=st.integers(0, MAX_MONEY)),
    event("dossier.payment_made", **dossier, amount=st.integers(0, MAX_MONEY), online=st.booleans()),
    event("dossier.digitisation_recorded", **dossier, components_digitised=st.booleans(),
          result_digitised=st.booleans()),
    event("dossier.result_issued", **dossier, electronic=st.booleans(), returns_document=st.booleans()),
    event("dossier.portal_sync_acknowledged", **dossier),
    event("dossier.rated", **dossier, rating=st.sampled_from(["very_satisfied", "satisfied", "not_satisfied"])),
    event("dossier.processing_step", **dossier, step_id=st.sampled_from(["S1", "S2"]),
          officer_id=st.sampled_from(["O1", "O2"]), started_at=moments, step_due_at=moments,
          completed_at=st.one_of(st.none(), moments)),
    event("dossier.due_reappointed", **dossier, new_due_at=moments, apology_sent_at=st.one_of(st.none(), moments)),
    event("petition.received", **petition, unit_code=st.sampled_from(UNITS),
          about=st.sampled_from(["procedure", "officer", "other"]), received_at=moments,
          dossier_code=st.one_of(st.none(), st.sampled_from(DOSSIERS))),
    *(event(kind, **petition) for kind in ("petition.answered", "petition.reraised", "petition.refused",
                                           "petition.supplement_requested", "petition.awaiting_publication",
                                           "petition.published")),
    event("petition.rated", **petition, satisfied=st.booleans()),
    event("procedure.upserted", procedure_code=codes, name=st.just("n"), authority_unit=st.sampled_from(UNITS),
          handled_by=st.lists(st.sampled_from(UNITS), max_size=3), time_limits=st.lists(limits, max_size=2),
          online_level=st.sampled_from(["none", "partial", "full"]), fee_bearing=st.booleans(),
          returns_document=st.booleans(), decision_date=st.one_of(st.none(), st.dates(FIRST.date(), LAST.date())
                                                                  .map(str)),
          legal_effective_date=st.one_of(st.none(), st.dates(FIRST.date(), LAST.date()).map(str)),
          published_at=st.one_of(st.none(), moments), content_parts_present=st.integers(0, 7)),
    event("unit.upserted", unit_code=st.sampled_from(UNITS), name=st.just("u"),
          level=st.sampled_from(["province", "ministry", "agency", "commune"]),
          parent=st.one_of(st.none(), st.sampled_from(UNITS)), working_hours=st.one_of(st.none(), windows),
          receipt_cutoff=st.one_of(st.none(), hhmm)),
)


def decoded(histories: list[dict]) -> list:
    events = []
    for body in histories:
        for item in decode_message(orjson.dumps(body)):
            assert not isinstance(item, Rejection) or item.reason in ("invalid_value", "impossible_timestamp"), item
            if not isinstance(item, Rejection):
                events.append(item)
    return events


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(EVENTS, min_size=1, max_size=25), st.lists(moments, min_size=1, max_size=3))
def test_the_engine_never_raises_on_schema_valid_events(ruleset, calendar, bodies, as_ofs):
    events = decoded(bodies)
    engine = Engine(ruleset, calendar, alert_policy=AlertPolicy())
    half = len(events) // 2
    for batch, as_of in ((events[:half], as_ofs[0]), (events[half:], as_ofs[-1])):
        engine.apply_batch(batch, int(datetime.fromisoformat(as_of).timestamp()))
    moment = engine.as_of or 0
    for period in periods_of(moment):
        units = engine.score_units(period, moment)
        check_units(engine.dossiers.values(), [], period, moment, engine.context, units)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(st.lists(EVENTS, min_size=1, max_size=20))
def test_score_finishes_on_a_file_mixing_generated_events_with_good_lines(tmp_path, bodies):
    good = [{"event_type": "unit.upserted", "event_id": "u1", "occurred_at": "2026-01-01T00:00:00+07:00",
             "unit_code": "H15", "name": "Tỉnh", "level": "province"},
            {"event_type": "dossier.received", "event_id": "g1", "occurred_at": "2026-03-02T09:00:00+07:00",
             "dossier_code": "GOOD", "unit_code": "H15", "procedure_code": "P1", "channel": 2,
             "received_at": "2026-03-02T09:00:00+07:00", "due_at": "2026-03-09T17:00:00+07:00"}]
    history = tmp_path / "mixed.jsonl"
    history.write_bytes(b"\n".join(orjson.dumps(body) for body in [good[0], *bodies, good[1]]) + b"\n")
    result = CliRunner().invoke(app, ["score", str(history), "--period", "year:2026", "--json",
                                      "--now", "2100-12-31T23:59:00+00:00"])
    assert result.exit_code == 0, result.output
    assert result.exception is None
