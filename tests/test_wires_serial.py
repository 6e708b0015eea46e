"""Bad input on the serial wire, host side (issue 16): a board that answers well-formed
frames with nonsense. The receive path alone (no port opened): what it reports stays
physical, what it drops is counted, a broken temperature sensor stops safely."""

from __future__ import annotations

import asyncio
from typing import Any

from firmware.core import events as ev
from firmware.errors import ErrorCode
from firmware.inputs import CONNECTOR_COOLED_C, OVER_TEMPERATURE_C, input_events
from hal.clock import Clock
from hal.io_board_serial import SerialIoBoard
from hal.mcu import frame


def board() -> SerialIoBoard:
    return SerialIoBoard((1, 2), "unused", Clock(1.0))  # never started: no port opened


def on_a_loop(body: Any) -> None:
    """The driver makes its asyncio events on construction: build it on a loop."""
    async def run() -> None:
        body()
    asyncio.run(run())


def test_a_temperature_no_sensor_can_read_stops_safely_then_clears() -> None:
    on_a_loop(_temperature)


def _temperature() -> None:
    b = board()
    b._receive(1, frame.TELEMETRY, frame.pack_status(1, "C", 0, 0, 35.0, 0.0))
    sane = b.inputs(1)
    for nonsense in (-3000.0, 3000.0, -51.0):
        b._receive(2, frame.TELEMETRY, frame.pack_status(1, "C", 0, 0, nonsense, 0.0))
        assert b.inputs(1).temperature_c >= OVER_TEMPERATURE_C  # fail safe: too hot
        events = input_events(sane, b.inputs(1))
        assert ev.FaultRaised(ErrorCode.OVER_TEMPERATURE) in events
    assert b.stats.implausible == 3
    hot = b.inputs(1)
    b._receive(3, frame.TELEMETRY, frame.pack_status(1, "C", 0, 0, 40.0, 0.0))
    assert b.inputs(1).temperature_c == 40.0 < CONNECTOR_COOLED_C
    assert ev.FaultCleared(ErrorCode.OVER_TEMPERATURE) in input_events(hot, b.inputs(1))


def test_unknown_connectors_and_malformed_status_are_dropped_and_counted() -> None:
    on_a_loop(_unknown)


def _unknown() -> None:
    b = board()
    b._receive(1, frame.TELEMETRY, frame.pack_status(1, "B", 0, 0, 30.0, 0.0))
    before = b.inputs(1)
    dropped = b.stats.frames_dropped
    b._receive(2, frame.TELEMETRY, frame.pack_status(9, "C", 0xFF, 0, 30.0, 0.0))  # connector 9
    b._receive(3, frame.TELEMETRY, b"\x01Z\x00\x00\x01\x2c\x00\x00")  # pilot letter Z
    b._receive(4, frame.TELEMETRY, b"\x01C\x00")  # cut short
    assert b.stats.frames_dropped == dropped + 3
    assert b.inputs(1) == before
    assert 9 not in b._status
