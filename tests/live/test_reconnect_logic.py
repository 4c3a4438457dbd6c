"""The connection state machine and the reconnect backoff, as pure logic."""

from __future__ import annotations

import random

import pytest
from copilot_quant.brokers.reconnect import Backoff, ConnectionState, ConnectionStateMachine
from copilot_quant.errors import ConfigError
from hypothesis import given
from hypothesis import strategies as st

S = ConnectionState


def _connected() -> ConnectionStateMachine:
    m = ConnectionStateMachine()
    m.move(S.CONNECTING, "test")
    m.move(S.CONNECTED, "test")
    return m


def test_the_normal_path_emits_each_change_once():
    seen = []
    m = ConnectionStateMachine()
    m.state_changed += lambda old, new, why: seen.append((old, new))
    m.move(S.CONNECTING, "go")
    m.move(S.CONNECTED, "ok")
    m.move(S.DEGRADED, "1100")
    m.move(S.RECONNECTING, "socket dropped")
    m.move(S.CONNECTED, "back")
    m.move(S.STOPPED, "bye")
    assert seen == [
        (S.DISCONNECTED, S.CONNECTING),
        (S.CONNECTING, S.CONNECTED),
        (S.CONNECTED, S.DEGRADED),
        (S.DEGRADED, S.RECONNECTING),
        (S.RECONNECTING, S.CONNECTED),
        (S.CONNECTED, S.STOPPED),
    ]
    assert [c.new for c in m.history][-1] is S.STOPPED


def test_a_stopped_connection_never_moves_to_reconnecting():
    m = _connected()
    m.move(S.STOPPED, "disconnect() called")
    assert not m.move(S.RECONNECTING, "socket closed")
    assert m.state is S.STOPPED


@pytest.mark.parametrize("code", [1100, 2103, 2105])
def test_ib_codes_degrade_the_connection(code):
    m = _connected()
    assert m.on_ib_code(code, "x")
    assert m.state is S.DEGRADED


@pytest.mark.parametrize(
    ("broken", "ok"),
    [
        ((1100, ""), (1101, "")),
        ((1100, ""), (1102, "")),
        (
            (2103, "Market data farm connection is broken:usfarm"),
            (2104, "Market data farm connection is OK:usfarm"),
        ),
        (
            (2105, "HMDS data farm connection is broken:ushmds"),
            (2106, "HMDS data farm connection is OK:ushmds"),
        ),
        (
            (2157, "Sec-def data farm connection is broken:secdefil"),
            (2158, "Sec-def data farm connection is OK:secdefil"),
        ),
        ((2110, "Connectivity between Trader Workstation and server is broken."), (1102, "")),
    ],
)
def test_ib_codes_restore_what_they_broke(broken, ok):
    m = _connected()
    assert m.on_ib_code(*broken)
    assert m.state is S.DEGRADED
    assert m.on_ib_code(*ok)
    assert m.state is S.CONNECTED


def test_a_farm_ok_never_restores_the_link_to_ib():
    """1100 (TWS lost IB) then 2104 used to read as connected while TWS had no link to IB."""
    m = _connected()
    m.on_ib_code(1100, "Connectivity between IB and Trader Workstation has been lost.")
    assert not m.on_ib_code(2104, "Market data farm connection is OK:usfarm")
    assert m.state is S.DEGRADED
    assert m.on_ib_code(1102, "restored - data maintained")
    assert m.state is S.CONNECTED


def test_one_farm_ok_never_restores_another_farm():
    m = _connected()
    m.on_ib_code(2105, "HMDS data farm connection is broken:ushmds")
    assert not m.on_ib_code(2158, "Sec-def data farm connection is OK:secdefil")
    assert m.state is S.DEGRADED
    assert "ushmds" in "; ".join(m.health.problems())


def test_a_broken_farm_that_turns_inactive_is_no_longer_a_problem():
    """2103 then 2108 (inactive, available on demand) used to stay degraded forever."""
    m = _connected()
    m.on_ib_code(2103, "Market data farm connection is broken:usfarm")
    assert m.on_ib_code(
        2108, "Market data farm connection is inactive but should be available upon demand.usfarm"
    )
    assert m.state is S.CONNECTED


def test_harmless_codes_stay_harmless():
    m = _connected()
    for code in (2107, 2108, 2119, 2100, 10167):
        assert not m.on_ib_code(code, "x")
    assert m.state is S.CONNECTED


def test_farm_ok_messages_at_connect_change_nothing():
    m = _connected()
    assert not m.on_ib_code(2104)
    assert not m.on_ib_code(2107)
    assert m.state is S.CONNECTED


@given(st.lists(st.sampled_from(list(S)), max_size=30))
def test_only_allowed_moves_happen(moves):
    m = ConnectionStateMachine()
    for new in moves:
        before = m.state
        allowed = m.can_move(new)
        changed = m.move(new, "fuzz")
        assert changed == (allowed and new != before)
        assert m.state is (new if changed else before)


@given(st.integers(min_value=0, max_value=200), st.integers(min_value=0, max_value=2**32))
def test_backoff_is_capped_and_jittered_within_bounds(attempt, seed):
    b = Backoff(initial=0.5, maximum=30.0, factor=2.0, jitter=0.2)
    delay = b.delay(attempt, random.Random(seed))
    base = min(30.0, 0.5 * 2.0**attempt)
    assert 0 <= delay <= 30.0
    assert base * 0.8 - 1e-9 <= delay <= min(30.0, base * 1.2) + 1e-9


def test_backoff_spreads_clients_and_gives_up():
    b = Backoff(max_attempts=3)
    rng = random.Random(1)
    assert len({round(b.delay(4, rng), 6) for _ in range(10)}) > 1
    assert not b.gives_up_after(2)
    assert b.gives_up_after(3)
    assert not Backoff(max_attempts=None).gives_up_after(10_000)


def test_invalid_backoff_is_a_config_error():
    with pytest.raises(ConfigError):
        Backoff(initial=0)
    with pytest.raises(ConfigError):
        Backoff(jitter=1.5)
