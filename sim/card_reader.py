"""A simulated serial RFID reader on a pty: the far end of the card reader's wire.
``tap(uid)`` writes the UID as the reader would (one line); ``noise(data)`` writes
anything. The charger's real serial driver reads the pty's other end (``port_name``)."""

from __future__ import annotations

import os
import pty
import tty


class SimCardReader:
    def __init__(self) -> None:
        self._master, self._slave = pty.openpty()
        tty.setraw(self._slave)
        self.port_name = os.ttyname(self._slave)

    def tap(self, uid: str) -> None:
        os.write(self._master, uid.encode("ascii") + b"\r\n")

    def noise(self, data: bytes) -> None:
        os.write(self._master, data)

    def close(self) -> None:
        for fd in (self._master, self._slave):
            try:
                os.close(fd)
            except OSError:
                pass
