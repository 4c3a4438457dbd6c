"""The simulated IB Gateway: a TWS API socket server on loopback, driven by a simulated market.

::

    from copilot_quant.gateway import GatewayServer, GatewayConfig

    with GatewayServer(GatewayConfig(port=0, data="sample")) as gw:   # port 0: a free port
        ib = IB(); ib.connect("127.0.0.1", gw.port, clientId=1)
        gw.clock.step()                                              # one more bar for every symbol

Threading contract: :class:`GatewayServer` runs its own asyncio loop in a daemon thread. ``start()``
returns once the socket listens; ``stop()`` returns once every connection is closed and the thread ended.
All gateway state lives on that loop; the public methods here (``clock.step``, the fault injections) are
safe to call from any thread and return after the loop has done the work. Inside an existing asyncio
loop use ``await server.start_async()`` / ``await server.stop_async()`` instead.

State (account, orders, executions, order ids, market position in time) belongs to the server object, not
to the loop: ``restart()`` (or ``stop()`` then ``start()``) keeps it, like an IB Gateway restart does;
``state_file`` additionally keeps it across processes: a gateway started on an existing state file resumes
the market clock where the file left it (unless ``start`` says otherwise). Execution ids are unique across
runs, with or without a state file, as IB's are.

Settings that contradict the data are refused with :class:`~copilot_quant.errors.ConfigError`: symbols a
data source with a fixed list (``sample``, ``csv:``, ``store``) lacks, a ``start`` after the data's last
bar. Doubtful but workable ones are kept in :attr:`GatewayServer.notices` (and logged at INFO).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from copilot_quant.data.providers import provider_from_spec
from copilot_quant.errors import ConfigError, GatewayError
from copilot_quant.gateway.account_cadence import DEFAULT_ACCOUNT_UPDATE_INTERVAL, check_interval
from copilot_quant.gateway.broker import SimBroker
from copilot_quant.gateway.clock import SimClock
from copilot_quant.gateway.core import GatewayCore
from copilot_quant.gateway.faults import FaultInjector
from copilot_quant.gateway.instrument_contracts import FOREX_PAIRS
from copilot_quant.gateway.publisher import SessionPublisher
from copilot_quant.gateway.session import Session
from copilot_quant.model.costs import CommissionModel, NoSlippage, SlippageModel, commission_model
from copilot_quant.model.participation import check_volume_limit
from copilot_quant.model.ports import IDataFeed
from copilot_quant.model.spread import DEFAULT_SPREAD, spread_of, with_spread

__all__ = ["GatewayConfig", "GatewayServer"]

logger = logging.getLogger(__name__)


def _default_slippage() -> SlippageModel:
    """The gateway's default, the backtest's: no slippage, the data-derived bid/ask spread."""
    return with_spread(NoSlippage(), DEFAULT_SPREAD)


@dataclass(slots=True)
class GatewayConfig:
    """How to run the simulated gateway; validated when the server is built.

    Attributes:
        host, port: where to listen (port 0 picks a free port; read it back from ``GatewayServer.port``).
        data: a data spec for :func:`~copilot_quant.data.providers.provider_from_spec` (``'sample'``,
            ``'synthetic'``, ``'csv:DIR'``, ``'store'``) or any ``IDataFeed`` with ``symbols()``.
        symbols: the symbols offered (default: the data source's own list); a source with a fixed list
            must have them all.
        account, live_account, cash: the simulated account (``live_account`` presents a ``U…`` id).
        currency: the account's base currency (``cash`` is in it; default USD): IB's account values come in
            it, and every other currency is valued at the market's pair quoting it against the base (an
            EUR account holding US stocks needs ``EUR.USD`` among the symbols).
        clock: ``'replay'`` (the default here: the clock moves when stepped, or at ``speed``) or ``'wall'``:
            a paper market trading in real time from now, with prices generated live (what a bare
            ``copilot-quant gateway`` runs; see :mod:`copilot_quant.gateway.wallclock`).
        hours: the wall-clock market's hours, ``'always'`` (open around the clock) or ``'exchange'`` (NYSE
            sessions and holidays); the replay always follows the exchange calendar.
        speed: bars per second the market clock runs at; ``None``/0 = paused (step it by hand). Replay only.
        bar_interval: replay interval, ``'1m'`` … ``'1h'`` or ``'1d'``; on the wall clock, the interval at
            which bars complete in real time.
        start: replay start (naive = New York time), not after the data's last bar; default just after
            the data's last bar, or the clock saved in ``state_file``. Replay only.
        spread: a bid/ask distance in price units shown in the quotes only (fills stay at the trades), for
            a ``slippage`` without a spread model; with one (the default) the model quotes, and a
            ``spread`` given too is refused.
        seed: seed of the random walk after the data ends.
        commission, slippage, partial_fill_size, state_file: passed to :class:`SimBroker` (the same
            commission and slippage model objects a backtest uses give backtest–live parity of costs).
            The default slippage carries the backtest's default spread (no slippage, the bid/ask spread
            estimated from the bars: :data:`~copilot_quant.model.spread.DEFAULT_SPREAD`), so quotes show
            bid < ask and market orders fill at the touch; a slippage model without a spread (e.g.
            ``NoSlippage()``) fills at the trades' prices, as a backtest with ``spread=None``.
            ``commission`` may also be a name, ``'ibkr-fixed'`` (IBKR Fixed with the regulatory fees IB passes
            through; the ``gateway`` command's default) or ``'ibkr-tiered'``, or a rate; None (the default
            here) is IBKR Fixed's commission alone, without fees (``PerShareCommission``).
        volume_limit: fill at most this fraction of each replayed bar's volume per symbol, summed over
            its orders (0 < x <= 1; None = no limit) — the backtest's ``volume_limit``, same rule. Replay
            only.
        pacing: enforce IB's historical-data pacing rules (error 162).
        max_clients: simultaneous clients (TWS allows 32).
        account_update_interval: seconds of market time between account refreshes (default 180, IB's
            Account-window refresh): the changed account values (reqAccountUpdates, reqAccountUpdatesMulti,
            reqAccountSummary) and every portfolio line at its mark go out then; positions, the traded
            contract's portfolio line and the P&L streams still go out at once on a fill, as at IB. 0 sends
            the values at every market step and fill (faster than IB: for tests that want them at once).
            A negative or non-numeric value raises
            :class:`~copilot_quant.gateway.account_cadence.AccountCadenceError`. See
            :mod:`copilot_quant.gateway.account_cadence`.
    """

    host: str = "127.0.0.1"
    port: int = 4002
    data: str | IDataFeed = "synthetic"
    symbols: list[str] | None = None
    account: str = "DU1234567"
    live_account: bool = False
    cash: float = 1_000_000.0
    clock: str = "replay"
    hours: str = "always"
    speed: float | None = None
    bar_interval: str = "1d"
    start: Any = None
    spread: float = 0.0
    seed: int = 0
    commission: CommissionModel | str | float | None = None
    slippage: SlippageModel | None = field(default_factory=_default_slippage)
    partial_fill_size: float | None = None
    volume_limit: float | None = None
    state_file: str | Path | None = None
    pacing: bool = False
    max_clients: int = 32
    account_update_interval: float = DEFAULT_ACCOUNT_UPDATE_INTERVAL
    extra: dict[str, Any] = field(default_factory=dict)
    currency: str = "USD"  # last: the fields before it keep their positions

    def validate(self) -> None:
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port must be 0..65535 (0 = any free port), got {self.port}.")
        if self.cash <= 0:
            raise ConfigError(f"cash must be positive, got {self.cash}.")
        if not (isinstance(self.currency, str) and len(self.currency) == 3 and self.currency.isalpha()):
            raise ConfigError(
                f"currency must be a 3-letter currency code such as USD or EUR, got {self.currency!r}."
            )
        self.currency = self.currency.upper()
        if self.speed is not None and self.speed < 0:
            raise ConfigError(f"speed is bars per second and must be >= 0, got {self.speed}.")
        if self.partial_fill_size is not None and self.partial_fill_size <= 0:
            raise ConfigError(
                f"partial_fill_size must be a positive number of shares, got {self.partial_fill_size}."
            )
        self.volume_limit = check_volume_limit(self.volume_limit)
        model = spread_of(self.slippage)
        if self.spread and model is not None:
            raise ConfigError(
                f"spread={self.spread} (a price distance in the quotes) and a slippage model with a spread "
                f"({model.label()}) were both given; give one (slippage=NoSlippage() for the fixed distance)"
            )
        if self.commission is not None and not isinstance(self.commission, CommissionModel):
            self.commission = commission_model(self.commission)  # a name or a rate; ConfigError if neither
        if not 1 <= self.max_clients <= 1000:
            raise ConfigError(f"max_clients must be 1..1000, got {self.max_clients}.")
        self.account_update_interval = check_interval(self.account_update_interval)
        self._validate_clock()
        if isinstance(self.data, str) and not self.data.strip():
            raise ConfigError("data must be a data spec such as 'sample' or 'synthetic', or an IDataFeed.")

    def _validate_clock(self) -> None:
        if self.clock not in ("replay", "wall"):
            raise ConfigError(f"clock must be 'replay' or 'wall', got {self.clock!r}.")
        if self.hours not in ("always", "exchange"):
            raise ConfigError(f"hours must be 'always' or 'exchange', got {self.hours!r}.")
        if self.clock == "replay":
            if self.hours != "always":
                raise ConfigError(
                    "hours applies to the wall-clock market (clock='wall'); a replay follows the "
                    "exchange calendar of its data."
                )
            return
        replay_only = {
            "speed": self.speed,
            "start": self.start if self.start != "" else None,
            "volume_limit": self.volume_limit,
        }
        for name, value in replay_only.items():
            if value is not None:
                raise ConfigError(
                    f"{name} is a setting of the market replay; the wall-clock market trades in real time "
                    f"from now. Leave {name} out, or use the replay clock (clock='replay'; --clock replay)."
                )

    def start_timestamp(self) -> pd.Timestamp | None:
        if self.start is None or self.start == "":
            return None
        try:
            ts = pd.Timestamp(self.start)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"start {self.start!r} is not a date/time: {exc}") from None
        return (ts.tz_localize("America/New_York") if ts.tzinfo is None else ts).tz_convert("UTC")


class GatewayServer:
    """The simulated IB Gateway (see the module docstring)."""

    def __init__(self, config: GatewayConfig | None = None, **overrides: Any) -> None:
        config = config or GatewayConfig()
        for key, value in overrides.items():
            if not hasattr(config, key):
                raise ConfigError(f"Unknown gateway setting {key!r}.")
            setattr(config, key, value)
        config.validate()
        self.config = config
        #: Warnings about the settings worth showing the user (the CLI prints them under its banner).
        self.notices: list[str] = []
        self.feed = self._make_feed(config.data)
        symbols = [s.upper() for s in config.symbols] if config.symbols else None
        self._check_symbols(symbols)
        self.broker = SimBroker(
            account=config.account,
            cash=config.cash,
            currency=config.currency,
            commission=None if config.commission is None else commission_model(config.commission),
            slippage=config.slippage,
            partial_fill_size=config.partial_fill_size,
            volume_limit=config.volume_limit,
            state_file=config.state_file,
            live_account=config.live_account,
            clock=self._market_time,
        )
        start = config.start_timestamp()
        resume_at = self._resume_time(start) if config.clock == "replay" else None
        self.core = GatewayCore(
            self.feed,
            self.broker,
            symbols=symbols,
            bar_interval=config.bar_interval,
            start=start,
            resume_at=resume_at,
            spread=config.spread,
            # fills at the touch of a spread model (model/spread.py): the quotes show the same spread
            quote_model=spread_of(config.slippage),
            seed=config.seed,
            pacing=config.pacing,
            max_clients=config.max_clients,
            wall_clock=config.clock == "wall",
            hours=config.hours,
            account_update_interval=config.account_update_interval,
        )
        self.core.publisher = SessionPublisher(self.core)
        self._check_start(start)
        self._note_generated_symbols()
        self.broker.price_source = self._quoted_price
        self.broker.account.price_source = self._quoted_price  # exchange rates of pairs the account lacks
        self.broker.account.quoted_currencies = self._quoted_currencies
        if config.speed:
            self.core.clock.run(config.speed)
        self.faults = FaultInjector(self)
        self._port = config.port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._started = threading.Event()
        self._error: BaseException | None = None

    def _quoted_price(self, symbol: str) -> float | None:
        quote = self.core.market.quotes.get(symbol)
        return None if quote is None else float(quote.last)

    def _quoted_currencies(self) -> set[str]:
        """The currencies of the forex pairs the market quotes (``EUR.USD``: EUR and USD)."""
        return {c for symbol in self.core.market.quotes if symbol in FOREX_PAIRS for c in symbol.split(".")}

    def _market_time(self) -> datetime:
        return self.core.now.to_pydatetime()

    # -- checks of the settings against the data ------------------------------------------------------
    def _data_name(self) -> str:
        data = self.config.data
        return repr(data) if isinstance(data, str) else type(data).__name__

    def _check_symbols(self, symbols: list[str] | None) -> None:
        """Refuse symbols a data source with a fixed list lacks: the gateway would invent their prices."""
        if not symbols or getattr(self.feed, "serves_any_symbol", False):
            return
        listed = getattr(self.feed, "symbols", None)
        offered = sorted({str(s).upper() for s in (listed() if callable(listed) else listed or [])})
        missing = [s for s in symbols if s not in offered]
        if offered and missing:
            raise ConfigError(
                f"the data source {self._data_name()} has no {', '.join(missing)}; it has "
                f"{', '.join(offered)}. Check the spelling, or use the 'synthetic' data source, which "
                "generates prices for any symbol."
            )

    def _resume_time(self, start: pd.Timestamp | None) -> pd.Timestamp | None:
        """Where a restart from a state file resumes the market clock (None: a fresh replay)."""
        saved = self.broker.resumed_market_time
        if saved is None:
            return None
        if start is not None:
            self._notice(
                f"start {self.config.start} replaces the market time {saved:%Y-%m-%d %H:%M} UTC saved in "
                f"{self.config.state_file}; fills in the state may be dated after the new clock"
            )
            return None
        logger.info("resuming the market clock at %s from %s", saved, self.config.state_file)
        return pd.Timestamp(saved)

    def _check_start(self, start: pd.Timestamp | None) -> None:
        """Refuse a start after the data's last bar; note one before its first bar."""
        span = self.core.market.data_span()
        if start is None or span is None:
            return
        first, last = span
        interval = self.config.bar_interval
        if start > last:
            raise ConfigError(
                f"start {self.config.start} is after the end of the data: {self._data_name()} has "
                f"{interval} bars from {first:%Y-%m-%d} to {last:%Y-%m-%d}. Pick a start in that range, "
                "or leave the start out to begin at the data's last bar."
            )
        if start < first:
            self._notice(
                f"start {self.config.start} is before the data's first {interval} bar ({first:%Y-%m-%d}); "
                "the market has no prices until the clock reaches it"
            )

    def _note_generated_symbols(self) -> None:
        generated = self.core.market.symbols_without_data()
        if generated and not getattr(self.feed, "serves_any_symbol", False):
            self._notice(
                f"the data source {self._data_name()} has no {self.config.bar_interval} bars for "
                f"{', '.join(generated)}: their prices are generated (a seeded random walk)"
            )

    def _notice(self, text: str) -> None:
        self.notices.append(text)
        logger.info("%s", text)  # the CLI shows notices under its banner; the API has .notices

    @staticmethod
    def _make_feed(data: str | IDataFeed) -> IDataFeed:
        if isinstance(data, str):
            return provider_from_spec(data)
        if not hasattr(data, "get_historical_data"):
            raise ConfigError(f"data must be a data spec or an IDataFeed, got {type(data).__name__}.")
        return data

    # -- properties ---------------------------------------------------------------------------------------
    @property
    def port(self) -> int:
        """The listening port (the real one when the config said 0)."""
        return self._port

    @property
    def host(self) -> str:
        return self.config.host

    @property
    def clock(self) -> SimClock:
        return self.core.clock

    @property
    def running(self) -> bool:
        return self._server is not None

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        return self._loop

    def __repr__(self) -> str:
        state = "listening" if self.running else "stopped"
        return f"GatewayServer({self.host}:{self._port}, {state}, account={self.broker.account_id})"

    # -- lifecycle in a thread --------------------------------------------------------------------------
    def start(self) -> GatewayServer:
        """Start listening on the gateway's own thread; returns once the socket accepts connections."""
        if self._thread is not None:
            raise GatewayError("The gateway is already running; call stop() first.")
        self._started.clear()
        self._error = None
        self._thread = threading.Thread(target=self._run, name=f"gateway-{self._port}", daemon=True)
        self._thread.start()
        self._started.wait()
        if self._error is not None:
            self._thread.join()
            self._thread = None
            raise GatewayError(
                f"The gateway could not listen on {self.host}:{self._port}: {self._error}"
            ) from self._error
        return self

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        try:
            loop.run_until_complete(self.start_async())
        except OSError as exc:
            self._error = exc
            self._loop = None
            loop.close()
            self._started.set()
            return
        self._started.set()
        try:
            loop.run_forever()
        finally:
            with contextlib.suppress(Exception):
                loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()
            self._loop = None

    def stop(self) -> None:
        """Close every connection and the listening socket, and end the thread. State is kept."""
        thread, loop = self._thread, self._loop
        if thread is None or loop is None:
            return
        if loop.is_running():
            fut = asyncio.run_coroutine_threadsafe(self.stop_async(), loop)
            with contextlib.suppress(Exception):
                fut.result(timeout=10)
            loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        self._thread = None

    def restart(self) -> None:
        """Stop and start again on the same port, keeping the account, orders and market time (orders held
        untransmitted end with the session, as at IB: see :mod:`copilot_quant.gateway.brackets`)."""
        self.stop()
        self.start()

    def __enter__(self) -> GatewayServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- lifecycle inside a loop ----------------------------------------------------------------------
    async def start_async(self) -> None:
        """Start listening on the running loop (the thread-less way to run the gateway)."""
        loop = asyncio.get_running_loop()
        self._loop = loop
        await self.listen()
        self.core.clock.attach(loop)
        logger.info(
            "simulated IB Gateway listening on %s:%d (account %s)",
            self.host,
            self._port,
            self.broker.account_id,
        )

    async def listen(self) -> None:
        """Open the listening socket (also used to resume after refused connections)."""
        self._server = await asyncio.start_server(
            self._on_connect, self.config.host, self._port, reuse_address=True
        )
        sock = self._server.sockets[0]
        self._port = sock.getsockname()[1]

    async def move_listener(self, port: int = 0) -> int:
        """Listen on ``port`` instead (0: a free one); returns it. Existing connections stay."""
        await self.close_listener()
        self._port = port
        await self.listen()
        return self._port

    async def close_listener(self) -> None:
        """Stop accepting new connections (existing ones stay)."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
            with contextlib.suppress(Exception):
                await server.wait_closed()

    async def stop_async(self) -> None:
        """Close every connection and the listening socket (the loop keeps running)."""
        self.core.clock.detach()
        self.broker.discard_untransmitted()  # held in the session (TWS's window), which ends here
        self.broker.save()  # the state file keeps the market clock where it stopped
        self.faults.cancel_timers()
        await self.close_listener()
        self.drop_sessions()
        tasks = [t for t in self._tasks if not t.done()]
        if tasks:
            # Aborted transports end each session's read loop; cancel only what does not end by itself.
            _, stuck = await asyncio.wait(tasks, timeout=2.0)
            for task in stuck:
                task.cancel()
            if stuck:
                await asyncio.wait(stuck, timeout=2.0)
        logger.info("simulated IB Gateway on port %d stopped", self._port)

    def drop_sessions(self) -> int:
        """Abort every client connection (loop thread only); returns how many were dropped."""
        sessions = {*self.core.sessions.values(), *self.core.pending}
        for session in sessions:
            transport = session.writer.transport
            session.closed = True
            transport.abort()
        return len(sessions)

    async def _on_connect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        session = Session(self.core, reader, writer)
        self.core.pending.add(session)
        try:
            await session.run()
        except asyncio.CancelledError:
            # Shutdown cancelled this connection; end quietly (asyncio's stream callback would log a
            # cancelled client task as an error).
            pass
        finally:
            self.core.pending.discard(session)

    # -- calling into the loop from other threads ------------------------------------------------------
    def call(self, fn: Any, *args: Any) -> Any:
        """Run ``fn(*args)`` on the gateway loop and return its result (directly if not running)."""
        loop = self._loop
        if loop is None or not loop.is_running():
            return fn(*args)
        try:
            if asyncio.get_running_loop() is loop:
                return fn(*args)
        except RuntimeError:
            pass

        async def wrapper() -> Any:
            result = fn(*args)
            if asyncio.iscoroutine(result):
                result = await result
            return result

        return asyncio.run_coroutine_threadsafe(wrapper(), loop).result(timeout=30)

    # -- fault injection (see gateway.faults) -----------------------------------------------------------
    def drop_all(self) -> int:
        """Drop every client connection, as a gateway crash or network cut would."""
        return self.faults.drop_all()

    def refuse_connections(self, seconds: float) -> None:
        """Stop listening for ``seconds`` (connects are refused), then listen again on the same port."""
        self.faults.refuse_connections(seconds)

    def connectivity_lost(self) -> None:
        """Broadcast 1100 (IB ↔ TWS connectivity lost)."""
        self.faults.broadcast(1100)

    def connectivity_restored(self, data_lost: bool = False) -> None:
        """Broadcast 1101 (data lost: resubscribe) or 1102 (data maintained)."""
        self.faults.broadcast(1101 if data_lost else 1102)

    def farm_status(self, code: int) -> None:
        """Broadcast a farm status message: 2103/2105 broken, 2104/2106/2158 OK."""
        self.faults.broadcast(code)

    def competing_session(self) -> None:
        """Send 10197 (no market data during a competing live session) to every client."""
        self.faults.broadcast(10197)

    def reject_next_order(self, reason: str = "Simulated rejection") -> None:
        self.call(self.broker.reject_next, reason)

    def withhold_executions(self, withhold: bool = True) -> None:
        """Hold back execution reports (True) or release the held ones (False)."""
        self.call(self.broker.withhold_executions, withhold)

    def sessions(self) -> Iterator[Session]:
        return iter(list(self.core.sessions.values()))
