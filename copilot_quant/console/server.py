"""Serve the console: uvicorn on its own thread, next to a running engine or over a journal alone.

::

    from copilot_quant.console import ConsoleServer

    server = ConsoleServer.for_engine(engine, port=8080).start()   # with controls
    print(server.url_with_token)                                  # open it once; a cookie keeps you in
    ...
    server.stop()

``ConsoleServer.for_journal(path)`` serves the read-only console (no control endpoints at all). The server
binds 127.0.0.1 by default; another address needs TLS (``tls_cert``/``tls_key``) or ``force_insecure=True``
(see :func:`copilot_quant.console.security.check_bind`).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import uvicorn

from copilot_quant.console.app import build_app
from copilot_quant.console.controls import Controls
from copilot_quant.console.hub import EventHub
from copilot_quant.console.pages import ConsoleState
from copilot_quant.console.reader import JournalReader
from copilot_quant.console.security import ConsoleToken, check_bind, load_or_create_token
from copilot_quant.console.watch import EngineWatch, JournalWatch
from copilot_quant.errors import ConfigError

if TYPE_CHECKING:
    from copilot_quant.live.engine import LiveStrategyEngine

__all__ = ["ConsoleServer", "ServeOptions"]

log = logging.getLogger(__name__)

_START_TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class ServeOptions:
    """Where and how to serve: address, port (0: a free one), token file, TLS, forced insecure bind, and the
    directory of HTML reports (backtest, sweep, walk-forward, batch) the Reports page links to."""

    host: str = "127.0.0.1"
    port: int = 8080
    token_file: str | Path | None = None
    tls_cert: str | Path | None = None
    tls_key: str | Path | None = None
    force_insecure: bool = False
    reports_dir: str | Path | None = None

    @property
    def tls(self) -> bool:
        return self.tls_cert is not None and self.tls_key is not None

    def check(self) -> None:
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ConfigError("TLS needs both --tls-cert and --tls-key")
        if self.reports_dir is not None and not Path(self.reports_dir).is_dir():
            raise ConfigError(f"--reports-dir {self.reports_dir} is not a directory")
        if not 0 <= int(self.port) <= 65535:
            raise ConfigError(f"port {self.port} is not a TCP port (0-65535)")
        check_bind(self.host, tls=self.tls, force=self.force_insecure)


class ConsoleServer:
    """One console: its state, its watcher, its uvicorn server on a daemon thread."""

    def __init__(
        self,
        state: ConsoleState,
        watch: JournalWatch,
        hub: EventHub,
        options: ServeOptions,
        controls: Controls | None,
    ) -> None:
        options.check()
        self.options = options
        self.token: ConsoleToken = load_or_create_token(options.token_file)
        self.state = state
        self.watch = watch
        self.hub = hub
        reports = Path(options.reports_dir) if options.reports_dir is not None else None
        self.app, self._console = build_app(
            state, hub, self.token, controls, secure_cookie=options.tls, reports_dir=reports
        )
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = int(options.port)

    # ------------------------------------------------------------------ builders
    @classmethod
    def for_engine(cls, engine: LiveStrategyEngine, options: ServeOptions | None = None) -> ConsoleServer:
        """The engine's console, with controls. The engine must have its journal open (after ``start()``)."""
        if engine.journal is None:
            raise ConfigError("the console reads the engine's journal: start the engine before the console")
        reader = JournalReader(engine.journal.path)
        hub = EventHub()
        watch = EngineWatch(engine, reader, hub)
        return cls(ConsoleState(reader, watch), watch, hub, options or ServeOptions(), Controls(engine))

    @classmethod
    def for_journal(cls, path: str | Path, options: ServeOptions | None = None) -> ConsoleServer:
        """The read-only console over a journal file: no controls, no connection to anything."""
        reader = JournalReader(path)
        hub = EventHub()
        return cls(ConsoleState(reader), JournalWatch(reader, hub), hub, options or ServeOptions(), None)

    # ------------------------------------------------------------------ run
    @property
    def url(self) -> str:
        scheme = "https" if self.options.tls else "http"
        host = self.options.host if ":" not in self.options.host else f"[{self.options.host}]"
        return f"{scheme}://{host}:{self.port}/"

    @property
    def url_with_token(self) -> str:
        return f"{self.url}?token={self.token.value}"

    def _config(self) -> uvicorn.Config:
        extra: dict[str, Any] = {}
        if self.options.tls:
            extra = {"ssl_certfile": str(self.options.tls_cert), "ssl_keyfile": str(self.options.tls_key)}
        return uvicorn.Config(
            self.app,
            host=self.options.host,
            port=self.port,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=1,
            **extra,
        )

    def start(self) -> ConsoleServer:
        """Serve on a daemon thread; returns once the port accepts connections (ConfigError if it cannot)."""
        sock = socket.socket(socket.AF_INET6 if ":" in self.options.host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((self.options.host, self.port))
        except OSError as exc:
            sock.close()
            raise ConfigError(f"cannot serve the console on {self.options.host}:{self.port}: {exc}") from None
        self.port = sock.getsockname()[1]
        self._server = uvicorn.Server(self._config())
        self._thread = threading.Thread(
            target=self._serve, args=(sock,), name="copilot-quant-console-http", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not self._server.started and self._thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.02)
        if not self._server.started:
            self.stop()
            raise ConfigError(f"the console did not start on {self.url}; see the log")
        self.watch.start()
        log.info("console serving %s", self.url)
        return self

    def _serve(self, sock: socket.socket) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self.hub.bind(loop)
        server = self._server
        assert server is not None
        try:
            loop.run_until_complete(server.serve(sockets=[sock]))
        finally:
            sock.close()
            pending = asyncio.all_tasks(loop)  # streams cut by the shutdown: let them finish their cleanup
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.close()

    def stop(self) -> None:
        """Stop the watcher and the server (open event streams end within about a second)."""
        self.watch.stop()
        server, thread = self._server, self._thread
        if server is not None:
            server.should_exit = True
            self.hub.call_soon(self._console.closing.set)  # open event streams end now
        if thread is not None:
            thread.join(10)

    def serve_forever(self) -> None:
        """Block until Ctrl-C, then stop (the standalone ``copilot-quant console``, after :meth:`start`)."""
        try:
            while self._thread is not None and self._thread.is_alive():
                self._thread.join(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()
