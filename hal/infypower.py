"""InfyPower V1.13-style CAN framing for DC power modules (pure codec, no I/O).

Arbitration ID (29-bit extended), per V1.13 as quoted in charging-facts.md:

    bits 28-26  error code (0 = normal; non-zero in a reply = command rejected)
    bits 25-22  device number: 0x0A single module, 0x0B group
    bits 21-16  command
    bits 15-8   destination address (0xF0 = controller, 0x3F = broadcast)
    bits 7-0    source address

Payloads are 8 bytes, big-endian.

| cmd  | request payload                  | reply payload                             | source |
|------|----------------------------------|-------------------------------------------|--------|
| 0x1C | u32 mV, u32 mA (set V / I limit) | echo of the request                       | V1.13  |
| 0x1A | byte0 0x00 = on, 0x01 = off      | echo                                      | V1.13  |
| 0x03 | zeros                            | f32 V, f32 A                              | V1.13  |
| 0x04 | zeros                            | byte0 group, byte1 temp C + 40 (offset),  | ours   |
|      |                                  | bytes2-4 reserved, bytes5-7 status bits   |        |
| 0x0A | zeros                            | u16 max V, u16 min V, u16 max A x10,      | ours   |
|      |                                  | u16 rated W / 10                          |        |
| 0x16 | byte0 group number (= output)    | echo                                      | ours   |

Rows marked "ours" fix a layout where the public facts name the command but not the bytes.
"""

from __future__ import annotations

import enum
import struct
from dataclasses import dataclass

CONTROLLER = 0xF0
BROADCAST = 0x3F
DEVICE_SINGLE = 0x0A
DEVICE_GROUP = 0x0B


class Cmd(enum.IntEnum):
    READ_OUTPUT = 0x03
    READ_STATUS = 0x04
    READ_CAPABILITY = 0x0A
    SET_GROUP = 0x16
    ON_OFF = 0x1A
    SET_OUTPUT = 0x1C


class Status(enum.IntFlag):
    """Status bits in bytes 5-7 (bit 0 = byte 7 bit 0)."""

    OUTPUT_SHORT = 1 << 0
    MODULE_FAULT = 1 << 1
    OVER_TEMPERATURE = 1 << 2
    OUTPUT_OVER_VOLTAGE = 1 << 3
    INPUT_PHASE_LOSS = 1 << 4
    INPUT_UNDER_VOLTAGE = 1 << 5
    FAN_FAULT = 1 << 6
    MODULE_OFF = 1 << 7
    DERATING = 1 << 8  # power limited (temperature or input)


FAULT_BITS = (Status.OUTPUT_SHORT | Status.MODULE_FAULT | Status.OUTPUT_OVER_VOLTAGE
              | Status.INPUT_PHASE_LOSS | Status.INPUT_UNDER_VOLTAGE | Status.FAN_FAULT)


class FrameError(ValueError):
    """A frame that is not a valid InfyPower frame (wrong length, unknown command...)."""


@dataclass(frozen=True, slots=True)
class Header:
    command: int
    destination: int
    source: int
    device: int = DEVICE_SINGLE
    error: int = 0


def make_id(h: Header) -> int:
    for name, value, bits in (("error", h.error, 3), ("device", h.device, 4),
                              ("command", h.command, 6), ("destination", h.destination, 8),
                              ("source", h.source, 8)):
        if not 0 <= value < (1 << bits):
            raise FrameError(f"{name} {value:#x} does not fit in {bits} bits")
    return (h.error << 26) | (h.device << 22) | (h.command << 16) | (h.destination << 8) \
        | h.source


def parse_id(arbitration_id: int) -> Header:
    if not 0 <= arbitration_id < (1 << 29):
        raise FrameError(f"id {arbitration_id:#x} is not a 29-bit identifier")
    return Header(command=(arbitration_id >> 16) & 0x3F, destination=(arbitration_id >> 8) & 0xFF,
                  source=arbitration_id & 0xFF, device=(arbitration_id >> 22) & 0x0F,
                  error=(arbitration_id >> 26) & 0x07)


# --- payloads ---------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class SetOutput:
    voltage_v: float
    current_a: float


@dataclass(frozen=True, slots=True)
class OnOff:
    on: bool


@dataclass(frozen=True, slots=True)
class SetGroup:
    group: int


