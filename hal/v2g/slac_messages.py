"""The HomePlug Green PHY management messages of SLAC (ISO 15118-3 Annex A, EtherType
0x88E1): framing and the fixed-layout payloads the EVSE sends or reads. Pure bytes.

Every field is read at its fixed offset (never from the end): frames shorter than the
Ethernet minimum are padded to 60 bytes on the wire, so the tail of a payload may be
padding. A payload too short for what is read from it is a ``SlacError``.
"""

from __future__ import annotations

import hashlib
import os
import struct
from dataclasses import dataclass

ETHERTYPE_HOMEPLUG = 0x88E1
MMV = 0x01  # HomePlug AV 1.1 management message version (header carries FMI)
BROADCAST = b"\xff" * 6
# The local modem's management address on QCA700x (Qualcomm's "local cast"): a frame to
# it is for the modem on this host's interface and never goes onto the powerline.
QCA_LOCAL = bytes.fromhex("00b052000001")
HEADER_LEN = 19  # dst 6, src 6, EtherType 2, MMV 1, MMTYPE 2 (LE), FMI 2
MIN_FRAME = 60  # Ethernet minimum without FCS: shorter frames are padded
MAX_FRAME = 1514  # Ethernet maximum without FCS

CM_SET_KEY = 0x6008
CM_SLAC_PARM = 0x6064
CM_START_ATTEN_CHAR = 0x6068
CM_ATTEN_CHAR = 0x606C
CM_MNBC_SOUND = 0x6074
CM_VALIDATE = 0x6078
CM_SLAC_MATCH = 0x607C
CM_ATTEN_PROFILE = 0x6084
REQ, CNF, IND, RSP = 0, 1, 2, 3

NID_LEN, NMK_LEN, RUN_ID_LEN = 7, 16, 8
ATTEN_GROUPS = 58  # ISO 15118-3 Annex A: the attenuation profile has 58 carrier groups


class SlacError(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Frame:
    dst: bytes
    src: bytes
    mmtype: int  # base | REQ/CNF/IND/RSP
    payload: bytes

    @property
    def base(self) -> int:
        return self.mmtype & ~3

    @property
    def kind(self) -> int:
        return self.mmtype & 3

    def pack(self) -> bytes:
        data = (self.dst + self.src + struct.pack(">H", ETHERTYPE_HOMEPLUG)
                + struct.pack("<BHH", MMV, self.mmtype, 0) + self.payload)
        return data.ljust(MIN_FRAME, b"\x00")


def parse(data: bytes) -> Frame:
    if not HEADER_LEN <= len(data) <= MAX_FRAME:
        raise SlacError(f"frame of {len(data)} bytes")
    (ethertype,) = struct.unpack_from(">H", data, 12)
    if ethertype != ETHERTYPE_HOMEPLUG:
        raise SlacError(f"EtherType {ethertype:#06x}")
    mmv, mmtype, _fmi = struct.unpack_from("<BHH", data, 14)
    if mmv != MMV:
        raise SlacError(f"MMV {mmv}")
    return Frame(data[:6], data[6:12], mmtype, data[HEADER_LEN:])


def field(payload: bytes, start: int, length: int, what: str) -> bytes:
    if len(payload) < start + length:
        raise SlacError(f"{what}: payload of {len(payload)} bytes")
    return payload[start:start + length]


def nid_from_nmk(nmk: bytes, security_level: int = 0) -> bytes:
    """HomePlug AV: the NID is the NMK hashed with SHA-256 and the digest rehashed 4
    times (no salt); its first 7 bytes, the last one's high nibble shifted down and the
    security level (0: simple connect) in bits 4-5, so the top two bits stay 0."""
    digest = hashlib.sha256(nmk).digest()
    for _ in range(4):
        digest = hashlib.sha256(digest).digest()
    last = (digest[NID_LEN - 1] >> 4) | (security_level << 4)
    return digest[:NID_LEN - 1] + bytes([last])


def new_key() -> tuple[bytes, bytes]:
    """(NID, NMK) for one session: a random NMK and the NID derived from it."""
    nmk = os.urandom(NMK_LEN)
    return nid_from_nmk(nmk), nmk


# --- what the EVSE sends ----------------------------------------------------------------

def set_key_req(nid: bytes, nmk: bytes, nonce: bytes) -> bytes:
    # KeyType NMK (1), MyNonce, YourNonce 0, PID 4 (HLE protocol), PRN 0, PMN 0, CCo
    # capability 0, NID (7), NewEKS 1 (NMK), NewKey (16)
    return (b"\x01" + nonce + bytes(4) + b"\x04" + b"\x00\x00" + b"\x00" + b"\x00" + nid
            + b"\x01" + nmk)


def slac_parm_cnf(ev_mac: bytes, run_id: bytes, sounds: int, timeout_100ms: int) -> bytes:
    # M-SOUND_TARGET broadcast, NUM_SOUNDS, Time_Out (x 100 ms), RESP_TYPE 1 (other GP
    # station), FORWARDING_STA (the EV), APPLICATION_TYPE 0, SECURITY_TYPE 0, RunID
    return (BROADCAST + bytes([sounds, timeout_100ms, 1]) + ev_mac + b"\x00\x00" + run_id)


def atten_char_ind(ev_mac: bytes, run_id: bytes, sounds: int, profile: list[int]) -> bytes:
    return (b"\x00\x00" + ev_mac + run_id + bytes(17) + bytes(17) + bytes([sounds])
            + bytes([len(profile)]) + bytes(profile))


def validate_cnf_not_required() -> bytes:
    # SignalType 0 (EV S2 toggles), ToggleNum 0, Result 4: validation not required (one
    # modem per connector: the attenuation decides)
    return b"\x00\x00\x04"


def slac_match_cnf(ev_mac: bytes, evse_mac: bytes, run_id: bytes, nid: bytes,
                   nmk: bytes) -> bytes:
    # APPLICATION_TYPE, SECURITY_TYPE, MVFLength 0x56, PEV ID, PEV MAC, EVSE ID, EVSE MAC,
    # RunID (8 + 8 reserved), NID (7 + 1 reserved), NMK
    return (b"\x00\x00" + struct.pack("<H", 0x56) + bytes(17) + ev_mac + bytes(17) + evse_mac
            + run_id + bytes(8) + nid + b"\x00" + nmk)


# --- where the EVSE reads what it needs (offsets in the payload) -------------------------

PARM_REQ_RUN_ID = 2  # APPLICATION_TYPE, SECURITY_TYPE, RunID
START_ATTEN_RUN_ID = 11  # app, sec, NUM_SOUNDS, Time_Out, RESP_TYPE, FORWARDING_STA, RunID
MNBC_SOUND_RUN_ID = 20  # app, sec, SenderID (17), Cnt, RunID
PROFILE_GROUPS = 6  # PEV MAC, NumGroups, reserved, AAG...
ATTEN_RSP_RUN_ID, ATTEN_RSP_RESULT = 8, 50  # app, sec, SOURCE_ADDRESS, RunID, IDs, Result
MATCH_REQ_EV_MAC, MATCH_REQ_RUN_ID = 21, 50  # app, sec, MVFLength, PEV ID, PEV MAC, ...
MATCH_CNF_NID, MATCH_CNF_NMK = 66, 74  # (what the EV reads: sim/slac_ev.py)
SET_KEY_NID, SET_KEY_NMK = 14, 22  # (what the modem reads: sim/slac_ev.py)
