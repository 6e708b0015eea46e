"""The host-MCU wire format: COBS framing, CRC-16/CCITT-FALSE, message types.

One module for both ends: the IO board's MicroPython firmware and the host driver import
it, so the two cannot drift apart. It therefore uses only what MicroPython has (no typing
module, no __future__, no dataclasses). Byte-by-byte description: docs/io-board-protocol.md.

A frame on the wire is ``00 | COBS(seq, type, len, body..., crc_hi, crc_lo) | 00``. The
leading delimiter ends any garbage before it, so the frame after a glitch is always read
whole. The length byte catches a frame cut short by a corrupted COBS code byte, which the
CRC alone misses once in 65536.
"""

# 2: status carries the board's trips and output voltage; SET_OVP_BAND. 3: the board-held
# contactor self test (SELFTEST_CONTACTORS, its trips bits). 4: the insulation monitor's
# self test (TEST_IMD) and a ninth status byte (pilot held in F, the IMD test's result).
# HELLO's own layout (version u8, timeout u16) never changes, so ends of any two versions
# still tell each other apart: the board answers another version with BAD_VERSION.
PROTOCOL_VERSION = 4
MAX_PAYLOAD = 64  # seq + type + len + body + CRC; longest real message is about 30 bytes
MAX_BODY = MAX_PAYLOAD - 5
MAX_ENCODED = MAX_PAYLOAD + MAX_PAYLOAD // 254 + 2

# Host -> MCU. HELLO is answered with HELLO_ACK, HEARTBEAT with a TELEMETRY frame, the
# commands with an ACK carrying their sequence number.
HELLO = 0x01  # body: protocol version u8, heartbeat timeout ms u16
SET_PILOT = 0x02  # body: connector u8, mode u8 (0 PWM, 1 state F), duty per mille u16
SET_CONTACTORS = 0x03  # body: connector u8, closed u8
SET_LOCK = 0x04  # body: connector u8, locked u8
HEARTBEAT = 0x05  # body: empty
SET_OVP_BAND = 0x06  # body: connector u8, over-voltage limit V u16 (the negotiated band)
SELFTEST_CONTACTORS = 0x07  # body: connector u8; closes an empty connector for a bounded
#                            time and opens again (rules.py); REFUSED when not safe
TEST_IMD = 0x08  # body: connector u8; the insulation monitor's self test (IEC 61557-8 test
#                 function) before the cable check measures; REFUSED unless open and < 60 V

# MCU -> host.
ACK = 0x80  # body: acknowledged seq u8, result u8
HELLO_ACK = 0x81  # body: acked seq u8, protocol version u8, firmware major, minor, patch u8,
#                   connector count u8
TELEMETRY = 0x90  # body: per connector 9 bytes, see pack_status; every 100 ms at most
EVENT = 0x91  # same body as TELEMETRY, sent at once when a status bit or pilot changes

# ACK result codes.
OK = 0
REFUSED = 1  # understood but a hard rule forbids it now (the board keeps it pending)
BAD_ARGS = 2
UNKNOWN_TYPE = 3
BAD_VERSION = 4

# Status flag bits, one byte per connector.
F_CONTACTORS = 0x01  # mirror contacts say the main contacts are closed
F_LOCKED = 0x02  # lock position switch says locked
F_ESTOP = 0x04
F_ISOLATION = 0x08
F_PLUGGED = 0x10  # proximity / insertion detection
F_WELDED = 0x20  # commanded open, mirror still says closed
F_LOCK_FAULT = 0x40  # lock motor did not reach the commanded position in time
F_LINK_TRIP = 0x80  # the heartbeat rule tripped (host was silent)
# Second flag byte: why the board opened the contactors on its own (it tells the host).
T_OVER_VOLTAGE = 0x01  # output above the band for the filter time (IEC 61851-23)
T_PILOT = 0x02  # pilot left C/D while the contactors were closed (IEC 61851-1)
# The contactor self test: running now; in the last one the mirror followed closed, then
# open again; aborted (a safety condition failed, or the host sent SET_CONTACTORS).
T_SELFTEST_RUNNING = 0x04
T_SELFTEST_CLOSED = 0x08
T_SELFTEST_OPENED = 0x10
T_SELFTEST_ABORTED = 0x20
# Third flag byte (states): the pilot held in F against the host's wish for the rest of
# IEC 61851-1's 4 s (the vehicle's state cannot be read meanwhile); the IMD self test
# running, and its result since the vehicle plugged in (held until the next test or the
# vehicle leaves).
S_PILOT_HELD_F = 0x01
S_IMD_TESTING = 0x02
S_IMD_PASSED = 0x04
S_IMD_FAILED = 0x08
F_STATUS_SIZE = 9  # connector, pilot letter, flags, trips, temperature (0.1 degC, signed
#                    16 bit), output voltage at the EVSE's side of the cable (0.1 V, u16),
#                    states


