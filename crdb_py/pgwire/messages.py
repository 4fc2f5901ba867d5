"""Sans-IO framing of the PostgreSQL v3 protocol: decoding frontend
message bodies and encoding backend messages.

Every frontend message after start-up is ``type:u8 | length:i32 | body``,
where length counts itself but not the type byte; the start-up packet has
no type byte. Integers are big-endian, strings NUL-terminated UTF-8.
Reference: PostgreSQL docs, "Frontend/Backend Protocol" -> "Message Formats".
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

from crdb_py.pgwire.backend import Column
from crdb_py.pgwire.pgtypes import SIZES

PROTOCOL_V3 = 196608  # 3 << 16
SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104
CANCEL_REQUEST = 80877102
MAX_STARTUP_LEN = 10_000


class ProtocolViolation(Exception):
    """A malformed frontend message (SQLSTATE 08P01)."""

    sqlstate = "08P01"


class Reader:
    """Reads fields from one message body, raising ProtocolViolation on overrun."""

    __slots__ = ("buf", "pos")

    def __init__(self, buf: bytes) -> None:
        self.buf = buf
        self.pos = 0

    def _take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.buf):
            raise ProtocolViolation("message is shorter than its contents")
        b = self.buf[self.pos:self.pos + n]
        self.pos += n
        return b

    def i16(self) -> int:
        return struct.unpack("!h", self._take(2))[0]

    def i32(self) -> int:
        return struct.unpack("!i", self._take(4))[0]

    def byte(self) -> str:
        return self._take(1).decode("latin-1")

    def cstr(self) -> str:
        end = self.buf.find(b"\x00", self.pos)
        if end < 0:
            raise ProtocolViolation("unterminated string in message")
        s = self.buf[self.pos:end]
        self.pos = end + 1
        try:
            return s.decode()
        except UnicodeDecodeError as e:
            raise ProtocolViolation("invalid UTF-8 in message") from e

    def raw(self, n: int) -> bytes:
        return self._take(n)

    def rest(self) -> bytes:
        return self._take(len(self.buf) - self.pos)

    def done(self) -> None:
        if self.pos != len(self.buf):
            raise ProtocolViolation("message has trailing bytes")


def parse_startup_params(body: bytes) -> dict[str, str]:
    r = Reader(body)
    out: dict[str, str] = {}
    while True:
        k = r.cstr()
        if not k:
            break
        out[k] = r.cstr()
    return out


# ---- backend messages -------------------------------------------------------------------------


def msg(kind: bytes, body: bytes = b"") -> bytes:
    return kind + struct.pack("!i", len(body) + 4) + body


def cstr(s: str) -> bytes:
    return s.encode() + b"\x00"


def auth(code: int, data: bytes = b"") -> bytes:
    return msg(b"R", struct.pack("!i", code) + data)


def parameter_status(k: str, v: str) -> bytes:
    return msg(b"S", cstr(k) + cstr(v))


def backend_key_data(pid: int, secret: int) -> bytes:
    return msg(b"K", struct.pack("!ii", pid, secret))


def ready_for_query(status: str) -> bytes:
    return msg(b"Z", status.encode())


def command_complete(tag: str) -> bytes:
    return msg(b"C", cstr(tag))


def error_response(code: str, message: str, *, severity: str = "ERROR",
                   detail: str | None = None, hint: str | None = None) -> bytes:
    body = b"S" + cstr(severity) + b"V" + cstr(severity) + b"C" + cstr(code) + b"M" + cstr(message)
    if detail:
        body += b"D" + cstr(detail)
    if hint:
        body += b"H" + cstr(hint)
    return msg(b"E", body + b"\x00")


def notice_response(message: str, code: str = "00000") -> bytes:
    return msg(b"N", b"SNOTICE\x00VNOTICE\x00C" + cstr(code) + b"M" + cstr(message) + b"\x00")


def row_description(cols: Sequence[Column], formats: Sequence[int]) -> bytes:
    body = struct.pack("!h", len(cols))
    for i, c in enumerate(cols):
        body += cstr(c.name) + struct.pack("!ihihih", 0, 0, c.type_oid,
                                         SIZES.get(c.type_oid, -1), -1, formats[i])
    return msg(b"T", body)


def data_row(values: Sequence[bytes | None]) -> bytes:
    parts = [struct.pack("!h", len(values))]
    for v in values:
        parts.append(b"\xff\xff\xff\xff" if v is None else struct.pack("!i", len(v)) + v)
    return msg(b"D", b"".join(parts))


def parameter_description(oids: Sequence[int]) -> bytes:
    return msg(b"t", struct.pack(f"!h{len(oids)}i", len(oids), *oids))


PARSE_COMPLETE = msg(b"1")
BIND_COMPLETE = msg(b"2")
CLOSE_COMPLETE = msg(b"3")
NO_DATA = msg(b"n")
PORTAL_SUSPENDED = msg(b"s")
EMPTY_QUERY = msg(b"I")
