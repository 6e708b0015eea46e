"""The ZVT-over-TCP payment terminal driver (hal/payment.py contract, hal/zvt.py bytes).

The charger is the ECR (electronic cash register) and the master: it sends a command,
the terminal (PT) acknowledges it (80 00 00), then, while the driver holds the card to
it, sends Intermediate Status (04 FF), one Status Information (04 0F) with the result
and, when it is done, Completion (06 0F) or Abort (06 1E); the ECR acknowledges each.

One command at a time (one terminal serves every connector of the cabinet). The TCP
connection is opened, and the ECR registers (06 00), on the first command and again
after the terminal dropped it or restarted. Waiting is bounded: ``ack_timeout_s`` for
the acknowledgement, ``timeout_s`` for the card holder (on expiry the driver sends the
ECR's abort 06 B0 and the call raises TerminalTimeout).
"""

from __future__ import annotations

import asyncio
import logging

from hal import zvt
from hal.clock import Clock
from hal.payment import (
    PaymentDeclined,
    PaymentError,
    Reservation,
    TerminalLost,
    TerminalTimeout,
    UnknownReservation,
)

log = logging.getLogger("chargebay.payment.zvt")

ZVT_PORT = 20007  # the port ZVT-over-TCP terminals listen on by default


class ZvtTerminal:
    def __init__(self, host: str, port: int, clock: Clock, *, password: int = 0,
                 currency: str = "EUR", ack_timeout_s: float = 5.0,
                 timeout_s: float = 120.0) -> None:
        self.host, self.port, self.clock = host, port, clock
        self.password, self.currency = password, currency
        self.ack_timeout_s, self.timeout_s = ack_timeout_s, timeout_s
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._lock = asyncio.Lock()

    async def start(self) -> None:
        """Nothing to open yet: the first command connects (a terminal that is off at
        boot must not stop the charger)."""

    async def close(self) -> None:
        await self._drop()

    # --- the contract ----------------------------------------------------------------

    async def preauthorize(self, amount_minor: int, currency: str) -> Reservation:
        data = zvt.amount_field(amount_minor) + zvt.currency_field(currency)
        status = await self._command(zvt.apdu(zvt.PRE_AUTHORISATION, data))
        code = _result(status)
        if code != 0:
            raise PaymentDeclined(code, zvt.RESULT_TEXT.get(code, "declined"))
        if zvt.RECEIPT not in status or zvt.TRACE not in status:
            raise PaymentError("approved without a receipt number: cannot book it later")
        card = status.get(zvt.PAN, b"").hex().rstrip("ef").upper()
        return Reservation(f"{zvt.from_bcd(status[zvt.RECEIPT]):04d}",
                           f"{zvt.from_bcd(status[zvt.TRACE]):06d}", amount_minor,
                           currency, card)

    async def capture(self, reservation: Reservation, amount_minor: int) -> None:
        if not 0 < amount_minor <= reservation.amount_minor:
            raise ValueError(f"capture {amount_minor} outside 1..{reservation.amount_minor}")
        data = (zvt.bmp(zvt.RECEIPT, zvt.bcd(int(reservation.receipt), 2))
                + zvt.amount_field(amount_minor)
                + zvt.bmp(zvt.TRACE, zvt.bcd(int(reservation.trace), 3)))
        self._settled(await self._command(zvt.apdu(zvt.BOOK_TOTAL, data)), "book total")

    async def release(self, reservation: Reservation) -> None:
        data = (zvt.bmp(zvt.RECEIPT, zvt.bcd(int(reservation.receipt), 2))
                + zvt.amount_field(reservation.amount_minor))
        self._settled(await self._command(zvt.apdu(zvt.PRE_AUTH_REVERSAL, data)),
                      "reversal")

    async def abort(self) -> None:
        """Ask the terminal to abort what it is doing (the driver went back)."""
        if self._writer is not None:
            try:
                self._writer.write(zvt.apdu(zvt.ECR_ABORT))
                await self._writer.drain()
            except OSError:
                await self._drop()

    @staticmethod
    def _settled(status: dict[int, bytes], what: str) -> None:
        code = _result(status)
        if code in zvt.UNKNOWN_RECEIPT:
            raise UnknownReservation(f"{what}: {zvt.RESULT_TEXT[code]}")
        if code != 0:
            raise PaymentError(f"{what} refused: result code {code:02X} "
                               f"({zvt.RESULT_TEXT.get(code, 'unknown')})")

    # --- the exchange ----------------------------------------------------------------

    async def _command(self, request: bytes) -> dict[int, bytes]:
        async with self._lock:
            try:
                if self._writer is None:
                    await self._connect()
                return await self._exchange(request, self.timeout_s)
            except TerminalTimeout:
                await self.abort()
                await self._drop()
                raise
            except (OSError, asyncio.IncompleteReadError, zvt.ZvtError) as exc:
                await self._drop()
                raise TerminalLost(f"payment terminal {self.host}:{self.port}: "
                                   f"{exc or type(exc).__name__}") from None

    async def _connect(self) -> None:
        try:
            self._reader, self._writer = await self.clock.wait_for(
                asyncio.open_connection(self.host, self.port), self.ack_timeout_s)
        except TimeoutError:
            raise OSError("no answer to connect") from None
        status = await self._exchange(zvt.registration(self.password, self.currency),
                                      self.ack_timeout_s * 2)
        if _result(status) != 0:
            raise OSError(f"registration refused ({_result(status):02X})")
        log.info("payment terminal %s:%d registered", self.host, self.port)

    async def _exchange(self, request: bytes, timeout_s: float) -> dict[int, bytes]:
        """Send one command; collect the status until Completion or Abort."""
        assert self._writer is not None
        self._writer.write(request)
        await self._writer.drain()
        try:
            first = await self.clock.wait_for(self._read(), self.ack_timeout_s)
        except TimeoutError:
            raise TerminalTimeout("no acknowledgement") from None
        if first.is_nack:
            raise zvt.ZvtError(f"negative acknowledgement {first.control[1]:02X}")
        if not first.is_ack:
            raise zvt.ZvtError(f"expected an acknowledgement, got {bytes(first.control).hex()}")
        status: dict[int, bytes] = {}
        deadline = self.clock.now() + timeout_s
        while True:
            left = deadline - self.clock.now()
            try:
                msg = await self.clock.wait_for(self._read(), max(left, 0.0))
            except TimeoutError:
                raise TerminalTimeout(f"no completion within {timeout_s:.0f} s") from None
            self._writer.write(zvt.ACK)
            await self._writer.drain()
            if msg.control == zvt.STATUS_INFORMATION:
                status.update(zvt.parse_bmps(msg.data))
            elif msg.control == zvt.COMPLETION:
                status.setdefault(zvt.RESULT, b"\x00")
                return status
            elif msg.control == zvt.PT_ABORT:
                status[zvt.RESULT] = msg.data[:1] or b"\xff"
                return status
            # 04 FF intermediate status and anything else: acknowledged, go on

    async def _read(self) -> zvt.Apdu:
        assert self._reader is not None
        head = await self._reader.readexactly(3)
        if head[2] == 0xFF:
            ext = await self._reader.readexactly(2)
            n = ext[0] | ext[1] << 8
            head += ext
        else:
            n = head[2]
        return zvt.parse_apdu(head + await self._reader.readexactly(n))

    async def _drop(self) -> None:
        writer, self._writer, self._reader = self._writer, None, None
        if writer is not None:
            writer.close()
            try:
                await writer.wait_closed()
            except OSError:
                pass


def _result(status: dict[int, bytes]) -> int:
    return status.get(zvt.RESULT, b"\x00")[0]
