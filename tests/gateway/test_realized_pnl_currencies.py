"""RealizedPnL and UnrealizedPnL per currency at the simulated gateway, read with plain ib_async.

IB's updateAccountValue sends these two keys once per currency the account deals in — what was realized
(or is open) in that currency, in that currency — and once as ``BASE``: the account's total in its base
currency. E.g. an EUR account that lost 1.93 USD on a US stock (a real TWS dump): RealizedPnL BASE -1.60,
EUR 0.00, USD -1.93. The gateway used to send one RealizedPnL, the total, labelled USD.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from copilot_quant.gateway.server import GatewayServer
from copilot_quant.gateway.testing import connected_ib, running_gateway
from ib_async import IB, Forex, Future, MarketOrder

from tests.gateway.conftest import wait_until
from tests.gateway.fut_fx_feed import FutFxFeed

pytestmark = [pytest.mark.network, pytest.mark.timeout(60)]


@pytest.fixture
def gw() -> Iterator[GatewayServer]:
    with running_gateway(data=FutFxFeed(), start="2026-11-02 16:00", cash=100_000.0) as server:
        yield server


def _fill(ib: IB, gw: GatewayServer, contract, order):
    trade = ib.placeOrder(contract, order)
    assert wait_until(ib, lambda: trade.orderStatus.status == "Submitted")
    gw.clock.step()
    assert wait_until(ib, lambda: trade.orderStatus.status == "Filled" and trade.fills)
    assert wait_until(ib, lambda: all(f.commissionReport.execId for f in trade.fills))
    return trade


def _pnl(ib: IB, tag: str) -> dict[str, float]:
    return {v.currency: float(v.value) for v in ib.accountValues() if v.tag == tag}


def test_realized_pnl_comes_per_currency_and_as_base(gw: GatewayServer) -> None:
    with connected_ib(gw, client_id=5) as ib:
        [mes] = ib.qualifyContracts(Future("MES", "202612", "CME"))
        [cross] = ib.qualifyContracts(Forex("USDJPY"))
        opened = [_fill(ib, gw, mes, MarketOrder("BUY", 1)), _fill(ib, gw, cross, MarketOrder("BUY", 20_000))]
        closed = [
            _fill(ib, gw, mes, MarketOrder("SELL", 1)),
            _fill(ib, gw, cross, MarketOrder("SELL", 20_000)),
        ]
        in_jpy = (closed[1].orderStatus.avgFillPrice - opened[1].orderStatus.avgFillPrice) * 20_000
        commissions = sum(f.commissionReport.commission for t in opened + closed for f in t.fills)
        in_usd = (closed[0].orderStatus.avgFillPrice - opened[0].orderStatus.avgFillPrice) * 5 - commissions
        total = gw.call(lambda: gw.broker.account.realized_pnl)
        assert wait_until(ib, lambda: _pnl(ib, "RealizedPnL").get("JPY") is not None)
        assert wait_until(ib, lambda: _pnl(ib, "RealizedPnL")["BASE"] == pytest.approx(total, abs=0.01))
        realized = _pnl(ib, "RealizedPnL")
        assert set(realized) == {"BASE", "USD", "JPY"}
        assert realized["JPY"] == pytest.approx(in_jpy, abs=0.01)  # in yen, as realized
        assert realized["USD"] == pytest.approx(in_usd, abs=0.01)  # the future, less every commission (USD)
        assert realized["BASE"] != pytest.approx(realized["USD"], abs=0.01)  # the yen count too
        assert set(_pnl(ib, "UnrealizedPnL")) == {"BASE", "USD", "JPY"}
        # the readers of account-wide figures still find one value each
        summary = {(v.tag, v.currency) for v in ib.accountSummary()}
        assert ("NetLiquidation", "USD") in summary
        assert [v.currency for v in ib.accountValues() if v.tag == "NetLiquidation"] == ["USD"]


def test_a_usd_only_account_reports_the_same_figure_as_usd_and_base(gw: GatewayServer) -> None:
    with connected_ib(gw, client_id=6) as ib:
        [mes] = ib.qualifyContracts(Future("MES", "202612", "CME"))
        _fill(ib, gw, mes, MarketOrder("BUY", 1))
        _fill(ib, gw, mes, MarketOrder("SELL", 1))
        assert wait_until(ib, lambda: set(_pnl(ib, "RealizedPnL")) == {"BASE", "USD"})
        realized = _pnl(ib, "RealizedPnL")
        assert realized["BASE"] == realized["USD"] != 0.0
        # ib_async's first match for a (tag, USD or BASE) lookup, as the adapter's reader takes it: BASE
        first = next(
            v for v in ib.accountValues() if v.tag == "RealizedPnL" and v.currency in ("USD", "BASE")
        )
        assert first.currency == "BASE"
