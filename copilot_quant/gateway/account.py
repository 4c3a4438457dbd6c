"""The simulated IB account: cash, positions, P&L and the margin figures TWS reports.

Model (documented simplifications of IB's rules; the base currency is USD):

* ``NetLiquidation = cash + Σ quantity × last price`` (shorts have negative quantity), after every fill and
  every price mark. ``EquityWithLoanValue`` equals it (no options, no loans).
* Margin: ``InitMarginReq = MaintMarginReq = GrossPositionValue / leverage``. ``AvailableFunds`` and
  ``ExcessLiquidity`` are equity minus that requirement, ``BuyingPower = AvailableFunds × leverage``.
  With the default ``leverage=1`` the account behaves like a cash account whose buying power is its free
  cash; pass ``leverage=2`` (Reg T) or ``4`` (intraday) for a margin account. Shorting is allowed and
  uses margin like a long position of the same value.
* Average cost excludes commissions (the backtest's convention; IB folds them in); commissions are paid
  from cash. ``RealizedPnL`` is net of every commission paid, so
  ``RealizedPnL + UnrealizedPnL == NetLiquidation − starting cash`` holds while every balance is in the base
  currency (see below for a foreign one).
* ``dailyPnL`` is the change of NetLiquidation since the start of the session (see :meth:`Account.start_day`).

Futures and forex (issue #14):

* A value is ``quantity × price × multiplier`` in the contract's currency, converted to the base currency at
  the latest rate (:mod:`copilot_quant.gateway.currencies`). IB reports a future's ``avgCost`` with the
  multiplier folded in (price × multiplier); ``marketPrice`` stays the price of one unit.
* A futures position exchanges no notional: its P&L is cash when it closes and its open P&L counts in
  NetLiquidation (``FuturesPNL``) until then. It ties up its initial margin per contract
  (``InitMarginReq``; maintenance likewise), not its value, and is not in GrossPositionValue.
* A forex trade moves two balances (``EUR.USD``: the EUR credited, the USD debited); NetLiquidation counts
  every balance at its rate (``CashBalance``, ``TotalCashBalance`` and ``ExchangeRate`` per currency and for
  ``BASE``; an ``ExchangeRate`` alone for a currency the market quotes that the account does not hold, see
  :meth:`Account.quoted_rates`), so the pair's position is not counted again. A pair's position ties up ``forex_margin`` of its
  value (:data:`~copilot_quant.model.instruments.FOREX_MARGIN_RATE`, 3 %, the backtest's rate too), whatever
  the stock ``leverage`` (a currency loan is not modelled apart).
* Commissions are paid in the base currency.
* ``UnrealizedPnL`` and ``RealizedPnL`` come as IB sends them: the account's total as ``BASE``, and per
  currency what is open / was realized in that currency, in it (an EUR account's USD stock loss: BASE
  -1.60, EUR 0.00, USD -1.93). Commissions are paid in the base currency, so its own figure is net of them.
* ``RealizedPnL`` (in ``BASE``) books each realization at the rate in force when it was realized, as the
  backtest's books do (:mod:`copilot_quant.model.book`): the quote currency's rate then, and for a pair
  quoting the base itself (``USD.JPY``) its own fill price. A cross pair's (``EUR.GBP``) P&L is left as a
  foreign balance (GBP); what that balance gains or loses as GBP.USD moves later is currency translation,
  counted in NetLiquidation but neither realized nor unrealized P&L — so the identity above then differs
  by that translation.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from copilot_quant.errors import ConfigError
from copilot_quant.gateway.account_report import SUMMARY_TAGS, account_summary, account_values
from copilot_quant.gateway.contracts import ContractInfo
from copilot_quant.gateway.currencies import CurrencyBook, pair_rate
from copilot_quant.model.instruments import FOREX_MARGIN_RATE
from copilot_quant.model.orders import Position

__all__ = [
    "SUMMARY_TAGS",
    "Account",
    "MarginImpact",
    "PnL",
    "PnLSingle",
    "PortfolioItem",
    "PositionItem",
]


@dataclass(frozen=True, slots=True)
class PositionItem:
    """What a position (61) message carries."""

    contract: ContractInfo
    position: float
    avg_cost: float


@dataclass(frozen=True, slots=True)
class PortfolioItem:
    """What an updatePortfolio (7) message carries. ``realized_pnl`` is net of this symbol's commissions."""

    contract: ContractInfo
    position: float
    market_price: float
    market_value: float
    avg_cost: float
    unrealized_pnl: float
    realized_pnl: float


