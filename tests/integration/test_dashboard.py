"""The dashboard in real headless Chromium (Debian's chromium + chromium-driver, driven by Selenium):
events published to Kafka show up on the open page without a reload. Screenshots of the leaderboard
and of a unit page are saved to artifacts/ (CHISO766_ARTIFACTS)."""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import pytest

from streams import replay
from tests.integration.conftest import WorkerProcess, settings_for
from tests.integration.test_read_side import start_api, stop_api

pytestmark = pytest.mark.integration
ARTIFACTS = Path(os.environ.get("CHISO766_ARTIFACTS", Path(__file__).resolve().parents[2] / "artifacts"))


@pytest.fixture
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not binary or not driver:
        pytest.fail("the browser test needs Debian's chromium and chromium-driver: bash deploy/setup-system.sh "
                    "--browser installs them")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000",
                     "--lang=vi-VN"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # the console: CSP violations land there
    session = webdriver.Chrome(service=Service(driver), options=options)
    try:
        yield session
    finally:
        session.quit()


def vietnamese(number: float) -> str:
    return f"{number:.2f}".replace(".", ",")


def test_the_dashboard_shows_new_scores_live_and_a_unit_page(local_stack, history_file, tmp_path, browser):
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def waiting(seconds: float) -> WebDriverWait:
        # The live page redraws itself on every score update; an element found a moment ago may be gone.
        return WebDriverWait(browser, seconds, ignored_exceptions=(StaleElementReferenceException,))

    settings = settings_for(local_stack, "browser")
    lines = history_file.read_bytes().splitlines()
    cut = len(lines) * 3 // 5
    worker = WorkerProcess(settings, tmp_path)
    server = None
    try:
        first = asyncio.run(replay.publish(settings, lines[:cut]))
        asyncio.run(replay.wait_for(settings, first, 300, worker=worker.process))
        server = start_api(settings.namespace, tmp_path / "api.log")
        page = server.get("/")
        assert "'self'" in page.headers["content-security-policy"] and "frame-ancestors 'none'" in \
            page.headers["content-security-policy"] and page.headers["x-content-type-options"] == "nosniff"
        browser.get(f"{server.url}/")
        wait = waiting(20)
        wait.until(lambda page: page.find_elements(By.CSS_SELECTOR, "#leaderboard tbody tr"))
        wait.until(lambda page: "on" in page.find_element(By.ID, "live").get_attribute("class"))
        assert browser.find_element(By.CSS_SELECTOR, "h1").text == "Chỉ số 766"
        code, shown, period = browser.execute_script(  # read in one step: the page may redraw meanwhile
            "const row = document.querySelector('#leaderboard tbody tr');"
            "return [row.dataset.code, row.querySelector('.total-cell').textContent,"
            " document.getElementById('period').value];")
        before = server.get(f"/api/units/{code}", period=period).json()["total"]
        assert shown == vietnamese(before)

        # One broken line: the worker refuses it, and the unit page's data-quality panel counts it.
        second = asyncio.run(replay.publish(settings, [*lines[cut:], b"{broken"]))
        asyncio.run(replay.wait_for(settings, second, 300, worker=worker.process))
        after = server.get(f"/api/units/{code}", period=period).json()["total"]
        assert after != before, "the rest of the history moves the score"
        marker = browser.execute_script("window.notReloaded = true; return window.notReloaded;")
        assert marker
        cell = f"#leaderboard tr[data-code='{code}'] .total-cell"
        waiting(15).until(
            lambda page: page.find_element(By.CSS_SELECTOR, cell).text == vietnamese(after))
        assert browser.execute_script("return window.notReloaded === true;"), "the page was reloaded"
        resources = browser.execute_script(
            "return performance.getEntriesByType('resource').map(entry => entry.name);")
        assert all(name.startswith(server.url) for name in resources), resources  # no CDN, no remote asset
        # Under the same-origin CSP the six group columns are filled (no inline style needed).
        groups = browser.execute_script(
            "return [...document.querySelectorAll(arguments[0])].map(cell => cell.textContent.trim());",
            f"#leaderboard tr[data-code='{code}'] td.group-cell")
        assert len(groups) == 6 and all(groups), groups
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(ARTIFACTS / "leaderboard.png"))

        browser.execute_script("document.querySelector(arguments[0]).click();",
                               f"#leaderboard tr[data-code='{code}'] a")  # find and click in one step
        wait.until(lambda page: page.find_elements(By.ID, "unit-title"))
        wait.until(lambda page: page.find_elements(By.CSS_SELECTOR, "#indicators tbody tr"))
        wait.until(lambda page: page.find_element(By.ID, "unit-total").text == vietnamese(after))
        meters, indicators, filled = browser.execute_script(
            "return [document.querySelectorAll('.meter').length,"
            " document.querySelectorAll('#indicators tbody tr').length,"
            " [...document.querySelectorAll('.meter rect.fill')].map(fill => fill.getAttribute('width'))];")
        assert meters == 6 and indicators == len(server.get("/api/ruleset").json()["indicators"])
        # The meters are SVG drawn from attributes (the CSP forbids inline styles): each has its width.
        assert len(filled) == 6 and all(0 <= float(width) <= 100 for width in filled), filled
        browser.save_screenshot(str(ARTIFACTS / "unit.png"))

        # The data-quality panel of the province: its findings (pooled over every unit below it,
        # which the simulated history gives some) and the namespace's refused events.
        browser.execute_script("location.hash = '#/unit/H15';")
        wait.until(lambda page: page.find_element(By.ID, "unit-title").text.startswith(
            server.get("/api/units/H15", period=period).json()["name"]))
        quality = server.get("/api/quality", period=period, unit="H15").json()
        own = quality["units"][0]["findings"]
        assert own, "the simulated province has data-quality findings"
        wait.until(lambda page: page.find_elements(By.CSS_SELECTOR, "#quality-findings tbody tr"))
        title, rows, refused = browser.execute_script(
            "const panel = document.getElementById('quality');"
            "return [panel.querySelector('h3').textContent,"
            " [...panel.querySelectorAll('#quality-findings tbody tr')].map(row => row.textContent),"
            " [...panel.querySelectorAll('#quality-rejected tbody tr')].map(row => row.textContent)];")
        assert title == "Chất lượng dữ liệu"
        assert len(rows) == len(own)
        for row, (problem, count) in zip(rows, own.items(), strict=True):
            assert quality["labels"][problem]["vi"] in row and problem in row and f"{count:,}".replace(",", ".") in row
        assert quality["rejected_all_time"] == {"not_json": 1}
        assert len(refused) == 1 and "Không phải JSON" in refused[0]
        browser.execute_script("document.getElementById('quality').scrollIntoView();")
        browser.save_screenshot(str(ARTIFACTS / "quality.png"))

        browser.find_element(By.ID, "lang").click()
        wait.until(lambda page: page.find_element(By.CSS_SELECTOR, "h1").text == "Decision 766 index")
        # The header switches at once; the unit page is redrawn once its five requests are back.
        english = quality["labels"][next(iter(own))]["en"]
        wait.until(lambda page: all(text in page.page_source for text in ("Indicators", "Data quality", english)))
        console = [entry["message"] for entry in browser.get_log("browser")]
        assert not [line for line in console if "Content Security Policy" in line or "Refused to" in line], console
    finally:
        if server:
            stop_api(server)
        worker.stop()


