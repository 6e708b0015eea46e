"""The simulated cabinet and its trucks, wired to the real controller.

CAN modules answer on a python-can ``virtual`` bus (the real InfyPower driver talks to
them), the IO board is the MCU firmware on simulated pins behind a pty (``sim-serial``,
the real serial driver talks to it) or the in-process stand-in (``inprocess``), trucks
talk over the in-process vehicle channel. Physics advances every ``dt`` of simulated
time; the safety monitor checks the hardware after every step.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field

import can

from firmware.clock import Clock
from firmware.config import ChargerConfig
from firmware.core import events as ev
from firmware.core.transitions import Phase
from firmware.errors import Severity, spec
from firmware.loop import Controller
from hal.io_board import IoBoard
from hal.io_board_serial import SerialIoBoard
from hal.power_stage_can import InfyPowerStage
from sim.io_board import InProcessIoBoard
from sim.mcu_board import SimMcuBoard
from sim.monitor import BaySnapshot, SafetyMonitor
from sim.plant import OutputPlant
from sim.power_modules import ModuleBank
from sim.truck import Truck
from sim.vehicle_channel import VehicleChannel

PHYSICS_DT_S = 0.2  # physics step (simulated seconds)
UNPLUG_LINK_LAG_S = 0.1  # pilot A first, vehicle link gone this much later
WALL_JITTER_S = 0.05  # event-loop stall the IO board link must ride out at --speed N


@dataclass
class FaultRecord:
    code: str
    at_s: float
    safe_state_ms: float | None = None
    pending: bool = False


@dataclass
class SessionRecord:
    connector: int
    truck: str
    start_soc: float
    end_soc: float = 0.0
    energy_kwh: float = 0.0
    duration_s: float = 0.0
    wall_s: float = 0.0
    stop_reason: str | None = None
    fault: str | None = None  # the fault behind stop_reason "Fault"
    max_current_a: float = 0.0
    peak_power_kw: float = 0.0
    faults: list[FaultRecord] = field(default_factory=list)
    started_at: float | None = None
    wall_started: float = 0.0
    battery_gain_kwh: float = 0.0  # stored + modelled losses (for the energy check)
    open: bool = True

    def as_json(self) -> dict[str, object]:
        return {
            "connector": self.connector, "truck": self.truck,
            "start_soc": round(self.start_soc, 2), "end_soc": round(self.end_soc, 2),
            "energy_kwh": round(self.energy_kwh, 3), "duration_s": round(self.duration_s, 1),
            "wall_s": round(self.wall_s, 3), "stop_reason": self.stop_reason,
            "fault": self.fault,
            "max_current_a": round(self.max_current_a, 1),
            "peak_power_kw": round(self.peak_power_kw, 1),
            "battery_gain_kwh": round(self.battery_gain_kwh, 3),
            "faults": [{"code": f.code, "at_s": round(f.at_s, 3),
                        "safe_state_ms": None if f.safe_state_ms is None
                        else round(f.safe_state_ms, 1)} for f in self.faults],
        }


@dataclass
class Bay:
    evse_id: int
    plant: OutputPlant
    truck: Truck | None = None
    truck_task: asyncio.Task[str] | None = None
    record: SessionRecord | None = None


class SimWorld:
    def __init__(self, config: ChargerConfig, clock: Clock) -> None:
        self.config = config
        self.clock = clock
        stage = config.power_stage
        channel = f"sim-{uuid.uuid4().hex[:8]}"  # one private virtual bus per world
        self.sim_bus = can.Bus(interface="virtual", channel=channel)
        self.ctrl_bus = can.Bus(interface="virtual", channel=channel)
        self.bank = ModuleBank(self.sim_bus, stage.module_addresses,
                               rating_w=stage.module_rating_kw * 1000,
                               min_voltage_v=stage.module_min_voltage_v,
                               max_voltage_v=stage.module_max_voltage_v,
                               max_current_a=stage.module_max_current_a)
        self.power = InfyPowerStage(self.ctrl_bus, stage.module_addresses,
                                    outputs=stage.outputs,
                                    rating_w=stage.module_rating_kw * 1000,
                                    min_voltage_v=stage.module_min_voltage_v,
                                    max_voltage_v=stage.module_max_voltage_v,
                                    max_current_a=stage.module_max_current_a)
        evse_ids = tuple(c.evse_id for c in config.connectors)
        board = config.io_board
        # self.io is the board's world side (pins, physics); driver is what the controller uses.
        self.io: InProcessIoBoard | SimMcuBoard
        driver: IoBoard
        if board.driver == "sim-serial":
            self.io = SimMcuBoard(evse_ids, clock, on_contactors_open=self._contactors_opened)
            # At --speed N the pty's latency and the loop's stalls are wall time, N times
            # longer in simulated time: the heartbeat rule keeps meaning "host silent" only
            # if its timeout covers WALL_JITTER_S of wall time (virtual time: unchanged).
            timeout_ms = min(65535, max(board.heartbeat_timeout_ms,
                                        round(WALL_JITTER_S * clock.speed * 1000)))
            driver = SerialIoBoard(evse_ids, self.io.host_port(board.baudrate), clock,
                                   board.baudrate, timeout_ms)
        else:
            self.io = driver = InProcessIoBoard(evse_ids)
        self.driver = driver
        self.controller = Controller(config, clock, self.power, driver,
                                     observers=[self._observe])
        self.bays = {c.evse_id: Bay(c.evse_id, OutputPlant(c.output))
                     for c in config.connectors}
        self.cable_max_a = {c.evse_id: c.cable_max_current_a for c in config.connectors}
        self.monitor = SafetyMonitor()
        self.sessions: list[SessionRecord] = []
        self._physics: asyncio.Task[None] | None = None

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        self._physics = asyncio.create_task(self._run_physics(), name="physics")
        if isinstance(self.io, SimMcuBoard):
            await self.io.start()
        await self.controller.start()

    async def close(self) -> None:
        for bay in self.bays.values():
            if bay.truck_task is not None and not bay.truck_task.done():
                bay.truck_task.cancel()
        await self.controller.stop()
        if isinstance(self.io, SimMcuBoard):
            await self.io.close()
        if self._physics is not None:
            self._physics.cancel()
            await asyncio.gather(self._physics, return_exceptions=True)
        self.sim_bus.shutdown()
        self.ctrl_bus.shutdown()

    # --- what a scenario does --------------------------------------------------------------

    def plug(self, evse_id: int, preset: str, soc: float, target: float = 100.0) -> Truck:
        bay = self.bays[evse_id]
        channel = VehicleChannel(f"bay{evse_id}")
        truck = Truck.from_preset(preset, soc, channel, self.io.port(evse_id),
                                  target_soc=target)
        bay.truck = truck
        bay.record = SessionRecord(evse_id, preset, soc, wall_started=time.perf_counter())
        self.sessions.append(bay.record)
        self.controller.attach_vehicle(evse_id, channel.charger_end)
        bay.truck_task = asyncio.create_task(truck.run(self.clock), name=f"truck-{evse_id}")
        return truck

    def unplug(self, evse_id: int) -> None:
        bay = self.bays[evse_id]
        if bay.truck is not None and isinstance(self.io, SimMcuBoard):
            # The pilot sees the plug go at once; the vehicle link notices only later (the
            # PLC modem's timeout), so the board's report reaches the controller first.
            # (The truck leaves at once, so a truck plugged straight back in keeps its pilot.)
            bay.truck.unplug(close_link=False)
            asyncio.get_running_loop().call_later(UNPLUG_LINK_LAG_S / self.clock.speed,
                                                  bay.truck.channel.close, "unplugged")
        elif bay.truck is not None:
            bay.truck.unplug()
        if bay.record is not None and bay.record.started_at is None:
            self._close_record(bay)  # never authorized: no session will end it

    def inject(self, evse_id: int, kind: str, args: tuple[str, ...], active: bool) -> None:
        now = self.clock.now()
        if kind in ("module_lost", "module_fault", "derate"):
            address = int(args[0]) if args else self.config.power_stage.module_addresses[0]
            if kind == "module_lost":
                (self.bank.fail if active else self.bank.recover)(address)
            elif kind == "module_fault":
                self.bank.set_fault(address, "fault" if active else None)
            else:
                self.bank.set_derating(address, float(args[1]) if active and len(args) > 1
                                       else 0.5 if active else 1.0)
            return
        self.io.inject(evse_id, kind, active)
        if active:
            code = {"estop": "emergency_stop", "isolation": "isolation_fault",
                    "welded": "welded_contactor", "lock_jam": "lock_failure",
                    "pilot_short": "pilot_fault", "diode": "diode_fault"}[kind]
            self._note_fault(evse_id, code, now, injected=True)

    # --- observation -----------------------------------------------------------------------

    def _observe(self, evse_id: int, cmd: ev.Command, now: float) -> None:
        bay = self.bays[evse_id]
        record = bay.record
        match cmd:
            case ev.SessionStarted(_, _, at):
                if record is not None and record.started_at is None:
                    record.started_at = at
            case ev.SessionEnded(reason, at, energy_wh, fault):
                if record is not None and record.open:
                    record.stop_reason = reason.value
                    record.fault = fault.value if fault is not None else None
                    record.energy_kwh = energy_wh / 1000.0
                    record.duration_s = at - (record.started_at or at)
                    self._close_record(bay)
            case ev.FaultReported(code, at):
                self._note_fault(evse_id, code, at, injected=False)

    def _note_fault(self, evse_id: int, code: str, at: float, injected: bool) -> None:
        record = self.bays[evse_id].record
        if record is None or not record.open:
            return
        for f in record.faults:
            if f.code == code:
                return  # the controller's report of a fault we injected: keep the earlier time
        # A safe state is owed only for faults that shut down; warnings keep charging.
        closed = self.io.bays[evse_id].contactors and spec(code).severity is not Severity.WARNING
        # safe_state_ms stays None when the contactors were already open at the fault.
        record.faults.append(FaultRecord(code, at, None, pending=closed))

    def _contactors_opened(self, evse_id: int, at: float) -> None:
        """The simulated board's contacts just opened: the exact end of a fault's way to
        the safe state."""
        record = self.bays[evse_id].record
        if record is None:
            return
        for f in record.faults:
            if f.pending:
                f.pending = False
                f.safe_state_ms = (at - f.at_s) * 1000.0

    def _close_record(self, bay: Bay) -> None:
        record = bay.record
        if record is None or not record.open:
            return
        record.open = False
        if bay.truck is not None:
            battery = bay.truck.battery
            record.end_soc = battery.soc_percent
            record.battery_gain_kwh = (battery.stored_wh + battery.loss_wh) / 1000.0
        record.wall_s = time.perf_counter() - record.wall_started
        status = self.controller.status(bay.evse_id)
        if record.stop_reason is None:
            record.stop_reason = status.stop_reason.value if status.stop_reason else None
            record.fault = status.stop_fault.value if status.stop_fault else None
            record.energy_kwh = status.energy_wh / 1000.0

    # --- physics -------------------------------------------------------------------------

    async def _run_physics(self) -> None:
        next_at = self.clock.now()
        while True:
            self.step(PHYSICS_DT_S)
            next_at += PHYSICS_DT_S
            await self.clock.sleep_until(next_at)

    def step(self, dt: float) -> None:
        now = self.clock.now()
        self.bank.step(now, dt)
        modules = list(self.bank.modules)
        for evse_id, bay in self.bays.items():
            board = self.io.bays[evse_id]
            truck = bay.truck
            battery = truck.battery if truck is not None and truck.contactor_closed else None
            bay.plant.step(modules, board.contactors, battery, dt)
            self._account(bay, now)
            session = self.controller.connectors[evse_id].session
            limit = self.cable_max_a[evse_id]
            if truck is not None:
                b = truck.battery
                limit = min(limit, b.max_charge_current_a(),
                            b.max_power_w / max(b.terminal_voltage(0.0), 1.0) * 1.05)
            self.monitor.check(now, BaySnapshot(
                connector=evse_id, plugged=board.vehicle_state != "A",
                lock_locked=board.lock, contactors_closed=board.contactors,
                contactor_welded=board.welded, cable_check_passed=session.cable_check_passed,
                faulted=session.phase is Phase.FAULTED, voltage_v=bay.plant.voltage_v,
                current_a=bay.plant.current_a, limit_a=limit))

    def _account(self, bay: Bay, now: float) -> None:
        record = bay.record
        if record is None:
            return
        contactors = self.io.bays[bay.evse_id].contactors
        for f in record.faults:  # also after the session record closed
            # (the pty board reports the exact instant itself: _contactors_opened)
            if f.pending and not contactors and isinstance(self.io, InProcessIoBoard):
                f.pending = False
                f.safe_state_ms = (now - f.at_s) * 1000.0
        if record.open:
            plant = bay.plant
            record.max_current_a = max(record.max_current_a, plant.current_a)
            record.peak_power_kw = max(record.peak_power_kw,
                                       plant.current_a * plant.voltage_v / 1000.0)
