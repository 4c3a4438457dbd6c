"""Fixtures for the console's tests: a small real journal, a read-only console over it on a free port, and
plain HTTP requests (urllib) that say what the server answered."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from copilot_quant.console import ConsoleServer, ServeOptions
from copilot_quant.journal import TradeJournal
from copilot_quant.model.orders import Order, OrderSide, OrderType

ACCOUNT = "DU7654321"


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    body: str
    headers: dict[str, str]

    def json(self) -> object:
        return json.loads(self.body)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


_opener = urllib.request.build_opener(_NoRedirect)


def http(
    url: str,
    *,
    token: str | None = None,
    method: str = "GET",
    body: object = None,
    headers: dict[str, str] | None = None,
) -> Answer:
    """One request; any status comes back as an :class:`Answer` (no exception, no redirect followed)."""
    sent = dict(headers or {})
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        sent["Content-Type"] = "application/json"
    request = urllib.request.Request(url, data=data, method=method, headers=sent)
    try:
        with _opener.open(request, timeout=10) as response:
            return Answer(response.status, response.read().decode(), dict(response.headers))
    except urllib.error.HTTPError as exc:
        return Answer(exc.code, exc.read().decode(), dict(exc.headers))


def write_journal(path: Path, fills: int = 3, strategy: str = "SmaCross") -> Path:
    """A journal with ``fills`` filled AAPL orders of ``strategy``, a halt and a reconcile event."""
    start = datetime(2024, 3, 1, 15, 0, tzinfo=UTC)
    with TradeJournal(path, account=ACCOUNT) as journal:
        for k in range(fills):
            side = OrderSide.BUY if k % 2 == 0 else OrderSide.SELL
            order = Order(symbol="AAPL", quantity=10, order_type=OrderType.MARKET, side=side)
            ref = journal.record_intent(order, strategy)
            journal.record_submitted(ref, broker_order_id=100 + k)
            journal.record_fill(
                ref, f"exec-{k}", "AAPL", side.value, 10, 100.0 + k, start + timedelta(minutes=k)
            )
        journal.record_event("reconcile", "start: clean")
        journal.record_event("halt", "kill switch engaged: test halt")
    return path


@pytest.fixture
def journal_file(tmp_path: Path) -> Path:
    return write_journal(tmp_path / f"{ACCOUNT}.sqlite")


@pytest.fixture
def readonly_console(journal_file: Path, tmp_path: Path) -> Iterator[ConsoleServer]:
    server = ConsoleServer.for_journal(journal_file, ServeOptions(port=0, token_file=tmp_path / "token"))
    server.start()
    yield server
    server.stop()


from tests.live.conftest import (  # noqa: E402 - the live tests' gateway fixtures, reused as they are
    _journal_in_tmp,
    _no_leaked_ib_threads,
    feed,
    gateway,
    gateway_factory,
)

__all__ = ["_journal_in_tmp", "_no_leaked_ib_threads", "feed", "gateway", "gateway_factory"]
