"""PaymentTerminal contract: the card terminal in the cabinet, driven over a local link.

Ad-hoc payment as AFIR Art. 5(1) asks for it: the charger reserves an amount on the
driver's card before the start (pre-authorization), captures the final amount right
after the end, or releases the reservation at once when the session never started.

Behaviour every driver must keep:
- ``preauthorize`` returns a ``Reservation`` only when the terminal approved it; a
  refusal raises ``PaymentDeclined`` (with the terminal's result code and its reason in
  the terminal protocol's words), silence past the timeout ``TerminalTimeout``, a link
  that will not open or drops ``TerminalLost``. None of them leaves a reservation open.
- ``capture`` books ``amount_minor`` (<= the reserved amount) on a reservation and
  ``release`` reverses it whole. A terminal that no longer knows the reservation
  (already booked or reversed, e.g. before a controller restart) raises
  ``UnknownReservation``: the caller counts it as settled, never books again.
- Amounts are in the currency's minor units (cents), as terminals take them.
- A driver reconnects by itself on the next call after the terminal restarted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Reservation:
    receipt: str  # the terminal's receipt number: booking and reversal name it
    trace: str  # the terminal's trace number
    amount_minor: int  # what was reserved
    currency: str  # ISO 4217 alphabetic code
    card: str = ""  # masked PAN or card name, for the receipt


class PaymentError(Exception):
    """Base of the terminal's failures."""


class PaymentDeclined(PaymentError):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(f"declined (result code {code:02X}: {reason})")
        self.code = code
        self.reason = reason


class TerminalTimeout(PaymentError):
    pass


class TerminalLost(PaymentError):
    pass


class UnknownReservation(PaymentError):
    pass


class PaymentTerminal(Protocol):
    async def start(self) -> None: ...
    async def close(self) -> None: ...
    async def preauthorize(self, amount_minor: int, currency: str) -> Reservation: ...
    async def capture(self, reservation: Reservation, amount_minor: int) -> None: ...
    async def release(self, reservation: Reservation) -> None: ...
    async def abort(self) -> None: ...
