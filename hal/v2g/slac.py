"""SLAC (ISO 15118-3 clause 9, HomePlug Green PHY): which modem on the cable is this
connector's EV, and the private network key the two then share.

Behind its own small contract (``Matcher``: frames in, frames out, the time passed in),
so the same machine runs against a real modem (``PacketPort``: a raw AF_PACKET socket on
the connector's modem interface, EtherType 0x88E1, root or CAP_NET_RAW) or a simulated
one. We write the few messages ourselves: PyPI ``pyslac`` (last release 2022) needs
``marshmallow<4`` and owns its own loop and sockets; these are fixed-layout frames.

EVSE side, once the pilot shows a vehicle (state B, 5 % PWM):
  CM_SET_KEY.REQ -> local modem (a fresh NMK/NID per session)
  <- CM_SLAC_PARM.REQ (EV, broadcast)      -> CM_SLAC_PARM.CNF
  <- CM_START_ATTEN_CHAR.IND (x3)
  <- CM_MNBC_SOUND.IND / CM_ATTEN_PROFILE.IND (local modem, one per sound)
  -> CM_ATTEN_CHAR.IND (averaged attenuation) <- CM_ATTEN_CHAR.RSP
  <- CM_SLAC_MATCH.REQ                      -> CM_SLAC_MATCH.CNF (NID, NMK): matched
"""

from __future__ import annotations

import enum
import os
import struct
from dataclasses import dataclass, field

ETHERTYPE_HOMEPLUG = 0x88E1
MMV = 0x01  # HomePlug AV 1.1 management message version
BROADCAST = b"\xff" * 6

CM_SET_KEY = 0x6008
CM_SLAC_PARM = 0x6064
CM_START_ATTEN_CHAR = 0x6068
CM_ATTEN_CHAR = 0x606C
CM_MNBC_SOUND = 0x6074
CM_SLAC_MATCH = 0x607C
CM_ATTEN_PROFILE = 0x6084
REQ, CNF, IND, RSP = 0, 1, 2, 3

# ISO 15118-3 Annex A timing and constants (EVSE side).
C_EV_MATCH_MNBC = 10  # sounds the EV sends
TT_EVSE_MATCH_MNBC_S = 0.6  # the EVSE collects sounds this long, then characterises
TT_MATCH_SEQUENCE_S = 0.4  # longest wait for the EV's next SLAC message
TT_EVSE_SLAC_INIT_S = 50.0  # from state B with 5 % PWM until CM_SLAC_PARM.REQ (20-50 s)
TT_MATCH_RESPONSE_S = 0.2  # the EV answers CM_ATTEN_CHAR.IND within this
C_EV_MATCH_RETRY = 2  # CM_ATTEN_CHAR.IND repeats
ATTEN_GROUPS = 58  # ISO 15118-3: attenuation profile in 58 carrier groups
SET_KEY_RETRIES = 3  # real QCA700x modems have needed a CM_SET_KEY retry


class SlacError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Frame:
    dst: bytes
    src: bytes
    mmtype: int  # base | REQ/CNF/IND/RSP
    payload: bytes

    def pack(self) -> bytes:
        return (self.dst + self.src + struct.pack(">H", ETHERTYPE_HOMEPLUG)
                + struct.pack("<BHH", MMV, self.mmtype, 0) + self.payload)


def parse(data: bytes) -> Frame:
    if len(data) < 19:
        raise SlacError(f"frame of {len(data)} bytes")
    (ethertype,) = struct.unpack_from(">H", data, 12)
    if ethertype != ETHERTYPE_HOMEPLUG:
        raise SlacError(f"EtherType {ethertype:#06x}")
    mmv, mmtype, _fmi = struct.unpack_from("<BHH", data, 14)
    if mmv != MMV:
        raise SlacError(f"MMV {mmv}")
    return Frame(data[:6], data[6:12], mmtype, data[19:])


def set_key_req(nid: bytes, nmk: bytes, nonce: bytes) -> bytes:
    # KeyType NMK (1), MyNonce, YourNonce 0, PID 4 (HLE protocol), PRN, PMN, CCo cap,
    # NID (7), NewEKS 1, NewKey (16)
    return (b"\x01" + nonce + bytes(4) + b"\x04" + b"\x00\x00" + b"\x00" + b"\x00" + nid
            + b"\x01" + nmk)


def slac_parm_cnf(ev_mac: bytes, run_id: bytes) -> bytes:
    return (BROADCAST + bytes([C_EV_MATCH_MNBC, int(TT_EVSE_MATCH_MNBC_S * 10), 1]) + ev_mac
            + b"\x00\x00" + run_id)


def atten_char_ind(ev_mac: bytes, run_id: bytes, sounds: int, profile: list[int]) -> bytes:
    return (b"\x00\x00" + ev_mac + run_id + bytes(17) + bytes(17) + bytes([sounds])
            + bytes([len(profile)]) + bytes(profile))


def slac_match_cnf(ev_mac: bytes, evse_mac: bytes, run_id: bytes, nid: bytes,
                   nmk: bytes) -> bytes:
    return (b"\x00\x00" + struct.pack("<H", 0x56) + bytes(17) + ev_mac + bytes(17) + evse_mac
            + run_id + bytes(8) + nid + b"\x00" + nmk)


