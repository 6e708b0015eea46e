"""The host-MCU framing (hal/mcu/frame.py): COBS, CRC-16/CCITT-FALSE, stream decoding."""

from __future__ import annotations

from hypothesis import example, given
from hypothesis import strategies as st

from hal.mcu import frame

bodies = st.binary(max_size=frame.MAX_BODY)
messages = st.tuples(st.integers(0, 255), st.integers(0, 255), bodies)


def test_crc_check_value() -> None:
    assert frame.crc16(b"123456789") == 0x29B1  # the catalogue check for CCITT-FALSE


def test_cobs_known_vectors() -> None:
    assert frame.cobs_encode(b"") == b"\x01"
    assert frame.cobs_encode(b"\x00") == b"\x01\x01"
    assert frame.cobs_encode(b"\x11\x22\x00\x33") == b"\x03\x11\x22\x02\x33"
    run = bytes(range(1, 255))  # 254 non-zero bytes: one full block
    assert frame.cobs_encode(run) == b"\xff" + run + b"\x01"
    assert frame.cobs_decode(b"\xff" + run + b"\x01") == run


@given(st.binary(max_size=600))
def test_cobs_round_trip_and_no_zero(data: bytes) -> None:
    encoded = frame.cobs_encode(data)
    assert 0 not in encoded
    assert frame.cobs_decode(encoded) == data


@given(st.lists(messages, max_size=8))
def test_any_frames_round_trip(msgs: list[tuple[int, int, bytes]]) -> None:
    wire = b"".join(frame.encode(*m) for m in msgs)
    decoder = frame.Decoder()
    assert decoder.feed(wire) == msgs
    assert decoder.dropped == 0


@given(st.lists(messages, min_size=1, max_size=4), st.integers(1, 7))
def test_split_anywhere(msgs: list[tuple[int, int, bytes]], chunk: int) -> None:
    wire = b"".join(frame.encode(*m) for m in msgs)
    decoder = frame.Decoder()
    got = []
    for i in range(0, len(wire), chunk):
        got.extend(decoder.feed(wire[i:i + chunk]))
    assert got == msgs


@given(st.binary(max_size=400), messages)
def test_garbage_never_crashes_and_next_frame_is_read(garbage: bytes,
                                                       msg: tuple[int, int, bytes]) -> None:
    decoder = frame.Decoder()
    decoder.feed(garbage)  # whatever it makes of it, it must not raise
    assert decoder.feed(frame.encode(*msg)) == [msg]


def _code_positions(encoded: bytes) -> set[int]:
    """Where the COBS code bytes sit in one encoded frame (without delimiters)."""
    positions, i = set(), 0
    while i < len(encoded):
        positions.add(i)
        i += encoded[i]
    return positions


@given(messages, st.integers(0, 10_000), st.integers(1, 255))
@example(msg=(0, 128, b""), where=0, flip=128)  # once turned into "no corruption at all"
def test_corrupted_data_byte_is_always_dropped(msg: tuple[int, int, bytes], where: int,
                                               flip: int) -> None:
    wire = bytearray(frame.encode(*msg))
    data = sorted(set(range(1, len(wire) - 1)) - {1 + p for p in _code_positions(
        bytes(wire[1:-1]))})
    i = data[where % len(data)]
    corrupted = wire[i] ^ flip  # never equal to wire[i]: flip is not 0
    if corrupted == 0:  # a new delimiter is the other case (below): pick another wrong value
        corrupted = 0x01 if wire[i] == 0xFF else 0xFF
    wire[i] = corrupted
    decoder = frame.Decoder()
    # CRC-16 detects every error burst of up to 16 bits: always, not just likely.
    assert decoder.feed(bytes(wire)) == [] and decoder.dropped == 1


@given(messages, st.integers(0, 10_000))
def test_frame_cut_short_is_dropped(msg: tuple[int, int, bytes], cut: int) -> None:
    wire = frame.encode(*msg)
    end = 2 + cut % (len(wire) - 3)  # a delimiter appears early (a code byte became 00)
    decoder = frame.Decoder()
    assert decoder.feed(wire[:end] + b"\x00") == []  # the length byte does not match


def test_oversize_run_is_dropped_then_resyncs() -> None:
    decoder = frame.Decoder()
    assert decoder.feed(b"\x01" * 5000) == []
    assert decoder.feed(b"\x00" + frame.encode(7, frame.HEARTBEAT)) == [(7, frame.HEARTBEAT,
                                                                          b"")]
    assert decoder.dropped == 1


def test_status_round_trip_and_malformed() -> None:
    body = (frame.pack_status(1, "C", 0x13, frame.T_OVER_VOLTAGE, 41.7, 935.4,
                              frame.S_IMD_PASSED)
            + frame.pack_status(2, "F", 0, 0, -5.2, 0.0, frame.S_PILOT_HELD_F))
    assert frame.unpack_status(body) == [
        (1, "C", 0x13, frame.T_OVER_VOLTAGE, 41.7, 935.4, frame.S_IMD_PASSED),
        (2, "F", 0, 0, -5.2, 0.0, frame.S_PILOT_HELD_F)]
    assert frame.unpack_status(body[:-1]) == []
    assert frame.unpack_status(b"\x01Z" + bytes(7)) == []
    assert frame.unpack_status(bytes(body[:8])) == []  # a protocol 3 status (8 bytes)