def _crc_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
        table.append(crc & 0xFFFF)
    return table


_CRC_TABLE = _crc_table()


def crc16(data: bytes) -> int:
    """CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, no reflection, no final xor
    (check value for b"123456789" is 0x29B1)."""
    crc = 0xFFFF
    table = _CRC_TABLE
    for b in data:
        crc = ((crc << 8) & 0xFFFF) ^ table[(crc >> 8) ^ b]
    return crc


def cobs_encode(data: bytes) -> bytes:
    """Consistent Overhead Byte Stuffing: the result holds no zero byte. Each zero-free
    run becomes a code byte (run length + 1) and the run; the code stands for the zero
    that followed it. A run of 254 bytes (code 0xFF) has no zero after it."""
    out = bytearray()
    for run in bytes(data).split(b"\x00"):
        while len(run) >= 254:
            out.append(0xFF)
            out.extend(run[:254])
            run = run[254:]
        out.append(len(run) + 1)
        out.extend(run)
    return bytes(out)


def cobs_decode(data: bytes) -> bytes | None:
    """The bytes ``data`` encodes, or None if it is not valid COBS."""
    out = bytearray()
    i = 0
    n = len(data)
    while i < n:
        code = data[i]
        end = i + code
        if code == 0 or end > n:
            return None
        out.extend(data[i + 1:end])
        i = end
        if code < 0xFF and i < n:
            out.append(0)
    if 0 in data:  # a zero inside a frame: the stream splitter would never pass one
        return None
    return bytes(out)


def encode(seq: int, mtype: int, body: bytes = b"") -> bytes:
    """One frame ready for the wire, delimiters included."""
    payload = bytes([seq & 0xFF, mtype & 0xFF, len(body) & 0xFF]) + bytes(body)
    crc = crc16(payload)
    return b"\x00" + cobs_encode(payload + bytes([crc >> 8, crc & 0xFF])) + b"\x00"


class Decoder:
    """Turns a byte stream into (seq, type, body) tuples. Never raises on bad input:
    corrupt or oversize frames are dropped and counted, and decoding resumes at the next
    zero byte."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.frames = 0
        self.dropped = 0  # failed COBS, CRC or length checks, or overflowed
        self._skipping = False  # in an oversize run: drop until the next delimiter

    def feed(self, data: bytes) -> list[tuple[int, int, bytes]]:
        out = []
        data = bytes(data)
        start = 0
        n = len(data)
        while start < n:
            zero = data.find(b"\x00", start)
            if zero < 0:
                self._take(data[start:])
                break
            self._take(data[start:zero])
            if self._skipping:
                self._skipping = False
            elif len(self.buf) > 0:
                frame = self._decode(bytes(self.buf))
                if frame is None:
                    self.dropped += 1
                else:
                    self.frames += 1
                    out.append(frame)
            self.buf = bytearray()
            start = zero + 1
        return out

    def _take(self, chunk: bytes) -> None:
        if self._skipping or not chunk:
            return
        if len(self.buf) + len(chunk) > MAX_ENCODED:
            self.buf = bytearray()
            self._skipping = True
            self.dropped += 1
            return
        self.buf.extend(chunk)

    @staticmethod
    def _decode(encoded: bytes) -> tuple[int, int, bytes] | None:
        payload = cobs_decode(encoded)
        if payload is None or len(payload) < 5 or payload[2] != len(payload) - 5:
            return None
        crc = (payload[-2] << 8) | payload[-1]
        if crc16(payload[:-2]) != crc:
            return None
        return payload[0], payload[1], payload[3:-2]


def pack_status(connector: int, pilot: str, flags: int, trips: int, temperature_c: float,
                output_v: float, states: int = 0) -> bytes:
    deci = int(round(temperature_c * 10))
    deci = max(-32768, min(32767, deci)) & 0xFFFF
    volts = max(0, min(65535, int(round(output_v * 10))))
    return bytes([connector & 0xFF, ord(pilot), flags & 0xFF, trips & 0xFF, deci >> 8,
                  deci & 0xFF, volts >> 8, volts & 0xFF, states & 0xFF])


def unpack_status(body: bytes) -> list[tuple[int, str, int, int, float, float, int]]:
    """[(connector, pilot, flags, trips, temperature_c, output_v, states), ...]; [] if the
    body is malformed."""
    if len(body) % F_STATUS_SIZE:
        return []
    out = []
    for i in range(0, len(body), F_STATUS_SIZE):
        pilot = chr(body[i + 1])
        if pilot not in "ABCDEF":
            return []
        deci = (body[i + 4] << 8) | body[i + 5]
        if deci >= 0x8000:
            deci -= 0x10000
        volts = (body[i + 6] << 8) | body[i + 7]
        out.append((body[i], pilot, body[i + 2], body[i + 3], deci / 10.0, volts / 10.0,
                    body[i + 8]))
    return out
