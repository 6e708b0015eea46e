"""Bit-packed streams (EXI 1.0 §7.1 alignment "bit-packed": no padding between values).

Both sides touch only the bytes a value spans, so work stays linear in the stream length.
"""

from __future__ import annotations


class ExiError(ValueError):
    """A malformed or non-conforming EXI stream, or a document the schema does not allow."""


class BitReader:
    __slots__ = ("data", "pos", "size")

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0
        self.size = len(data) * 8

    def bits(self, n: int) -> int:
        pos = self.pos
        end = pos + n
        if end > self.size:
            raise ExiError(f"stream ends at bit {self.size}, {n} more bits needed at bit {pos}")
        self.pos = end
        if n == 1:
            return (self.data[pos >> 3] >> (7 - (pos & 7))) & 1
        last = (end + 7) >> 3
        chunk = int.from_bytes(self.data[pos >> 3:last], "big")
        return (chunk >> ((last << 3) - end)) & ((1 << n) - 1)

    def octets(self, count: int) -> bytes:
        if count * 8 > self.size - self.pos:
            raise ExiError(f"{count} bytes announced at bit {self.pos}, fewer left")
        if count == 0:
            return b""
        return self.bits(count * 8).to_bytes(count, "big")

    def unsigned(self) -> int:
        # EXI 1.0 §7.1.6: 7 bits per octet, least significant group first, high bit = more.
        value = 0
        shift = 0
        while True:
            octet = self.bits(8)
            value |= (octet & 0x7F) << shift
            if not octet & 0x80:
                return value
            shift += 7

    def left(self) -> int:
        return self.size - self.pos


SMALL = 2048  # bytes: up to here the whole stream as one int is faster than slicing


class SmallBitReader(BitReader):
    """Same stream, read by shifting one int of the whole message: fewer steps per value;
    only for short streams, as each shift costs time linear in the stream length."""

    __slots__ = ("whole",)

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.whole = int.from_bytes(data, "big")

    def bits(self, n: int) -> int:
        end = self.pos + n
        if end > self.size:
            raise ExiError(f"stream ends at bit {self.size}, {n} more bits needed at bit "
                           f"{self.pos}")
        self.pos = end
        return (self.whole >> (self.size - end)) & ((1 << n) - 1)


class BitWriter:
    __slots__ = ("acc", "count", "out")

    def __init__(self) -> None:
        self.acc = 0
        self.count = 0
        self.out = bytearray()

    def bits(self, value: int, n: int) -> None:
        self.acc = (self.acc << n) | value
        self.count += n
        if self.count >= 256:
            self._flush()

    def _flush(self) -> None:
        whole, rest = divmod(self.count, 8)
        self.out += (self.acc >> rest).to_bytes(whole, "big")
        self.acc &= (1 << rest) - 1
        self.count = rest

    def octets(self, data: bytes) -> None:
        if data:
            self.bits(int.from_bytes(data, "big"), len(data) * 8)

    def unsigned(self, value: int) -> None:
        while value > 0x7F:
            self.bits((value & 0x7F) | 0x80, 8)
            value >>= 7
        self.bits(value, 8)

    def finish(self) -> bytes:
        pad = -self.count % 8
        self.bits(0, pad)
        self._flush()
        return bytes(self.out)
