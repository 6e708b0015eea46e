"""V2G Transfer Protocol framing: the 8-byte header before every message.

ISO 15118-2 clause 7.8.3 (DIN SPEC 70121 uses the same): protocol version 0x01, its
inverse 0xFE, payload type (u16 big-endian), payload length (u32 big-endian). ISO 15118-20
clause 7.8.3.3 splits the EXI payload type by schema (0x8002 .. 0x8006).
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

VERSION = 0x01
INVERSE_VERSION = 0xFE
HEADER = struct.Struct(">BBHI")
HEADER_LEN = HEADER.size  # 8

# No message of the DC subsets comes near this (the largest, ScheduleExchangeRes, is about
# 420 bytes; certificate chains stay below 8 KiB); a longer length field is a broken or
# hostile peer, refused before any allocation.
MAX_PAYLOAD = 64 * 1024


class PayloadType(enum.IntEnum):
    EXI = 0x8001  # DIN, ISO-2: every message; -20: supportedAppProtocol only
    ISO20_COMMON = 0x8002
    ISO20_AC = 0x8003
    ISO20_DC = 0x8004
    ISO20_ACDP = 0x8005
    ISO20_WPT = 0x8006
    SDP_REQUEST = 0x9000
    SDP_RESPONSE = 0x9001
    SDP_REQUEST_WIRELESS = 0x9002  # -20 WPT/ACDP discovery (not served: DC only)
    SDP_RESPONSE_WIRELESS = 0x9003


class FramingError(ValueError):
    """A header we must not accept (ISO 15118-2 clause 7.8.3: a wrong version or an
    unknown payload type is not a V2GTP message)."""


@dataclass(frozen=True, slots=True)
class Header:
    payload_type: int
    length: int


def pack(payload_type: int, payload: bytes) -> bytes:
    """Header and payload as one buffer (sent in one write: some EVs read one message
    per socket read)."""
    return HEADER.pack(VERSION, INVERSE_VERSION, payload_type, len(payload)) + payload


def parse_header(data: bytes, max_payload: int = MAX_PAYLOAD) -> Header:
    if len(data) < HEADER_LEN:
        raise FramingError(f"header of {len(data)} bytes, need {HEADER_LEN}")
    version, inverse, ptype, length = HEADER.unpack_from(data)
    if version != VERSION or inverse != INVERSE_VERSION:
        raise FramingError(f"protocol version {version:#04x}/{inverse:#04x}, expected 01/fe")
    if ptype not in PayloadType._value2member_map_:
        raise FramingError(f"unknown payload type {ptype:#06x}")
    if length > max_payload:
        raise FramingError(f"payload length {length} over the limit {max_payload}")
    return Header(ptype, length)


def parse(data: bytes) -> tuple[Header, bytes]:
    """One whole datagram (SDP): header and exactly its payload."""
    header = parse_header(data)
    payload = data[HEADER_LEN:]
    if len(payload) != header.length:
        raise FramingError(f"payload of {len(payload)} bytes, header says {header.length}")
    return header, payload
