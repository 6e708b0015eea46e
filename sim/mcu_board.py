"""The simulated IO board: the real MCU firmware (hal/mcu/board.py) on simulated pins,
talking to the host driver over a real pseudo-terminal.

The world side is what the in-process stand-in offered: ``port(connector)`` for the
truck's pilot resistors, ``inject(connector, fault, active)``, and ``bays[connector]``
with the physical state (contacts really closed, lock switch, vehicle state).

Timing in simulated time, cheap in virtual time: the firmware's main-loop pass runs when
a byte arrives, when an input changes, or at the firmware's own next deadline (telemetry,
heartbeat timeout, pilot debounce, lock travel), never at 1 kHz. The e-stop is a pin
interrupt, so it acts at the instant of the injection, not at the next pass.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import sys
import time
import tty
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import Any

import serial

from hal.clock import Clock
from sim.mcu_machine import SimMachine, SimTime, SimUART

FIRMWARE_DIR = Path(__file__).resolve().parent.parent / "hal" / "mcu"
# Mechanics of the simulated hardware. The drop-out time is that of a fast HV DC
# contactor with an economiser; slower parts take 10-15 ms and then the 10 ms e-stop
# figure is the coil's, not the contacts'.
CONTACTOR_DROPOUT_S = 0.004
CONTACTOR_PICKUP_S = 0.020
LOCK_TRAVEL_S = 0.150
WATCHDOG_S = 0.100  # hal/mcu/main.py WATCHDOG_MS
TEMPERATURE_C = 35.0
CP_LEVEL_V = {"A": 12.0, "B": 9.0, "C": 6.0, "D": 3.0}  # IEC 61851-1 Annex A


@dataclass
class PhysicalBay:
    """What is physically there, as the monitor and the world read it."""

    vehicle_state: str = "A"  # the vehicle's resistors: A (none), B, C, D
    contactors: bool = False  # main contacts, not the coil
    lock: bool = False  # lock position (the switch reads it)
    welded: bool = False
    lock_jammed: bool = False
    pilot_short: bool = False  # CP shorted to PE: state E
    diode_fault: bool = False  # vehicle's pilot diode shorted
    isolation_fault: bool = False  # injected at the IMD's alarm input
    imd_alarm: bool = False  # the plant's insulation monitor alarms
    pe_open: bool = False  # the cable's PE broken: CP and PP lose their return path
    estop: bool = False
    temperature_c: float = TEMPERATURE_C
    output_v: float = 0.0  # what the board's HV sense sees (the plant sets it)
    coil: bool = False
    lock_drive: int = 0
    pwm_duty_u16: int = 0
    refused: Callable[[], int] = field(default=lambda: 0, repr=False)

    @property
    def refused_closes(self) -> int:
        return self.refused()


def _refused_closes(conn: Any) -> int:
    return int(conn.refused_closes)


def load_firmware(machine: SimMachine, time_module: SimTime) -> ModuleType:
    """A private copy of the firmware module bound to this board's simulated hardware."""
    spec = importlib.util.spec_from_file_location(f"mcu_board_{id(machine):x}",
                                                  FIRMWARE_DIR / "board.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    saved = sys.modules.get("machine")
    sys.modules["machine"] = machine  # type: ignore[assignment]
    try:
        spec.loader.exec_module(module)
    finally:
        if saved is None:
            sys.modules.pop("machine", None)
        else:
            sys.modules["machine"] = saved
    module.time = time_module  # type: ignore[attr-defined]
    return module


class SimMcuBoard:
    def __init__(self, connectors: tuple[int, ...], clock: Clock,
                 on_contactors_open: Callable[[int, float], None] | None = None,
                 hold_time_on_wire: bool = True) -> None:
        self.connectors = connectors
        self.hold_time_on_wire = hold_time_on_wire  # for virtual time; off for real-time RTT
        self.clock = clock
        self.on_contactors_open = on_contactors_open
        self.bays = {c: PhysicalBay() for c in connectors}
        self.master, self.slave = os.openpty()
        tty.setraw(self.slave)
        os.set_blocking(self.master, False)
        self.port_name = os.ttyname(self.slave)
        self.machine = SimMachine(self._read_adc, self._on_output)
        self.uart = SimUART(self.master)
        self.firmware: Any = None
        self.board: Any = None
        self._roles: dict[int, tuple[int, str]] = {}
        self._adc: dict[int, tuple[int, str]] = {}
        self._timers: dict[tuple[int, str], asyncio.TimerHandle] = {}
        self._waiter: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self.passes = 0  # main-loop passes run (a cost figure for the simulator)
        self.wire: WirePort | None = None
        self._settle_started: float | None = None
        self.settle_timeouts = 0
        self.halted = False  # the MCU hangs or is held in reset: no pass runs
        self.resets = 0

    # --- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        self.firmware = load_firmware(self.machine, SimTime(self.clock))
        pins = self.firmware.PINS
        for c in self.connectors:
            for role, number in pins[c].items():
                (self._adc if role in ("cp_high", "cp_low", "temp", "hv") else self._roles)[
                    number] = (c, role)
            # Inputs as wired before power-up (see board.py for each polarity).
            self.machine.levels.update({pins[c]["pp"]: 1, pins[c]["mirror"]: 0,
                                        pins[c]["lock_sw"]: 1, pins[c]["imd"]: 0})
        self.machine.levels[self.firmware.ESTOP_PIN] = 0
        self.board = self.firmware.Board(self.uart, self.connectors)
        for c in self.connectors:
            conn = self.board.connectors[c]
            self.bays[c].refused = partial(_refused_closes, conn)
        loop = asyncio.get_running_loop()
        loop.add_reader(self.master, self._readable)
        self._task = asyncio.create_task(self._run(), name="mcu-board")

    def host_port(self, baudrate: int = 115200) -> WirePort:
        """The host's end of the pty, opened as the driver would open /dev/ttyACM0, and
        counted so that simulated time holds still while bytes are on the wire."""
        self.wire = WirePort(self, serial.Serial(self.port_name, baudrate, timeout=0,
                                                 write_timeout=0))
        return self.wire

    def hold_time(self) -> None:
        """Bytes went onto the wire. A pty hands them over in a kernel worker a few
        microseconds later; until they are read, keep the loop busy so virtual time
        (looptime) does not jump past their arrival."""
        if self._settle_started is None and self.wire is not None and self.hold_time_on_wire:
            self._settle_started = time.perf_counter()
            asyncio.get_running_loop().call_soon(self._settle)

    def _in_flight(self) -> int:
        wire = self.wire
        if wire is None:
            return 0
        return (wire.tx - self.uart.rx_bytes) + (self.uart.tx_bytes - wire.rx)

    def _settle(self) -> None:
        started = self._settle_started
        if started is None or self._in_flight() <= 0:
            self._settle_started = None
            return
        if time.perf_counter() - started > 0.5:  # bytes lost (a full pty): move on
            self.settle_timeouts += 1
            if self.wire is not None:
                self.wire.tx, self.wire.rx = self.uart.rx_bytes, self.uart.tx_bytes
            self._settle_started = None
            return
        asyncio.get_running_loop().call_soon(self._settle)  # a ready handle: time holds

    async def close(self) -> None:
        self._settle_started = None
        if self.wire is not None:
            self.wire.close()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            asyncio.get_running_loop().remove_reader(self.master)
        for timer in self._timers.values():
            timer.cancel()
        for fd in (self.master, self.slave):
            try:
                os.close(fd)
            except OSError:
                pass

    def _readable(self) -> None:
        if self.uart.receive():
            self.wake()

    def wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            sent = self.uart.tx_bytes
            if self.halted:
                self.uart.fifo.clear()  # nobody reads the UART
            else:
                self.board.step()
                self.passes += 1
            if self.uart.tx_bytes != sent:
                self.hold_time()
            # The MCU's pass runs every millisecond: a deadline is met by the pass after it.
            wait_ms = max(1, self.board.next_deadline_ms() - self.board.now_ms + 1)
            self._waiter = loop.create_future()
            timer = self.clock.call_later(wait_ms / 1000.0, self.wake)
            await self._waiter
            timer.cancel()

    # --- the physics behind the pins -----------------------------------------------------

    def _read_adc(self, channel: int) -> int:
        c, role = self._adc[channel]
        bay = self.bays[c]
        if role == "temp":
            volts = bay.temperature_c / 100.0 + 0.5
            return int(volts / 3.3 * 65535)
        if role == "hv":
            return round(bay.output_v / float(self.firmware.HV_FULL_SCALE_V) * 65535)
        high, low = self._cp_levels(bay)
        volts = high if role == "cp_high" else low
        return int((volts + 15.0) / 30.0 * 65535)

    @staticmethod
    def _cp_levels(bay: PhysicalBay) -> tuple[float, float]:
        """The pilot's two peak levels: what the board drives loaded by the vehicle."""
        if bay.pilot_short:
            return 0.0, 0.0
        if bay.pe_open and bay.pwm_duty_u16 != 0:
            return 12.0, -12.0  # no return through PE: the board's source unloaded
        if bay.pwm_duty_u16 == 0:
            return -12.0, -12.0  # state F driven by the board
        high = CP_LEVEL_V[bay.vehicle_state]
        if bay.pwm_duty_u16 >= 65535:
            return high, high  # constant level, no negative half
        return high, (-high if bay.diode_fault else -12.0)

    def _on_output(self, pin: int, level: int) -> None:
        owner = self._roles.get(pin)
        if owner is None:
            return
        c, role = owner
        bay = self.bays[c]
        if role == "coil":
            bay.coil = bool(level)
            self._schedule(c, "contacts", CONTACTOR_PICKUP_S if level
                           else CONTACTOR_DROPOUT_S, self._contacts_follow)
        elif role in ("lock_a", "lock_b"):
            pins = self.firmware.PINS[c]
            levels = self.machine.levels
            bay.lock_drive = levels.get(pins["lock_a"], 0) - levels.get(pins["lock_b"], 0)
            self._schedule(c, "lock", LOCK_TRAVEL_S, self._lock_follow)
        elif role == "cp_pwm":
            bay.pwm_duty_u16 = level
            self.wake()

    def _schedule(self, c: int, what: str, delay_s: float,
                  action: Callable[[int], None]) -> None:
        old = self._timers.pop((c, what), None)
        if old is not None:
            old.cancel()
        self._timers[(c, what)] = self.clock.call_later(delay_s, action, c)

    def _contacts_follow(self, c: int) -> None:
        self._timers.pop((c, "contacts"), None)
        bay = self.bays[c]
        if bay.contactors == bay.coil or (bay.welded and bay.contactors):
            return
        bay.contactors = bay.coil
        self._set_input(c, "mirror", 1 if bay.contactors else 0)
        if not bay.contactors and self.on_contactors_open is not None:
            self.on_contactors_open(c, self.clock.now())

    def _watchdog_reset(self) -> None:
        self.resets += 1
        self.board = self.firmware.Board(self.uart, self.connectors)  # outputs to reset state
        for c in self.connectors:
            self.bays[c].refused = partial(_refused_closes, self.board.connectors[c])
        self.wake()

    def _lock_follow(self, c: int) -> None:
        self._timers.pop((c, "lock"), None)
        bay = self.bays[c]
        if bay.lock_drive == 0 or bay.lock_jammed:
            return
        bay.lock = bay.lock_drive > 0
        self._set_input(c, "lock_sw", 0 if bay.lock else 1)

    def _set_input(self, c: int, role: str, level: int) -> None:
        self.machine.set_input(self.firmware.PINS[c][role], level)
        self.wake()

    # --- world side: the truck and the scenario ------------------------------------------

    def set_output_voltage(self, connector: int, volts: float) -> None:
        """The plant's voltage at the board's HV sense. The MCU samples it every pass;
        here a pass runs when it moves across the board's band (or back), or by more than
        1 V, so the over-voltage filter starts at the crossing."""
        bay = self.bays[connector]
        old, bay.output_v = bay.output_v, volts
        limit = self.board.connectors[connector].ovp_limit_v if self.board else 0.0
        if (old > limit) != (volts > limit) or abs(volts - old) > 1.0:
            self.wake()

    def allow_heartbeat_up_to(self, timeout_ms: int) -> None:
        """At --speed N the pty's wall-time latency is N times longer in simulated time;
        only on the simulated board, the firmware's HELLO bound widens to cover it."""
        fw = self.firmware
        fw.HEARTBEAT_MAX_MS = max(fw.HEARTBEAT_MAX_MS, timeout_ms)

    def port(self, connector: int) -> SimPilotPort:
        return SimPilotPort(self, connector)

    def set_vehicle_state(self, connector: int, state: str) -> None:
        bay = self.bays[connector]
        bay.vehicle_state = state
        self._set_pp(connector)

    def _set_pp(self, connector: int) -> None:
        bay = self.bays[connector]  # PP's resistor returns through PE too
        self._set_input(connector, "pp", 1 if bay.vehicle_state == "A" or bay.pe_open else 0)

    def set_imd_alarm(self, connector: int, alarm: bool) -> None:
        """The plant's insulation monitor, wired to the same alarm input as an injected
        isolation fault."""
        bay = self.bays[connector]
        if bay.imd_alarm != alarm:
            bay.imd_alarm = alarm
            self._set_input(connector, "imd", 1 if alarm or bay.isolation_fault else 0)

    def inject(self, connector: int, fault: str, active: bool = True) -> None:
        bay = self.bays[connector]
        match fault:
            case "estop":  # one mushroom button per cabinet
                for b in self.bays.values():
                    b.estop = active
                self.machine.set_input(self.firmware.ESTOP_PIN, 1 if active else 0)
            case "isolation":
                bay.isolation_fault = active
                self._set_input(connector, "imd", 1 if active or bay.imd_alarm else 0)
            case "pe_open":
                bay.pe_open = active
                self._set_pp(connector)
            case "welded":
                bay.welded = active
                if not active:
                    self._schedule(connector, "contacts", CONTACTOR_DROPOUT_S,
                                   self._contacts_follow)
            case "lock_jam":
                bay.lock_jammed = active
            case "board_reset":
                # The MCU hangs: its watchdog (main.py, 100 ms) resets it, every output
                # falls back to its pull-down (coils off, pilot F), and it stays in
                # reset while the fault lasts (a brown-out); cleared, it boots afresh
                # and needs the host's HELLO again.
                if active and not self.halted:
                    self.halted = True
                    self.clock.call_later(WATCHDOG_S, self._watchdog_reset)
                elif not active and self.halted:
                    self.halted = False
            case "pilot_short":
                bay.pilot_short = active
            case "diode":
                bay.diode_fault = active
            case _:
                raise ValueError(f"the simulated IO board cannot inject {fault!r}")
        self.wake()


@dataclass
class SimPilotPort:
    board: SimMcuBoard
    connector: int

    def set_pilot(self, state: str) -> None:
        self.board.set_vehicle_state(self.connector, state)

    def duty_percent(self) -> float:
        return self.board.bays[self.connector].pwm_duty_u16 * 100.0 / 65535


class WirePort:
    """The host end of the pty: a pyserial port that counts what crosses it."""

    def __init__(self, board: SimMcuBoard, port: serial.Serial) -> None:
        self.board = board
        self.serial = port
        self.tx = 0
        self.rx = 0

    def fileno(self) -> int:
        return int(self.serial.fileno())

    @property
    def in_waiting(self) -> int:
        return int(self.serial.in_waiting)

    def read(self, size: int = 1) -> bytes:
        data = bytes(self.serial.read(size))
        self.rx += len(data)
        return data

    def write(self, data: bytes) -> int | None:
        n: int | None = self.serial.write(data)
        self.tx += len(data) if n is None else n
        self.board.hold_time()
        return n

    def close(self) -> None:
        self.serial.close()
