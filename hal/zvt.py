"""ZVT (the German ECR-terminal protocol) on the wire: APDUs, BMP fields, BCD amounts.

An APDU is a control field (class byte, instruction byte), a length and the data. The
length is one byte below 0xFF; else 0xFF and two bytes, low byte first. The data of the
commands used here is a list of BMP fields: a one-byte tag and a value whose length is
fixed by the tag, or an LL-/LLL-variable length written as F-nibbles (F1 F2 = 12).
Amounts are 6-byte BCD in minor units, the currency 2-byte BCD ISO 4217 numeric, the
receipt number 2-byte BCD, the trace number 3-byte BCD.

Used here (ZVT command set, chapter numbers of the ZVT-PA spec left out: read it beside
this file): 06 00 Registration, 06 22 Pre-Authorisation / Reservation, 06 24 Book Total,
06 25 Pre-Authorisation Reversal, 06 B0 Abort (ECR -> PT), and from the terminal 80 00 00
acknowledge, 84 xx 00 negative acknowledge, 04 FF Intermediate Status, 04 0F Status
Information, 06 0F Completion, 06 1E Abort (PT -> ECR, one result-code byte).
"""

from __future__ import annotations

from dataclasses import dataclass

ACK = bytes((0x80, 0x00, 0x00))

REGISTRATION = (0x06, 0x00)
PRE_AUTHORISATION = (0x06, 0x22)
PARTIAL_REVERSAL = (0x06, 0x23)
BOOK_TOTAL = (0x06, 0x24)
PRE_AUTH_REVERSAL = (0x06, 0x25)
ECR_ABORT = (0x06, 0xB0)
STATUS_INFORMATION = (0x04, 0x0F)
INTERMEDIATE_STATUS = (0x04, 0xFF)
COMPLETION = (0x06, 0x0F)
PT_ABORT = (0x06, 0x1E)

# BMP tags: fixed value lengths; None marks an LLVAR, -3 an LLLVAR.
AMOUNT, RESULT, TRACE, TIME, DATE, CARD_TYPE, CURRENCY, PAN, TID, AID = (
    0x04, 0x27, 0x0B, 0x0C, 0x0D, 0x8A, 0x49, 0x22, 0x29, 0x3B)
RECEIPT, TURNOVER, ADDITIONAL_TEXT = 0x87, 0x88, 0x3C
BMP_LENGTH: dict[int, int | None] = {
    AMOUNT: 6, RESULT: 1, TRACE: 3, TIME: 3, DATE: 2, CARD_TYPE: 1, CURRENCY: 2,
    PAN: None, TID: 4, AID: 8, RECEIPT: 2, TURNOVER: 3, ADDITIONAL_TEXT: -3,
    0x19: 1, 0x0E: 2, 0x17: 2, 0x2A: 15, 0x8B: None, 0x03: 1,
}

# ISO 4217 numeric codes.
CURRENCY_NUMERIC = {"EUR": 978, "CHF": 756, "GBP": 826, "SEK": 752, "DKK": 208,
                    "NOK": 578, "PLN": 985, "CZK": 203, "HUF": 348}

# Result codes: 00 success; 01-63 the authorisation host's (ISO 8583 response codes:
# 05 do not honour, 51 insufficient funds, ...); 64 and above the terminal's own.
RESULT_TEXT = {0x00: "approved", 0x05: "do not honour", 0x51: "insufficient funds",
               0x64: "card not readable", 0x65: "card data not present",
               0x66: "processing error", 0x6C: "abort via timeout or abort key",
               0x6F: "wrong currency", 0x78: "card expired", 0x9C: "repeat",
               0xA0: "receiver not ready", 0xB4: "already reversed",
               0xB5: "reversal not possible", 0xFF: "system error"}
UNKNOWN_RECEIPT = (0xB4, 0xB5)  # what a terminal says of a booking it already did


class ZvtError(ValueError):
    """Bytes that are not ZVT."""


