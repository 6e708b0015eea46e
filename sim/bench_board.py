"""``make bench`` figure board_rtt_ms: host command -> MCU ACK round trip over the pty.

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


if __name__ == "__main__":
    print(board_rtt_ms())
