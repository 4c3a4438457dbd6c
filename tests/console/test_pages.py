"""The read-only console's pages over HTTP: what a post-mortem shows, filters, CSV export, clear errors."""

from __future__ import annotations

import csv
import io
import json
import re

from copilot_quant.console import ConsoleServer

from tests.console.conftest import http


def _get(server: ConsoleServer, path: str):
    return http(server.url + path.lstrip("/"), token=server.token.value)


def test_the_overview_says_halted_and_why_from_the_journal_alone(readonly_console: ConsoleServer) -> None:
    page = _get(readonly_console, "/")
    assert page.status == 200
    assert "HALTED" in page.body
    assert "test halt" in page.body
    assert "journal (read-only)" in page.body
    overview = _get(readonly_console, "/api/overview").json()
    assert isinstance(overview, dict)
    assert overview["mode"] == "journal"
    assert overview["counts"]["fills"] == 3


def test_the_strategy_page_carries_its_pnl_curve_and_fills(readonly_console: ConsoleServer) -> None:
    page = _get(readonly_console, "/strategy/SmaCross")
    assert page.status == 200
    found = re.search(r'data-points="([^"]*)"', page.body)
    assert found is not None
    points = json.loads(found.group(1).replace("&#34;", '"').replace("&quot;", '"'))
    assert [round(p[1], 6) for p in points] == [0.0, 10.0, 10.0]
    assert page.body.count('class="fill"') == 3
    assert _get(readonly_console, "/strategy/Nobody").status == 404


def test_the_journal_browser_filters_and_exports_the_same_rows(readonly_console: ConsoleServer) -> None:
    page = _get(readonly_console, "/journal?table=fills&symbol=MSFT")
    assert page.status == 200
    assert "0 rows shown" in page.body
    export = _get(readonly_console, "/journal.csv?table=fills&symbol=aapl&strategy=SmaCross")
    assert export.status == 200
    assert export.headers["content-type"].startswith("text/csv")
    assert "attachment" in export.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(export.body)))
    assert len(rows) == 3


def test_bad_filters_are_a_clear_400(readonly_console: ConsoleServer) -> None:
    page = _get(readonly_console, "/journal?table=fills&since=yesterday")
    assert page.status == 400
    assert (
        "since=&#39;yesterday&#39; is not a date" in page.body
        or "since='yesterday' is not a date" in page.body
    )
    assert _get(readonly_console, "/journal?table=secrets").status == 400
    assert _get(readonly_console, "/journal.csv?table=secrets").status == 400


def test_plotly_is_served_from_the_installed_package(readonly_console: ConsoleServer) -> None:
    script = _get(readonly_console, "/static/plotly.min.js")
    assert script.status == 200
    assert "plotly.js" in script.body[:400]
    assert "cdn" not in _get(readonly_console, "/").body.lower()


def test_the_reports_page_links_the_html_reports_and_serves_them(journal_file, tmp_path) -> None:
    from copilot_quant.console import ServeOptions

    reports = tmp_path / "out"
    (reports / "wf").mkdir(parents=True)
    (reports / "report.html").write_text("<html><body>backtest report</body></html>")
    (reports / "wf" / "walk.html").write_text("<html><body>walk-forward</body></html>")
    (reports / "notes.txt").write_text("not a report")
    options = ServeOptions(port=0, token_file=tmp_path / "token", reports_dir=reports)
    server = ConsoleServer.for_journal(journal_file, options).start()
    try:
        page = _get(server, "/reports")
        assert page.status == 200
        assert "report.html" in page.body
        link = re.search(r'href="(/report/[^"]*walk[^"]*)"', page.body)
        assert link is not None
        assert "walk-forward" in _get(server, link.group(1)).body
        assert "notes.txt" not in page.body
        assert "backtest report" in _get(server, "/report/report.html").body
        assert _get(server, "/report/../token").status == 404  # nothing outside the reports dir
        assert http(server.url + "report/report.html").status == 401
    finally:
        server.stop()


def test_without_a_reports_dir_there_is_no_reports_page(readonly_console: ConsoleServer) -> None:
    assert _get(readonly_console, "/reports").status == 404
    assert 'href="/reports"' not in _get(readonly_console, "/").body
