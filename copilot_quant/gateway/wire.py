"""TWS API framing and field encoding: the lowest layer of the simulated gateway.

After the handshake every message in both directions is a 4-byte big-endian length followed by that
many bytes of UTF-8 text made of NUL-terminated fields. The first field is the message id.

This module knows nothing about message meanings: it frames, splits, and formats single fields the way
TWS does (booleans as ``1``/``0``, unset numbers as empty strings, infinity as ``Infinite``).
"""

from __future__ import annotations

import builtins
import math
import struct
from collections.abc import Iterable, Iterator
from typing import Final

__all__ = [
    "API_PREFIX",
    "MAX_FRAME",
    "UNSET_DOUBLE",
    "UNSET_INTEGER",
    "FieldReader",
    "FrameDecoder",
    "FrameError",
    "encode_fields",
    "fmt",
    "frame",
]

API_PREFIX: Final = b"API\0"
UNSET_INTEGER: Final = 2**31 - 1
UNSET_DOUBLE: Final = 1.7976931348623157e308
#: Largest frame accepted from a client. Real client messages are a few KB; anything near this is garbage.
MAX_FRAME: Final = 1 << 20

_LEN = struct.Struct(">I")


class FrameError(ValueError):
    """A client sent bytes that cannot be a TWS API frame (the connection should be closed)."""


def fmt(value: object) -> str:
    """Format one field the way TWS writes it."""
    # Exact-type fast paths first: this runs for every field of every outgoing message.
    kind = type(value)
    if kind is str:
        return value  # type: ignore[return-value]
    if kind is int:
        return "" if value == UNSET_INTEGER else str(value)
    if kind is float:
        return _fmt_float(value)  # type: ignore[arg-type]
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return _fmt_float(value)
    if isinstance(value, int):
        return "" if value == UNSET_INTEGER else str(value)
    return str(value)


def _fmt_float(value: float) -> str:
    if value == UNSET_DOUBLE or math.isnan(value):
        return ""
    if math.isinf(value):
        return "Infinite"
    return str(value)


def encode_fields(fields: Iterable[object]) -> bytes:
    """The payload for ``fields``: each formatted with :func:`fmt` and NUL-terminated."""
    parts = list(map(fmt, fields))
    if not parts:
        return b""
    parts.append("")  # the last field's terminator
    return "\0".join(parts).encode()


def frame(payload: bytes) -> bytes:
    """Prefix ``payload`` with its 4-byte big-endian length."""
    if not payload:
        raise ValueError("never send an empty frame: ib_async's reader cannot make progress on it")
    return _LEN.pack(len(payload)) + payload


class FrameDecoder:
    """Incremental length-prefixed frame splitter for bytes arriving from a socket.

    ``feed`` returns the complete payloads now available. A length of zero or above ``max_frame``
    raises :class:`FrameError`; the caller should close that connection.
    """

    def __init__(self, max_frame: int = MAX_FRAME) -> None:
        self._buf = bytearray()
        self._max = max_frame

    def feed(self, data: bytes) -> list[bytes]:
        self._buf += data
        out: list[bytes] = []
        while len(self._buf) >= 4:
            (size,) = _LEN.unpack_from(self._buf)
            if size == 0 or size > self._max:
                raise FrameError(f"invalid frame length {size} (allowed 1..{self._max})")
            if len(self._buf) < 4 + size:
                break
            out.append(bytes(self._buf[4 : 4 + size]))
            del self._buf[: 4 + size]
        return out

    @property
    def pending(self) -> int:
        """Bytes buffered but not yet forming a whole frame."""
        return len(self._buf)


def split_fields(payload: bytes) -> list[str]:
    """The text fields of one payload (the trailing NUL terminator yields no extra field)."""
    try:
        text = payload.decode()
    except UnicodeDecodeError as exc:
        raise FrameError(f"frame is not UTF-8: {exc}") from None
    parts = text.split("\0")
    if parts and parts[-1] == "":
        parts.pop()
    return parts


class FieldReader:
    """A cursor over the fields of one incoming message, with typed readers.

    Reading past the end raises :class:`FrameError` (a truncated or malformed message).
    """

    __slots__ = ("_fields", "_pos")

    def __init__(self, fields: list[str]) -> None:
        self._fields = fields
        self._pos = 0

    @classmethod
    def from_payload(cls, payload: bytes) -> FieldReader:
        return cls(split_fields(payload))

    def __iter__(self) -> Iterator[str]:
        while self._pos < len(self._fields):
            yield self.str()

    @property
    def remaining(self) -> int:
        return len(self._fields) - self._pos

    def str(self) -> builtins.str:
        if self._pos >= len(self._fields):
            raise FrameError(f"message truncated: expected more than {len(self._fields)} fields")
        value = self._fields[self._pos]
        self._pos += 1
        return value

    def int(self, default: builtins.int = 0) -> builtins.int:
        text = self.str()
        if text == "":
            return default
        try:
            return int(text)
        except ValueError:
            try:
                return int(float(text))
            except ValueError:
                raise FrameError(f"expected an integer field, got {text!r}") from None

    def float(self, default: builtins.float = 0.0) -> builtins.float:
        text = self.str()
        if text == "":
            return default
        if text == "Infinite":
            return math.inf
        try:
            return float(text)
        except ValueError:
            raise FrameError(f"expected a number field, got {text!r}") from None

    def bool(self) -> builtins.bool:
        text = self.str()
        return text not in ("", "0", "false", "False")

    def skip(self, n: builtins.int = 1) -> None:
        for _ in range(n):
            self.str()
