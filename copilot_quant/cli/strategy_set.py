"""Several strategies on one account, named on the command line: ``backtest``, ``live`` and ``parity``.

Each positional strategy spec is ``FILE.py:Class`` or ``package.module:Class``, optionally followed by its
own constructor arguments as a Python call with literal values, as ``copilot-quant batch`` reads them
(:func:`parse_strategy_call`)::

    copilot-quant backtest \\
        'copilot_quant.examples.sma_cross:SmaCrossFast(fast_period=5, slow_period=20, name="fast")' \\
        'copilot_quant.examples.sma_cross:SmaCrossFast(fast_period=20, slow_period=60, name="slow", capital=30000)' \\
        --symbols AAPL

Two arguments belong to the command, not to the class:

* ``name=`` — the strategy's name: its key in the results, its tag on every order (IB's ``orderRef``, the
  journal's strategy). Names must differ, so two instances of one class need ``name=``. If the class's
  constructor itself takes ``name``, it gets the value too.
* ``capital=`` — the strategy's capital share of the account: an amount (``capital=30000``) or a percentage
  of ``--capital`` (``capital='30%'``; ``backtest`` and ``parity`` only, since live the account's value is
  known once connected). Strategies given none share what is left equally.

``-p NAME=VALUE`` sets a constructor argument for every strategy; a strategy's own call arguments win.
With one spec and no call arguments this is exactly the single-strategy command of before.
"""

from __future__ import annotations

import ast
import inspect
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.markup import escape

from copilot_quant.cli.options import parse_symbols
from copilot_quant.cli.strategy_spec import LoadedStrategy, build_strategy, load_strategy_class, parse_params
from copilot_quant.errors import ConfigError

__all__ = [
    "NAMED_SPEC_HELP",
    "StrategyEntry",
    "is_spec",
    "load_strategies",
    "parse_capital",
    "parse_strategy_call",
    "split_specs",
    "split_strategy_tokens",
]

#: The help of the positional strategy argument of ``backtest``, ``live`` and ``parity``.
NAMED_SPEC_HELP = (
    "Strategies to run on one account: path/to/strategy.py:Class or package.module:Class, each optionally "
    'with arguments: \'mod:Class(fast_period=5, name="fast", capital="40%")\'. name= (distinct names) and '
    "capital= (an amount or a % of --capital) are the command's; the rest go to the class."
)


def parse_strategy_call(token: str) -> tuple[str, dict[str, Any]]:
    """``'spec:Class(a=1, b="x")'`` → ``('spec:Class', {'a': 1, 'b': 'x'})``; without a call, no arguments."""
    text = token.strip()
    name_end = text.rfind(":", 0, text.find("(") if "(" in text else len(text))
    opening = text.find("(", name_end + 1)
    if opening < 0:
        return text, {}
    spec = text[:opening].strip()
    try:
        call = ast.parse(f"f{text[opening:]}", mode="eval").body
    except SyntaxError as exc:
        raise ConfigError(
            f"{token!r}: the arguments are not a Python call; write Class(name=value, ...)"
        ) from exc
    if not isinstance(call, ast.Call) or call.args or any(k.arg is None for k in call.keywords):
        raise ConfigError(f"{token!r}: give the arguments by name, e.g. Class(fast_period=5)")
    params: dict[str, Any] = {}
    for keyword in call.keywords:
        try:
            params[str(keyword.arg)] = ast.literal_eval(keyword.value)
        except ValueError as exc:
            raise ConfigError(
                f"{token!r}: {keyword.arg}= must be a literal (a number, text, list ...)"
            ) from exc
    return spec, params


def is_spec(token: str) -> bool:
    """Whether a positional token names a strategy (a file or ``module:Class``) rather than a symbol."""
    head = token.split("(", 1)[0]
    return ":" in head or head.endswith(".py") or "/" in head or "\\" in head


def split_specs(tokens: Sequence[str]) -> tuple[list[str], list[str]]:
    """The strategy specs and the other tokens (symbols after ``--symbols A B``), each in order."""
    specs = [t for t in tokens if is_spec(t)]
    return specs, [t for t in tokens if not is_spec(t)]


def split_strategy_tokens(strategy: str, symbols: list[str], extra: list[str]) -> tuple[list[str], list[str]]:
    """The strategy specs and the symbols from the raw tokens: ``--symbols AAPL MSFT`` leaves ``MSFT``
    among the extra positional tokens, and a spec may land there too; a token naming a file or with a
    ``:`` is a spec (:func:`~copilot_quant.cli.strategy_set.is_spec`), any other a symbol."""
    specs, _ = split_specs([strategy, *extra, *symbols])
    if not specs:
        specs = [strategy]
    names = parse_symbols([t for t in [*symbols, strategy, *extra] if t not in specs])
    if not names:
        raise ConfigError("No symbols given; pass --symbols AAPL MSFT (or --symbols AAPL,MSFT).")
    return specs, names


