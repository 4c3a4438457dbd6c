"""Reusable helpers for testing against the simulated gateway (used by the project's tests; handy in yours).

::

    from copilot_quant.gateway.testing import running_gateway, connected_ib

    with running_gateway(data="sample") as gw, connected_ib(gw) as ib:
        bars = ib.reqHistoricalData(...)

``decode_with_ib_async(fields)`` runs ib_async's own decoder on one outgoing message and returns the wrapper
calls it produced, for golden tests of message encoders.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from ib_async import IB, util
from ib_async.decoder import Decoder

from copilot_quant.gateway.messages.ids import SERVER_VERSION
from copilot_quant.gateway.server import GatewayServer
from copilot_quant.gateway.wire import encode_fields, split_fields

__all__ = ["DecodeResult", "connected_ib", "decode_with_ib_async", "running_gateway"]


@contextmanager
def running_gateway(**config: Any) -> Iterator[GatewayServer]:
    """A started :class:`GatewayServer` on a free loopback port (``port=0``), stopped on exit."""
    config.setdefault("port", 0)
    config.setdefault("data", "sample")
    server = GatewayServer(**config)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def connected_ib(
    server: GatewayServer, client_id: int = 1, timeout: float = 5.0, **kwargs: Any
) -> Iterator[IB]:
    """An ib_async ``IB`` connected to ``server`` (synchronously, from this thread); always disconnected."""
    ib = IB()
    try:
        ib.connect("127.0.0.1", server.port, clientId=client_id, timeout=timeout, **kwargs)
        yield ib
    finally:
        ib.disconnect()
        # disconnect() only schedules the socket's closing; run the loop once so it really happens
        # (otherwise the transport lingers until the loop is collected: "unclosed transport").
        loop = util.getLoop()
        if not loop.is_running() and not loop.is_closed():
            loop.run_until_complete(asyncio.sleep(0))


class _Recorder:
    """Stands in for ib_async's Wrapper: records every callback the decoder makes."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self.ib = type("IBStub", (), {"TimezoneTWS": None})()
        self.defaultTimezone = dt.UTC

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)

        def record(*args: Any) -> None:
            self.calls.append((name, args))

        return record


class DecodeResult:
    """The wrapper calls and the decoder's error log records for one message."""

    def __init__(self, calls: list[tuple[str, tuple[Any, ...]]], errors: list[str]) -> None:
        self.calls = calls
        self.errors = errors

    def only(self, name: str) -> tuple[Any, ...]:
        """Arguments of the single call named ``name`` (fails if there is not exactly one)."""
        matches = [args for called, args in self.calls if called == name]
        if len(matches) != 1:
            raise AssertionError(f"expected one {name} call, got {self.calls} (errors: {self.errors})")
        return matches[0]


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR:
            self.messages.append(record.getMessage())


def decode_with_ib_async(fields: list[object], server_version: int = SERVER_VERSION) -> DecodeResult:
    """Encode ``fields`` as the gateway would, and decode them with ``ib_async.decoder.Decoder``."""
    wire_fields = split_fields(encode_fields(fields))
    recorder = _Recorder()
    decoder = Decoder(recorder, server_version)  # type: ignore[arg-type]
    handler = _Collect()
    logger = logging.getLogger("ib_async.Decoder")
    logger.addHandler(handler)
    try:
        decoder.interpret(wire_fields)
    finally:
        logger.removeHandler(handler)
    return DecodeResult(recorder.calls, handler.messages)
