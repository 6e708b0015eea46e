"""PowerStage contract: the DC power modules that feed the cabinet's outputs.

One output feeds one connector. A driver owns a pool of modules and assigns them to
outputs as the controller's allocation says; the controller sets, per output, a mode
and a voltage/current setpoint, and reads telemetry.

Behaviour every driver must keep (the simulator and the tests hold drivers to it):
- ``set_output(output, OFF, ...)`` stops delivery at once: modules of that output are
  commanded off and their setpoint to 0 A. "Off" guarantees no current is *commanded*;
  whether the output voltage has decayed below 60 V is read from telemetry, never assumed.
- CABLE_CHECK and PRECHARGE limit the current to ``TEST_CURRENT_LIMIT_A`` whatever the
  caller asks (IEC 61851-23 cable check: 2 A; ISO 15118-2 PreCharge: 2 A).
- Telemetry of every output is refreshed at least once a second (``poll``). A module that
  does not answer for ``module_timeout_s`` is reported lost and leaves the pool; the
  output's capability shrinks accordingly (derating), and a ``PowerStageFault`` with
  code ``module_lost`` is reported once.
- Capabilities change at run time (thermal derating, lost modules): callers read
  ``capability(output)`` every cycle rather than caching it.
- Communication loss with every module of an output is a fault of that output
  (``PowerStageFault`` code ``comm_lost``); modules switch themselves off after their own
  supervision time, so CAN silence is not a safety function (charging-facts.md).
  The interface itself failing (down, bus-off) is ``comm_lost`` of the whole stage,
  reported once; ``poll`` and ``set_output`` never raise for it. ``link_up`` says when
  it is over.
- Nothing read off the bus is believed beyond physics and the configured module: a
  reading that is not finite or is outside the module's range is dropped and counted; a
  claimed capability is capped at the configured rating; a module that reports a fault
  is switched off before it leaves the pool.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol

TEST_CURRENT_LIMIT_A = 2.0


class Mode(enum.Enum):
    OFF = "off"
    CABLE_CHECK = "cable_check"
    PRECHARGE = "precharge"
    CHARGE = "charge"


@dataclass(frozen=True, slots=True)
class Capability:
    """What an output can deliver right now (sum of its healthy, assigned modules)."""

    max_voltage_v: float
    min_voltage_v: float
    max_current_a: float
    max_power_w: float
    modules: int


@dataclass(frozen=True, slots=True)
class OutputTelemetry:
    output: int
    voltage_v: float
    current_a: float
    at_s: float  # controller clock time of the newest reading that went into it


@dataclass(frozen=True, slots=True)
class PowerStageFault:
    output: int | None  # None: the whole stage
    code: str  # error-catalogue code, e.g. "module_lost", "module_fault", "comm_lost"
    detail: str


class PowerStage(Protocol):
    """Contract for a DC power stage driver. Times are the controller clock's seconds."""

    outputs: tuple[int, ...]

    async def start(self, now: float) -> None:
        """Open the bus, discover modules and read their capabilities."""

    async def close(self) -> None:
        """Command every module off and release the bus."""

    def assign(self, output: int, modules: int) -> None:
        """Give ``output`` that many modules from the pool (0 frees them)."""

    def available_modules(self) -> int:
        """Healthy modules in the pool, assigned or not."""

    @property
    def link_up(self) -> bool:
        """The bus works and at least one module answers (a ``comm_lost`` is over)."""

    def set_output(self, output: int, mode: Mode, voltage_v: float, current_a: float,
                   now: float) -> None:
        """Command an output; the current is split evenly over its active modules."""

    def poll(self, now: float) -> None:
        """Read what arrived, send due telemetry requests, detect lost modules."""

    def telemetry(self, output: int) -> OutputTelemetry:
        """Latest measured output voltage and current."""

    def capability(self, output: int) -> Capability:
        """What the output can deliver with its current modules."""

    def module_capability(self) -> Capability:
        """One healthy module's capability (for the allocation policy)."""

    def take_faults(self) -> list[PowerStageFault]:
        """Faults raised since the last call (each reported once)."""
