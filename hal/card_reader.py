"""CardReader contract: the bay's RFID reader (ISO 14443 charging cards).

Behaviour every driver must keep:
- ``start(on_card)`` opens the device; every card read calls ``on_card(uid)`` once, the
  UID in upper-case hex without separators (04A1B2C3D4E5F6). A card held to the reader
  is one read until it is taken away (``repeat_s``: the same UID again within it is the
  same presentation).
- Garbage on the line (noise, a half line, a UID that is not hex) is dropped and
  counted (``rejected``), never a crash; a reader that disappears is logged once.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

OnCard = Callable[[str], Awaitable[object] | None]


class CardReader(Protocol):
    rejected: int

    async def start(self, on_card: OnCard) -> None: ...
    async def close(self) -> None: ...
