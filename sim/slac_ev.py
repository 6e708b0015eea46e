"""A simulated EV and the EVSE's own PLC modem, for the SLAC machine (hal/v2g/slac.py):
frames in, frames out, no sockets. The modem answers CM_SET_KEY (refusing the first
``refuse_set_key`` times, as real QCA700x modems have) and reports each of the EV's
sounds as a CM_ATTEN_PROFILE; the EV plays its side of ISO 15118-3 matching."""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field

from hal.v2g import slac as s


@dataclass
class SimModem:
    mac: bytes = b"\x02\x00\x00\x00\x00\x01"
    refuse_set_key: int = 0
    key: tuple[bytes, bytes] | None = None

    def on_frame(self, frame: s.Frame) -> list[s.Frame]:
        if frame.mmtype == s.CM_SET_KEY | s.REQ:
            if self.refuse_set_key > 0:
                self.refuse_set_key -= 1
                return []  # lost: the EVSE retries
            p = frame.payload
            self.key = (p[14:21], p[22:38])  # NID, NewKey (after nonces, PID, PRN, PMN, CCo)
            return [s.Frame(frame.src, self.mac, s.CM_SET_KEY | s.CNF, b"\x00")]
        return []

    def profile(self, ev_mac: bytes, attenuation: int) -> s.Frame:
        body = ev_mac + bytes([s.ATTEN_GROUPS, 0]) + bytes([attenuation] * s.ATTEN_GROUPS)
        return s.Frame(b"\x02\x00\x00\x00\x00\x02", self.mac, s.CM_ATTEN_PROFILE | s.IND, body)


@dataclass
class SimEv:
    mac: bytes = b"\x02\xee\x00\x00\x00\x01"
    run_id: bytes = field(default_factory=lambda: os.urandom(8))
    evse_mac: bytes = b""
    key: tuple[bytes, bytes] | None = None

    def parm_req(self) -> s.Frame:
        return s.Frame(s.BROADCAST, self.mac, s.CM_SLAC_PARM | s.REQ, b"\x00\x00" + self.run_id)

    def sounding(self) -> list[s.Frame]:
        start = s.Frame(s.BROADCAST, self.mac, s.CM_START_ATTEN_CHAR | s.IND,
                        b"\x00\x00" + bytes([s.C_EV_MATCH_MNBC, 6, 1]) + self.mac + self.run_id)
        sounds = [s.Frame(s.BROADCAST, self.mac, s.CM_MNBC_SOUND | s.IND,
                          b"\x00\x00" + bytes(17) + bytes([s.C_EV_MATCH_MNBC - i]) + self.run_id
                          + bytes(8) + os.urandom(16)) for i in range(s.C_EV_MATCH_MNBC)]
        return [start] * 3 + sounds

    def on_frame(self, frame: s.Frame) -> list[s.Frame]:
        if frame.mmtype == s.CM_SLAC_PARM | s.CNF:
            self.evse_mac = frame.src
        elif frame.mmtype == s.CM_ATTEN_CHAR | s.IND:
            rsp = b"\x00\x00" + self.mac + self.run_id + bytes(17) + bytes(17) + b"\x00"
            match = (b"\x00\x00" + struct.pack("<H", 0x3E) + bytes(17) + self.mac + bytes(17)
                     + self.evse_mac + self.run_id + bytes(8))
            return [s.Frame(frame.src, self.mac, s.CM_ATTEN_CHAR | s.RSP, rsp),
                    s.Frame(frame.src, self.mac, s.CM_SLAC_MATCH | s.REQ, match)]
        elif frame.mmtype == s.CM_SLAC_MATCH | s.CNF:
            p = frame.payload
            self.key = (p[-24:-17], p[-16:])
        return []
