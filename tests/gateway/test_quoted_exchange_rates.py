"""The gateway sends an ``ExchangeRate`` for each currency its market quotes a pair of, before the account
holds any (real IB lists a ledger's rate at a 0.00 balance too: an EUR account's ``ExchangeRate 0.84 USD``
beside ``CashBalance 0.00 USD``), so a client can value an order in that currency before its first trade;
and an account's base currency can be another than USD (``GatewayConfig.currency``)."""

from __future__ import annotations

import pytest
from copilot_quant.data.providers import SyntheticDataProvider
from copilot_quant.errors import ConfigError
from copilot_quant.gateway.server import GatewayConfig, GatewayServer
from copilot_quant.gateway.testing import connected_ib, running_gateway

pytestmark = [pytest.mark.network, pytest.mark.timeout(60)]


def _feed(*symbols: str) -> SyntheticDataProvider:
    return SyntheticDataProvider(list(symbols), seed=3, start="2024-01-02", periods=600, interval="1m")


def test_a_fresh_account_has_the_rate_of_each_quoted_currency_and_no_balance_in_it() -> None:
    with (
        running_gateway(data=_feed("AAPL", "EUR.USD", "USD.JPY"), bar_interval="1m") as gw,
        connected_ib(gw) as ib,
    ):
        values = {(v.tag, v.currency): v.value for v in ib.accountValues()}
        eur = float(gw.core.market.quotes["EUR.USD"].last)
        yen = float(gw.core.market.quotes["USD.JPY"].last)
        assert float(values[("ExchangeRate", "EUR")]) == pytest.approx(eur, rel=1e-6)
        assert float(values[("ExchangeRate", "JPY")]) == pytest.approx(1 / yen, rel=1e-5)
        assert values[("ExchangeRate", "USD")] == "1.00"
        assert ("CashBalance", "EUR") not in values  # nothing held: only the rate
        assert ("CashBalance", "JPY") not in values


def test_an_eur_account_reports_in_euros_and_rates_the_dollar() -> None:
    with (
        running_gateway(
            data=_feed("AAPL", "EUR.USD"), bar_interval="1m", cash=50_000.0, currency="eur"
        ) as gw,
        connected_ib(gw) as ib,
    ):
        values = {(v.tag, v.currency): v.value for v in ib.accountValues()}
        assert values[("NetLiquidation", "EUR")] == "50000.00"
        assert values[("BuyingPower", "EUR")] == "50000.00"
        eur = float(gw.core.market.quotes["EUR.USD"].last)
        assert float(values[("ExchangeRate", "USD")]) == pytest.approx(1 / eur, rel=1e-5)


@pytest.mark.parametrize("currency", ["", "EURO", "E1R", 840])
def test_a_base_currency_that_is_not_a_currency_code_is_refused(currency: object) -> None:
    with pytest.raises(ConfigError, match="3-letter currency code"):
        GatewayServer(GatewayConfig(port=0, data=_feed("AAPL"), currency=currency))  # type: ignore[arg-type]