@dataclass(frozen=True, slots=True)
class Reading:
    voltage_v: float
    current_a: float


@dataclass(frozen=True, slots=True)
class ModuleStatus:
    group: int
    temperature_c: int
    bits: Status


@dataclass(frozen=True, slots=True)
class ModuleCapability:
    max_voltage_v: float
    min_voltage_v: float
    max_current_a: float
    rated_power_w: float


Payload = SetOutput | OnOff | SetGroup | Reading | ModuleStatus | ModuleCapability | None
_ZERO = bytes(8)


def encode_request(cmd: Cmd, payload: Payload = None) -> bytes:
    match cmd, payload:
        case Cmd.SET_OUTPUT, SetOutput(v, a):
            mv, ma = round(v * 1000), round(a * 1000)
            if not (0 <= mv < 2**32 and 0 <= ma < 2**32):
                raise FrameError(f"setpoint out of range: {v} V, {a} A")
            return struct.pack(">II", mv, ma)
        case Cmd.ON_OFF, OnOff(on):
            return bytes([0x00 if on else 0x01]) + bytes(7)
        case Cmd.SET_GROUP, SetGroup(group):
            if not 0 <= group < 256:
                raise FrameError(f"group {group} out of range")
            return bytes([group]) + bytes(7)
        case (Cmd.READ_OUTPUT | Cmd.READ_STATUS | Cmd.READ_CAPABILITY), None:
            return _ZERO
    raise FrameError(f"no request encoding for {cmd!r} with {payload!r}")


def decode_request(cmd: int, data: bytes) -> Payload:
    _length(data)
    match cmd:
        case Cmd.SET_OUTPUT:
            mv, ma = struct.unpack(">II", data)
            return SetOutput(mv / 1000.0, ma / 1000.0)
        case Cmd.ON_OFF:
            if data[0] not in (0, 1):
                raise FrameError(f"on/off byte {data[0]:#x} is neither 0 nor 1")
            return OnOff(data[0] == 0)
        case Cmd.SET_GROUP:
            return SetGroup(data[0])
        case Cmd.READ_OUTPUT | Cmd.READ_STATUS | Cmd.READ_CAPABILITY:
            return None
    raise FrameError(f"unknown command {cmd:#x}")


def encode_reply(cmd: Cmd, payload: Payload) -> bytes:
    match cmd, payload:
        case Cmd.READ_OUTPUT, Reading(v, a):
            return struct.pack(">ff", v, a)
        case Cmd.READ_STATUS, ModuleStatus(group, temp, bits):
            t = max(0, min(255, temp + 40))
            return bytes([group & 0xFF, t, 0, 0, 0]) + int(bits).to_bytes(3, "big")
        case Cmd.READ_CAPABILITY, ModuleCapability(vmax, vmin, amax, watts):
            return struct.pack(">HHHH", _u16(vmax), _u16(vmin), _u16(amax * 10),
                               _u16(watts / 10))
        case (Cmd.SET_OUTPUT | Cmd.ON_OFF | Cmd.SET_GROUP), _:
            return encode_request(cmd, payload)
    raise FrameError(f"no reply encoding for {cmd!r} with {payload!r}")


def decode_reply(cmd: int, data: bytes) -> Payload:
    _length(data)
    match cmd:
        case Cmd.READ_OUTPUT:
            v, a = struct.unpack(">ff", data)
            if v != v or a != a:  # NaN
                raise FrameError("reading is not a number")
            return Reading(v, a)
        case Cmd.READ_STATUS:
            return ModuleStatus(data[0], data[1] - 40,
                                Status(int.from_bytes(data[5:8], "big") & 0x1FF))
        case Cmd.READ_CAPABILITY:
            vmax, vmin, amax, w10 = struct.unpack(">HHHH", data)
            return ModuleCapability(float(vmax), float(vmin), amax / 10.0, w10 * 10.0)
        case Cmd.SET_OUTPUT | Cmd.ON_OFF | Cmd.SET_GROUP:
            return decode_request(cmd, data)
    raise FrameError(f"unknown command {cmd:#x}")


def _u16(value: float) -> int:
    v = round(value)
    if not 0 <= v < 65536:
        raise FrameError(f"{value} does not fit in 16 bits")
    return v


def _length(data: bytes) -> None:
    if len(data) != 8:
        raise FrameError(f"payload is {len(data)} bytes, expected 8")
