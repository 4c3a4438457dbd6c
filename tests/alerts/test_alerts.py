"""Alerts delivered for real: to a local HTTP receiver (the webhook) and a local SMTP server (aiosmtpd), both
on free 127.0.0.1 ports; throttling, retries, settings, and the engine's rules on the simulated gateway."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from copilot_quant.alerts import (
    Alert,
    AlertDispatcher,
    AlertKind,
    AlertSettings,
    EmailChannel,
    EngineAlerts,
    Throttle,
    WebhookChannel,
)
from copilot_quant.errors import ConfigError
from hypothesis import given
from hypothesis import strategies as st

from tests.live.conftest import wait_until

pytestmark = pytest.mark.timeout(60)


class Receiver:
    """A webhook receiver: records each JSON body; answers ``fail_first`` requests with HTTP 500 first."""

    def __init__(self, fail_first: int = 0) -> None:
        self.bodies: list[dict] = []
        self.requests = 0
        self.fail_first = fail_first
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length)
                owner.requests += 1
                if owner.requests <= owner.fail_first:
                    self.send_response(500)
                    self.end_headers()
                    return
                owner.bodies.append(json.loads(body))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[object] = []

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd handler hook
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[int, Mailbox]]:
    controller_mod = pytest.importorskip("aiosmtpd.controller")
    box = Mailbox()
    with socket.socket() as probe:  # aiosmtpd checks its own port after starting: it needs a real one
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = controller_mod.Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, box
    finally:
        controller.stop()


def _alert(text: str = "kill switch engaged: test", kind: AlertKind = AlertKind.KILL_SWITCH) -> Alert:
    return Alert(kind, "kill switch engaged", text, "DU1234567")


def test_a_webhook_alert_arrives_as_json_slack_and_discord_accept(receiver: Receiver) -> None:
    dispatcher = AlertDispatcher([WebhookChannel(receiver.url)], Throttle(0, 100), retries=0)
    try:
        assert dispatcher.notify(_alert())
        assert wait_until(lambda: len(receiver.bodies) == 1)
    finally:
        dispatcher.close()
    body = receiver.bodies[0]
    assert "kill switch engaged: test" in body["text"]  # Slack reads "text"
    assert body["content"] == body["text"][:2000]  # Discord reads "content"
    assert body["kind"] == "kill_switch"


def test_an_email_alert_arrives_at_the_smtp_server(smtp: tuple[int, Mailbox]) -> None:
    port, box = smtp
    channel = EmailChannel("127.0.0.1", port, "engine@example.com", ["trader@example.com"])
    dispatcher = AlertDispatcher([channel], Throttle(0, 100), retries=0)
    try:
        dispatcher.notify(_alert("halted: liveness"))
        assert wait_until(lambda: len(box.messages) == 1)
    finally:
        dispatcher.close()
    mail = box.messages[0]
    assert "[DU1234567]" in mail["Subject"]
    assert "halted: liveness" in mail.get_payload()


def test_a_failing_webhook_is_retried_until_it_answers() -> None:
    flaky = Receiver(fail_first=2)
    dispatcher = AlertDispatcher([WebhookChannel(flaky.url)], Throttle(0, 100), retries=3, backoff_s=0.01)
    try:
        dispatcher.notify(_alert())
        assert wait_until(lambda: len(dispatcher.deliveries) == 1)
    finally:
        dispatcher.close()
        flaky.close()
    delivery = dispatcher.deliveries[0]
    assert delivery.ok
    assert delivery.attempts == 3
    assert len(flaky.bodies) == 1


def test_an_unreachable_channel_never_blocks_notify_and_is_given_up_after_the_retries() -> None:
    dead = Receiver()
    url = dead.url
    dead.close()  # nothing listens there now
    dispatcher = AlertDispatcher(
        [WebhookChannel(url, timeout=1)], Throttle(0, 100), retries=2, backoff_s=0.01
    )
    try:
        for k in range(5):  # returns at once each time: delivery is on the alert thread
            dispatcher.notify(_alert(f"alert {k}"))
        assert wait_until(lambda: len(dispatcher.deliveries) == 5, timeout=30)
    finally:
        dispatcher.close()
    assert all(not d.ok and d.attempts == 3 for d in dispatcher.deliveries)


def test_the_same_alert_is_sent_once_within_the_dedupe_window_and_the_rate_is_capped() -> None:
    now = [0.0]
    throttle = Throttle(dedupe_s=60, max_per_minute=3, clock=lambda: now[0])
    assert throttle.allow(_alert("a"))
    assert not throttle.allow(_alert("a"))  # a repeat
    assert throttle.allow(_alert("b"))
    assert throttle.allow(_alert("c"))
    assert not throttle.allow(_alert("d"))  # fourth in a minute
    now[0] = 61.0
    assert throttle.allow(_alert("a"))  # the window passed
    assert throttle.suppressed == 2


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COPILOT_QUANT_ALERT_WEBHOOK_URL", "https://hooks.example.com/x")
    monkeypatch.setenv("COPILOT_QUANT_ALERT_SMTP_HOST", "127.0.0.1")
    monkeypatch.setenv("COPILOT_QUANT_ALERT_EMAIL_FROM", "a@example.com")
    monkeypatch.setenv("COPILOT_QUANT_ALERT_EMAIL_TO", "b@example.com, c@example.com")
    monkeypatch.setenv("COPILOT_QUANT_ALERT_KINDS", "halt,kill_switch")
    settings = AlertSettings.load()
    assert [c.name for c in settings.channels()] == ["webhook", "email"]
    assert settings.wanted() == {AlertKind.HALT, AlertKind.KILL_SWITCH}


@pytest.mark.parametrize(
    ("name", "value", "match"),
    [
        ("KINDS", "halt,typo", "unknown typo"),
        ("MAX_PER_MINUTE", "0", "MAX_PER_MINUTE"),
        ("WEBHOOK_URL", "ftp://x", "must start with https"),
    ],
)
def test_bad_settings_are_named(monkeypatch: pytest.MonkeyPatch, name: str, value: str, match: str) -> None:
    monkeypatch.setenv(f"COPILOT_QUANT_ALERT_{name}", value)
    with pytest.raises(ConfigError, match=match):
        AlertSettings.load()


@pytest.mark.network
@pytest.mark.timeout(90)
def test_the_engine_s_kill_switch_reaches_the_webhook_and_the_mailbox(
    gateway, receiver: Receiver, smtp: tuple[int, Mailbox]
) -> None:
    from copilot_quant.backtest.live_engine import LiveStrategyEngine
    from copilot_quant.backtest.strategy import Strategy

    class Idle(Strategy):
        def on_data(self, timestamp, data):
            return None

    port, box = smtp
    settings = AlertSettings.load(
        webhook_url=receiver.url,
        smtp_host="127.0.0.1",
        smtp_port=port,
        email_from="e@x.org",
        email_to="t@x.org",
    )
    engine = LiveStrategyEngine(port=gateway.port, client_id=191, update_interval=3600)
    engine.add_strategy(Idle())
    alerts = None
    try:
        assert engine.connect(timeout=5)
        assert engine.start(["AAPL"], lookback_days=5)
        alerts = EngineAlerts.from_settings(engine, settings).start()
        engine.kill("drill from the alert test")
        assert wait_until(lambda: any("drill from the alert test" in b["text"] for b in receiver.bodies))
        assert wait_until(lambda: any("drill" in m.get_payload() for m in box.messages))
        journal = engine.journal
        assert journal is not None
        assert wait_until(lambda: len([e for e in journal.events(kind="notify") if "drill" in e.detail]) == 2)
        details = [e.detail for e in journal.events(kind="notify")]
        assert any(d.startswith("kill_switch via webhook sent") for d in details)
        assert any(d.startswith("kill_switch via email sent") for d in details)
    finally:
        if alerts is not None:
            alerts.stop()
        engine.disconnect()


@pytest.mark.network
@pytest.mark.timeout(90)
def test_a_disconnect_longer_than_the_limit_reaches_the_webhook(gateway, receiver: Receiver) -> None:
    from copilot_quant.backtest.live_engine import LiveStrategyEngine
    from copilot_quant.backtest.strategy import Strategy

    class Idle(Strategy):
        def on_data(self, timestamp, data):
            return None

    settings = AlertSettings.load(webhook_url=receiver.url, disconnect_after_s=0.5, kinds="disconnect")
    engine = LiveStrategyEngine(port=gateway.port, client_id=192, update_interval=3600)
    engine.add_strategy(Idle())
    alerts = None
    try:
        assert engine.connect(timeout=5)
        assert engine.start(["AAPL"], lookback_days=5)
        alerts = EngineAlerts.from_settings(engine, settings).start()
        gateway.stop()  # IB is gone and stays gone
        assert wait_until(lambda: any("disconnected for" in b["text"] for b in receiver.bodies), timeout=30)
        assert len(receiver.bodies) == 1  # once per episode
    finally:
        if alerts is not None:
            alerts.stop()
        engine.disconnect()


class _Engine:
    """Just what the no-bar rule reads of an engine (pure logic: no connection needed)."""

    def __init__(self) -> None:
        import pandas as pd

        self.last_bar = pd.Timestamp("2024-03-05 14:30", tz="UTC")
        self.data_interval = "1m"
        self.running = True
        self.connection = type("C", (), {"account": "DU1234567"})()

    def is_running(self) -> bool:
        return self.running


class _Collect:
    def __init__(self) -> None:
        self.alerts: list[Alert] = []

    def notify(self, alert: Alert) -> bool:
        self.alerts.append(alert)
        return True


def _no_bar_rules(minutes: float = 10) -> tuple[EngineAlerts, _Engine, _Collect]:
    from datetime import UTC, datetime

    engine, sink = _Engine(), _Collect()
    rules = EngineAlerts(engine, sink, AlertSettings.load(no_bar_after_min=minutes))  # type: ignore[arg-type]
    rules.check_bars(datetime(2024, 3, 5, 15, 0, tzinfo=UTC))  # sees the current bar
    return rules, engine, sink


def test_no_bar_for_n_minutes_of_market_hours_alerts_once() -> None:
    from datetime import UTC, datetime

    rules, _, sink = _no_bar_rules(minutes=10)
    open_tuesday = datetime(2024, 3, 5, 15, 0, tzinfo=UTC)  # 10:00 New York
    for _ in range(60 * 10):  # ten minutes of market hours: one bar's minute plus 9 more, not yet
        rules.check_bars(open_tuesday)
    assert sink.alerts == []
    for _ in range(120):
        rules.check_bars(open_tuesday)
    assert [a.kind for a in sink.alerts] == [AlertKind.NO_BAR]


def test_nights_and_weekends_never_count_as_a_missing_bar() -> None:
    from datetime import UTC, datetime

    import pandas as pd

    rules, engine, sink = _no_bar_rules(minutes=1)
    engine.last_bar = pd.Timestamp("2024-03-08 20:59", tz="UTC")  # Friday's last minute bar
    rules.check_bars(datetime(2024, 3, 8, 21, 0, tzinfo=UTC))
    for _ in range(3600):
        rules.check_bars(datetime(2024, 3, 9, 15, 0, tzinfo=UTC))  # Saturday
    for _ in range(100):  # Monday's first 100 s: the first bar is not even due yet
        rules.check_bars(datetime(2024, 3, 11, 13, 31, 40, tzinfo=UTC))
    assert sink.alerts == []


def test_a_new_bar_restarts_the_count() -> None:
    from datetime import UTC, datetime

    import pandas as pd

    rules, engine, sink = _no_bar_rules(minutes=1)
    open_tuesday = datetime(2024, 3, 5, 15, 0, tzinfo=UTC)
    for k in range(600):
        if k % 60 == 0:
            engine.last_bar = pd.Timestamp("2024-03-05 14:30", tz="UTC") + pd.Timedelta(minutes=k // 60 + 1)
        rules.check_bars(open_tuesday)
    assert sink.alerts == []


@given(
    events=st.lists(
        st.tuples(st.floats(min_value=0, max_value=5, allow_nan=False), st.sampled_from("abcde")),
        max_size=80,
    ),
    dedupe=st.floats(min_value=0, max_value=120, allow_nan=False),
    cap=st.integers(min_value=1, max_value=6),
)
def test_the_throttle_never_exceeds_its_rate_nor_repeats_within_the_window(events, dedupe, cap) -> None:
    now = [0.0]
    throttle = Throttle(dedupe_s=dedupe, max_per_minute=cap, clock=lambda: now[0])
    allowed: list[tuple[float, str]] = []
    for step, key in events:
        now[0] += step
        if throttle.allow(_alert(key)):
            allowed.append((now[0], key))
    # windows are measured as elapsed time (t - u), as a clock reader does: with floats, t - dedupe < u is
    # not the same test (1.0 - 3e-262 rounds to 1.0)
    for t, key in allowed:
        assert sum(1 for u, _ in allowed if 0 <= t - u < 60) <= cap
        assert not any(k == key and 0 < t - u < dedupe for u, k in allowed)
    assert throttle.suppressed == len(events) - len(allowed)