@dataclass(frozen=True, slots=True)
class PnL:
    daily: float
    unrealized: float
    realized: float


@dataclass(frozen=True, slots=True)
class PnLSingle:
    position: float
    daily: float
    unrealized: float
    realized: float
    value: float


@dataclass(frozen=True, slots=True)
class MarginImpact:
    """whatIf numbers: margin and equity before, the change an order causes, and after it."""

    init_before: float
    maint_before: float
    equity_before: float
    init_change: float
    maint_change: float
    equity_change: float
    init_after: float
    maint_after: float
    equity_after: float
    commission: float
    currency: str = "USD"


@dataclass(slots=True)
class _Holding:
    contract: ContractInfo
    position: Position
    #: unrealized + net realized P&L at the start of the session (pnlSingle's dailyPnL counts from it)
    daily_start_total: float = 0.0

    @property
    def multiplier(self) -> float:
        return self.contract.multiplier_value

    @property
    def is_future(self) -> bool:
        return self.contract.sec_type == "FUT"

    @property
    def market_value(self) -> float:
        """Signed value in the contract's currency (quantity × price × multiplier)."""
        return self.position.market_value * self.multiplier

    @property
    def unrealized(self) -> float:
        return self.position.unrealized_pnl * self.multiplier

    @property
    def net_realized(self) -> float:
        """Realized P&L in the contract's currency, net of this contract's commissions."""
        return self.position.realized_pnl * self.multiplier - self.position.commission_paid


