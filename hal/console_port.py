"""The console's device: a serial port (a UART, a USB gadget such as /dev/ttyGS0, a
USB-serial adapter) or, with ``device = "pty"``, a pseudo-terminal the controller makes.

Non-blocking both ways: ``read`` returns what is there (b"" if nothing), ``write`` takes
what the device accepts now and says how much. A device that goes away (the USB cable
pulled: the gadget or adapter vanishes, reads fail with EIO or hang up) raises
``PortGone``; the caller closes it and opens it again later.

A pty keeps its own slave side open, so its name stays valid and output waits in the
kernel's buffer while no terminal is attached; the slave is raw (no echo, no CR/LF
translation: the console's line discipline does all of that).
"""

from __future__ import annotations

import errno
import os
import tty

import serial

PTY = "pty"


class PortGone(OSError):
    """The device went away (cable pulled, adapter unplugged, hang-up)."""


class ConsolePort:
    def __init__(self, device: str, baud: int) -> None:
        self.device = device
        self.baud = baud
        self.name = device
        self._fd: int | None = None
        self._slave: int | None = None
        self._serial: serial.Serial | None = None

    def open(self) -> str:
        """Open it; returns the name to tell the engineer. OSError or
        serial.SerialException when it is not there."""
        if self.device == PTY:
            master, slave = os.openpty()
            tty.setraw(slave)
            self._fd, self._slave = master, slave
            self.name = os.ttyname(slave)
        else:
            self._serial = serial.Serial(self.device, self.baud, timeout=0,
                                         write_timeout=0, exclusive=True)
            self._fd = self._serial.fileno()
            self.name = self.device
        os.set_blocking(self._fd, False)
        return self.name

    def fileno(self) -> int:
        assert self._fd is not None
        return self._fd

    def read(self, size: int = 1024) -> bytes:
        try:
            data = os.read(self.fileno(), size)
        except BlockingIOError:
            return b""
        except OSError as exc:
            raise PortGone(exc.errno, f"{self.name}: {exc.strerror}") from None
        if not data:
            raise PortGone(errno.EIO, f"{self.name}: hung up")
        return data

    def write(self, data: bytes) -> int:
        try:
            return os.write(self.fileno(), data)
        except BlockingIOError:
            return 0
        except OSError as exc:
            raise PortGone(exc.errno, f"{self.name}: {exc.strerror}") from None

    def close(self) -> None:
        if self._serial is not None:
            try:
                self._serial.close()
            except (OSError, serial.SerialException):
                pass  # already gone
            self._serial = None
        else:
            for fd in (self._fd, self._slave):
                if fd is not None:
                    try:
                        os.close(fd)
                    except OSError:
                        pass
        self._fd = self._slave = None
