"""What the simulated account reports to TWS clients: updateAccountValue rows and accountSummary tags.

The figures are :class:`~copilot_quant.gateway.account.Account`'s; this module only says which keys carry
them, in which currency and order, as TWS sends them (per-currency keys once per currency and once as
``BASE``; account-wide keys once, in the base currency).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from copilot_quant.gateway.account import Account

__all__ = ["SUMMARY_TAGS", "account_summary", "account_values"]

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


def account_values(account: Account) -> list[tuple[str, str, str]]:
    """``(key, value, currency)`` for updateAccountValue, in the order TWS tends to send them."""
    cash_value = account.total_cash_value
    money = {
        "NetLiquidation": account.net_liquidation,
        "TotalCashValue": cash_value,
        "SettledCash": cash_value,
        "BuyingPower": account.buying_power,
        "AvailableFunds": account.available_funds,
        "ExcessLiquidity": account.excess_liquidity,
        "EquityWithLoanValue": account.equity_with_loan,
        "GrossPositionValue": account.gross_position_value,
        "StockMarketValue": account.stock_market_value,
        "InitMarginReq": account.init_margin,
        "MaintMarginReq": account.maint_margin,
    }
    if account.holds_futures:
        money["FuturesPNL"] = account.futures_pnl
    out = [("AccountCode", account.account_id, ""), ("AccountType", account.account_type, "")]
    out += [(key, _money(value), account.currency) for key, value in money.items()]
    out += _pnl_values(account)
    out += _currency_values(account, cash_value)
    out += [
        ("Currency", account.currency, account.currency),
        ("Leverage-S", f"{_leverage_ratio(account):.2f}", ""),
    ]
    return out


def account_summary(account: Account, tags: Iterable[str] | str = SUMMARY_TAGS) -> list[tuple[str, str, str]]:
    """``(tag, value, currency)`` for accountSummary; tags the simulator does not model are skipped."""
    if isinstance(tags, str):
        tags = [t.strip() for t in tags.split(",") if t.strip()]
    # reversed: of a key sent more than once (per currency) the first, the account-wide figure, wins
    figures = {key: (value, cur) for key, value, cur in reversed(account_values(account)) if cur != "BASE"}
    figures["Cushion"] = (f"{_cushion(account):.6f}", "")
    figures["Leverage"] = (f"{_leverage_ratio(account):.2f}", "")
    out: list[tuple[str, str, str]] = []
    for tag in tags:
        key = _ALIASES.get(tag, tag)
        if tag in SUMMARY_TAGS and key in figures:
            value, currency = figures[key]
            out.append((tag, value, currency))
    return out


def _pnl_values(account: Account) -> list[tuple[str, str, str]]:
    """UnrealizedPnL and RealizedPnL: ``BASE`` first, then per currency (see the account module)."""
    unrealized, realized = account.pnl_by_currency()
    out = [("UnrealizedPnL", _money(account.unrealized_pnl), "BASE")]
    out += [("UnrealizedPnL", _money(amount), c) for c, amount in unrealized.items()]
    out += [("RealizedPnL", _money(account.realized_pnl), "BASE")]
    out += [("RealizedPnL", _money(amount), c) for c, amount in realized.items()]
    return out


def _currency_values(account: Account, cash_value: float) -> list[tuple[str, str, str]]:
    """CashBalance, TotalCashBalance and ExchangeRate per currency held, the ExchangeRate of each other
    currency the market rates, then the three for BASE (as IB sends)."""
    out: list[tuple[str, str, str]] = []
    for currency, balance in account.currencies.balances(account.cash):
        out += [
            ("CashBalance", _money(balance), currency),
            ("TotalCashBalance", _money(balance), currency),
            ("ExchangeRate", _rate(account.rate(currency)), currency),
        ]
    # a currency the market rates but the account never held: its rate alone (see Account.quoted_rates)
    out += [("ExchangeRate", _rate(rate), currency) for currency, rate in account.quoted_rates()]
    out += [
        ("CashBalance", _money(cash_value), "BASE"),
        ("TotalCashBalance", _money(cash_value), "BASE"),
        ("ExchangeRate", "1.00", "BASE"),
    ]
    return out


def _cushion(account: Account) -> float:
    nl = account.net_liquidation
    return account.excess_liquidity / nl if nl > 0 else 0.0


def _leverage_ratio(account: Account) -> float:
    nl = account.net_liquidation
    return account.gross_position_value / nl if nl > 0 else 0.0


def _money(value: float) -> str:
    return f"{round(value, 2) + 0.0:.2f}"  # + 0.0: no "-0.00"


def _rate(value: float) -> str:
    return "1.00" if value == 1.0 else f"{value:.6f}"
