"""Garbage from one client never crashes the gateway or affects the next client (hypothesis fuzzing)."""

from __future__ import annotations

import socket
import struct

import pytest
from copilot_quant.gateway.testing import connected_ib
from copilot_quant.gateway.wire import FrameDecoder, FrameError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytestmark = pytest.mark.timeout(120)


def _send_and_close(port: int, data: bytes) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
            sock.settimeout(0.5)
            while sock.recv(4096):
                pass
        except OSError:
            pass  # the gateway may close first: that is an acceptable answer to garbage


def _frame(text: bytes) -> bytes:
    return struct.pack(">I", len(text)) + text


_HANDSHAKE = b"API\0" + _frame(b"v157..178") + _frame(b"71\x002\x0099\x00\x00")

garbage = st.one_of(
    st.binary(max_size=200),
    st.binary(max_size=200).map(lambda b: b"API\0" + b),
    st.lists(st.binary(min_size=1, max_size=40), max_size=5).map(
        lambda msgs: _HANDSHAKE + b"".join(map(_frame, msgs))
    ),
    st.lists(
        st.lists(
            st.sampled_from(["1", "9", "20", "3", "4", "-1", "", "AAPL", "x", "1e400", "999"]), max_size=12
        ),
        max_size=4,
    ).map(lambda msgs: _HANDSHAKE + b"".join(_frame("\0".join(m).encode() + b"\0") for m in msgs)),
    st.just(b"API\0" + struct.pack(">I", 2**31)),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=garbage)
def test_garbage_connections_leave_the_gateway_serving(gateway, data):
    _send_and_close(gateway.port, data)
    assert gateway.running


def test_after_fuzzing_a_real_client_still_connects(gateway):
    for data in (b"\xff" * 64, b"API\0" + struct.pack(">I", 2**31), _HANDSHAKE + _frame(b"20\x00")):
        _send_and_close(gateway.port, data)
    with connected_ib(gateway) as ib:
        assert ib.reqCurrentTime() is not None


@given(st.lists(st.binary(max_size=50), max_size=10))
def test_frame_decoder_returns_whole_frames_or_raises_frame_error(chunks):
    decoder = FrameDecoder(max_frame=1000)
    try:
        for chunk in chunks:
            for payload in decoder.feed(chunk):
                assert 1 <= len(payload) <= 1000
    except FrameError:
        pass


@given(st.lists(st.binary(min_size=1, max_size=30), max_size=8), st.integers(min_value=1, max_value=7))
def test_frame_decoder_reassembles_frames_split_anywhere(payloads, step):
    stream = b"".join(_frame(p) for p in payloads)
    decoder = FrameDecoder()
    out: list[bytes] = []
    for i in range(0, len(stream), step):
        out += decoder.feed(stream[i : i + step])
    assert out == payloads
    assert decoder.pending == 0
