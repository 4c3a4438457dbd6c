"""The console in a real browser: headless Chromium (Debian's /usr/bin/chromium) driven by Playwright, against
a real engine trading on the simulated gateway. Screenshots of each page go to the test's tmp dir (and to
``$COPILOT_QUANT_CONSOLE_SHOTS`` when set, which is how docs/console/ was made)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from copilot_quant.console import ConsoleServer, ServeOptions

from tests.console.engine_fixtures import STRATEGY, LiveConsole, live_console
from tests.live.conftest import Stepper, wait_until

CHROMIUM = Path("/usr/bin/chromium")

pytestmark = [
    pytest.mark.network,
    pytest.mark.browser,
    pytest.mark.timeout(180),
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium: apt-get install -y chromium"),
]

sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture
def browser() -> Iterator[object]:
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=["--no-sandbox"], headless=True)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def live(gateway, tmp_path: Path) -> Iterator[LiveConsole]:
    yield from live_console(gateway, tmp_path, client_id=181)


def _shot(page, tmp_path: Path, name: str) -> None:
    target = tmp_path / "screenshots" / f"{name}.png"
    target.parent.mkdir(exist_ok=True)
    page.screenshot(path=str(target), full_page=True)
    extra = os.environ.get("COPILOT_QUANT_CONSOLE_SHOTS")
    if extra:
        Path(extra).mkdir(parents=True, exist_ok=True)
        shutil.copy(target, Path(extra) / target.name)


def _fill_rows(page) -> int:
    return int(page.locator("#fills tr.fill").count())


def test_fills_appear_without_reload_the_curve_grows_and_halt_halts_with_the_reason(
    browser, live: LiveConsole, tmp_path: Path
) -> None:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.set_default_timeout(30_000)
    page.goto(live.server.url_with_token)
    page.wait_for_selector("#stream.live")
    page.goto(live.server.url + f"strategy/{STRATEGY}")
    page.wait_for_selector("#stream.live")
    page.evaluate("window.__sameDocument = true")  # gone if the page reloads
    before = _fill_rows(page)
    points_before = int(page.locator("#curve").get_attribute("data-count") or 0)
    with Stepper(live.gateway, 0.15):  # the curve is sampled as the market moves: wait while it moves
        page.wait_for_function(f"document.querySelectorAll('#fills tr.fill').length > {before + 1}")
        page.wait_for_function(
            f"Number(document.querySelector('#curve').dataset.count) > {points_before + 1}"
        )
    assert page.evaluate("window.__sameDocument") is True  # updated in place, not reloaded
    assert page.locator("#curve .main-svg").count() >= 1  # plotly drew it (served offline)
    _shot(page, tmp_path, "strategy")

    page.goto(live.server.url)
    page.fill("#who", "Grace")
    page.dispatch_event("#who", "change")
    answers = iter(["browser test: spread too wide", ""])
    page.on("dialog", lambda d: d.accept(next(answers, "")) if d.type == "prompt" else d.accept())
    page.click("button[data-action=halt]")
    page.wait_for_selector("#halt-reason")
    assert "spread too wide" in page.inner_text("#halt-reason")
    assert "Grace" in page.inner_text("#halt-reason")
    assert wait_until(lambda: "spread too wide" in (live.engine.halted or ""))
    assert live.kill_file.exists()  # the same machinery as `copilot-quant kill`
    _shot(page, tmp_path, "overview-halted")

    page.goto(live.server.url + "journal?table=events")
    page.wait_for_selector("#journal-rows")
    assert "console" in page.inner_text("#journal-rows")
    _shot(page, tmp_path, "journal")
    page.goto(live.server.url + "reconcile")
    assert "start:" in page.inner_text("#reconcile")
    _shot(page, tmp_path, "reconcile")


def test_a_dismissed_confirmation_does_nothing(browser, live: LiveConsole) -> None:
    page = browser.new_page()
    page.set_default_timeout(30_000)
    page.goto(live.server.url_with_token)
    page.fill("#who", "Grace")
    page.on("dialog", lambda d: d.dismiss())
    page.click("button[data-action=flatten]")
    page.wait_for_timeout(500)
    assert live.engine.halted is None
    assert not live.kill_file.exists()


def test_without_the_token_the_browser_gets_401(browser, live: LiveConsole) -> None:
    page = browser.new_page()
    response = page.goto(live.server.url)
    assert response is not None
    assert response.status == 401
    response = page.goto(live.server.url + "?token=wrong")
    assert response is not None
    assert response.status == 401


def test_the_page_recovers_by_itself_when_the_console_restarts(
    browser, journal_file: Path, tmp_path: Path
) -> None:
    options = ServeOptions(port=0, token_file=tmp_path / "token")
    first = ConsoleServer.for_journal(journal_file, options).start()
    port = first.port
    page = browser.new_page()
    page.set_default_timeout(30_000)
    try:
        page.goto(first.url_with_token)
        page.wait_for_selector("#stream.live")
        first.stop()
        page.wait_for_selector("#stream.down")
        again = ConsoleServer.for_journal(
            journal_file, ServeOptions(port=port, token_file=tmp_path / "token")
        )
        again.start()
        try:
            page.wait_for_selector("#stream.live")  # reconnected, same cookie, no reload by the user
            assert page.locator("#events").count() == 1
            _shot(page, tmp_path, "overview-journal")
        finally:
            again.stop()
    finally:
        first.stop()


def test_the_page_recovers_by_itself_when_the_engine_restarts(browser, gateway, tmp_path: Path) -> None:
    first = live_console(gateway, tmp_path, client_id=182)
    running = next(first)
    port = running.server.port
    page = browser.new_page()
    page.set_default_timeout(30_000)
    page.goto(running.server.url_with_token)
    page.wait_for_selector("#stream.live")
    assert "running" in page.inner_text("#run-state")
    first.close()  # the engine stops, its console with it
    page.wait_for_selector("#stream.down")
    before = page.evaluate("document.body.dataset.refreshed || ''")
    second = live_console(gateway, tmp_path, client_id=183, port=port)  # a new engine process, same port
    again = next(second)
    try:
        page.wait_for_selector("#stream.live")  # the page reconnected ...
        page.wait_for_function(f"(document.body.dataset.refreshed || '') !== '{before}'")  # ... and re-read
        assert "running" in page.inner_text("#run-state")
        assert again.engine.is_running()
    finally:
        second.close()
