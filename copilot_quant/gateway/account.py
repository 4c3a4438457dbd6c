"""The simulated IB account: cash, positions, P&L and the margin figures TWS reports.

Model (documented simplifications of IB's rules, one stock currency, USD):

* ``NetLiquidation = cash + Σ quantity × last price`` (shorts have negative quantity), after every fill and
  every price mark. ``EquityWithLoanValue`` equals it (no options, no loans).
* Margin: ``InitMarginReq = MaintMarginReq = GrossPositionValue / leverage``. ``AvailableFunds`` and
  ``ExcessLiquidity`` are equity minus that requirement, ``BuyingPower = AvailableFunds × leverage``.
  With the default ``leverage=1`` the account behaves like a cash account whose buying power is its free
  cash; pass ``leverage=2`` (Reg T) or ``4`` (intraday) for a margin account. Shorting is allowed and
  uses margin like a long position of the same value.
* Average cost excludes commissions (the backtest's convention; IB folds them in); commissions are paid
  from cash. ``RealizedPnL`` is net of every commission paid, so
  ``RealizedPnL + UnrealizedPnL == NetLiquidation − starting cash`` always holds.
* ``dailyPnL`` is the change of NetLiquidation since the start of the session (see :meth:`Account.start_day`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from copilot_quant.errors import ConfigError
from copilot_quant.gateway.contracts import ContractInfo
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

#: accountSummary tags the simulator models (others in a request are skipped, as TWS skips unknown ones).
SUMMARY_TAGS: tuple[str, ...] = (
    "AccountType",
    "NetLiquidation",
    "TotalCashValue",
    "SettledCash",
    "BuyingPower",
    "EquityWithLoanValue",
    "GrossPositionValue",
    "InitMarginReq",
    "MaintMarginReq",
    "AvailableFunds",
    "ExcessLiquidity",
    "Cushion",
    "Leverage",
    "FullInitMarginReq",
    "FullMaintMarginReq",
    "FullAvailableFunds",
    "FullExcessLiquidity",
    "LookAheadInitMarginReq",
    "LookAheadMaintMarginReq",
    "LookAheadAvailableFunds",
    "LookAheadExcessLiquidity",
)

_ALIASES = {
    "SettledCash": "TotalCashValue",
    "FullInitMarginReq": "InitMarginReq",
    "FullMaintMarginReq": "MaintMarginReq",
    "FullAvailableFunds": "AvailableFunds",
    "FullExcessLiquidity": "ExcessLiquidity",
    "LookAheadInitMarginReq": "InitMarginReq",
    "LookAheadMaintMarginReq": "MaintMarginReq",
    "LookAheadAvailableFunds": "AvailableFunds",
    "LookAheadExcessLiquidity": "ExcessLiquidity",
}


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


class Account:
    """One account's books. Pure logic: the broker calls :meth:`apply_fill` and :meth:`mark`."""

    def __init__(
        self,
        account_id: str = "DU1234567",
        cash: float = 1_000_000.0,
        *,
        leverage: float = 1.0,
        currency: str = "USD",
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
        self.starting_cash = float(cash)
        self.cash = float(cash)
        self.commissions = 0.0
        self.day_start_equity = float(cash)
        self._holdings: dict[str, _Holding] = {}

    # ----- mutation -------------------------------------------------------------------------------
    def apply_fill(self, contract: ContractInfo, signed_qty: float, price: float, commission: float) -> float:
        """Book a fill; returns the P&L it realized before commission (0.0 for a purely opening trade)."""
        holding = self._holdings.get(contract.symbol)
        if holding is None:
            holding = _Holding(contract, Position(contract.symbol))
            self._holdings[contract.symbol] = holding
        realized = holding.position.apply(signed_qty, price, commission)
        self.cash -= signed_qty * price + commission
        self.commissions += commission
        return realized

    def mark(self, symbol: str, price: float) -> bool:
        """Mark ``symbol`` to ``price``; True if the account holds (or held) that symbol."""
        holding = self._holdings.get(symbol)
        if holding is None:
            return False
        holding.position.update_unrealized_pnl(price)
        return True

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
    ) -> None:
        """Replace the books with persisted values (see :mod:`copilot_quant.gateway.state`)."""
        self.cash = cash
        self.commissions = commissions
        self.day_start_equity = day_start_equity
        self._holdings = {c.symbol: _Holding(c, p) for c, p in holdings}
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

    @property
    def gross_position_value(self) -> float:
        return sum(abs(h.position.market_value) for h in self._holdings.values())

    @property
    def stock_market_value(self) -> float:
        return sum(h.position.market_value for h in self._holdings.values())

    @property
    def net_liquidation(self) -> float:
        return self.cash + self.stock_market_value

    @property
    def equity_with_loan(self) -> float:
        return self.net_liquidation

    @property
    def init_margin(self) -> float:
        return self.gross_position_value / self.leverage

    @property
    def maint_margin(self) -> float:
        return self.init_margin

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
        return sum(h.position.unrealized_pnl for h in self._holdings.values())

    @property
    def realized_pnl(self) -> float:
        """Realized P&L net of all commissions paid."""
        return sum(h.position.realized_pnl for h in self._holdings.values()) - self.commissions

    def margin_impact(self, symbol: str, signed_qty: float, price: float, commission: float) -> MarginImpact:
        """What a trade of ``signed_qty`` at ``price`` would do to margin and equity (nothing is booked)."""
        old_qty = self.quantity(symbol)
        mark = self.last_price(symbol) or price
        change_gpv = abs(old_qty + signed_qty) * price - abs(old_qty) * mark
        init_before, maint_before, equity_before = self.init_margin, self.maint_margin, self.equity_with_loan
        init_change = change_gpv / self.leverage
        equity_change = -commission
        return MarginImpact(
            init_before=init_before,
            maint_before=maint_before,
            equity_before=equity_before,
            init_change=init_change,
            maint_change=init_change,
            equity_change=equity_change,
            init_after=init_before + init_change,
            maint_after=maint_before + init_change,
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
        return PnLSingle(
            pos.quantity, daily, pos.unrealized_pnl, self._net_realized(holding), pos.market_value
        )

    def positions(self, include_flat: bool = False) -> list[PositionItem]:
        return [
            PositionItem(h.contract, h.position.quantity, h.position.avg_entry_price)
            for h in self._holdings.values()
            if include_flat or not h.position.is_flat
        ]

    def portfolio_item(self, symbol: str) -> PortfolioItem | None:
        holding = self._holdings.get(symbol)
        return None if holding is None else self._item(holding)

    def portfolio(self, include_flat: bool = False) -> list[PortfolioItem]:
        return [self._item(h) for h in self._holdings.values() if include_flat or not h.position.is_flat]

    def values(self) -> list[tuple[str, str, str]]:
        """``(key, value, currency)`` for updateAccountValue, in the order TWS tends to send them."""
        money = {
            "NetLiquidation": self.net_liquidation,
            "TotalCashValue": self.cash,
            "SettledCash": self.cash,
            "BuyingPower": self.buying_power,
            "AvailableFunds": self.available_funds,
            "ExcessLiquidity": self.excess_liquidity,
            "EquityWithLoanValue": self.equity_with_loan,
            "GrossPositionValue": self.gross_position_value,
            "StockMarketValue": self.stock_market_value,
            "InitMarginReq": self.init_margin,
            "MaintMarginReq": self.maint_margin,
            "UnrealizedPnL": self.unrealized_pnl,
            "RealizedPnL": self.realized_pnl,
        }
        out = [("AccountCode", self.account_id, ""), ("AccountType", self.account_type, "")]
        out += [(key, _money(value), self.currency) for key, value in money.items()]
        out += [
            ("CashBalance", _money(self.cash), self.currency),
            ("CashBalance", _money(self.cash), "BASE"),
            ("Currency", self.currency, self.currency),
            ("Leverage-S", f"{self._leverage_ratio():.2f}", ""),
        ]
        return out

    def summary(self, tags: Iterable[str] | str = SUMMARY_TAGS) -> list[tuple[str, str, str]]:
        """``(tag, value, currency)`` for accountSummary; tags the simulator does not model are skipped."""
        if isinstance(tags, str):
            tags = [t.strip() for t in tags.split(",") if t.strip()]
        figures = {key: (value, cur) for key, value, cur in self.values() if cur != "BASE"}
        figures["Cushion"] = (f"{self._cushion():.6f}", "")
        figures["Leverage"] = (f"{self._leverage_ratio():.2f}", "")
        out: list[tuple[str, str, str]] = []
        for tag in tags:
            key = _ALIASES.get(tag, tag)
            if tag in SUMMARY_TAGS and key in figures:
                value, currency = figures[key]
                out.append((tag, value, currency))
        return out

    @property
    def account_type(self) -> str:
        return "INDIVIDUAL"

    # ----- helpers --------------------------------------------------------------------------------
    def _net_realized(self, holding: _Holding) -> float:
        return holding.position.realized_pnl - holding.position.commission_paid

    def _total(self, holding: _Holding) -> float:
        return holding.position.unrealized_pnl + self._net_realized(holding)

    def _item(self, holding: _Holding) -> PortfolioItem:
        pos = holding.position
        price = pos.last_price or pos.avg_entry_price
        return PortfolioItem(
            contract=holding.contract,
            position=pos.quantity,
            market_price=price,
            market_value=pos.quantity * price,
            avg_cost=pos.avg_entry_price,
            unrealized_pnl=pos.unrealized_pnl,
            realized_pnl=self._net_realized(holding),
        )

    def _cushion(self) -> float:
        nl = self.net_liquidation
        return self.excess_liquidity / nl if nl > 0 else 0.0

    def _leverage_ratio(self) -> float:
        nl = self.net_liquidation
        return self.gross_position_value / nl if nl > 0 else 0.0


def _money(value: float) -> str:
    return f"{value:.2f}"
