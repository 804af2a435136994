"""The portal pages end to end on the real stack: a replayed province, a "published" snapshot derived
from it (dossiers never synced left out, re-appointed dues honoured), `portal load`, `reconcile --store`
and `plan --store`; then /api/reconcile, /api/units/{code}/plan, the dashboard's "Đối soát với Cổng
DVCQG" page and "Cần làm gì để …" panel in headless Chromium (screenshots in artifacts/), and the
monthly notice's plan sheet."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import replace
from pathlib import Path

import orjson
import pytest
import redis

from schemas import decode_message
from schemas import events as ev
from scoring.engine import Engine
from scoring.periods import parse_period
from scoring.report import report_json
from streams import replay
from support.publish import portal_snapshot
from tests.integration.conftest import WorkerProcess, chiso766, settings_for
from tests.integration.test_dashboard import ARTIFACTS, browser  # noqa: F401 - the browser fixture
from tests.integration.test_read_side import start_api, stop_api

pytestmark = pytest.mark.integration
YEAR, NOW = "year:2026", "2026-12-31T00:00:00+07:00"


def test_reconcile_and_plan_pages(local_stack, history_file, tmp_path, browser, ruleset, calendar):  # noqa: F811
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    settings = settings_for(local_stack, "portalpages")
    lines = history_file.read_bytes().splitlines()
    worker = WorkerProcess(settings, tmp_path)
    server = None
    try:
        token = asyncio.run(replay.publish(settings, lines))
        asyncio.run(replay.wait_for(settings, token, 300, worker=worker.process))
        client = redis.Redis.from_url(local_stack.redis_url)
        as_of = client.hget(f"{settings.namespace}:meta:{YEAR}", "as_of").decode()

        events = [e for line in lines for e in decode_message(line) if isinstance(e, ev.EventBase)]
        synced = {e.dossier_code for e in events if isinstance(e, ev.PortalSyncAcknowledged)}
        portal = Engine(replace(ruleset, lifecycle=replace(ruleset.lifecycle, score_against_due="reappointed")),
                        calendar)
        portal.load(e for e in events if not isinstance(e, ev.DossierEvent) or e.dossier_code in synced)
        moment = int(portal.latest_event_at or 0)
        report = report_json(YEAR, moment, ruleset, portal.score_units(parse_period(YEAR), moment))
        published = tmp_path / "published.json"
        published.write_bytes(orjson.dumps(portal_snapshot(report["units"], "H15", as_of[:10], as_of, 2026,
                                                           {i.code: i.group for i in ruleset.indicators})))
        namespace = settings.namespace
        chiso766("portal", "load", str(published), "--namespace", namespace)
        chiso766("reconcile", str(history_file), "--portal", str(published), "--store", namespace, "--format", "json",
                 "--now", NOW)
        chiso766("plan", str(history_file), "--unit", "all", "--period", YEAR, "--target", "next-band", "--store",
                 namespace, "--now", NOW)
        chiso766("plan", str(history_file), "--unit", "all", "--period", "month:2026-07", "--target", "next-band",
                 "--store", namespace, "--now", NOW)

        # From the projection instead of the history: the same comparison, no explanations, and it says why.
        projected = orjson.loads(chiso766("reconcile", "--portal", str(published), "--namespace", namespace,
                                          "--format", "json", "--unit", "H15").stdout)
        assert projected["units"][0]["explanations"] == [] and "HISTORY" in projected["notes"][0]
        assert projected["units"][0]["our_total"] == orjson.loads(
            client.hget(f"{namespace}:scores:{YEAR}", "H15"))["total"]
        server = start_api(namespace, tmp_path / "api.log")
        row = server.get("/api/reconcile", unit="H15", period=YEAR).json()
        assert row["published_total"] == report["units"][0]["total"]
        kinds = {item["kind"]: item for item in row["explanations"]}
        assert kinds["unsynced"]["count"] > 0 and kinds["unsynced"]["points"]["DOSSIER_SYNC"] > 0
        assert "reappointed_due" in kinds
        # Without a stored reconciliation: the published against the projected scores, the gap not explained.
        client.hdel(f"{namespace}:reconcile:{YEAR}", "H15.02")
        bare = server.get("/api/reconcile", unit="H15.02", period=YEAR).json()
        assert bare["explanations"] == [] and bare["notes"] and bare["indicators"]
        assert server.get("/api/reconcile", unit="H99", period=YEAR).status_code == 404
        plans = {code.decode(): orjson.loads(value)
                 for code, value in client.hgetall(f"{namespace}:plans:{YEAR}").items()}
        unit = next(p["unit"] for p in plans.values() if p["actions"] and p["reachable"])
        plan = server.get(f"/api/units/{unit}/plan", period=YEAR).json()
        assert plan == plans[f"{unit}|next-band"] and plan["total_after"] >= plan["target_total"]
        missing = server.get(f"/api/units/{unit}/plan", period=YEAR, target="rank:1")
        assert missing.status_code == 404 and "chiso766 plan" in missing.json()["detail"]

        wait = WebDriverWait(browser, 20, ignored_exceptions=(StaleElementReferenceException,))
        browser.get(f"{server.url}/#/reconcile/H15")
        wait.until(lambda page: page.find_elements(By.CSS_SELECTOR, "#reconcile-indicators tbody tr"))
        wait.until(lambda page: page.find_elements(By.CSS_SELECTOR, "#explanations li"))
        assert browser.find_element(By.ID, "reconcile-title").text.startswith("Đối soát với Cổng DVCQG")
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(ARTIFACTS / "reconcile.png"))
        browser.execute_script(f"location.hash = '#/unit/{unit}';")
        wait.until(lambda page: page.find_elements(By.CSS_SELECTOR, "#plan-actions tbody tr"))
        shown = browser.execute_script("return [...document.querySelectorAll('#plan-actions tbody tr')]"
                                       ".map(row => row.children[2].textContent);")
        assert shown == [action["dossier"] for action in plan["actions"]]
        assert browser.find_element(By.CSS_SELECTOR, "#plan-panel h3").text.startswith("Cần làm gì để")
        browser.execute_script("document.getElementById('plan-panel').scrollIntoView();")
        browser.save_screenshot(str(ARTIFACTS / "plan.png"))
        styled = browser.execute_script("return [...document.querySelectorAll('#plan-panel [style], "
                                        "#view script')].length;")
        assert styled == 0  # CSP-friendly: no inline styles or scripts in the new views

        from openpyxl import load_workbook

        notice = tmp_path / "notice.xlsx"
        chiso766("export", "--period", "month:2026-07", "--unit", "H15", "--format", "xlsx", "--out", str(notice),
                 "--namespace", namespace)
        sheet = list(load_workbook(notice)["Kế hoạch lên hạng"].iter_rows(min_row=3, values_only=True))
        stored = {code.decode(): orjson.loads(value)
                  for code, value in client.hgetall(f"{namespace}:plans:month:2026-07").items()}
        assert {row[0]: row[6] for row in sheet} == {p["unit"]: p["total_after"] for p in stored.values()}
    finally:
        if server:
            stop_api(server)
        worker.stop()


def test_a_snapshot_and_a_province_table_are_stored_apart(local_stack):
    """`portal load` of the province table after the snapshot keeps the snapshot's indicator detail,
    each meta hash names its own file, and the API's read takes the most detailed kind first."""
    import redis.asyncio as aioredis

    from api.reconcile import published_row
    from contracts.keys import RedisKeys

    fixtures = Path(__file__).parents[1] / "fixtures" / "portal"
    namespace = f"portal-kinds-{uuid.uuid4().hex[:6]}"
    for name in ("snapshot-H15-2026-10-06.json", "provinces-2026-10-06.json"):
        chiso766("portal", "load", str(fixtures / name), "--namespace", namespace)
    client = redis.Redis.from_url(local_stack.redis_url)
    keys = RedisKeys(namespace)
    snapshot = orjson.loads(client.hget(keys.portal(YEAR, "snapshot"), "H15"))
    table = orjson.loads(client.hget(keys.portal(YEAR, "provinces"), "H15"))
    assert len(snapshot["indicators"]) >= 17 and table["indicators"] == {} and table["rank"] == 7
    assert client.hget(keys.portal_meta(YEAR, "snapshot"), "source") == b"snapshot-H15-2026-10-06.json"
    assert client.hget(keys.portal_meta(YEAR, "provinces"), "source") == b"provinces-2026-10-06.json"
    assert client.hlen(keys.portal(YEAR, "provinces")) == 34 and client.hlen(keys.portal(YEAR, "snapshot")) == 6

    async def read(unit: str):
        reader = aioredis.Redis.from_url(local_stack.redis_url)
        try:
            return await published_row(reader, keys, YEAR, unit)
        finally:
            await reader.aclose()

    raw, meta = asyncio.run(read("H15"))
    assert meta["kind"] == "snapshot" and orjson.loads(raw)["indicators"]
    raw, meta = asyncio.run(read("H20"))  # not in the snapshot: the province table's row
    assert meta["kind"] == "provinces" and orjson.loads(raw)["code"] == "H20"
    assert asyncio.run(read("H99")) is None
    client.delete(*[key for kind in ("snapshot", "provinces")
                    for key in (keys.portal(YEAR, kind), keys.portal_meta(YEAR, kind))])
