"""The engine's console controls over HTTP: CSRF and who/why refusals, and a halt that uses the kill-switch
machinery of `copilot-quant kill` (file written, kill switch engaged, journaled with who and why)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from copilot_quant.console.security import csrf_for
from copilot_quant.journal import TradeJournal
from copilot_quant.risk.kill_file import read_kill_file

from tests.console.conftest import http
from tests.console.engine_fixtures import LiveConsole, live_console
from tests.live.conftest import Stepper, wait_until

pytestmark = [pytest.mark.network, pytest.mark.timeout(120)]


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
