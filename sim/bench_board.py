"""``make bench`` figures of the IO board: board_rtt_ms (host command -> MCU ACK round
trip over the pty, real time), and in virtual time board_c_to_b_open_ms (the vehicle's
pilot change at the board's input to the main contacts open, host frozen) and
board_ovp_trip_ms (the output crossing the over-voltage band to the coil dropping, and
to the contacts open).

The real serial driver and the simulated board (the MCU firmware on simulated pins) on
an ordinary event loop in real time. Each sample is one SET_LOCK / SET_PILOT command from
the moment the driver writes it to the moment its ACK is decoded (the driver's own
``ack_rtt_s``). The board's pass runs when the byte arrives, as the MCU's 1 kHz loop
would within a millisecond; so this measures the pty, both framings and both Python
sides, not a UART at 115200 baud (about 0.9 ms more per 10-byte frame each way).
"""

from __future__ import annotations

import asyncio
import statistics

import looptime

from hal.clock import Clock
from hal.io_board_serial import SerialIoBoard
from sim.mcu_board import SimMcuBoard


async def _samples(count: int, gap_s: float) -> list[float]:
    clock = Clock(1.0)
    board = SimMcuBoard((1, 2), clock, hold_time_on_wire=False)
    host = SerialIoBoard((1, 2), board.host_port(), clock)
    await board.start()
    await host.start(clock.now())
    host.ack_rtt_s.clear()
    try:
        for i in range(count):
            if i % 2:
                host.set_lock(1 + i % 4 // 2, bool(i % 3))
            else:
                host.set_pilot(1 + i % 4 // 2, 5.0 if i % 3 else 100.0, False)
            host.poll(clock.now())
            await asyncio.sleep(gap_s)
        return [s * 1000.0 for s in host.ack_rtt_s]
    finally:
        await host.close()
        await board.close()


def board_rtt_ms(count: int = 500, gap_s: float = 0.005) -> dict[str, float]:
    samples = asyncio.run(_samples(count, gap_s))
    ordered = sorted(samples)
    return {"p50": round(statistics.median(ordered), 3),
            "p99": round(ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))], 3),
            "max": round(ordered[-1], 3), "samples": len(ordered)}




async def _board_trips() -> dict[str, float]:
    clock = Clock()
    opened: list[float] = []
    board = SimMcuBoard((1,), clock, on_contactors_open=lambda c, t: opened.append(t))
    host = SerialIoBoard((1,), board.host_port(), clock)
    await board.start()
    await host.start(clock.now())

    async def charging() -> None:
        opened.clear()
        board.port(1).set_pilot("C")
        host.set_pilot(1, 5.0, False)
        host.set_lock(1, True)
        for _ in range(2):  # the board's pilot filter has seen the vehicle
            host.poll(clock.now())
            await clock.sleep(0.1)
        host.test_insulation_monitor(1)  # the board closes for a vehicle only after it
        for _ in range(10):
            host.poll(clock.now())
            await clock.sleep(0.1)
        host.set_contactors(1, True)
        for _ in range(3):
            host.poll(clock.now())
            await clock.sleep(0.1)
        assert board.bays[1].contactors, "the bench board did not close"

    try:
        out: dict[str, float] = {}
        await charging()
        t0 = clock.now()
        board.port(1).set_pilot("B")  # the host is not polled from here on
        await clock.sleep(0.2)
        out["board_c_to_b_open_ms"] = round((opened[0] - t0) * 1000.0, 3)
        board.port(1).set_pilot("A")
        await clock.sleep(0.1)
        await charging()
        host.set_ovp_band(1, 935.0)  # an 850 V truck's band
        board.set_output_voltage(1, 900.0)
        await clock.sleep(0.05)
        t0 = clock.now()
        board.set_output_voltage(1, 940.0)
        coil_off = None
        while clock.now() - t0 < 0.05:
            await clock.sleep(0.0002)
            if coil_off is None and not board.bays[1].coil:
                coil_off = clock.now()
        assert coil_off is not None and opened, "the bench board did not trip"
        out["board_ovp_trip_ms"] = round((coil_off - t0) * 1000.0, 3)
        out["board_ovp_open_ms"] = round((opened[0] - t0) * 1000.0, 3)
        return out
    finally:
        await host.close()
        await board.close()


def board_trips_ms() -> dict[str, float]:
    """C->B opening and the over-voltage trip on the simulated board, virtual time."""
    loop = looptime.new_event_loop(start=0.0, noop_cycles=1)
    try:
        return loop.run_until_complete(_board_trips())
    finally:
        loop.close()


if __name__ == "__main__":
    print(board_rtt_ms(), board_trips_ms())
