"""The equivalence that proves the translation: one seeded simulation as native events (the facts the
sync format carries: `--facts sync`) and as the province's sync calls through `chiso766 import` scores
the same for every unit and every period."""

from __future__ import annotations

import subprocess
import sys

import orjson
import pytest

from ingest.archive import ArchiveImport
from ingest.dvcqg import DossierTranslator
from ingest.privacy import Pseudonymiser
from ingest.secret import DEMO_SECRET
from schemas import decode
from scoring.engine import Engine
from scoring.periods import parse_period
from scoring.report import report_json
from support import resources
from support.dvcqg_sim import sync_archive
from support.simulate import Simulator

PERIODS = ["year:2026", *(f"quarter:2026-Q{q}" for q in range(1, 5)), *(f"month:2026-{m:02d}" for m in range(1, 12))]


def reports(lines) -> dict[str, dict]:
    ruleset = resources.load_ruleset()
    engine = Engine(ruleset, resources.load_calendar())
    engine.load(decode(line) for line in lines)
    moment = engine.latest_event_at
    return {period: report_json(period, moment, ruleset, engine.score_units(parse_period(period), moment))
            for period in PERIODS}


@pytest.fixture(scope="module")
def province(calendar):
    native = list(Simulator(2027, 1500, calendar=calendar, sync_facts_only=True).events())
    archive = list(sync_archive(2027, 1500, calendar=calendar))
    importer = ArchiveImport(DossierTranslator(Pseudonymiser(DEMO_SECRET)))
    imported = [body for line in archive for body in importer.line(line)]
    return native, archive, imported, importer.stats


def test_native_and_imported_sync_calls_score_the_same_for_every_unit_and_period(province):
    native, _, imported, stats = province
    assert not stats.rejected and stats.duplicates > 0
    expected, actual = reports(native), reports(imported)
    for period in PERIODS:
        assert actual[period]["as_of"] == expected[period]["as_of"]
        for want, got in zip(expected[period]["units"], actual[period]["units"], strict=True):
            assert got == want, f"{period} {want['code']}"


def test_the_command_line_import_and_score_agree(province, tmp_path):
    native, archive, _, _ = province
    (tmp_path / "native.jsonl").write_bytes(b"\n".join(native) + b"\n")
    (tmp_path / "calls.jsonl").write_bytes(b"\n".join(archive) + b"\n")

    def run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "cli.app", *args], capture_output=True, check=True)

    done = run("import", str(tmp_path / "calls.jsonl"), "--out", str(tmp_path / "imported.jsonl.gz"), "--demo")
    assert b"dropped: 0" in done.stderr
    scores = [orjson.loads(run("score", str(tmp_path / name), "--period", "year:2026", "--json").stdout)
              for name in ("native.jsonl", "imported.jsonl.gz")]
    assert scores[0] == scores[1]
