"""The live pre-check compares amounts in the account's base currency, as IB sends its values.

Before: an order's value in its contract's currency (USD for a US stock) was compared with IB's BuyingPower
in the account's base currency, so an EUR account refused a US stock order it could afford and a JPY account
passed one worth a hundred times its buying power; an order in a currency IB had sent no rate for was
passed unchecked. Now the value is converted at IB's ``ExchangeRate`` for its currency (what one unit is
worth in the base currency, as a real TWS dump shows: an EUR account's ``ExchangeRate 0.83 USD``), and an
order IB gave no rate for is refused, saying so.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterator, Sequence
from contextlib import ExitStack
from datetime import UTC, datetime
from typing import Any, TypeVar

import pytest
from copilot_quant.backtest.orders import Order, OrderStatus
from copilot_quant.brokers.ib_account import IbAccount
from copilot_quant.brokers.live_broker_adapter import LiveBrokerAdapter
from copilot_quant.brokers.order_tracking import TrackedOrder
from copilot_quant.data.providers import SyntheticDataProvider
from copilot_quant.gateway.server import GatewayServer
from copilot_quant.gateway.testing import running_gateway
from eventkit import Event
from hypothesis import given
from hypothesis import strategies as st
from ib_async import AccountValue, Forex, Position

NOW = datetime(2024, 1, 2, 19, tzinfo=UTC)
T = TypeVar("T")
ACCOUNT = "DU1234567"


# ------------------------------------------------------------------ against the simulated gateway
@pytest.fixture
def gateway_in() -> Iterator[Callable[[str, float, str], GatewayServer]]:
    """Starts a paused minute-bar gateway whose account is in ``currency``, with AAPL and ``pair``."""
    with ExitStack() as stack:

        def start(currency: str, cash: float, pair: str) -> GatewayServer:
            feed = SyntheticDataProvider(
                ["AAPL", pair], seed=3, start="2024-01-02", periods=3000, interval="1m"
            )
            return stack.enter_context(
                running_gateway(data=feed, bar_interval="1m", cash=cash, currency=currency)
            )

        yield start


def _connect(gateway: GatewayServer) -> LiveBrokerAdapter:
    broker = LiveBrokerAdapter(paper_trading=True, port=gateway.port, client_id=72, fill_timeout=0)
    assert broker.connect(timeout=5)
    return broker


def _aapl_worth(gateway: GatewayServer, usd: float) -> tuple[Order, float]:
    price = float(gateway.core.market.quotes["AAPL"].last)
    return Order("AAPL", int(usd / price), "market", "buy"), price


@pytest.mark.network
@pytest.mark.timeout(60)
def test_an_eur_account_affords_a_us_stock_worth_more_dollars_than_it_has_euros(
    gateway_in: Callable[[str, float, str], GatewayServer],
) -> None:
    gateway = gateway_in("EUR", 100_000.0, "EUR.USD")  # EUR.USD about 1.10: a dollar is about 0.91 EUR
    broker = _connect(gateway)
    try:
        fits, price = _aapl_worth(gateway, 104_000.0)  # about 95,000 EUR
        broker.execute_order(fits, price, NOW, wait=0)
        assert fits.status is OrderStatus.SUBMITTED, fits.reject_reason
        too_big, price = _aapl_worth(gateway, 115_000.0)  # about 105,000 EUR
        assert broker.execute_order(too_big, price, NOW, wait=0) is None
        assert too_big.status is OrderStatus.REJECTED
        assert "EUR" in too_big.reject_reason
        assert "IB BuyingPower is 100,000.00 EUR" in too_big.reject_reason
    finally:
        broker.disconnect()


@pytest.mark.network
@pytest.mark.timeout(60)
def test_a_jpy_account_refuses_a_us_stock_worth_more_than_its_yen(
    gateway_in: Callable[[str, float, str], GatewayServer],
) -> None:
    gateway = gateway_in("JPY", 10_000_000.0, "USD.JPY")  # about 66,000 USD
    broker = _connect(gateway)
    try:
        order, price = _aapl_worth(gateway, 100_000.0)
        assert broker.execute_order(order, price, NOW, wait=0) is None
        assert order.status is OrderStatus.REJECTED
        assert "insufficient buying power" in order.reject_reason
        assert order.broker_order_id is None  # refused before it was sent, not by IB
        small, price = _aapl_worth(gateway, 10_000.0)
        broker.execute_order(small, price, NOW, wait=0)
        assert small.status is OrderStatus.SUBMITTED, small.reject_reason
    finally:
        broker.disconnect()


# ------------------------------------------------------------------ on IB's recorded rows
class _IB:
    """ib_async's account reads over recorded rows (no wrapper cache: the reads fall back to a scan)."""

    def __init__(self, values: Sequence[tuple[str, str, str]]) -> None:
        self.values = [AccountValue(ACCOUNT, tag, value, currency, "") for tag, value, currency in values]
        self.accountValueEvent = Event("accountValueEvent")

    def accountValues(self, account: str = "") -> list[AccountValue]:
        return [v for v in self.values if v.account == account]

    def positions(self, account: str = "") -> list[object]:
        return []


class _Connection:
    def __init__(self, ib: _IB) -> None:
        self.ib, self.account = ib, ACCOUNT


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine that never waits (every read is in the cache) without an event loop."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value  # type: ignore[no-any-return]
    coroutine.close()
    raise AssertionError("the pre-check waited for IB: a value was not in the cache")


