"""One IB connection: an :class:`~ib_async.IB` on an :class:`IBRuntime`, supervised by the state machine.

An :class:`IBConnection` is what the data adapter, the broker adapter and the engine share. The engine
builds one connection and hands it to both adapters, so data and execution use **one** socket and one
client id (no error 326). Adapters created standalone build their own connection; the broker adapter
uses ``client_id`` and the data adapter ``client_id + 1`` so the guide's "two adapters side by side"
example never clashes.

Threading contract: public methods are synchronous and may be called from any thread except the
runtime's loop thread; ib_async itself only ever runs on the loop thread (see :mod:`.runtime`). Events
(:attr:`restored`, :attr:`ib_error`, ``machine.state_changed``) are emitted on the loop thread; handlers
must not block.

Reconnection: an unexpected socket drop moves the machine to ``RECONNECTING`` and starts a background
task that retries with :class:`~.reconnect.Backoff`; on success :attr:`restored` fires (handlers
resubscribe market data, backfill bars and reconcile orders). A deliberate :meth:`disconnect` moves to
``STOPPED`` first, so the resulting socket close never triggers a reconnect. A manual :meth:`reconnect`
during an outage counts as one attempt of the same backoff: it never makes the background loop start over.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import threading
import time
from dataclasses import replace
from typing import TYPE_CHECKING, Any, TypeVar

from eventkit import Event
from ib_async import IB, StartupFetch, StartupFetchALL

from copilot_quant.brokers.config import ConnectionSettings, check_managed_accounts
from copilot_quant.brokers.farms import SOCKET_PORT_RESET
from copilot_quant.brokers.reconnect import (
    CONNECTIVITY_RESTORED_DATA_LOST,
    CONNECTIVITY_RESTORED_DATA_MAINTAINED,
    Backoff,
    ConnectionState,
    ConnectionStateMachine,
)
from copilot_quant.brokers.runtime import IBRuntime
from copilot_quant.data.calendars import is_market_open
from copilot_quant.errors import ConfigError, NotConnectedError

if TYPE_CHECKING:
    import concurrent.futures
    from collections.abc import Coroutine

T = TypeVar("T")

__all__ = ["CLIENT_ID_IN_USE", "STARTUP_FETCH", "IBConnection"]

#: ib_async's startup requests minus the per-sub-account streams: with one account (or an explicit
#: ``paper_account``) ``reqAccountUpdates`` already streams every value, and the default would have
#: TWS send each value twice (once per stream) and the loop thread decode it twice on every change.
#: With several accounts and none chosen, :meth:`IBConnection._handshake` subscribes them itself.
STARTUP_FETCH = StartupFetchALL & ~StartupFetch.SUB_ACCOUNT_UPDATES

#: TWS/Gateway refuses a second connection with a client id that is already connected.
CLIENT_ID_IN_USE = 326

log = logging.getLogger(__name__)


class IBConnection:
    """A supervised IB socket shared by adapters. See the module docstring for the threading contract.

    Events (all emitted on the loop thread):

    * ``machine.state_changed(old, new, reason)`` — every :class:`ConnectionState` change.
    * ``restored(data_lost: bool)`` — the link is back after a drop (``data_lost`` is True after a socket
      reconnect or IB 1101: subscriptions must be renewed).
    * ``ib_error(req_id, code, message)`` — every IB error/warning message.
    * ``restored(False)`` also follows IB 1102 (link restored, data maintained): nothing to resubscribe,
      but executions may have been missed around the gap, so listeners reconcile as after 1101.
    * ``outage(seconds)`` — reconnecting has failed for ``outage_alert_after`` seconds (and again every
      ``outage_alert_after`` seconds while it goes on). The connection keeps trying (it never gives up
      unless ``backoff.max_attempts`` says so); the engine alerts on it.
    * ``stale(seconds)`` — the staleness watchdog saw no market data for ``seconds`` while subscribed
      (``stale_after`` seconds; off when ``None``; by default only during the NYSE regular session). The
      state becomes ``DEGRADED`` and the data adapter renews its subscriptions; the next tick restores
      ``CONNECTED``.
    """

    def __init__(
        self,
        settings: ConnectionSettings,
        *,
        auto_reconnect: bool = True,
        backoff: Backoff | None = None,
        stale_after: float | None = None,
        stale_only_in_session: bool = True,
        name: str = "copilot-quant-ib",
        outage_alert_after: float = 300.0,
    ) -> None:
        self.settings = settings
        self.auto_reconnect = auto_reconnect
        self.backoff = backoff or Backoff()
        self.stale_after = stale_after
        self.stale_only_in_session = stale_only_in_session
        self.runtime = IBRuntime(name=f"{name}-{settings.client_id}")
        self.machine = ConnectionStateMachine()
        self.restored = Event("restored")
        self.ib_error = Event("ib_error")
        self.stale = Event("stale")
        self.outage = Event("outage")
        self.outage_alert_after = float(outage_alert_after)
        self._lost_at = 0.0
        self._outage_alerts = 0
        self.account: str | None = None
        self._ib: IB | None = None
        self._connect_timeout = 10.0
        self._reconnect_task: asyncio.Task[None] | None = None
        #: Failed reconnect attempts since the link was lost (background and manual): the backoff's step.
        self._reconnect_attempts = 0
        self._watchdog_task: asyncio.Task[None] | None = None
        self._last_data = time.monotonic()
        self._has_subscriptions = False
        self._lock = threading.Lock()
        self._refused: asyncio.Future[str] | None = None

    # ------------------------------------------------------------------ state
    @property
    def state(self) -> ConnectionState:
        return self.machine.state

    @property
    def ib(self) -> IB:
        """The ib_async facade. Only touch it on the loop thread (inside ``runtime.call``/``run``)."""
        if self._ib is None:
            raise NotConnectedError("not connected to IB; call connect() first")
        return self._ib

    @property
    def reconnecting_in_background(self) -> bool:
        """Whether the background task is retrying the lost socket (with :attr:`backoff`) right now."""
        task = self._reconnect_task
        return self.state is ConnectionState.RECONNECTING and task is not None and not task.done()

    def is_connected(self) -> bool:
        """Whether a socket to TWS/Gateway is up and synchronised (possibly with degraded data)."""
        ib = self._ib
        if ib is None or not self.runtime.is_running:
            return False
        # isConnected() only reads the client's state flag; reading it from another thread is safe and
        # avoids a round trip to the loop on every order.
        return self.state.has_socket and bool(ib.isConnected())

    # ------------------------------------------------------------------ connect / disconnect
    def connect(self, timeout: float = 30.0) -> bool:
        """Connect and synchronise; ``True`` on success, ``False`` if TWS/Gateway could not be reached.

        Raises :class:`ConfigError` (after disconnecting) when the session would put paper trading on a
        live account. Calling it while connected returns ``True`` immediately.
        """
        if self.is_connected():
            return True
        if not self.machine.move(ConnectionState.CONNECTING, f"connect to {self.settings.describe()}"):
            if self.state is ConnectionState.RECONNECTING:
                return self.reconnect(timeout)
            return self.is_connected()
        self.runtime.start()
        if self._ib is None:
            self._ib = self.runtime.call(self._make_ib)
        self._connect_timeout = max(1.0, min(float(timeout), 30.0))
        self.machine.health.reset()
        try:
            self.runtime.run(self._connect_once(), timeout=timeout + 5)
        except ConfigError:
            self.machine.move(ConnectionState.DISCONNECTED, "refused: account safety check failed")
            self._release_runtime()
            raise
        except (OSError, TimeoutError, ConnectionError) as exc:
            self.machine.move(ConnectionState.DISCONNECTED, f"connect failed: {exc!r}")
            log.warning("could not connect to %s: %r", self.settings.describe(), exc)
            self._release_runtime()
            return False
        self.machine.move(ConnectionState.CONNECTED, f"connected as account {self.account}")
        return True

    def _release_runtime(self) -> None:
        """Nothing is connected: stop the loop thread instead of leaving it idle (a new one starts on demand)."""
        self.runtime.close()
        self._ib = None

    def _make_ib(self) -> IB:
        ib = IB()
        ib.RaiseRequestErrors = True  # failed requests raise instead of returning silently empty results
        ib.disconnectedEvent += self._on_disconnected
        ib.errorEvent += self._on_error
        ib.pendingTickersEvent += self._on_data
        ib.barUpdateEvent += self._on_data
        return ib

    async def _handshake(self) -> None:
        """``connectAsync``, but give up at once when TWS refuses the client id (326) instead of timing out."""
        ib = self.ib
        loop = asyncio.get_running_loop()
        refused: asyncio.Future[str] = loop.create_future()
        self._refused = refused
        task = loop.create_task(
            ib.connectAsync(
                self.settings.host,
                self.settings.port,
                clientId=self.settings.client_id,
                timeout=self._connect_timeout,
                account=self.settings.paper_account or "",
                fetchFields=STARTUP_FETCH,
            )
        )
        try:
            done, _ = await asyncio.wait({task, refused}, return_when=asyncio.FIRST_COMPLETED)
            if task in done:
                task.result()
                await self._sub_account_updates()
                return
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
            ib.disconnect()
            raise ConnectionRefusedError(refused.result())
        finally:
            self._refused = None
            if not refused.done():
                refused.cancel()

    async def _sub_account_updates(self) -> None:
        """What ib_async's SUB_ACCOUNT_UPDATES did, only where ``reqAccountUpdates`` was not started."""
        ib = self.ib
        accounts = ib.managedAccounts()
        if self.settings.paper_account or len(accounts) <= 1 or len(accounts) > ib.MaxSyncedSubAccounts:
            return
        timeout = self._connect_timeout
        await asyncio.gather(
            *(asyncio.wait_for(ib.reqAccountUpdatesMultiAsync(a), timeout) for a in accounts),
            return_exceptions=True,
        )

    async def _connect_once(self) -> None:
        ib = self.ib
        await self._handshake()
        try:
            self.account = check_managed_accounts(self.settings, ib.managedAccounts())
        except ConfigError:
            self._deliberate_disconnect_on_loop("account safety check failed")
            raise
        self._last_data = time.monotonic()
        if self.stale_after and self._watchdog_task is None:
            self._watchdog_task = asyncio.get_running_loop().create_task(self._watchdog())

    def disconnect(self) -> None:
        """Deliberately close the connection (never followed by a reconnect) and stop the loop thread."""
        self.machine.move(ConnectionState.STOPPED, "disconnect() called")
        if self._ib is not None and self.runtime.is_running:
            try:
                self.runtime.call(self._deliberate_disconnect_on_loop, "disconnect() called", timeout=10)
            except TimeoutError:
                log.warning("disconnect did not complete within 10s")
        self.runtime.close()
        self._ib = None

    def _deliberate_disconnect_on_loop(self, reason: str) -> None:
        self.machine.move(ConnectionState.STOPPED, reason)
        for task in (self._reconnect_task, self._watchdog_task):
            if task is not None and not task.done():
                task.cancel()
        self._reconnect_task = self._watchdog_task = None
        if self._ib is not None:
            self._ib.disconnect()

    def reconnect(self, timeout: float = 30.0) -> bool:
        """Try once, now, to (re)establish the socket; ``True`` when connected afterwards."""
        if self.is_connected():
            return True
        if self._ib is None:
            return self.connect(timeout)
        if self.state in (ConnectionState.STOPPED, ConnectionState.DISCONNECTED):
            return self.connect(timeout)
        try:
            self.runtime.run(self._manual_reconnect(), timeout=timeout + 5)
        except (OSError, TimeoutError, ConnectionError) as exc:
            log.warning("manual reconnect failed: %r", exc)
            return False
        return self.is_connected()

    async def _manual_reconnect(self) -> None:
        # One attempt at a time: pause the background loop, try now, resume it if this attempt fails.
        # The attempt counts: the resumed loop waits as long as its next step says, it does not start over.
        task = self._reconnect_task
        if task is not None and not task.done():
            task.cancel()
        try:
            await self._attempt_reconnect(manual=True)
        except (OSError, TimeoutError, ConnectionError):
            self._reconnect_attempts += 1
            if self.auto_reconnect and self.state is ConnectionState.RECONNECTING:
                self._reconnect_task = asyncio.get_running_loop().create_task(self._reconnect_loop())
            raise

    # ------------------------------------------------------------------ loop-side handlers
    def _on_disconnected(self) -> None:
        if self.state in (ConnectionState.STOPPED, ConnectionState.CONNECTING, ConnectionState.DISCONNECTED):
            return  # deliberate, or a failed connect attempt: nothing to recover
        if not self.auto_reconnect:
            self.machine.move(ConnectionState.STOPPED, "connection lost and auto-reconnect is off")
            return
        if self.machine.move(ConnectionState.RECONNECTING, "connection lost"):
            self._reconnect_attempts = 0
            self._lost_at, self._outage_alerts = time.monotonic(), 0
            # ib_async emits disconnectedEvent on its loop thread, where the reconnect task must run.
            self._reconnect_task = asyncio.get_running_loop().create_task(self._reconnect_loop())

    async def _attempt_reconnect(self, *, manual: bool) -> None:
        ib = self.ib
        if ib.isConnected():
            return
        self.machine.health.reset()  # the new session reports its links afresh
        await self._handshake()
        self.account = check_managed_accounts(self.settings, ib.managedAccounts())
        reason = "manual reconnect" if manual else "reconnected"
        if self.state is not ConnectionState.RECONNECTING:
            self.machine.move(ConnectionState.RECONNECTING, reason)
        self.machine.move(ConnectionState.CONNECTED, reason)
        self._reconnect_attempts = 0
        self._last_data = time.monotonic()
        self.restored.emit(True)

    async def _reconnect_loop(self) -> None:
        while self.state is ConnectionState.RECONNECTING:
            await asyncio.sleep(self.backoff.delay(self._reconnect_attempts))
            if self.state is not ConnectionState.RECONNECTING:
                return
            try:
                await self._attempt_reconnect(manual=False)
                return
            except ConfigError as exc:
                log.error("reconnected to a session that fails the safety check; giving up: %s", exc)
                self._deliberate_disconnect_on_loop(str(exc))
                return
            except (OSError, TimeoutError, ConnectionError) as exc:
                self._reconnect_attempts += 1
                attempt = self._reconnect_attempts
                log.info("reconnect attempt %d failed: %r", attempt, exc)
                if self.backoff.gives_up_after(attempt):
                    self.machine.move(ConnectionState.STOPPED, f"gave up after {attempt} reconnect attempts")
                    return
                self._alert_long_outage()

    def _alert_long_outage(self) -> None:
        """Emit ``outage`` once per ``outage_alert_after`` seconds of failed reconnecting (loop thread)."""
        down = time.monotonic() - self._lost_at
        if self.outage_alert_after <= 0 or down < self.outage_alert_after * (self._outage_alerts + 1):
            return
        self._outage_alerts += 1
        log.error(
            "no connection to %s for %.0fs; still reconnecting (attempt %d)",
            self.settings.describe(),
            down,
            self._reconnect_attempts,
        )
        self.outage.emit(down)

    def _on_error(self, req_id: int, code: int, message: str, contract: Any = None) -> None:
        self.ib_error.emit(req_id, code, message)
        if req_id != -1:
            return
        refused = self._refused
        if code == CLIENT_ID_IN_USE and refused is not None and not refused.done():
            refused.set_result(
                f"client id {self.settings.client_id} is already in use by another connection to "
                f"{self.settings.host}:{self.settings.port} (IB error 326); pass a different client_id "
                "(or IB_CLIENT_ID)"
            )
        self.machine.on_ib_code(code, message)
        if code == SOCKET_PORT_RESET:
            self._follow_port(message)
        if code == CONNECTIVITY_RESTORED_DATA_LOST:
            self.restored.emit(True)  # IB kept the socket but dropped our subscriptions
        elif code == CONNECTIVITY_RESTORED_DATA_MAINTAINED:
            self.restored.emit(False)  # subscriptions kept, but executions may have been missed: reconcile

    def _follow_port(self, message: str) -> None:
        """1300: TWS moved its API port and drops this connection; reconnect on the port it names."""
        digits = re.findall(r"\d+", message)
        port = int(digits[-1]) if digits else 0
        if 0 < port < 65536 and port != self.settings.port:
            log.warning(
                "IB 1300: TWS moved its API port from %d to %d; reconnecting there", self.settings.port, port
            )
            self.settings = replace(self.settings, port=port)

    def _on_data(self, *args: Any) -> None:
        self._last_data = time.monotonic()
        if self.state is ConnectionState.DEGRADED and self.machine.history:
            last = self.machine.history[-1]
            if last.reason.startswith("no market data"):
                self.machine.move(ConnectionState.CONNECTED, "market data flowing again")

    @property
    def seconds_since_data(self) -> float:
        """Seconds since market data last arrived (or since the (re)connection / last subscription)."""
        return max(0.0, time.monotonic() - self._last_data)

    def mark_subscribed(self, active: bool) -> None:
        """Tell the watchdog whether any subscription exists (no data is expected otherwise)."""
        self._has_subscriptions = active
        self._last_data = time.monotonic()

    async def _watchdog(self) -> None:
        limit = self.stale_after
        if not limit:
            return
        while True:
            await asyncio.sleep(min(limit / 4, 5.0))
            silent = time.monotonic() - self._last_data
            # Quiet markets are normal outside the regular session; only a silent open market is stale.
            in_session = not self.stale_only_in_session or is_market_open()
            if (
                self._has_subscriptions
                and self.state is ConnectionState.CONNECTED
                and silent > limit
                and in_session
            ):
                self.machine.move(ConnectionState.DEGRADED, f"no market data for {silent:.1f}s")
                self.stale.emit(silent)

    # ------------------------------------------------------------------ helpers for adapters
    def run(self, coro: Coroutine[Any, Any, Any], timeout: float | None = 30.0) -> Any:
        """Run ``coro`` on the loop (see :meth:`IBRuntime.run`); raises ``NotConnectedError`` if closed."""
        if not self.runtime.is_running:
            coro.close()
            raise NotConnectedError("not connected to IB; call connect() first")
        return self.runtime.run(coro, timeout)

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Start ``coro`` on the loop and return at once (see :meth:`IBRuntime.submit`)."""
        if not self.runtime.is_running:
            coro.close()
            raise NotConnectedError("not connected to IB; call connect() first")
        return self.runtime.submit(coro)

    def call(self, fn: Any, *args: Any, timeout: float | None = 10.0) -> Any:
        if not self.runtime.is_running:
            raise NotConnectedError("not connected to IB; call connect() first")
        return self.runtime.call(fn, *args, timeout=timeout)
