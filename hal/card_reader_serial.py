"""The serial RFID reader driver: many industrial readers send each card's UID as one
line of ASCII hex (optionally with ':' or ' ' between bytes) at 9600 baud. Read without
blocking (``loop.add_reader`` on the port's descriptor), as the IO board driver does.

UIDs are 4, 7 or 10 bytes (ISO/IEC 14443-3 single, double, triple size); anything
else on a line is dropped and counted.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import string

import serial

from hal.card_reader import OnCard
from hal.clock import Clock

log = logging.getLogger("chargebay.card_reader")

UID_BYTES = (4, 7, 10)  # ISO/IEC 14443-3 UID sizes
MAX_LINE = 64


def parse_uid(line: bytes) -> str | None:
    text = line.decode("ascii", "replace").strip().replace(":", "").replace(" ", "")
    text = text.upper()
    if not text or any(c not in string.hexdigits for c in text):
        return None
    if len(text) % 2 or len(text) // 2 not in UID_BYTES:
        return None
    return text


class SerialCardReader:
    def __init__(self, port: str, clock: Clock, baudrate: int = 9600,
                 repeat_s: float = 2.0) -> None:
        self.port_name, self.clock, self.baudrate = port, clock, baudrate
        self.repeat_s = repeat_s
        self.rejected = 0
        self._port: serial.Serial | None = None
        self._buffer = b""
        self._on_card: OnCard | None = None
        self._last: tuple[str, float] | None = None
        self._tasks: set[asyncio.Task[object]] = set()

    async def start(self, on_card: OnCard) -> None:
        self._on_card = on_card
        self._port = serial.serial_for_url(self.port_name, self.baudrate, timeout=0)
        asyncio.get_running_loop().add_reader(self._port.fileno(), self._readable)

    async def close(self) -> None:
        if self._port is not None:
            try:
                asyncio.get_running_loop().remove_reader(self._port.fileno())
            except (ValueError, OSError):
                pass
            self._port.close()
            self._port = None
        for task in list(self._tasks):
            task.cancel()

    def _readable(self) -> None:
        assert self._port is not None
        try:
            data = self._port.read(256)
        except (OSError, serial.SerialException) as exc:
            log.error("card reader %s lost: %s", self.port_name, exc)
            asyncio.get_running_loop().remove_reader(self._port.fileno())
            return
        self._buffer += data
        *lines, self._buffer = self._buffer.replace(b"\r", b"\n").split(b"\n")
        if len(self._buffer) > MAX_LINE:  # no newline in sight: noise
            self._buffer = b""
            self.rejected += 1
        for line in lines:
            if not line.strip():
                continue
            uid = parse_uid(line)
            if uid is None:
                self.rejected += 1
                continue
            self._card(uid)

    def _card(self, uid: str) -> None:
        now = self.clock.now()
        if self._last is not None and self._last[0] == uid and now - self._last[1] < \
                self.repeat_s:
            self._last = (uid, now)
            return
        self._last = (uid, now)
        assert self._on_card is not None
        result = self._on_card(uid)
        if inspect.isawaitable(result):
            task = asyncio.ensure_future(result)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
