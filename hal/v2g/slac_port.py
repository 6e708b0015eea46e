"""The raw socket on a connector's PLC modem interface: HomePlug management frames
(EtherType 0x88E1) in and out, non-blocking on the asyncio loop.

Linux only (AF_PACKET); needs root or CAP_NET_RAW. What the kernel hands us is checked
before anything reads it: a frame we sent ourselves, one addressed to another station,
one that does not parse (short, other EtherType, other MMV, oversized) is dropped and
counted, never raised. Reading is bounded per wake-up so a flood cannot starve the
event loop (the control tick runs on it).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from collections.abc import Callable
from dataclasses import dataclass

from hal.v2g.slac_messages import BROADCAST, ETHERTYPE_HOMEPLUG, MAX_FRAME, Frame, SlacError, parse

log = logging.getLogger("chargebay.slac")

READS_PER_WAKEUP = 64  # then the loop runs other callbacks before reading on
PACKET_OTHERHOST, PACKET_OUTGOING = 3, 4  # sll_pkttype (linux/if_packet.h)


class PortError(OSError):
    """The modem interface cannot be opened: names the interface and why."""

    def __init__(self, interface: str, reason: str) -> None:
        super().__init__(f"{interface}: {reason}")
        self.interface = interface
        self.reason = reason


@dataclass
class PortStats:
    received: int = 0  # frames handed to the matcher
    sent: int = 0
    malformed: int = 0  # did not parse as a HomePlug management frame
    foreign: int = 0  # addressed to another station, or our own echo
    send_errors: int = 0


class PacketPort:
    """One modem interface. ``open`` (raises PortError), ``start(on_frame)``, ``send``,
    ``close``. ``mac`` is the interface's own address (the EVSE's MAC in SLAC)."""

    def __init__(self, interface: str) -> None:
        self.interface = interface
        self.stats = PortStats()
        self.mac = b""
        self._sock: socket.socket | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._on_frame: Callable[[Frame], None] = lambda f: None
        # Extra destinations we accept besides our MAC and broadcast (the simulated EV
        # and modem on the far end of a veth listen for addresses that are not theirs).
        self.also_for: set[bytes] = set()

    def open(self) -> None:
        try:
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW,
                                 socket.htons(ETHERTYPE_HOMEPLUG))
        except PermissionError:
            raise PortError(self.interface, "a raw socket needs root or CAP_NET_RAW "
                            "(setcap cap_net_raw+ep on the interpreter, or run as root)") from None
        except OSError as exc:
            raise PortError(self.interface, f"no raw socket: {exc.strerror}") from None
        try:
            sock.bind((self.interface, ETHERTYPE_HOMEPLUG))
            sock.setblocking(False)
            self.mac = sock.getsockname()[4][:6]
        except OSError as exc:
            sock.close()
            if exc.errno in (errno.ENODEV, errno.ENXIO):
                raise PortError(self.interface, "no such network interface") from None
            raise PortError(self.interface, exc.strerror or str(exc)) from None
        if len(self.mac) != 6:
            sock.close()
            raise PortError(self.interface, "not an Ethernet interface (no 6-byte MAC)")
        self._sock = sock

    def start(self, on_frame: Callable[[Frame], None]) -> None:
        assert self._sock is not None, "open() first"
        self._on_frame = on_frame
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(self._sock.fileno(), self._readable)

    def send(self, frame: Frame) -> bool:
        if self._sock is None:
            return False
        try:
            self._sock.send(frame.pack())
        except OSError as exc:  # interface down, queue full: counted, the timers retry
            self.stats.send_errors += 1
            if self.stats.send_errors <= 3:
                log.warning("%s: frame %#06x not sent: %s", self.interface, frame.mmtype,
                            exc.strerror or exc)
            return False
        self.stats.sent += 1
        return True

    def _readable(self) -> None:
        sock = self._sock
        if sock is None:
            return
        for _ in range(READS_PER_WAKEUP):
            try:
                data, addr = sock.recvfrom(MAX_FRAME + 1)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. ENETDOWN while the modem resets
                log.warning("%s: receive failed: %s", self.interface, exc.strerror or exc)
                return
            self._take(data, addr[2] if len(addr) > 2 else 0)

    def _take(self, data: bytes, pkttype: int) -> None:
        if pkttype == PACKET_OUTGOING:
            self.stats.foreign += 1
            return
        try:
            frame = parse(data)
        except SlacError:
            self.stats.malformed += 1
            return
        if frame.dst not in (self.mac, BROADCAST) and frame.dst not in self.also_for or (
                frame.src == self.mac):
            self.stats.foreign += 1
            return
        self.stats.received += 1
        self._on_frame(frame)

    def close(self) -> None:
        if self._sock is None:
            return
        if self._loop is not None:
            self._loop.remove_reader(self._sock.fileno())
        self._sock.close()
        self._sock = None
