"""InfyPower framing: byte-exact frames both ways, and malformed input rejected cleanly."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hal import infypower as ip


def test_id_layout_is_byte_exact() -> None:
    # set output to module 0x05 from the controller: device 0x0A, command 0x1C
    h = ip.Header(ip.Cmd.SET_OUTPUT, 0x05, ip.CONTROLLER)
    assert ip.make_id(h) == (0x0A << 22) | (0x1C << 16) | (0x05 << 8) | 0xF0 == 0x029C05F0
    assert ip.parse_id(0x029C05F0) == h
    group = ip.Header(ip.Cmd.READ_OUTPUT, 2, ip.CONTROLLER, ip.DEVICE_GROUP)
    assert ip.make_id(group) == 0x02C302F0
    rejected = ip.parse_id((3 << 26) | 0x0283F005)
    assert rejected.error == 3 and rejected.source == 0x05


def test_set_output_payload() -> None:
    data = ip.encode_request(ip.Cmd.SET_OUTPUT, ip.SetOutput(750.5, 123.456))
    assert data == bytes.fromhex("000B73A40001E240")  # 750500 mV, 123456 mA
    assert ip.decode_request(ip.Cmd.SET_OUTPUT, data) == ip.SetOutput(750.5, 123.456)


def test_on_off_payload() -> None:
    assert ip.encode_request(ip.Cmd.ON_OFF, ip.OnOff(True)) == bytes(8)
    assert ip.encode_request(ip.Cmd.ON_OFF, ip.OnOff(False)) == b"\x01" + bytes(7)
    with pytest.raises(ip.FrameError):
        ip.decode_request(ip.Cmd.ON_OFF, b"\x07" + bytes(7))


def test_replies() -> None:
    reading = ip.encode_reply(ip.Cmd.READ_OUTPUT, ip.Reading(800.0, 50.0))
    assert reading == struct.pack(">ff", 800.0, 50.0)
    cap = ip.encode_reply(ip.Cmd.READ_CAPABILITY, ip.ModuleCapability(1000, 150, 100, 40000))
    assert cap == bytes.fromhex("03E8009603E80FA0")
    assert ip.decode_reply(ip.Cmd.READ_CAPABILITY, cap) == ip.ModuleCapability(
        1000.0, 150.0, 100.0, 40000.0)
    status = ip.ModuleStatus(2, 65, ip.Status.OVER_TEMPERATURE | ip.Status.DERATING)
    raw = ip.encode_reply(ip.Cmd.READ_STATUS, status)
    assert raw == bytes([2, 105, 0, 0, 0, 0x00, 0x01, 0x04])
    assert ip.decode_reply(ip.Cmd.READ_STATUS, raw) == status


@given(st.floats(0, 4_000_000), st.floats(0, 4_000_000))
def test_setpoint_round_trip(volts: float, amps: float) -> None:
    data = ip.encode_request(ip.Cmd.SET_OUTPUT, ip.SetOutput(volts, amps))
    back = ip.decode_request(ip.Cmd.SET_OUTPUT, data)
    assert isinstance(back, ip.SetOutput)
    assert back.voltage_v == pytest.approx(volts, abs=5e-4)
    assert back.current_a == pytest.approx(amps, abs=5e-4)


@given(st.integers(0, (1 << 29) - 1), st.binary(max_size=12))
def test_random_frames_never_crash(arbitration_id: int, data: bytes) -> None:
    header = ip.parse_id(arbitration_id)
    try:
        ip.decode_reply(header.command, data)
        ip.decode_request(header.command, data)
    except ip.FrameError:
        pass  # the one clean rejection


def test_out_of_range_rejected() -> None:
    with pytest.raises(ip.FrameError):
        ip.encode_request(ip.Cmd.SET_OUTPUT, ip.SetOutput(-1, 0))
    with pytest.raises(ip.FrameError):
        ip.parse_id(1 << 29)
    with pytest.raises(ip.FrameError):
        ip.decode_reply(ip.Cmd.READ_OUTPUT, bytes(7))