class Stage(enum.Enum):
    SET_KEY = "set key"
    WAIT_PARM = "waiting for CM_SLAC_PARM.REQ"
    SOUNDING = "sounding"
    WAIT_ATTEN_RSP = "waiting for CM_ATTEN_CHAR.RSP"
    WAIT_MATCH = "waiting for CM_SLAC_MATCH.REQ"
    MATCHED = "matched"
    FAILED = "failed"


@dataclass
class Matcher:
    """The EVSE's SLAC machine for one connector: ``start``, then ``on_frame`` and
    ``on_time``, each returning frames to send. ``key`` is this session's (NID, NMK)."""

    evse_mac: bytes
    key: tuple[bytes, bytes] = field(default_factory=lambda: (os.urandom(7), os.urandom(16)))
    stage: Stage = Stage.SET_KEY
    ev_mac: bytes = b""
    run_id: bytes = b""
    reason: str = ""
    _deadline: float = 0.0
    _sounds: int = 0
    _profiles: list[list[int]] = field(default_factory=list)
    _tries: int = 0

    def start(self, now: float) -> list[Frame]:
        self.stage, self._tries = Stage.SET_KEY, 1
        self._deadline = now + TT_MATCH_SEQUENCE_S
        return [self._set_key()]

    def _set_key(self) -> Frame:
        nid, nmk = self.key
        return Frame(BROADCAST, self.evse_mac, CM_SET_KEY | REQ,
                     set_key_req(nid, nmk, os.urandom(4)))

    def on_time(self, now: float) -> list[Frame]:
        if now < self._deadline or self.stage in (Stage.MATCHED, Stage.FAILED):
            return []
        if self.stage is Stage.SET_KEY and self._tries < SET_KEY_RETRIES:
            self._tries += 1
            self._deadline = now + TT_MATCH_SEQUENCE_S
            return [self._set_key()]
        if self.stage is Stage.SOUNDING:
            return self._characterise(now)
        if self.stage is Stage.WAIT_ATTEN_RSP and self._tries < C_EV_MATCH_RETRY + 1:
            self._tries += 1
            return self._characterise(now, again=True)
        return self._fail(f"timeout while {self.stage.value}")

    def _fail(self, reason: str) -> list[Frame]:
        self.stage, self.reason = Stage.FAILED, reason
        return []

    def on_frame(self, frame: Frame, now: float) -> list[Frame]:
        base, kind = frame.mmtype & ~3, frame.mmtype & 3
        p = frame.payload
        if self.stage is Stage.SET_KEY and base == CM_SET_KEY and kind == CNF:
            if not p or p[0] != 0:
                return self._fail("modem refused CM_SET_KEY")
            self.stage = Stage.WAIT_PARM
            self._deadline = now + TT_EVSE_SLAC_INIT_S
            return []
        if self.stage is Stage.WAIT_PARM and base == CM_SLAC_PARM and kind == REQ:
            if len(p) < 10:
                return self._fail("short CM_SLAC_PARM.REQ")
            self.ev_mac, self.run_id = frame.src, p[2:10]
            self.stage, self._sounds, self._profiles = Stage.SOUNDING, 0, []
            self._deadline = now + TT_EVSE_MATCH_MNBC_S
            return [Frame(frame.src, self.evse_mac, CM_SLAC_PARM | CNF,
                          slac_parm_cnf(frame.src, self.run_id))]
        if self.stage is Stage.SOUNDING:
            if base == CM_START_ATTEN_CHAR and kind == IND:
                self._deadline = now + TT_EVSE_MATCH_MNBC_S
            elif base == CM_MNBC_SOUND and kind == IND and frame.src == self.ev_mac:
                self._sounds += 1
            elif base == CM_ATTEN_PROFILE and kind == IND and p[:6] == self.ev_mac:
                groups = p[6]
                self._profiles.append(list(p[8:8 + groups]))
                if len(self._profiles) >= C_EV_MATCH_MNBC:
                    return self._characterise(now)
            return []
        if self.stage is Stage.WAIT_ATTEN_RSP and base == CM_ATTEN_CHAR and kind == RSP:
            if len(p) < 51 or p[-1] != 0:
                return self._fail("EV refused the attenuation characterisation")
            self.stage = Stage.WAIT_MATCH
            self._deadline = now + TT_MATCH_SEQUENCE_S
            return []
        if self.stage is Stage.WAIT_MATCH and base == CM_SLAC_MATCH and kind == REQ:
            if frame.src != self.ev_mac or p[-16:-8] != self.run_id:
                return []  # another EV's match (another cable): not ours
            nid, nmk = self.key
            self.stage = Stage.MATCHED
            return [Frame(self.ev_mac, self.evse_mac, CM_SLAC_MATCH | CNF,
                          slac_match_cnf(self.ev_mac, self.evse_mac, self.run_id, nid, nmk))]
        return []

    def _characterise(self, now: float, again: bool = False) -> list[Frame]:
        if not self._profiles:
            return self._fail("no sounds from the EV")
        if not again:
            self._tries = 1
        groups = min(len(x) for x in self._profiles) or ATTEN_GROUPS
        avg = [round(sum(x[g] for x in self._profiles) / len(self._profiles))
               for g in range(groups)]
        self.stage = Stage.WAIT_ATTEN_RSP
        self._deadline = now + TT_MATCH_RESPONSE_S
        return [Frame(self.ev_mac, self.evse_mac, CM_ATTEN_CHAR | IND,
                      atten_char_ind(self.ev_mac, self.run_id, len(self._profiles), avg))]
