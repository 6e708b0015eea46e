"""``chargebay console PORT [--baud B] [--log FILE]``: the engineer's end of the cable.

A plain terminal client on pyserial: the local terminal goes raw, every key goes to the
charger as typed (the charger's console does the line editing and echo), what comes back
is shown and, with ``--log``, saved to a transcript. Ctrl-] ends it. If the port goes
away (cable pulled) it says so and waits for it to come back.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import sys
import termios
import time
import tty
from collections.abc import Iterator
from typing import BinaryIO

import serial

QUIT = 0x1D  # Ctrl-]: as telnet and miniterm
RETRY_S = 1.0


@contextlib.contextmanager
def _raw(fd: int) -> Iterator[None]:
    if not os.isatty(fd):
        yield
        return
    saved = termios.tcgetattr(fd)
    tty.setraw(fd)
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def _open(port: str, baud: int) -> serial.Serial:
    return serial.Serial(port, baud, timeout=0, write_timeout=1)


def run(port: str, baud: int = 115200, log_path: str | None = None) -> int:
    out = sys.stdout.buffer
    stdin = sys.stdin.fileno()
    transcript: BinaryIO | None = open(log_path, "ab") if log_path else None  # noqa: SIM115
    try:
        link = _open(port, baud)
    except serial.SerialException as exc:
        print(f"chargebay console: cannot open {port}: {exc}", file=sys.stderr)
        return 2
    print(f"connected to {port} at {baud} baud; Ctrl-] quits", flush=True)
    try:
        with _raw(stdin):
            return _loop(link, port, baud, stdin, out, transcript)
    finally:
        if transcript is not None:
            transcript.close()
        with contextlib.suppress(Exception):
            link.close()


def _show(out: BinaryIO, transcript: BinaryIO | None, data: bytes) -> None:
    out.write(data)
    out.flush()
    if transcript is not None:
        transcript.write(data)
        transcript.flush()


def _loop(link: serial.Serial, port: str, baud: int, stdin: int, out: BinaryIO,
          transcript: BinaryIO | None) -> int:
    sel = selectors.DefaultSelector()
    sel.register(stdin, selectors.EVENT_READ, "keys")
    sel.register(link.fileno(), selectors.EVENT_READ, "port")
    while True:
        for key, _ in sel.select(timeout=1.0):
            if key.data == "keys":
                keys = os.read(stdin, 1024)
                if not keys or QUIT in keys:
                    _show(out, None, b"\r\n[chargebay console: closed]\r\n")
                    return 0
                try:
                    link.write(keys)
                except (serial.SerialException, OSError):
                    link = _reconnect(sel, link, port, baud, out)
            else:
                try:
                    data = link.read(4096)
                except (serial.SerialException, OSError):
                    link = _reconnect(sel, link, port, baud, out)
                    continue
                if data:
                    _show(out, transcript, data)


def _reconnect(sel: selectors.BaseSelector, link: serial.Serial, port: str, baud: int,
               out: BinaryIO) -> serial.Serial:
    with contextlib.suppress(Exception):
        sel.unregister(link.fileno())
    with contextlib.suppress(Exception):
        link.close()
    _show(out, None, f"\r\n[{port} went away; waiting for it]\r\n".encode())
    while True:
        time.sleep(RETRY_S)
        try:
            link = _open(port, baud)
        except serial.SerialException:
            continue
        _show(out, None, f"[{port} is back]\r\n".encode())
        sel.register(link.fileno(), selectors.EVENT_READ, "port")
        return link
