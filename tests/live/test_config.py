"""Connection settings: precedence, the port table, client id 0, bad values, and the paper/live safety net."""

from __future__ import annotations

import pytest
from copilot_quant.brokers.config import (
    PORT_TABLE,
    ConnectionSettings,
    check_managed_accounts,
    default_port,
    resolve_connection,
)
from copilot_quant.errors import ConfigError


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path):
    for name in ("IB_HOST", "IB_PORT", "IB_CLIENT_ID", "IB_PAPER_ACCOUNT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env from the developer's working directory


def test_port_table_is_the_guides():
    assert PORT_TABLE == {(True, False): 7497, (False, False): 7496, (True, True): 4002, (False, True): 4001}
    assert default_port(True, True) == 4002


def test_defaults_when_nothing_is_configured():
    s = resolve_connection()
    assert (s.host, s.port, s.client_id, s.paper_trading) == ("127.0.0.1", 7497, 1, True)
    assert resolve_connection(use_gateway=True).port == 4002


def test_environment_beats_defaults(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("IB_HOST", "10.0.0.5")
    monkeypatch.setenv("IB_PORT", "4002")
    monkeypatch.setenv("IB_CLIENT_ID", "7")
    s = resolve_connection()
    assert (s.host, s.port, s.client_id) == ("10.0.0.5", 4002, 7)


def test_explicit_arguments_beat_the_environment(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("IB_HOST", "10.0.0.5")
    monkeypatch.setenv("IB_PORT", "4002")
    monkeypatch.setenv("IB_CLIENT_ID", "7")
    s = resolve_connection(host="127.0.0.1", port=7497, client_id=3)
    assert (s.host, s.port, s.client_id) == ("127.0.0.1", 7497, 3)


def test_dot_env_file_is_read(tmp_path):
    (tmp_path / ".env").write_text("IB_PORT=4002\nIB_CLIENT_ID=9\nIB_PAPER_ACCOUNT=DU12345\nOTHER=1\n")
    s = resolve_connection()
    assert (s.port, s.client_id, s.paper_account) == (4002, 9, "DU12345")


def test_client_id_zero_is_honoured(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("IB_CLIENT_ID", "5")
    assert resolve_connection(client_id=0).client_id == 0
    monkeypatch.setenv("IB_CLIENT_ID", "0")
    assert resolve_connection().client_id == 0


@pytest.mark.parametrize(
    ("name", "value", "hint"), [("IB_PORT", "abc", "IB_PORT"), ("IB_CLIENT_ID", "-1", "IB_CLIENT_ID")]
)
def test_bad_environment_values_raise_config_error_with_a_fix(monkeypatch, name, value, hint):
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=hint) as info:
        resolve_connection()
    assert "set" in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"client_id": -1}, "negative"), ({"port": "abc"}, "not a number"), ({"port": 70000}, "out of range")],
)
def test_bad_arguments_raise_config_error(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        resolve_connection(**kwargs)


@pytest.mark.parametrize("port", [7496, 4001])
def test_paper_mode_refuses_a_live_port(port):
    with pytest.raises(ConfigError, match="LIVE trading port"):
        resolve_connection(paper_trading=True, port=port)


def test_paper_mode_refuses_a_live_port_from_the_environment(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("IB_PORT", "7496")
    with pytest.raises(ConfigError, match="IB_PORT"):
        resolve_connection(paper_trading=True)
    assert resolve_connection(paper_trading=False).port == 7496


def _settings(paper: bool = True, account: str | None = None) -> ConnectionSettings:
    return ConnectionSettings("127.0.0.1", 7497, 1, paper, False, account)


def test_paper_mode_refuses_a_live_account():
    with pytest.raises(ConfigError, match="live account"):
        check_managed_accounts(_settings(), ["U1234567"])
    assert check_managed_accounts(_settings(), ["DU1234567"]) == "DU1234567"
    assert check_managed_accounts(_settings(paper=False), ["U1234567"]) == "U1234567"


def test_ib_paper_account_must_match_a_managed_account():
    with pytest.raises(ConfigError, match="IB_PAPER_ACCOUNT=DU999"):
        check_managed_accounts(_settings(account="DU999"), ["DU1234567"])
    assert check_managed_accounts(_settings(account="DU2"), ["DU1", "DU2"]) == "DU2"


def test_no_managed_account_is_an_error():
    with pytest.raises(ConfigError, match="no managed account"):
        check_managed_accounts(_settings(), [])
