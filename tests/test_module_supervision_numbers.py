"""charging-facts "DC power modules over CAN": the controller polls telemetry at >= 1 Hz
(modules switch themselves off about 10 s after their last message, so CAN supervision
is not a safety function; a silent module is treated as lost). Counted on the wire, not
read from the driver's constant."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter

import can

from hal.power_stage_can import InfyPowerStage
from sim.power_modules import ModuleBank

ADDR = tuple(range(4))
READ_VI = 0x03  # InfyPower V1.13: read voltage / current
SECONDS = 10.0


def test_every_module_is_polled_at_least_once_a_second() -> None:
    channel = f"t-{uuid.uuid4().hex[:8]}"
    sim_bus = can.Bus(interface="virtual", channel=channel)
    bus = can.Bus(interface="virtual", channel=channel)
    tap = can.Bus(interface="virtual", channel=channel)
    kw = dict(rating_w=40_000.0, min_voltage_v=150.0, max_voltage_v=1000.0,
              max_current_a=100.0)
    bank = ModuleBank(sim_bus, ADDR, **kw)  # type: ignore[arg-type]
    stage = InfyPowerStage(bus, ADDR, outputs=(1,), **kw)  # type: ignore[arg-type]
    try:
        asyncio.run(stage.start(0.0))
        while tap.recv(timeout=0) is not None:
            pass  # what the start-up sent
        now, dt = 0.0, 0.1
        polls: Counter[int] = Counter()
        while now < SECONDS - 1e-9:
            now += dt
            bank.step(now, dt)
            stage.poll(now)
            while (msg := tap.recv(timeout=0)) is not None:
                command = (msg.arbitration_id >> 16) & 0x3F
                if command == READ_VI and (msg.arbitration_id & 0xFF) == 0xF0:
                    polls[(msg.arbitration_id >> 8) & 0xFF] += 1
        assert min(polls[a] for a in ADDR) >= SECONDS * 1.0 - 1  # >= 1 Hz
    finally:
        for b in (bus, sim_bus, tap):
            b.shutdown()
