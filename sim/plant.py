"""The electrical plant of one cabinet output: modules -> output node -> contactors ->
cable -> the truck's contactor -> its battery.

One voltage node per output, on the module side of the output contactors (the reading the
controller gets from the modules, and the conservative one for the < 60 V gates). The
modules regulate voltage with a current limit; into a connected battery the current is
what the voltage difference drives through the pack's internal resistance, capped by the
modules' limits. Time constants are working values (approx.), not standard figures.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

MODULE_TAU_S = 0.15  # modules follow a new setpoint in a few hundred ms (approx.)
BLEED_TAU_S = 0.4  # output discharge resistor: 900 V -> < 60 V in about 1.1 s (approx.)


class ModuleView(Protocol):
    group: int | None
    on: bool
    voltage_setpoint_v: float
    measured_voltage_v: float
    measured_current_a: float

    @property
    def current_limit_a(self) -> float: ...


class BatteryView(Protocol):
    def ocv(self) -> float: ...
    def charge(self, current_a: float, dt_s: float) -> None: ...

    @property
    def internal_resistance_ohm(self) -> float: ...


@dataclass
class OutputPlant:
    output: int
    voltage_v: float = 0.0
    current_a: float = 0.0
    energy_wh: float = field(default=0.0)  # what left the output (V * I), for the check

    def step(self, modules: Sequence[ModuleView], contactors_closed: bool,
             battery: BatteryView | None, dt: float) -> None:
        mine = [m for m in modules if m.group == self.output and m.on]
        set_v = max((m.voltage_setpoint_v for m in mine), default=0.0)
        limit_a = sum(max(m.current_limit_a, 0.0) for m in mine)
        follow = 1.0 - math.exp(-dt / MODULE_TAU_S)
        loaded = contactors_closed and battery is not None
        if loaded:
            assert battery is not None
            ocv, r = battery.ocv(), battery.internal_resistance_ohm
            wanted = min(max((set_v - ocv) / r, 0.0), limit_a) if mine else 0.0
            self.current_a += (wanted - self.current_a) * follow
            if not mine:
                self.current_a = 0.0
            self.current_a = min(self.current_a, limit_a) if mine else 0.0
            self.voltage_v = ocv + self.current_a * r
            battery.charge(self.current_a, dt)
        else:
            self.current_a = 0.0
            if mine:
                self.voltage_v += (set_v - self.voltage_v) * follow
            else:
                self.voltage_v *= math.exp(-dt / BLEED_TAU_S)
                if self.voltage_v < 0.5:
                    self.voltage_v = 0.0
        self.energy_wh += self.voltage_v * self.current_a * dt / 3600.0
        share = self.current_a / len(mine) if mine else 0.0
        for m in modules:
            if m.group == self.output:
                m.measured_voltage_v = self.voltage_v
                m.measured_current_a = share if m.on else 0.0
