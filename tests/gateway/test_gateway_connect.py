"""Connecting the real ib_async client to the simulated gateway: handshake, startup sync, client ids."""

from __future__ import annotations

import socket
import struct

import pytest
from copilot_quant.gateway.testing import connected_ib
from ib_async import IB

pytestmark = pytest.mark.timeout(60)


def test_connect_completes_the_startup_sync_without_timeouts(gateway, timeout_records):
    with connected_ib(gateway, client_id=7, raiseSyncErrors=True) as ib:
        assert ib.isConnected()
        assert ib.client.serverVersion() == 178
        assert ib.managedAccounts() == ["DU1234567"]
    assert timeout_records() == []


def test_farm_status_messages_arrive_on_connect(gateway):
    ib = IB()
    codes: list[int] = []
    ib.errorEvent += lambda req_id, code, msg, contract: codes.append(code)
    try:
        ib.connect("127.0.0.1", gateway.port, clientId=1, timeout=5)
        ib.sleep(0.05)
    finally:
        ib.disconnect()
    assert {2104, 2106, 2158} <= set(codes)


def test_current_time_is_the_simulated_market_time(gateway, ib):
    assert ib.reqCurrentTime().timestamp() == int(gateway.clock.now.timestamp())


def test_duplicate_client_id_is_refused_and_the_first_client_keeps_working(gateway, ib):
    second = IB()
    with pytest.raises((TimeoutError, ConnectionError)):
        second.connect("127.0.0.1", gateway.port, clientId=1, timeout=1)
    second.disconnect()
    assert ib.isConnected()
    assert ib.reqCurrentTime() is not None


def test_two_clients_at_once_get_their_own_order_ids(gateway):
    with connected_ib(gateway, client_id=1) as a, connected_ib(gateway, client_id=2) as b:
        assert a.client.getReqId() > 0
        assert b.client.getReqId() > 0
        assert len(gateway.core.sessions) == 2
        assert {1, 2} == set(gateway.core.sessions)


def test_live_account_switch_presents_a_live_account_id(sample_feed):
    from copilot_quant.gateway.testing import running_gateway

    with running_gateway(data=sample_feed, live_account=True) as gw, connected_ib(gw) as ib:
        (account,) = ib.managedAccounts()
        assert account.startswith("U")
        assert not account.startswith("DU")


def _raw_handshake(port: int, proposal: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"API\0" + struct.pack(">I", len(proposal)) + proposal)
        chunks = b""
        while True:
            data = sock.recv(4096)
            if not data:
                return chunks
            chunks += data
            if len(chunks) >= 4 and len(chunks) >= 4 + struct.unpack(">I", chunks[:4])[0]:
                return chunks


def test_handshake_answers_the_clients_maximum_capped_at_178(gateway):
    reply = _raw_handshake(gateway.port, b"v100..226")
    fields = reply[4:].split(b"\0")[:-1]
    assert fields[0] == b"178"
    assert len(fields) == 2


def _frames(data: bytes) -> list[list[bytes]]:
    out = []
    while len(data) >= 4:
        (size,) = struct.unpack(">I", data[:4])
        out.append(data[4 : 4 + size].split(b"\0")[:-1])
        data = data[4 + size :]
    return out


def _refusal(port: int, proposal: bytes) -> list[list[bytes]]:
    """The frames a refused client receives before the gateway closes the socket."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(b"API\0" + struct.pack(">I", len(proposal)) + proposal)
        chunks = b""
        while data := sock.recv(4096):
            chunks += data
    return _frames(chunks)


def test_a_client_older_than_157_gets_its_version_and_error_506_then_the_socket_closes(gateway):
    handshake, refusal = _refusal(gateway.port, b"v100..151")
    assert handshake[0] == b"151"  # what TWS answers this client; the error follows in v151's layout
    assert refusal[:4] == [b"4", b"2", b"-1", b"506"]
    assert len(refusal) == 5  # no advancedOrderRejectJson before server version 166
    assert b"157..178" in refusal[4]
    assert b"v100..151" in refusal[4]
    with connected_ib(gateway) as ib:  # the gateway keeps serving others
        assert ib.isConnected()


def test_a_client_that_only_speaks_protobuf_versions_is_refused_with_506(gateway):
    handshake, refusal = _refusal(gateway.port, b"v201..226")
    assert handshake[0] == b"178"
    assert refusal[3] == b"506"
    assert len(refusal) == 6


def test_stopped_gateway_refuses_connections_and_a_restart_accepts_them_again(gateway):
    port = gateway.port
    gateway.stop()
    ib = IB()
    with pytest.raises(ConnectionRefusedError):
        ib.connect("127.0.0.1", port, clientId=1, timeout=1)
    ib.disconnect()
    gateway.start()
    assert gateway.port == port
    with connected_ib(gateway) as again:
        assert again.isConnected()