class Account:
    """One account's books. Pure logic: the broker calls :meth:`apply_fill` and :meth:`mark`."""

    def __init__(
        self,
        account_id: str = "DU1234567",
        cash: float = 1_000_000.0,
        *,
        leverage: float = 1.0,
        currency: str = "USD",
        forex_margin: float = FOREX_MARGIN_RATE,
    ) -> None:
        if not math.isfinite(cash) or cash < 0:
            raise ConfigError(f"starting cash must be a finite amount >= 0, got {cash!r}")
        if not math.isfinite(leverage) or leverage < 1:
            raise ConfigError(
                f"leverage must be >= 1 (1 = cash-like, 2 = Reg T, 4 = intraday), got {leverage!r}"
            )
        self.account_id = account_id
        self.currency = currency
        self.leverage = float(leverage)
        if not 0 < forex_margin <= 1:
            raise ConfigError(f"forex_margin must be in (0, 1], e.g. 0.03; got {forex_margin!r}")
        self.forex_margin = float(forex_margin)
        self.starting_cash = float(cash)
        self.cash = float(cash)
        self.commissions = 0.0
        #: realized P&L before commissions, in the base currency, each at the rate when it was realized
        self.realized_base = 0.0
        self.day_start_equity = float(cash)
        self._holdings: dict[str, _Holding] = {}
        #: Where a pair's price comes from when the account holds no position in it (the market's quote).
        self.price_source: Callable[[str], float | None] | None = None
        #: Foreign-currency balances (forex trades); :attr:`cash` is the base currency's own balance.
        self.currencies = CurrencyBook(currency, price_of=self._pair_price)
        #: The currencies the market quotes a pair of against the base currency (the gateway sets it): each
        #: gets an ``ExchangeRate`` account value even before the account holds any (see
        #: :meth:`quoted_rates`).
        self.quoted_currencies: Callable[[], Iterable[str]] | None = None

    # ----- mutation -------------------------------------------------------------------------------
    def apply_fill(self, contract: ContractInfo, signed_qty: float, price: float, commission: float) -> float:
        """Book a fill; returns the P&L it realized before commission, in the contract's currency (0.0 for
        a purely opening trade). Commissions are paid in the base currency."""
        holding = self._holdings.get(contract.symbol)
        if holding is None:
            holding = _Holding(contract, Position(contract.symbol))
            self._holdings[contract.symbol] = holding
        realized = holding.position.apply(signed_qty, price, commission) * holding.multiplier
        if realized:
            # the rate in force now (a USD.JPY fill has just set its own price as the JPY rate)
            self.realized_base += self._in_base(holding, realized)
        if contract.sec_type == "FUT":
            self._credit(contract.currency, realized)  # no notional changes hands, only the P&L
            self.cash -= commission
        elif contract.sec_type == "CASH":
            self._credit(contract.wire_symbol, signed_qty)  # the base currency bought (or sold)
            self._credit(contract.currency, -signed_qty * price)  # paid in the quote currency
            self.cash -= commission
        elif contract.currency == self.currency:
            self.cash -= signed_qty * price * holding.multiplier + commission
        else:
            self._credit(contract.currency, -signed_qty * price * holding.multiplier)
            self.cash -= commission
        self.commissions += commission
        return realized

    def _credit(self, currency: str, amount: float) -> None:
        if currency == self.currency:
            self.cash += amount
        else:
            self.currencies.add(currency, amount)

    def _pair_price(self, pair: str) -> float | None:
        holding = self._holdings.get(pair)
        if holding is not None and holding.position.last_price:
            return holding.position.last_price
        return self.price_source(pair) if self.price_source is not None else None

    def rate(self, currency: str) -> float:
        """Base-currency value of one unit of ``currency`` (1 for the base itself)."""
        return 1.0 if currency == self.currency else self.currencies.rate(currency)

    def quoted_rates(self) -> list[tuple[str, float]]:
        """``(currency, rate)`` of each currency the market rates against the base and the account holds
        no balance in: IB lists an ``ExchangeRate`` for each currency of the account's ledgers, also at a
        0.00 balance, so that a client can value an order in it before the first trade."""
        if self.quoted_currencies is None:
            return []
        held = {c for c, _ in self.currencies.balances(self.cash)}
        out = []
        for currency in sorted(set(self.quoted_currencies()) - held):
            rate = pair_rate(currency, self.currency, self._pair_price)
            if rate is not None:
                out.append((currency, rate))
        return out

    def mark(self, symbol: str, price: float) -> bool:
        """Mark ``symbol`` to ``price``; True if the account holds (or held) that symbol."""
        holding = self._holdings.get(symbol)
        if holding is None:
            return False
        holding.position.update_unrealized_pnl(price)
        return True

    def settle_expired(self, day: str) -> list[PortfolioItem]:
        """Close every futures position whose last trade date (``yyyymmdd``) is before ``day`` at its last
        price: the contract stopped trading and settles in cash (a physically delivered one is closed out
        before delivery, as IB does). Returns the settled (now flat) portfolio items."""
        settled: list[PortfolioItem] = []
        for holding in self._holdings.values():
            contract, pos = holding.contract, holding.position
            if not holding.is_future or pos.is_flat or not contract.last_trade_date:
                continue
            if contract.last_trade_date >= day:
                continue
            price = pos.last_price or pos.avg_entry_price
            self.apply_fill(contract, -pos.quantity, price, 0.0)
            settled.append(self._item(holding))
        return settled

    def start_day(self) -> None:
        """Begin a new session: daily P&L counts from the current values."""
        self.day_start_equity = self.net_liquidation
        for holding in self._holdings.values():
            holding.daily_start_total = self._total(holding)

    def restore(
        self,
        cash: float,
        commissions: float,
        day_start_equity: float,
        holdings: Iterable[tuple[ContractInfo, Position]],
        balances: dict[str, float] | None = None,
        *,
        realized_base: float | None = None,
    ) -> None:
        """Replace the books with persisted values (see :mod:`copilot_quant.gateway.state`); ``balances``
        are the foreign-currency balances, ``realized_base`` the realized P&L booked in the base currency
        (None, from a file written before it was kept: the holdings' realized P&L at today's rates)."""
        self.cash = cash
        self.currencies.foreign = dict(balances or {})
        self.commissions = commissions
        self.day_start_equity = day_start_equity
        self._holdings = {c.symbol: _Holding(c, p) for c, p in holdings}
        if realized_base is None:
            realized_base = sum(
                self._in_base(h, h.position.realized_pnl * h.multiplier) for h in self._holdings.values()
            )
        self.realized_base = realized_base
        for holding in self._holdings.values():
            holding.daily_start_total = self._total(holding)

    # ----- figures --------------------------------------------------------------------------------
    def holdings(self) -> list[tuple[ContractInfo, Position]]:
        """Every symbol ever traded with its position (copies; flat ones included)."""
        return [(h.contract, h.position.snapshot()) for h in self._holdings.values()]

    def quantity(self, symbol: str) -> float:
        holding = self._holdings.get(symbol)
        return 0.0 if holding is None else holding.position.quantity

    def last_price(self, symbol: str) -> float | None:
        holding = self._holdings.get(symbol)
        if holding is None or not holding.position.last_price:
            return None
        return holding.position.last_price

    def _in_base(self, holding: _Holding, amount: float) -> float:
        currency = holding.contract.currency
        return amount if currency == self.currency else amount * self.rate(currency)

    def _securities(self) -> Iterable[_Holding]:
        """Holdings whose value is a position (stocks); futures and pairs are counted otherwise."""
        return (h for h in self._holdings.values() if h.contract.sec_type not in ("FUT", "CASH"))

    @property
    def gross_position_value(self) -> float:
        return sum(abs(self._in_base(h, h.market_value)) for h in self._securities())

    @property
    def stock_market_value(self) -> float:
        return sum(self._in_base(h, h.market_value) for h in self._securities())

    @property
    def futures_pnl(self) -> float:
        """Open P&L of the futures positions (base currency): part of NetLiquidation until they close."""
        return sum(self._in_base(h, h.unrealized) for h in self._holdings.values() if h.is_future)

    @property
    def total_cash_value(self) -> float:
        """Every currency balance in the base currency."""
        return self.currencies.value(self.cash)

    @property
    def net_liquidation(self) -> float:
        return self.total_cash_value + self.stock_market_value + self.futures_pnl

    @property
    def equity_with_loan(self) -> float:
        return self.net_liquidation

    def _margin(self, per_contract: Callable[[ContractInfo], float]) -> float:
        cash_pairs = sum(
            abs(self._in_base(h, h.market_value))
            for h in self._holdings.values()
            if h.contract.sec_type == "CASH"
        )
        futures = sum(
            abs(h.position.quantity) * self._in_base(h, per_contract(h.contract))
            for h in self._holdings.values()
            if h.is_future
        )
        return self.gross_position_value / self.leverage + cash_pairs * self.forex_margin + futures

    @property
    def init_margin(self) -> float:
        return self._margin(lambda c: c.initial_margin)

    @property
    def maint_margin(self) -> float:
        return self._margin(lambda c: c.maintenance_margin)

    @property
    def available_funds(self) -> float:
        return self.equity_with_loan - self.init_margin

    @property
    def excess_liquidity(self) -> float:
        return self.equity_with_loan - self.maint_margin

    @property
    def buying_power(self) -> float:
        return max(self.available_funds, 0.0) * self.leverage

    @property
    def unrealized_pnl(self) -> float:
        return sum(self._in_base(h, h.unrealized) for h in self._holdings.values())

    @property
    def realized_pnl(self) -> float:
        """Realized P&L net of all commissions paid, in the base currency: each realization at the rate
        in force when it was realized (not re-valued as rates move)."""
        return self.realized_base - self.commissions

    def margin_impact(
        self, contract: ContractInfo | str, signed_qty: float, price: float, commission: float
    ) -> MarginImpact:
        """What a trade of ``signed_qty`` at ``price`` would do to margin and equity (nothing is booked).

        ``contract`` (or a symbol the account holds or a stock's symbol) says how it is margined: a future
        by its margin per contract, a forex pair by ``forex_margin`` of its value, anything else by its value
        / leverage."""
        if isinstance(contract, str):
            held = self._holdings.get(contract)
            contract = held.contract if held is not None else ContractInfo(0, contract)
        symbol = contract.symbol
        old_qty = self.quantity(symbol)
        rate = self.rate(contract.currency)
        if contract.sec_type == "FUT":
            contracts = abs(old_qty + signed_qty) - abs(old_qty)
            init_change = contracts * contract.initial_margin * rate
            maint_change = contracts * contract.maintenance_margin * rate
        else:
            mark = self.last_price(symbol) or price
            mult = contract.multiplier_value
            change_value = (abs(old_qty + signed_qty) * price - abs(old_qty) * mark) * mult
            share = self.forex_margin if contract.sec_type == "CASH" else 1.0 / self.leverage
            init_change = maint_change = change_value * rate * share
        init_before, maint_before, equity_before = self.init_margin, self.maint_margin, self.equity_with_loan
        equity_change = -commission
        return MarginImpact(
            init_before=init_before,
            maint_before=maint_before,
            equity_before=equity_before,
            init_change=init_change,
            maint_change=maint_change,
            equity_change=equity_change,
            init_after=init_before + init_change,
            maint_after=maint_before + maint_change,
            equity_after=equity_before + equity_change,
            commission=commission,
            currency=self.currency,
        )

    def pnl(self) -> PnL:
        return PnL(
            daily=self.net_liquidation - self.day_start_equity,
            unrealized=self.unrealized_pnl,
            realized=self.realized_pnl,
        )

    def pnl_single(self, symbol: str) -> PnLSingle | None:
        holding = self._holdings.get(symbol)
        if holding is None:
            return None
        pos = holding.position
        daily = self._total(holding) - holding.daily_start_total
        return PnLSingle(pos.quantity, daily, holding.unrealized, holding.net_realized, holding.market_value)

    def positions(self, include_flat: bool = False) -> list[PositionItem]:
        return [
            PositionItem(h.contract, h.position.quantity, _avg_cost(h))
            for h in self._holdings.values()
            if include_flat or not h.position.is_flat
        ]

    def portfolio_item(self, symbol: str) -> PortfolioItem | None:
        holding = self._holdings.get(symbol)
        return None if holding is None else self._item(holding)

    def portfolio(self, include_flat: bool = False) -> list[PortfolioItem]:
        return [self._item(h) for h in self._holdings.values() if include_flat or not h.position.is_flat]

    @property
    def holds_futures(self) -> bool:
        """Whether any futures contract was traded (TWS then sends FuturesPNL)."""
        return any(h.is_future for h in self._holdings.values())

    def pnl_by_currency(self) -> tuple[dict[str, float], dict[str, float]]:
        """``(unrealized, realized)`` per currency dealt in, each in that currency (module docstring): the
        currencies held first (the base among them), then those of the contracts traded. The base
        currency's realized figure is net of every commission (they are paid in it)."""
        currencies = [c for c, _ in self.currencies.balances(self.cash)]
        currencies += sorted({h.contract.currency for h in self._holdings.values()} - set(currencies))
        unrealized = dict.fromkeys(currencies, 0.0)
        realized = dict.fromkeys(currencies, 0.0)
        realized[self.currency] = -self.commissions
        for holding in self._holdings.values():
            currency = holding.contract.currency
            unrealized[currency] += holding.unrealized
            realized[currency] += holding.position.realized_pnl * holding.multiplier
        return unrealized, realized

    def values(self) -> list[tuple[str, str, str]]:
        """``(key, value, currency)`` for updateAccountValue (:func:`~.account_report.account_values`)."""
        return account_values(self)

    def summary(self, tags: Iterable[str] | str = SUMMARY_TAGS) -> list[tuple[str, str, str]]:
        """``(tag, value, currency)`` for accountSummary (:func:`~.account_report.account_summary`)."""
        return account_summary(self, tags)

    @property
    def account_type(self) -> str:
        return "INDIVIDUAL"

    # ----- helpers --------------------------------------------------------------------------------
    @staticmethod
    def _total(holding: _Holding) -> float:
        return holding.unrealized + holding.net_realized

    def _item(self, holding: _Holding) -> PortfolioItem:
        pos = holding.position
        price = pos.last_price or pos.avg_entry_price
        return PortfolioItem(
            contract=holding.contract,
            position=pos.quantity,
            market_price=price,
            market_value=pos.quantity * price * holding.multiplier,
            avg_cost=_avg_cost(holding),
            unrealized_pnl=holding.unrealized,
            realized_pnl=holding.net_realized,
        )


def _avg_cost(holding: _Holding) -> float:
    """IB's avgCost: a future's includes its multiplier (price × multiplier); others are the price."""
    price = holding.position.avg_entry_price
    return price * holding.multiplier if holding.is_future else price