@dataclass(frozen=True, slots=True)
class StrategyEntry:
    """One strategy of the command: what was loaded and built, its name and its capital (None: a share)."""

    loaded: LoadedStrategy
    name: str
    capital: float | None

    @property
    def instance(self) -> Any:
        return self.loaded.instance

    def describe(self) -> str:
        """``name: Class(a=1, ...) [capital 40,000.00]`` for the run's header."""
        call = self.loaded.describe()
        label = "" if self.name == self.loaded.cls.__name__ else f"{self.name}: "
        share = "" if self.capital is None else f", capital {self.capital:,.2f}"
        return f"{label}{call}{share}"


def parse_capital(value: Any, account: float | None, spec: str) -> float:
    """``capital=`` as an amount: a positive number, or ``'NN%'`` of ``account`` (the ``--capital``)."""
    if isinstance(value, str) and value.strip().endswith("%"):
        if account is None:
            raise ConfigError(
                f"{spec}: capital={value!r} is a percentage, but the live account's value is known only once "
                "connected; give an amount, e.g. capital=25000"
            )
        try:
            share = float(value.strip()[:-1])
        except ValueError:
            share = math.nan
        if not (0 < share <= 100):
            raise ConfigError(f"{spec}: capital={value!r} must be a percentage in (0, 100], e.g. '40%'")
        return account * share / 100
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ConfigError(
            f"{spec}: capital={value!r} must be a positive amount (capital=25000) or a percentage ('40%')"
        )
    return float(value)


def _takes(cls: type, name: str) -> bool:
    try:
        parameters = inspect.signature(cls.__init__).parameters  # type: ignore[misc]
    except (TypeError, ValueError):
        return False
    return name in parameters


def _entry(token: str, fixed: dict[str, Any], account: float | None) -> StrategyEntry:
    spec, own = parse_strategy_call(token)
    name = own.pop("name", None)
    capital = own.pop("capital", None)
    cls = load_strategy_class(spec)
    if capital is not None and _takes(cls, "capital"):
        raise ConfigError(
            f"{token}: {cls.__name__} takes a parameter named capital itself, so capital= is ambiguous; "
            "rename that parameter, or run this strategy on its own with -p capital=..."
        )
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise ConfigError(f"{token}: name= must be non-empty text, e.g. name='fast'")
    params = {**fixed, **own}
    if name is not None and _takes(cls, "name"):
        params["name"] = name
    loaded = LoadedStrategy(cls, params, build_strategy(cls, params))
    if name is not None:
        loaded.instance.name = name
    share = None if capital is None else parse_capital(capital, account, token)
    return StrategyEntry(loaded, loaded.instance.name, share)


def load_strategies(
    specs: Sequence[str], params: Sequence[str] = (), *, account: float | None = None
) -> list[StrategyEntry]:
    """Load and build each strategy of ``specs`` (see the module docstring); ``params`` are the ``-p``
    options for all of them, ``account`` the ``--capital`` a ``capital='NN%'`` is a share of (None live).

    Raises :class:`ConfigError` for no spec, a malformed call, two strategies of one name or capital shares
    that exceed ``account``; :class:`~copilot_quant.errors.StrategyError` for a bad spec or parameters.
    """
    if not specs:
        raise ConfigError("No strategy given; use path/to/strategy.py:ClassName or package.module:ClassName.")
    fixed = parse_params(params)
    entries = [_entry(token, fixed, account) for token in specs]
    seen: dict[str, str] = {}
    for token, entry in zip(specs, entries, strict=True):
        if entry.name in seen:
            raise ConfigError(
                f"two strategies are named {entry.name!r} ({seen[entry.name]} and {token}); each strategy's "
                f"orders are tagged with its name, so give each its own: 'mod:Class(..., name=\"fast\")'"
            )
        seen[entry.name] = token
    asked = sum(e.capital for e in entries if e.capital is not None)
    if account is not None and asked > account * (1 + 1e-12):
        raise ConfigError(
            f"the strategies' capital= ({asked:,.2f}) exceeds --capital {account:,.2f}; lower the shares "
            "or raise --capital"
        )
    return entries


def print_header(entries: Sequence[StrategyEntry], console: Console) -> None:
    """``Strategy: Class(...)`` for one strategy (as before), ``Strategies:`` and one line each for several."""
    only = entries[0]
    if len(entries) == 1 and only.capital is None and only.name == only.loaded.cls.__name__:
        only.loaded.print_header(console)
        return
    console.print("Strategies (one account):")
    for entry in entries:
        console.print(f"  {escape(entry.describe())}", soft_wrap=True)
