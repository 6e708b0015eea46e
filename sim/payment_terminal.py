"""A simulated ZVT card terminal on 127.0.0.1: the far end of the payment wire.

It speaks the bytes hal/zvt.py describes (registration, pre-authorisation, book total,
pre-authorisation reversal, the ECR's abort) and keeps, like an acquirer, a journal of
reservations that outlives a terminal restart. ``mode`` says what the next card does:

    approve     approved (receipt and trace numbers count up)
    decline     the host says 05 "do not honour"
    timeout     acknowledges, then says nothing (the card holder walked away)
    disconnect  acknowledges, then closes the connection
    lost        refuses connections (the terminal is off or its cable is out)
    book_and_drop  (booking only) books, then closes before the answer: the controller
                 dies or loses the link between capture request and answer

``restart()`` drops every connection (the journal stays). ``bookings`` counts the book
total / reversal per receipt so tests can prove each reservation settled exactly once.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

from hal import zvt


@dataclass
class Held:
    amount_minor: int
    trace: int
    state: str = "open"  # open, booked, reversed
    booked_minor: int = 0


@dataclass
class SimTerminal:
    host: str = "127.0.0.1"
    port: int = 0
    mode: str = "approve"
    capture_mode: str = "answer"  # answer | book_and_drop
    journal: dict[int, Held] = field(default_factory=dict)
    bookings: dict[int, list[str]] = field(default_factory=dict)  # receipt -> events
    registrations: int = 0
    refused_settlements: int = 0  # book or reversal asked for a reservation not open
    _server: asyncio.Server | None = None
    _conns: set[asyncio.StreamWriter] = field(default_factory=set)
    _receipt: int = 0
    _trace: int = 100

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self.port

    async def close(self) -> None:
        await self._drop_all()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def restart(self) -> None:
        """The terminal reboots: connections gone, the journal kept."""
        await self.close()
        await self.start()

    async def _drop_all(self) -> None:
        for w in list(self._conns):
            w.close()
        self._conns.clear()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
                     ) -> None:
        if self.mode == "lost":
            writer.close()
            return
        self._conns.add(writer)
        try:
            while True:
                msg = await _read(reader)
                if msg.is_ack or msg.control == zvt.ECR_ABORT:
                    continue
                writer.write(zvt.ACK)
                await writer.drain()
                if not await self._answer(msg, reader, writer):
                    break
        except (asyncio.IncompleteReadError, ConnectionError, zvt.ZvtError):
            pass
        finally:
            self._conns.discard(writer)
            writer.close()

    async def _answer(self, msg: zvt.Apdu, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> bool:
        """False: drop the connection."""
        if msg.control == zvt.REGISTRATION:
            self.registrations += 1
            return await _send(writer, reader, zvt.apdu(zvt.COMPLETION))
        fields = zvt.parse_bmps(msg.data)
        if msg.control == zvt.PRE_AUTHORISATION:
            return await self._preauth(fields, reader, writer)
        if msg.control in (zvt.BOOK_TOTAL, zvt.PRE_AUTH_REVERSAL):
            receipt = zvt.from_bcd(fields[zvt.RECEIPT])
            held = self.journal.get(receipt)
            if held is None or held.state != "open":
                self.refused_settlements += 1
                return await _abort(writer, reader, 0xB4)  # already booked or reversed
            if msg.control == zvt.BOOK_TOTAL:
                amount = zvt.from_bcd(fields[zvt.AMOUNT])
                if amount > held.amount_minor:
                    return await _abort(writer, reader, 0xB5)
                held.state, held.booked_minor = "booked", amount
                self.bookings.setdefault(receipt, []).append(f"booked {amount}")
                if self.capture_mode == "book_and_drop":
                    return False
            else:
                held.state = "reversed"
                self.bookings.setdefault(receipt, []).append("reversed")
            status = zvt.bmp(zvt.RESULT, b"\x00") + zvt.bmp(zvt.RECEIPT,
                                                           zvt.bcd(receipt, 2))
            return (await _send(writer, reader, zvt.apdu(zvt.STATUS_INFORMATION, status))
                    and await _send(writer, reader, zvt.apdu(zvt.COMPLETION)))
        return await _abort(writer, reader, 0x83)  # function not possible

    async def _preauth(self, fields: dict[int, bytes], reader: asyncio.StreamReader,
                       writer: asyncio.StreamWriter) -> bool:
        if self.mode == "timeout":
            await asyncio.sleep(3600)
            return False
        if self.mode == "disconnect":
            return False
        # "insert card" (04 FF 0A), then the answer
        if not await _send(writer, reader, zvt.apdu(zvt.INTERMEDIATE_STATUS, b"\x0a")):
            return False
        if self.mode == "decline":
            status = zvt.bmp(zvt.RESULT, b"\x05")
            await _send(writer, reader, zvt.apdu(zvt.STATUS_INFORMATION, status))
            return await _abort(writer, reader, 0x05)
        amount = zvt.from_bcd(fields[zvt.AMOUNT])
        self._receipt += 1
        self._trace += 1
        self.journal[self._receipt] = Held(amount, self._trace)
        status = (zvt.bmp(zvt.RESULT, b"\x00") + zvt.amount_field(amount)
                  + zvt.bmp(zvt.TRACE, zvt.bcd(self._trace, 3))
                  + zvt.bmp(zvt.RECEIPT, zvt.bcd(self._receipt, 2))
                  + zvt.bmp(zvt.PAN, bytes.fromhex("67123456789012ffff")[:8]))
        return (await _send(writer, reader, zvt.apdu(zvt.STATUS_INFORMATION, status))
                and await _send(writer, reader, zvt.apdu(zvt.COMPLETION)))

    def open_reservations(self) -> list[int]:
        return [r for r, h in self.journal.items() if h.state == "open"]


async def _read(reader: asyncio.StreamReader) -> zvt.Apdu:
    head = await reader.readexactly(3)
    n = head[2]
    if n == 0xFF:
        ext = await reader.readexactly(2)
        head += ext
        n = ext[0] | ext[1] << 8
    return zvt.parse_apdu(head + await reader.readexactly(n))


async def _send(writer: asyncio.StreamWriter, reader: asyncio.StreamReader,
                raw: bytes) -> bool:
    """Send one APDU and wait for the ECR's acknowledgement."""
    writer.write(raw)
    await writer.drain()
    with contextlib.suppress(TimeoutError):
        ack = await asyncio.wait_for(_read(reader), 5.0)
        return ack.is_ack
    return False


async def _abort(writer: asyncio.StreamWriter, reader: asyncio.StreamReader,
                 code: int) -> bool:
    return await _send(writer, reader, zvt.apdu(zvt.PT_ABORT, bytes((code,))))