def bcd(value: int, size: int) -> bytes:
    digits = f"{value:0{size * 2}d}"
    if value < 0 or len(digits) > size * 2:
        raise ZvtError(f"{value} does not fit {size} BCD bytes")
    return bytes.fromhex(digits)


def from_bcd(data: bytes) -> int:
    text = data.hex()
    if not text.isdigit():
        raise ZvtError(f"not BCD: {text}")
    return int(text)


def apdu(control: tuple[int, int], data: bytes = b"") -> bytes:
    n = len(data)
    if n > 0xFFFF:
        raise ZvtError("APDU data too long")
    length = bytes((n,)) if n < 0xFF else bytes((0xFF, n & 0xFF, n >> 8))
    return bytes(control) + length + data


@dataclass(frozen=True, slots=True)
class Apdu:
    control: tuple[int, int]
    data: bytes

    @property
    def is_ack(self) -> bool:
        return self.control == (0x80, 0x00)

    @property
    def is_nack(self) -> bool:
        return self.control[0] == 0x84


def parse_apdu(raw: bytes) -> Apdu:
    if len(raw) < 3:
        raise ZvtError("APDU shorter than its header")
    if raw[2] == 0xFF:
        if len(raw) < 5:
            raise ZvtError("extended length cut short")
        n, start = raw[3] | raw[4] << 8, 5
    else:
        n, start = raw[2], 3
    if len(raw) != start + n:
        raise ZvtError(f"length {n} but {len(raw) - start} data bytes")
    return Apdu((raw[0], raw[1]), raw[start:])


def bmp(tag: int, value: bytes) -> bytes:
    size = BMP_LENGTH[tag]
    if size is None or size == -3:
        digits = f"{len(value):0{2 if size is None else 3}d}"
        return bytes((tag,)) + bytes(0xF0 | int(d) for d in digits) + value
    if len(value) != size:
        raise ZvtError(f"BMP {tag:02X} takes {size} bytes, got {len(value)}")
    return bytes((tag,)) + value


def parse_bmps(data: bytes) -> dict[int, bytes]:
    """BMP fields until the data ends; an unknown tag (or TLV container 06) stops the
    walk, as its length is not ours to guess."""
    out: dict[int, bytes] = {}
    i = 0
    while i < len(data):
        tag = data[i]
        i += 1
        if tag not in BMP_LENGTH:
            break
        size = BMP_LENGTH[tag]
        if size is None or size == -3:
            width = 2 if size is None else 3
            nibbles = data[i:i + width]
            if len(nibbles) != width or any(b >> 4 != 0xF or b & 0xF > 9 for b in nibbles):
                raise ZvtError(f"BMP {tag:02X}: bad variable length")
            size = int("".join(str(b & 0xF) for b in nibbles))
            i += width
        if i + size > len(data):
            raise ZvtError(f"BMP {tag:02X} cut short")
        out[tag] = data[i:i + size]
        i += size
    return out


def amount_field(amount_minor: int) -> bytes:
    return bmp(AMOUNT, bcd(amount_minor, 6))


def currency_field(code: str) -> bytes:
    if code not in CURRENCY_NUMERIC:
        raise ZvtError(f"no ISO 4217 numeric code known for {code}")
    return bmp(CURRENCY, bcd(CURRENCY_NUMERIC[code], 2))


def registration(password: int, currency: str) -> bytes:
    """06 00: password (3 BCD), the config byte, the currency (2 BCD)."""
    return apdu(REGISTRATION, bcd(password, 3) + bytes((CONFIG_BYTE,))
                + bcd(CURRENCY_NUMERIC.get(currency, 978), 2))


# Config byte of the registration: 0x08 asks the terminal for intermediate status
# (04 FF) while the card is read; the bits that make the ECR print receipts or control
# the terminal's functions stay clear: an unattended bay has no printer, the receipt is
# on the screen. Check it against the terminal vendor's ZVT profile on commissioning.
CONFIG_BYTE = 0x08
