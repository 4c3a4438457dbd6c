"""The engine's console controls over HTTP: CSRF and who/why refusals, and a halt that uses the kill-switch
machinery of `copilot-quant kill` (file written, kill switch engaged, journaled with who and why)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from copilot_quant.backtest.live_engine import LiveStrategyEngine
from copilot_quant.backtest.orders import Order, OrderStatus
from copilot_quant.backtest.strategy import Strategy
from copilot_quant.console import ConsoleServer, ServeOptions
from copilot_quant.console.security import csrf_for
from copilot_quant.journal import TradeJournal
from copilot_quant.risk.kill_file import read_kill_file

from tests.console.conftest import http
from tests.console.engine_fixtures import LiveConsole, live_console
from tests.live.conftest import Stepper, wait_until

pytestmark = [pytest.mark.network, pytest.mark.timeout(120)]

SUBMITTED = OrderStatus.SUBMITTED


@pytest.fixture
def live(gateway, tmp_path: Path) -> Iterator[LiveConsole]:
    yield from live_console(gateway, tmp_path, client_id=171)


def _post(live: LiveConsole, action: str, body: dict, headers: dict[str, str] | None = None):
    token = live.server.token.value
    return http(live.server.url + f"control/{action}", token=token, method="POST", body=body, headers=headers)


@pytest.mark.parametrize(
    "headers",
    [{}, {"X-CSRF-Token": "wrong"}, {"X-CSRF-Token": "__right__", "Origin": "http://evil.example"}],
    ids=["no-csrf", "wrong-csrf", "cross-origin"],
)
def test_a_control_without_the_right_csrf_token_or_origin_is_403(live: LiveConsole, headers) -> None:
    sent = {k: (csrf_for(live.server.token.value) if v == "__right__" else v) for k, v in headers.items()}
    answer = _post(live, "halt", {"who": "tester", "why": "csrf test"}, sent)
    assert answer.status == 403
    assert live.engine.halted is None
    assert read_kill_file(live.kill_file) is None


def test_a_control_without_the_token_is_401_even_with_csrf(live: LiveConsole) -> None:
    answer = http(
        live.server.url + "control/halt",
        method="POST",
        body={"who": "x", "why": "y"},
        headers={"X-CSRF-Token": csrf_for(live.server.token.value)},
    )
    assert answer.status == 401
    assert live.engine.halted is None


@pytest.mark.parametrize("body", [{"who": "", "why": "w"}, {"who": "me", "why": " "}, {}])
def test_a_control_needs_who_and_why(live: LiveConsole, body: dict) -> None:
    answer = _post(live, "halt", body, {"X-CSRF-Token": csrf_for(live.server.token.value)})
    assert answer.status == 400
    assert live.engine.halted is None


def test_halt_over_http_engages_the_kill_switch_writes_the_kill_file_and_journals_who_and_why(
    live: LiveConsole,
) -> None:
    csrf = {"X-CSRF-Token": csrf_for(live.server.token.value)}
    with Stepper(live.gateway, 0.1):
        assert wait_until(lambda: len(live.engine.fills) >= 1, timeout=30)
    answer = _post(live, "halt", {"who": "Ada", "why": "risk review"}, csrf)
    assert answer.status == 200, answer.body
    assert "risk review" in (live.engine.halted or "")
    found = read_kill_file(live.kill_file)
    assert found is not None
    assert "Ada" in found.text
    assert not found.flatten
    overview = http(live.server.url + "api/overview", token=live.server.token.value).json()
    assert isinstance(overview, dict)
    assert "risk review" in overview["halted"]

    answer = _post(live, "resume", {"who": "Ada", "why": "review done"}, csrf)
    assert answer.status == 200, answer.body
    assert read_kill_file(live.kill_file) is None
    assert not live.engine.kill_switch.is_engaged
    assert live.engine.journal is not None
    with TradeJournal(live.engine.journal.path, read_only=True) as journal:
        console_events = [e.detail for e in journal.events(kind="console")]
    assert any(d.startswith("halt by Ada") and "risk review" in d for d in console_events)
    assert any(d.startswith("resume by Ada") and "review done" in d for d in console_events)


def test_cancel_of_an_unknown_order_is_a_clear_400(live: LiveConsole) -> None:
    answer = _post(
        live,
        "cancel",
        {"who": "Ada", "why": "stale", "order_id": "no-such-order"},
        {"X-CSRF-Token": csrf_for(live.server.token.value)},
    )
    assert answer.status == 400
    assert "no working order" in answer.body


def test_a_reason_ending_in_flatten_halts_without_flattening(live: LiveConsole) -> None:
    csrf = {"X-CSRF-Token": csrf_for(live.server.token.value)}
    answer = _post(live, "halt", {"who": "Ada", "why": "do not flatten"}, csrf)
    assert answer.status == 200, answer.body
    found = read_kill_file(live.kill_file)
    assert found is not None
    assert not found.flatten
    engagement = live.engine.kill_switch.engagement
    assert engagement is not None
    assert not engagement.flatten


class _RestingBid(Strategy):
    """Places one GTC limit buy far below the market: it stays working until cancelled."""

    def __init__(self) -> None:
        super().__init__()
        self.name = "RestingBid"
        self.sent = False

    def on_data(self, timestamp, data):
        if self.sent:
            return None
        self.sent = True
        return [Order("AAPL", 1, "limit", "buy", limit_price=1.0, time_in_force="gtc")]


def test_cancel_over_http_cancels_the_working_order_and_journals_who_and_why(gateway, tmp_path: Path) -> None:
    engine = LiveStrategyEngine(port=gateway.port, client_id=172, update_interval=3600)
    engine.add_strategy(_RestingBid())
    server = None
    try:
        assert engine.connect(timeout=5)
        assert engine.start(["AAPL"], lookback_days=5)
        server = ConsoleServer.for_engine(engine, ServeOptions(port=0, token_file=tmp_path / "token")).start()
        with Stepper(gateway, 0.1):
            # open at the broker from the moment it is tracked (CREATED); the page lists it once it is sent
            assert wait_until(lambda: [o.status for o in engine.broker.get_open_orders()] == [SUBMITTED], 30)
        order = engine.broker.get_open_orders()[0]
        page = http(server.url + "strategy/RestingBid", token=server.token.value)
        assert f'data-order="{order.order_id}"' in page.body  # the page offers the cancel
        answer = http(
            server.url + "control/cancel",
            token=server.token.value,
            method="POST",
            body={"who": "Ada", "why": "stale bid", "order_id": str(order.order_id)},
            headers={"X-CSRF-Token": csrf_for(server.token.value)},
        )
        assert answer.status == 200, answer.body
        assert wait_until(lambda: engine.broker.get_open_orders() == [], timeout=20)
        assert order.status.value == "cancelled"
        assert engine.journal is not None
        events = [e.detail for e in engine.journal.events(kind="console")]
        assert any(d.startswith(f"cancel order {order.order_id} by Ada") and "stale bid" in d for d in events)
    finally:
        if server is not None:
            server.stop()
        engine.disconnect()