def _check(rows: Sequence[tuple[str, str, str]], order: Order, price: float) -> tuple[str | None, float]:
    account = IbAccount(_Connection(_IB(rows)), lambda price, qty: 0.0)  # type: ignore[arg-type]
    return _run(account.check_async(order, price, allow_short=True))


USD_ACCOUNT = [
    ("NetLiquidation", "100000.00", "USD"),
    ("BuyingPower", "100000.00", "USD"),
    ("AvailableFunds", "100000.00", "USD"),
    ("ExchangeRate", "1.00", "USD"),
    ("ExchangeRate", "1.00", "BASE"),
]


def test_an_order_in_a_currency_ib_sent_no_rate_for_is_refused_saying_how_to_fix_it() -> None:
    account = IbAccount(_Connection(_IB(USD_ACCOUNT)), lambda price, qty: 0.0)  # type: ignore[arg-type]
    order = Order("EUR.GBP", 20_000, "market", "buy")
    refusal = _run(account.refusal_async(order, 0.86, allow_short=True))
    assert refusal is not None  # it used to be passed unchecked
    assert "no ExchangeRate for GBP or EUR" in refusal
    assert "precheck_buying_power=False" in refusal


def test_a_rate_ib_sent_values_the_order_in_the_base_currency() -> None:
    rows = [*USD_ACCOUNT, ("ExchangeRate", "1.27", "GBP")]
    refusal, needed = _check(rows, Order("EUR.GBP", 20_000, "market", "buy"), 0.86)
    assert refusal is None
    assert needed == pytest.approx(20_000 * 0.86 * 1.27 * 0.03)  # a pair's margin, in USD


def test_a_per_currency_key_with_tws_ledger_prefix_is_read_too() -> None:
    rows = [*USD_ACCOUNT, ("$LEDGER-ExchangeRate", "1.27", "GBP")]
    refusal, needed = _check(rows, Order("EUR.GBP", 20_000, "market", "buy"), 0.86)
    assert refusal is None
    assert needed == pytest.approx(20_000 * 0.86 * 1.27 * 0.03)


def test_a_pair_quoting_the_base_currency_itself_needs_no_other_rate() -> None:
    # USD.JPY in a USD account: one unit is one dollar, whatever IB says of yen
    refusal, needed = _check(USD_ACCOUNT, Order("USD.JPY", 10_000, "market", "buy"), 150.0)
    assert refusal is None
    assert needed == pytest.approx(10_000 * 0.03)


def test_an_eur_account_values_a_us_stock_at_ibs_usd_rate() -> None:
    rows = [
        ("NetLiquidation", "10000.00", "EUR"),
        ("BuyingPower", "10000.00", "EUR"),
        ("ExchangeRate", "1.00", "EUR"),
        ("ExchangeRate", "0.83", "USD"),
    ]
    refusal, needed = _check(rows, Order("AAPL", 100, "market", "buy"), 110.0)  # 11,000 USD: 9,130 EUR
    assert refusal is None
    assert needed == pytest.approx(9_130.0)
    refusal, _ = _check(rows, Order("AAPL", 100, "market", "buy"), 125.0)  # 10,375 EUR
    assert refusal is not None
    assert "10,375.00 EUR" in refusal
    assert "IB BuyingPower is 10,000.00 EUR" in refusal


def test_a_sale_that_only_reduces_a_position_is_never_kept_back_by_a_missing_rate() -> None:
    ib = _IB(USD_ACCOUNT)
    held = [Position(ACCOUNT, Forex("EURGBP"), 20_000.0, 0.85)]
    ib.positions = lambda account="": held  # type: ignore[method-assign]
    account = IbAccount(_Connection(ib), lambda price, qty: 0.0)  # type: ignore[arg-type]
    closing = Order("EUR.GBP", 20_000, "market", "sell")
    assert _run(account.check_async(closing, 0.86, allow_short=True)) == (None, 0.0)
    # a 30,000 short is a bigger position than the 20,000 long: the growth needs its margin, so the rate
    reversing = Order("EUR.GBP", 50_000, "market", "sell")
    refusal, _ = _run(account.check_async(reversing, 0.86, allow_short=True))
    assert refusal is not None
    assert "no ExchangeRate" in refusal


@given(
    power=st.floats(0, 1e7),
    rate=st.floats(0.005, 200),
    reserved=st.lists(st.floats(0, 1e6), max_size=5),
    quantity=st.integers(1, 10_000),
    price=st.floats(0.01, 5_000),
)
def test_an_order_passed_never_needs_more_than_ibs_figure_whatever_the_currency_and_reservations(
    power: float, rate: float, reserved: list[float], quantity: int, price: float
) -> None:
    rows = [
        ("NetLiquidation", f"{power:.2f}", "CHF"),
        ("BuyingPower", f"{power:.2f}", "CHF"),
        ("ExchangeRate", f"{rate:.6f}", "USD"),
    ]
    account = IbAccount(_Connection(_IB(rows)), lambda price, qty: price * qty * 0.001)  # type: ignore[arg-type]
    for amount in reserved:
        working = TrackedOrder(Order("MSFT", 100, "market", "buy"))
        working.order.status = OrderStatus.SUBMITTED
        account.commitments.reserve(working, amount)
    refusal, needed = _run(
        account.check_async(Order("AAPL", quantity, "market", "buy"), price, allow_short=True)
    )
    ib_power = float(f"{power:.2f}")
    if refusal is None:
        assert needed <= ib_power - sum(reserved) + 1e-6 * max(1.0, ib_power)
        assert needed <= ib_power + 1e-9
    assert needed == pytest.approx(quantity * price * float(f"{rate:.6f}") * 1.001)
