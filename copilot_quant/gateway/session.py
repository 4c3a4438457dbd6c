"""One client connection: handshake, START_API, then a dispatch loop from message id to handler.

Lifecycle of a :class:`Session`:

1. read exactly ``API\\0`` and one framed ``v<min>..<max>[ options]`` proposal; answer
   ``min(client max, 178)`` with exactly two fields and speak that version's layouts in both directions
   from then on. A client whose range misses 157..178 gets IB's answer all the same (the version it can
   read) followed by error 506 "Unsupported version" saying what it would need, and the socket is closed;
2. wait for START_API (71) with the client id: a duplicate id gets error 326 and the socket is closed;
   otherwise managedAccounts, nextValidId (3 fields each) and the farm-status messages 2104/2106/2158;
3. dispatch every further frame through :data:`copilot_quant.gateway.handlers.HANDLERS`.

Bad input never reaches beyond this connection: garbage, a truncated or huge frame closes only this
socket; an unknown message id or a handler failure on malformed fields is logged and answered with error
322 for that request, and the session carries on.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import struct
from typing import TYPE_CHECKING

from copilot_quant.gateway.client import Subscriptions
from copilot_quant.gateway.handlers import HANDLERS
from copilot_quant.gateway.messages.connection import (
    handshake_reply,
    managed_accounts,
    next_valid_id,
    parse_handshake,
    parse_start_api,
)
from copilot_quant.gateway.messages.errors import NO_REQUEST, Code, error
from copilot_quant.gateway.messages.ids import Fields, In
from copilot_quant.gateway.messages.versions import MIN_SERVER_VERSION, SERVER_VERSION
from copilot_quant.gateway.wire import (
    API_PREFIX,
    MAX_FRAME,
    FieldReader,
    FrameDecoder,
    FrameError,
    encode_fields,
    frame,
)

if TYPE_CHECKING:
    from copilot_quant.gateway.core import GatewayCore

__all__ = ["HANDSHAKE_TIMEOUT", "Session", "Subscriptions"]

logger = logging.getLogger(__name__)

#: Seconds a new connection may take to send its handshake and START_API.
HANDSHAKE_TIMEOUT = 10.0
#: Seconds a refused client gets to send its START_API before the socket is closed.
REFUSAL_GRACE = 1.0
_LEN = struct.Struct(">I")
_ids = itertools.count(1)


class Session:
    """One ib_async (or other TWS API) client connected to the gateway."""

    def __init__(self, core: GatewayCore, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.core = core
        self.reader = reader
        self.writer = writer
        self.conn_id = next(_ids)
        self.client_id: int | None = None
        self.server_version = SERVER_VERSION
        self.subs = Subscriptions()
        self.closed = False
        self._out: list[bytes] = []  # framed messages waiting for the next flush
        self._flush_scheduled = False
        peer = writer.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)

    def __repr__(self) -> str:
        return f"Session(#{self.conn_id}, clientId={self.client_id}, peer={self.peer})"

    # -- sending -----------------------------------------------------------------------------------------
    def send(self, fields: Fields) -> None:
        """Queue one message to the client (dropped silently once the connection is closed).

        Messages are coalesced: one market step or one request typically produces dozens of small
        frames (order status, executions, portfolio, account values), and writing each one separately
        costs a ``send`` syscall and a TCP segment apiece on both ends. They are joined and written once,
        when the current loop callback is done (or right after a batch of requests was dispatched).
        """
        if self.closed:
            return
        self._out.append(frame(encode_fields(fields)))
        if not self._flush_scheduled:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # not on a loop (direct use in a unit test): write through
                self.flush()
                return
            self._flush_scheduled = True
            loop.call_soon(self.flush)

    def flush(self) -> None:
        """Write every queued message in one go (no-op when nothing is queued)."""
        self._flush_scheduled = False
        if not self._out:
            return
        data = b"".join(self._out)
        self._out.clear()
        if self.closed:
            return
        try:
            self.writer.write(data)
        except (ConnectionError, RuntimeError) as exc:
            logger.info("%r: send failed (%s); closing.", self, exc)
            self.close()

    async def drain(self) -> None:
        """Flush the queue and wait until the transport accepted it (handshake and backpressure)."""
        self.flush()
        await self.writer.drain()

    def send_error(self, req_id: int, code: int, message: str | None = None) -> None:
        self.send(error(req_id, code, message, self.server_version))

    def close(self) -> None:
        """Flush what is queued, then close the socket; the run loop then unregisters the session."""
        if self.closed:
            return
        self.flush()
        self.closed = True
        self._out.clear()
        with contextlib.suppress(Exception):
            self.writer.close()

    # -- lifecycle ----------------------------------------------------------------------------------------
    async def run(self) -> None:
        logger.info("connection #%d from %s", self.conn_id, self.peer)
        try:
            if await asyncio.wait_for(self._handshake(), HANDSHAKE_TIMEOUT):
                await self._serve()
        except TimeoutError:
            logger.warning("%r: no complete handshake within %.0f s; closing.", self, HANDSHAKE_TIMEOUT)
        except (FrameError, asyncio.IncompleteReadError, ConnectionError) as exc:
            logger.info("%r: closing connection: %s", self, exc or type(exc).__name__)
        except asyncio.CancelledError:
            raise
        except Exception:  # the boundary of one connection: log, close it, keep the gateway serving
            logger.exception("%r: unexpected failure; closing this connection only", self)
        finally:
            self.close()
            self.core.unregister(self)
            logger.info("connection #%d (clientId %s) closed", self.conn_id, self.client_id)

    async def _read_frame(self) -> bytes:
        header = await self.reader.readexactly(4)
        (size,) = _LEN.unpack(header)
        if size == 0 or size > MAX_FRAME:
            raise FrameError(f"invalid frame length {size}")
        return await self.reader.readexactly(size)

    async def _handshake(self) -> bool:
        prefix = await self.reader.readexactly(len(API_PREFIX))
        if prefix != API_PREFIX:
            raise FrameError(f"not a TWS API client: expected b'API\\x00', got {prefix!r}")
        proposal = parse_handshake(await self._read_frame())
        version = min(proposal.max_version, SERVER_VERSION)
        self.server_version = version
        self.send(handshake_reply(version, self.core.wall_now()))
        if version < MIN_SERVER_VERSION or proposal.min_version > SERVER_VERSION:
            await self._refuse_version(proposal.min_version, proposal.max_version)
            return False
        await self.drain()
        # START_API must come next (ib_async sends it right away).
        while True:
            payload = await self._read_frame()
            reader = FieldReader.from_payload(payload)
            msg_id = reader.int()
            if msg_id == In.START_API:
                break
            logger.info("%r: ignoring message %d sent before START_API", self, msg_id)
        client_id = parse_start_api(reader)
        if not self.core.register(self, client_id):
            logger.warning("%r: clientId %d is already in use; refusing (326).", self, client_id)
            self.send_error(NO_REQUEST, Code.CLIENT_ID_IN_USE)
            with contextlib.suppress(ConnectionError):
                await self.drain()
            return False
        self.client_id = client_id
        logger.info("connection #%d: API started for clientId %d (v%d)", self.conn_id, client_id, version)
        self.send(managed_accounts([self.core.account_id]))
        self.send(next_valid_id(self.core.next_order_id(client_id)))
        for code in self.core.farm_codes_on_connect():
            self.send_error(NO_REQUEST, code)
        return True

    async def _refuse_version(self, low: int, high: int) -> None:
        """Tell a client outside the served range why, in a layout it can read, then close.

        The handshake answer (already queued) is the version the client would get from TWS; the error
        follows in that version's layout, so the client's own error callback shows the reason instead
        of a bare closed socket.
        """
        text = (
            f"Unsupported version: this simulated gateway serves API versions {MIN_SERVER_VERSION}.."
            f"{SERVER_VERSION} and the client offered v{low}..{high}. Use a client that accepts one of "
            "them: ib_async, ib_insync 0.9.86, or IB's API (ibapi) 10.19 or newer."
        )
        logger.warning("%r: refusing the client: %s", self, text)
        self.send_error(NO_REQUEST, Code.UNSUPPORTED_VERSION, text)
        with contextlib.suppress(ConnectionError, TimeoutError):
            await self.drain()
            # Take the START_API the client sends right after the handshake before closing: closing with
            # unread bytes would reset the connection and could discard the error on the client's side.
            await asyncio.wait_for(self.reader.read(1 << 16), REFUSAL_GRACE)

    async def _serve(self) -> None:
        decoder = FrameDecoder()
        while not self.closed:
            data = await self.reader.read(1 << 16)
            if not data:
                return
            for payload in decoder.feed(data):
                self.dispatch(payload)
                if self.closed:
                    return
            # Answer this batch of requests now rather than one loop iteration later.
            self.flush()
            if self.writer.transport.get_write_buffer_size() > (1 << 20):
                await self.writer.drain()

    def dispatch(self, payload: bytes) -> None:
        """Handle one framed request; malformed content costs an error message, not the connection."""
        reader = FieldReader.from_payload(payload)
        try:
            msg_id = reader.int()
        except FrameError as exc:
            raise FrameError(f"message without a numeric id: {exc}") from None
        handler = HANDLERS.get(msg_id)
        if handler is None:
            logger.warning(
                "%r: unsupported message id %d (%d fields); answering 322", self, msg_id, reader.remaining
            )
            self.send_error(
                NO_REQUEST,
                Code.PROCESSING,
                f"Error processing request: message id {msg_id} is not supported by the simulated gateway",
            )
            return
        try:
            handler(self, reader)
        except FrameError as exc:
            logger.warning("%r: malformed message %d: %s", self, msg_id, exc)
            self.send_error(
                NO_REQUEST, Code.PROCESSING, f"Error processing request: malformed message {msg_id}: {exc}"
            )
        except Exception as exc:  # a handler bug must not take the connection or the gateway down
            logger.exception("%r: handling message %d failed", self, msg_id)
            self.send_error(NO_REQUEST, Code.PROCESSING, f"Error processing request {msg_id}: {exc}")
