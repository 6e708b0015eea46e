"""Simulated InfyPower modules and the real driver on one python-can virtual bus,
stepped in plain seconds (no event loop): the CAN tests' cabinet."""

from __future__ import annotations

import asyncio
import uuid

import can

from hal.power_stage_can import InfyPowerStage
from sim.power_modules import ModuleBank

ADDR = tuple(range(10))


class Cabinet:
    def __init__(self) -> None:
        channel = f"t-{uuid.uuid4().hex[:8]}"
        self.sim_bus = can.Bus(interface="virtual", channel=channel)
        self.bus = can.Bus(interface="virtual", channel=channel)
        kw = dict(rating_w=40_000.0, min_voltage_v=150.0, max_voltage_v=1000.0,
                  max_current_a=100.0)
        self.bank = ModuleBank(self.sim_bus, ADDR, **kw)  # type: ignore[arg-type]
        self.stage = InfyPowerStage(self.bus, ADDR, outputs=(1, 2), **kw)  # type: ignore[arg-type]
        self.now = 0.0
        asyncio.run(self.stage.start(0.0))
        self.run(0.5)

    def run(self, seconds: float, dt: float = 0.1) -> None:
        end = self.now + seconds
        while self.now < end - 1e-9:
            self.now += dt
            self.bank.step(self.now, dt)
            self.stage.poll(self.now)

    def close(self) -> None:
        self.bus.shutdown()
        self.sim_bus.shutdown()
