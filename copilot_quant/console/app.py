"""The console's web app (Starlette): pages, the live event stream, CSV export and — with an engine — controls.

Routes: ``/`` overview, ``/strategy/{name}``, ``/journal`` (browser; ``/journal.csv`` exports the same
filtered rows), ``/reconcile``, ``/reports`` (with a reports dir: links to its HTML reports, served under
``/report/…``), ``/events`` (server-sent events), ``/api/overview`` (JSON), ``/static/…``
(plotly.js from the installed plotly package: no CDN). Only an app built with ``controls`` has
``POST /control/{halt,flatten,resume,cancel}``; without them those paths do not exist (404).

A page fetched with the ``X-Partial: 1`` header returns only its ``<main>``: the page's script re-fetches it
when the event stream says something changed, so every page is live without a reload.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import plotly
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from copilot_quant.console.controls import ControlRequest, Controls
from copilot_quant.console.gate import TokenGate
from copilot_quant.console.hub import EventHub, HubMessage
from copilot_quant.console.pages import ConsoleState
from copilot_quant.console.reader import JournalFilter
from copilot_quant.console.security import CSRF_HEADER, ConsoleToken, token_matches
from copilot_quant.errors import ConfigError

__all__ = ["build_app"]

log = logging.getLogger(__name__)

_HERE = Path(__file__).parent
_PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
_KEEPALIVE_S = 10.0
_ACTIONS = ("halt", "flatten", "resume", "cancel")
_BROWSER_TABLES = ("fills", "orders", "events", "alerts", "errors")


class _Console:
    """The request handlers, over one :class:`ConsoleState` (and :class:`Controls` in engine mode)."""

    def __init__(
        self,
        state: ConsoleState,
        hub: EventHub,
        token: ConsoleToken,
        controls: Controls | None,
        reports_dir: Path | None = None,
    ) -> None:
        self.reports_dir = reports_dir
        self.state = state
        self.hub = hub
        self.token = token
        self.controls = controls
        self.closing = asyncio.Event()
        self.templates = Jinja2Templates(directory=str(_HERE / "templates"))
        self.templates.env.filters["money"] = _money
        self.templates.env.filters["num"] = _num
        self.templates.env.filters["when"] = _when
        self.templates.env.filters["tojson_safe"] = lambda v: json.dumps(v, default=str)

    def _render(self, request: Request, name: str, context: dict[str, Any], status: int = 200) -> Response:
        context = {
            "mode": "engine" if self.controls is not None else "journal",
            "account": self.state.account(),
            "strategies_nav": self.state.strategy_names(),
            "has_reports": self.reports_dir is not None,
            "csrf": self.token.csrf,
            "partial": request.headers.get("x-partial") == "1",
            **context,
        }
        return self.templates.TemplateResponse(request, name, context, status_code=status)

    async def overview(self, request: Request) -> Response:
        return self._render(request, "overview.html", {"o": self.state.overview(), "page": "overview"})

    async def overview_json(self, request: Request) -> Response:
        return JSONResponse(json.loads(json.dumps(self.state.overview(), default=str)))

    async def strategy(self, request: Request) -> Response:
        name = request.path_params["name"]
        context = self.state.strategy(name)
        if context is None:
            return Response(
                f"no strategy {name!r} in this console\n", status_code=404, media_type="text/plain"
            )
        return self._render(request, "strategy.html", {"s": context, "page": f"strategy:{name}"})

    async def journal(self, request: Request) -> Response:
        table = request.query_params.get("table", "fills")
        try:
            where = JournalFilter.parse(dict(request.query_params))
            if table not in _BROWSER_TABLES:
                raise ConfigError(f"table={table!r}: use one of {', '.join(_BROWSER_TABLES)}")
            rows = self.state.reader.table(table, where, limit=500)
        except ConfigError as exc:
            return self._render(request, "journal.html", _journal_context(table, {}, [], str(exc)), 400)
        return self._render(
            request, "journal.html", _journal_context(table, dict(request.query_params), rows)
        )

    async def journal_csv(self, request: Request) -> Response:
        table = request.query_params.get("table", "fills")
        try:
            where = JournalFilter.parse(dict(request.query_params))
            text = self.state.reader.csv(table, where)
        except ConfigError as exc:
            return Response(f"{exc}\n", status_code=400, media_type="text/plain")
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        return Response(
            text,
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{table}-{stamp}.csv"'},
        )

    async def reconcile(self, request: Request) -> Response:
        reports = self.state.reader.reconcile_reports()
        return self._render(request, "reconcile.html", {"reports": reports, "page": "reconcile"})

    async def reports(self, request: Request) -> Response:
        return self._render(request, "reports.html", {"reports": self._report_files(), "page": "reports"})

    def _report_files(self) -> list[dict[str, Any]]:
        """The HTML reports in the reports dir and its subfolders, newest first."""
        root = self.reports_dir
        if root is None:
            return []
        found = [p for p in root.rglob("*.htm*") if p.is_file()]
        found.sort(key=lambda p: p.stat().st_mtime, reverse=True)
        return [
            {
                "name": p.relative_to(root).as_posix(),
                "time": datetime.fromtimestamp(p.stat().st_mtime, UTC),
                "size": p.stat().st_size,
            }
            for p in found[:500]
        ]

    async def favicon(self, request: Request) -> Response:
        return Response(status_code=204)

    async def plotly_js(self, request: Request) -> Response:
        return FileResponse(_PLOTLY_JS, media_type="application/javascript")

    async def events(self, request: Request) -> Response:
        queue = self.hub.subscribe()

        async def stream() -> AsyncIterator[str]:
            closing: asyncio.Future[Any] = asyncio.ensure_future(self.closing.wait())
            getting: asyncio.Future[Any] | None = None
            try:
                yield "retry: 1000\nevent: hello\ndata: {}\n\n"  # reconnect within 1 s after a restart
                while not closing.done():
                    if getting is None:
                        getting = asyncio.ensure_future(queue.get())
                    # ends as soon as the server stops, so the browser sees the stream close and reconnects
                    await asyncio.wait(
                        {getting, closing}, timeout=_KEEPALIVE_S, return_when=asyncio.FIRST_COMPLETED
                    )
                    if getting.done():
                        message: HubMessage = getting.result()
                        getting = None
                        yield message.sse()
                    elif not closing.done():
                        yield ": keep-alive\n\n"
            finally:
                for task in (closing, getting):
                    if task is not None and not task.done():
                        task.cancel()
                self.hub.unsubscribe(queue)

        return StreamingResponse(
            stream(), media_type="text/event-stream", headers={"Cache-Control": "no-store"}
        )

    # ------------------------------------------------------------------ controls (engine mode only)
    async def control(self, request: Request) -> Response:
        assert self.controls is not None
        if request.path_params["action"] not in _ACTIONS:
            return Response("no such control\n", status_code=404, media_type="text/plain")
        refusal = _csrf_refusal(request, self.token.csrf)
        if refusal is not None:
            return JSONResponse({"ok": False, "error": refusal}, status_code=403)
        try:
            body = json.loads(await request.body() or b"{}")
            if not isinstance(body, dict):
                raise ConfigError('send a JSON object: {"who": ..., "why": ...}')
            client = request.client.host if request.client is not None else "?"
            ask = ControlRequest.parse(body.get("who"), body.get("why"), client)
            action = request.path_params["action"]
            message = await asyncio.to_thread(self._act, action, ask, body)
        except (ConfigError, json.JSONDecodeError) as exc:
            return JSONResponse({"ok": False, "error": str(exc)}, status_code=400)
        self.hub.publish("changed", reason=message)
        return JSONResponse({"ok": True, "message": message})

    def _act(self, action: str, ask: ControlRequest, body: dict[str, Any]) -> str:
        assert self.controls is not None
        if action == "halt":
            return self.controls.halt(ask)
        if action == "flatten":
            return self.controls.halt(ask, flatten=True)
        if action == "resume":
            return self.controls.resume(ask)
        return self.controls.cancel(str(body.get("order_id", "")), ask)


def _csrf_refusal(request: Request, csrf: str) -> str | None:
    if not token_matches(request.headers.get(CSRF_HEADER), csrf):
        return "403: missing or wrong CSRF token (X-CSRF-Token); reload the page and try again"
    origin = request.headers.get("origin")
    if origin and origin.split("://", 1)[-1] != request.headers.get("host"):
        return f"403: cross-origin request from {origin} refused"
    return None


def _journal_context(
    table: str, params: dict[str, str], rows: list[dict[str, Any]], error: str = ""
) -> dict[str, Any]:
    columns = list(rows[0]) if rows else []
    query = urlencode({k: v for k, v in params.items() if k != "token" and v})
    return {
        "page": "journal",
        "table": table,
        "tables": _BROWSER_TABLES,
        "params": params,
        "rows": rows,
        "columns": columns,
        "csv_query": query or f"table={table}",
        "error": error,
    }


def _money(value: Any) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return "-"
    return "-" if math.isnan(number) else f"${number:,.2f}"


def _when(value: Any) -> str:
    """A journal or engine time as ``YYYY-MM-DD HH:MM:SS`` (UTC, as stored), or '-'."""
    if value is None or value == "":
        return "-"
    text = value.isoformat() if isinstance(value, datetime) else str(value)
    return text.replace("T", " ")[:19]


def _num(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1e4 else f"{value:,.2f}"
    return "-" if value is None else str(value)


def build_app(
    state: ConsoleState,
    hub: EventHub,
    token: ConsoleToken,
    controls: Controls | None = None,
    *,
    secure_cookie: bool = False,
    reports_dir: Path | None = None,
) -> tuple[Starlette, _Console]:
    """The console app wrapped in its :class:`TokenGate`; controls only when ``controls`` is given; the
    Reports page (and the files, read-only) only with a ``reports_dir``."""
    console = _Console(state, hub, token, controls, reports_dir)
    routes: list[Route | Mount] = [
        Route("/", console.overview),
        Route("/api/overview", console.overview_json),
        Route("/strategy/{name}", console.strategy),
        Route("/journal", console.journal),
        Route("/journal.csv", console.journal_csv),
        Route("/reconcile", console.reconcile),
        Route("/events", console.events),
        Route("/static/plotly.min.js", console.plotly_js),
        Route("/favicon.ico", console.favicon),
        Mount("/static", StaticFiles(directory=str(_HERE / "static")), name="static"),
    ]
    if reports_dir is not None:
        routes.append(Route("/reports", console.reports))
        routes.append(Mount("/report", StaticFiles(directory=str(reports_dir)), name="report"))
    if controls is not None:
        routes.append(
            Route("/control/{action:str}", console.control, methods=["POST"]),
        )
    app = Starlette(routes=routes)
    app.add_middleware(TokenGate, token=token.value, secure_cookie=secure_cookie)
    return app, console
