"""A simulated EV and the EVSE's own PLC modem, for SLAC (hal/v2g/slac.py).

``SimModem`` and ``SimEv`` are frames in, frames out (no sockets): the modem answers
CM_SET_KEY (ignoring the first ``refuse_set_key`` requests, as real QCA700x modems have
needed a retry) and reports each of the EV's sounds as a CM_ATTEN_PROFILE.IND; the EV
plays its side of ISO 15118-3 matching and keeps the NID/NMK it was given.

``WireCable`` puts both on a raw socket at the far end of a veth pair (a network
namespace the test made), so the product's shell talks to them on the wire.
"""

from __future__ import annotations

import asyncio
import os
import struct
from dataclasses import dataclass, field

from hal.v2g import slac as s
from hal.v2g import slac_messages as m
from hal.v2g.slac_messages import CNF, IND, REQ, RSP, Frame
from hal.v2g.slac_port import PacketPort


@dataclass
class SimModem:
    mac: bytes = b"\x02\x00\x00\x00\x00\x01"
    refuse_set_key: int = 0
    key: tuple[bytes, bytes] | None = None
    keys_set: int = 0
    host: bytes = b"\x02\x00\x00\x00\x00\x02"  # the EVSE's host side (profile target)

    def on_frame(self, frame: Frame) -> list[Frame]:
        if frame.mmtype == m.CM_SET_KEY | REQ:
            if self.refuse_set_key > 0:
                self.refuse_set_key -= 1
                return []  # lost: the EVSE retries
            p = frame.payload
            self.key = (p[m.SET_KEY_NID:m.SET_KEY_NID + m.NID_LEN],
                        p[m.SET_KEY_NMK:m.SET_KEY_NMK + m.NMK_LEN])
            self.keys_set += 1
            self.host = frame.src
            # result 1, as QCA700x answer a local CM_SET_KEY they applied
            return [Frame(frame.src, self.mac, m.CM_SET_KEY | CNF, b"\x01" + bytes(12))]
        return []

    def profile(self, ev_mac: bytes, attenuation: int) -> Frame:
        body = ev_mac + bytes([m.ATTEN_GROUPS, 0]) + bytes([attenuation] * m.ATTEN_GROUPS)
        return Frame(self.host, self.mac, m.CM_ATTEN_PROFILE | IND, body)


@dataclass
class SimEv:
    mac: bytes = b"\x02\xee\x00\x00\x00\x01"
    run_id: bytes = field(default_factory=lambda: os.urandom(8))
    evse_mac: bytes = b""
    key: tuple[bytes, bytes] | None = None
    answer_atten_char: bool = True  # False: an EV that never answers (timeouts)
    ask_match: bool = True  # False: the EV chose another connector

    def parm_req(self) -> Frame:
        return Frame(m.BROADCAST, self.mac, m.CM_SLAC_PARM | REQ, b"\x00\x00" + self.run_id)

    def sounding(self) -> list[Frame]:
        start = Frame(m.BROADCAST, self.mac, m.CM_START_ATTEN_CHAR | IND,
                      b"\x00\x00" + bytes([s.C_EV_MATCH_MNBC, 6, 1]) + self.mac + self.run_id)
        sounds = [Frame(m.BROADCAST, self.mac, m.CM_MNBC_SOUND | IND,
                        b"\x00\x00" + bytes(17) + bytes([s.C_EV_MATCH_MNBC - i]) + self.run_id
                        + bytes(8) + os.urandom(16)) for i in range(s.C_EV_MATCH_MNBC)]
        return [start] * 3 + sounds

    def match_req(self) -> Frame:
        body = (b"\x00\x00" + struct.pack("<H", 0x3E) + bytes(17) + self.mac + bytes(17)
                + self.evse_mac + self.run_id + bytes(8))
        return Frame(self.evse_mac, self.mac, m.CM_SLAC_MATCH | REQ, body)

    def on_frame(self, frame: Frame) -> list[Frame]:
        if frame.mmtype == m.CM_SLAC_PARM | CNF:
            self.evse_mac = frame.src
        elif frame.mmtype == m.CM_ATTEN_CHAR | IND and self.answer_atten_char:
            rsp = b"\x00\x00" + self.mac + self.run_id + bytes(17) + bytes(17) + b"\x00"
            out = [Frame(frame.src, self.mac, m.CM_ATTEN_CHAR | RSP, rsp)]
            return out + ([self.match_req()] if self.ask_match else [])
        elif frame.mmtype == m.CM_SLAC_MATCH | CNF:
            p = frame.payload
            self.key = (p[m.MATCH_CNF_NID:m.MATCH_CNF_NID + m.NID_LEN],
                        p[m.MATCH_CNF_NMK:m.MATCH_CNF_NMK + m.NMK_LEN])
        return []


class WireCable:
    """The EVSE's modem and the EV behind it, on a raw socket (the far end of a veth).
    ``plug_in`` plays one EV's matching and returns once it got its key (or times out)."""

    def __init__(self, interface: str, modem: SimModem | None = None,
                 attenuation: int = 20) -> None:
        self.port = PacketPort(interface)
        self.modem = modem or SimModem()
        self.ev: SimEv | None = None
        self.attenuation = attenuation
        self.seen: list[Frame] = []  # what the EVSE sent, in order
        self._matched = asyncio.Event()

    def open(self) -> None:
        self.port.open()
        self.port.also_for = {self.modem.mac, m.QCA_LOCAL}

    def start(self) -> None:
        self.port.start(self._frame)

    def close(self) -> None:
        self.port.close()

    def send_raw(self, data: bytes) -> None:
        """Bytes as they are, for garbage on the wire."""
        sock = self.port._sock
        assert sock is not None
        sock.send(data)

    async def plug_in(self, ev: SimEv, timeout_s: float = 5.0) -> bool:
        self.ev, self._matched = ev, asyncio.Event()
        self.port.also_for = {self.modem.mac, m.QCA_LOCAL, ev.mac}
        self.port.send(ev.parm_req())
        try:
            await asyncio.wait_for(self._matched.wait(), timeout_s)
        except TimeoutError:
            return False
        return True

    def _frame(self, frame: Frame) -> None:
        self.seen.append(frame)
        for reply in self.modem.on_frame(frame):
            self.port.send(reply)
        ev = self.ev
        if ev is None or frame.dst not in (ev.mac, m.BROADCAST):
            return
        replies = ev.on_frame(frame)
        if frame.mmtype == m.CM_SLAC_PARM | CNF:
            for sound in ev.sounding():
                self.port.send(sound)
                if sound.mmtype == m.CM_MNBC_SOUND | IND:
                    self.port.send(self.modem.profile(ev.mac, self.attenuation))
        for reply in replies:
            self.port.send(reply)
        if frame.mmtype == m.CM_SLAC_MATCH | CNF:
            self._matched.set()
