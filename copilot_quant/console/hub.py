"""The console's event hub: any thread publishes, every open page (a server-sent-events stream) receives.

Publishing never blocks (the engine's threads call it): the message is handed to the server's event loop
with ``call_soon_threadsafe``; a page that does not keep up loses its oldest messages, never the engine time.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["EventHub", "HubMessage"]

log = logging.getLogger(__name__)

_QUEUE_SIZE = 256


@dataclass(frozen=True, slots=True)
class HubMessage:
    seq: int
    kind: str
    data: dict[str, Any]

    def sse(self) -> str:
        """The message as one server-sent event (``id``, ``event``, ``data``)."""
        return f"id: {self.seq}\nevent: {self.kind}\ndata: {json.dumps(self.data, default=str)}\n\n"


class EventHub:
    """Fan-out of :class:`HubMessage` to asyncio queues on one event loop (see the module docstring)."""

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._queues: set[asyncio.Queue[HubMessage]] = set()
        self._seq = itertools.count(1)
        self._lock = threading.Lock()

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        """The loop the pages' streams run on (the server's)."""
        self._loop = loop

    @property
    def listeners(self) -> int:
        return len(self._queues)

    def subscribe(self) -> asyncio.Queue[HubMessage]:
        queue: asyncio.Queue[HubMessage] = asyncio.Queue(_QUEUE_SIZE)
        self._queues.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[HubMessage]) -> None:
        self._queues.discard(queue)

    def publish(self, kind: str, /, **data: Any) -> None:
        """Send ``kind`` with ``data`` to every page; safe and non-blocking from any thread."""
        loop = self._loop
        if loop is None or loop.is_closed() or not self._queues:
            return
        with self._lock:
            message = HubMessage(next(self._seq), kind, data)
        try:
            loop.call_soon_threadsafe(self._deliver, message)
        except RuntimeError:  # the loop closed between the check and the call
            log.debug("console hub: loop closed, %s dropped", kind)

    def call_soon(self, callback: Callable[[], object]) -> None:
        """Run ``callback`` on the server's loop (from any thread); nothing if the loop is gone."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(callback)

    def _deliver(self, message: HubMessage) -> None:
        for queue in list(self._queues):
            if queue.full():
                queue.get_nowait()  # drop the oldest: the page re-reads the state anyway
            queue.put_nowait(message)