def test_the_office_view_names_bands_why_rollups_freshness_and_phone_width(office_namespace, local_stack, tmp_path,
                                                                            browser):
    """What a provincial office reads, on a namespace whose worker has stopped (replay --wait ended it)."""
    import redis
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    def waiting(seconds: float = 20) -> WebDriverWait:
        return WebDriverWait(browser, seconds, ignored_exceptions=(StaleElementReferenceException,))

    server = start_api(office_namespace, tmp_path / "api.log")
    try:
        browser.get(f"{server.url}/")
        waiting().until(lambda page: page.find_elements(By.CSS_SELECTOR, "#leaderboard tbody tr"))
        # Periods by their human names, in calendar order.
        options = browser.execute_script(
            "return [...document.querySelectorAll('#period option')].map(o => [o.value, o.textContent]);")
        labels = dict(options)
        assert labels["year:2026"] == "Năm 2026" and labels["month:2026-05"] == "Tháng 5/2026"
        assert labels["quarter:2026-Q2"] == "Quý II/2026"
        assert [value for value, _ in options] == server.get("/api/periods").json()["periods"]
        months = [value for value, _ in options if value.startswith("month:")]
        assert months == sorted(months)
        assert browser.find_element(By.ID, "group").get_attribute("value") == "agencies:H15"
        assert "Sở, ban, ngành tỉnh" in browser.find_element(By.ID, "board-title").text

        # Six named group columns, total, a coloured band, sortable.
        headers = browser.execute_script(
            "return [...document.querySelectorAll('#leaderboard thead th')].map(th => th.textContent.trim());")
        for group in server.get("/api/ruleset").json()["groups"]:
            assert any(header.startswith(group["name_vi"]) for header in headers), group
        assert "Xếp loại" in headers and "Tổng điểm" in headers
        bands = browser.execute_script(
            "return [...document.querySelectorAll('#leaderboard .band')].map(b => [b.textContent,"
            " getComputedStyle(b).backgroundColor]);")
        assert bands and {text for text, _ in bands} <= {"Xuất sắc", "Tốt", "Khá", "Trung bình", "Yếu"}
        assert all(colour not in ("rgba(0, 0, 0, 0)", "rgb(107, 119, 133)") for _, colour in bands)
        totals = lambda: browser.execute_script(  # noqa: E731 - read in one step: the page may redraw
            "return [...document.querySelectorAll('#leaderboard .total-cell')].map(c => c.textContent);")
        by_rank = totals()
        click_total = "document.querySelector('#leaderboard th[data-sort=\"total\"]').click();"
        browser.execute_script(click_total)  # largest first
        waiting().until(lambda page: "↓" in page.find_element(By.CSS_SELECTOR, "th[data-sort='total']").text)
        descending = totals()
        assert descending == by_rank
        browser.execute_script(click_total)  # then smallest first
        waiting().until(lambda page: totals() == list(reversed(descending)))
        as_numbers = [float(text.replace(".", "").replace(",", ".")) for text in descending]
        assert as_numbers == sorted(as_numbers, reverse=True)
        assert browser.execute_script("return document.querySelectorAll('[style]').length;") == 0  # CSP-friendly
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(ARTIFACTS / "office-leaderboard.png"))

        # The freshness banner: no worker runs, so the figures stopped at "as of", and the badge is not live.
        waiting().until(lambda page: page.find_element(By.ID, "freshness").is_displayed())
        assert "Không có tiến trình xử lý nào đang chạy" in browser.find_element(By.ID, "freshness").text
        assert browser.find_element(By.ID, "live").text != "Trực tiếp"

        # The province page rolls up its units' overdue dossiers; "why" links to them.
        client = redis.Redis.from_url(local_stack.redis_url)
        held = sum(client.zcard(key) for key in client.scan_iter(f"{office_namespace}:overdue:unit:*"))
        assert held > 0
        browser.execute_script("location.hash = '#/unit/H15';")
        waiting().until(lambda page: page.find_elements(By.CSS_SELECTOR, "#why-table tbody tr"))
        waiting().until(lambda page: page.find_elements(By.CSS_SELECTOR, "#overdue-table tbody tr"))
        shown = browser.execute_script("return document.querySelectorAll('#overdue-table tbody tr').length;")
        assert shown == min(50, held)
        view = browser.find_element(By.ID, "view").text
        for code in ("ON_TIME", "PUBLISH_ON_TIME", "DOSSIER_RECEIVING_SATISFACTION"):
            assert code not in view  # indicators by their official names, not API codes
        assert "Giải quyết hồ sơ đúng hạn" in view and "Vì sao mất điểm" in view
        link = browser.find_element(By.CSS_SELECTOR, "#why-table .cause-link")
        assert link.text == f"{held} hồ sơ quá hạn" or link.text.endswith("hồ sơ quá hạn")
        browser.execute_script("arguments[0].click();", link)
        waiting().until(lambda page: page.execute_script("return location.hash;") == "#/unit/H15/overdue")
        waiting().until(lambda page: page.find_elements(By.CSS_SELECTOR, "#overdue-table tbody tr"))
        browser.save_screenshot(str(ARTIFACTS / "office-unit.png"))

        # One thread per dossier in the alert feed.
        threads = browser.execute_script(
            "return [...document.querySelectorAll('#alerts li')].map(li => li.dataset.dossier);")
        assert len(threads) == len(set(threads))

        # A phone: nothing wider than the screen, on the board and on a unit page.
        browser.set_window_size(390, 844)
        for hash_path in ("#/", "#/unit/H15"):
            browser.execute_script(f"location.hash = '{hash_path}';")
            waiting().until(lambda page: page.find_elements(By.CSS_SELECTOR, "#leaderboard, #why"))
            width, inner = browser.execute_script("return [document.documentElement.scrollWidth, window.innerWidth];")
            assert width <= inner, (hash_path, width, inner)
        browser.save_screenshot(str(ARTIFACTS / "office-phone.png"))
    finally:
        stop_api(server)
