"""The simulated cabinet, its trucks and its central system: the far end of every wire
of a charger built by the composition root (firmware/charger.py).

The world does not build or wire the charger. It brings up the hardware side and tells
the service where the wires end (``start`` -> config and ``Wires``):
- power modules (sim/power_modules.py) on a private python-can ``virtual`` channel,
  where the real InfyPower driver finds them;
- the IO board: the real MCU firmware on simulated pins behind a pty (sim/mcu_board.py),
  whose host end the real serial driver gets;
- trucks plug in by pilot (the board's pins) and connect to the charger's ``virtual``
  vehicle link by name (hal/vehicle_link_virtual.py), as an EV's SECC connection would;
- the local CSMS (sim/csms) on 127.0.0.1, unless an external one is named.
Then it watches from outside (``attach``): session records for the report, and the
safety monitor, which judges the hardware on the plant's own readings.

Physics advances every ``PHYSICS_DT_S`` of simulated time.

``[simulator]`` section (all optional):
    tokens = ["TOKEN", "TOKEN:GROUP"]   # the local CSMS's customers
    control = "127.0.0.1:7781"          # chargebay run: the control interface (sim/control.py)
    csms = "local"                      # or "external": keep ocpp.csms_url as written
    vehicle_link = "virtual"            # or "wire": the truck's EVCC over TCP on ::1 to the
                                        # real SECC (driver iso15118, EXI codec), sim/evcc.py
    truck_protocols = ["din", "iso2"]   # wire: what the trucks offer (default: all three)
    truck_control_mode = "dynamic"      # wire, -20: the mode trucks choose (default scheduled)
"""

from __future__ import annotations

import asyncio
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import can

from firmware.charger import Charger
from firmware.config import ChargerConfig, ConfigError
from firmware.core import events as ev
from firmware.core.events import StopReason
from firmware.core.transitions import Phase
from firmware.drivers import Wires
from firmware.errors import Severity, spec
from hal.clock import Clock
from hal.vehicle_link_virtual import connect
from sim import evcc as wire
from sim.bay_side import BaySide
from sim.card_reader import SimCardReader
from sim.csms import LocalCsms, Token
from sim.mcu_board import SimMcuBoard
from sim.monitor import BaySnapshot, CableCheckJudge, SafetyMonitor, cable_check_voltage, ovp_band_v
from sim.payment_terminal import SimTerminal
from sim.plant import HEALTHY_INSULATION_OHM, ISOLATION_FAULT_OHM, OutputPlant, earth_limit_v
from sim.power_modules import ModuleBank
from sim.records import FaultRecord, SessionRecord
from sim.truck import Truck

PHYSICS_DT_S = 0.2  # physics step (simulated seconds)
UNPLUG_LINK_LAG_S = 0.1  # pilot A first, vehicle link gone this much later
WALL_JITTER_S = 0.05  # event-loop stall the IO board link must ride out at --speed N
SIMULATOR_KEYS = ("tokens", "control", "csms", "vehicle_link", "truck_protocols",
                  "truck_control_mode")
FAULT_CODES = {"estop": "emergency_stop", "isolation": "isolation_fault",
               "welded": "welded_contactor", "lock_jam": "lock_failure",
               "pilot_short": "pilot_fault", "diode": "diode_fault",
               "cable_insulation": "isolation_fault", "earth_voltage": "isolation_fault",
               "overvoltage": "over_voltage", "board_reset": "io_board_link_lost",
               "sensor_drift": "measurement_implausible"}
# Faults of the plant (sim/plant.py); pe_open is also the board's (CP/PP return via PE).
CABLE_FAULT_OHM = 50e3  # a damaged cable, DC- to PE: below IEC 61851-23's 100 kOhm
EARTH_OFFSET_V = 400.0  # another source lifts the output against PE (approx.)
OVERSHOOT_V = 150.0  # a power stage regulating this far above its setpoint (approx.)
SENSOR_DRIFT_V_PER_S = 5.0  # a module voltage sensor drifting off (approx.)


@dataclass
class Bay:
    evse_id: int
    plant: OutputPlant
    truck: Truck | None = None
    truck_task: asyncio.Task[str] | None = None
    record: SessionRecord | None = None
    cable_check: CableCheckJudge = field(default_factory=CableCheckJudge)


def simulator_section(config: ChargerConfig) -> dict[str, Any]:
    section = dict(config.extra.get("simulator", {}))
    for key in section:
        if key not in SIMULATOR_KEYS:
            raise ConfigError(f"simulator.{key}",
                              f"unknown key; known: {', '.join(SIMULATOR_KEYS)}")
    if section.get("csms", "local") not in ("local", "external"):
        raise ConfigError("simulator.csms", "must be local (the simulator's own CSMS) or "
                          "external (ocpp.csms_url as written)")
    if section.get("vehicle_link", "virtual") not in ("virtual", "wire"):
        raise ConfigError("simulator.vehicle_link", "must be virtual (in-process) or wire "
                          "(EXI over TCP on ::1 to the iso15118 driver)")
    protocols = section.get("truck_protocols", ["iso20_dc", "iso2", "din"])
    if not isinstance(protocols, list) or not protocols or not all(
            p in ("din", "iso2", "iso20_dc") for p in protocols):
        raise ConfigError("simulator.truck_protocols", "must list din, iso2 and/or iso20_dc")
    if section.get("truck_control_mode", "scheduled") not in ("scheduled", "dynamic"):
        raise ConfigError("simulator.truck_control_mode", "must be scheduled or dynamic "
                          "(the ISO 15118-20 control mode the trucks choose)")
    tokens = section.get("tokens", [])
    if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
        raise ConfigError("simulator.tokens", "must be a list of \"TOKEN\" or \"TOKEN:GROUP\"")
    return section


class SimWorld(BaySide):
    """The simulated world; ``chargebay run`` gets it with its control interface
    (sim/control.py ``ControlledWorld``, entry point ``chargebay.simulators: world``),
    the scenario player and the tests use it as it is."""

    @staticmethod
    def check(config: ChargerConfig) -> None:
        simulator_section(config)

    def __init__(self, config: ChargerConfig, clock: Clock,
                 say: Callable[[str], None] | None = None, csms_url: str | None = None,
                 state_dir: str | None = None, csms_boot_status: str = "Accepted") -> None:
        self.config = config
        self.clock = clock
        self.say = say
        self.section = simulator_section(config)
        self.csms_url = csms_url
        self.csms_boot_status = csms_boot_status
        self.state_dir = state_dir
        stage = config.power_stage
        self.channel = f"sim-{uuid.uuid4().hex[:8]}"  # private bus and links per world
        self.sim_bus = can.Bus(interface="virtual", channel=self.channel)
        self.bank = ModuleBank(self.sim_bus, stage.module_addresses,
                               rating_w=stage.module_rating_kw * 1000,
                               min_voltage_v=stage.module_min_voltage_v,
                               max_voltage_v=stage.module_max_voltage_v,
                               max_current_a=stage.module_max_current_a)
        evse_ids = tuple(c.evse_id for c in config.connectors)
        self.bays = {c.evse_id: Bay(c.evse_id, OutputPlant(c.output))
                     for c in config.connectors}
        self.io = SimMcuBoard(evse_ids, clock, on_contactors_open=self._contactors_opened,
                              imds={e: bay.plant.imd for e, bay in self.bays.items()})
        self.cable_max_a = {c.evse_id: c.cable_max_current_a for c in config.connectors}
        self.evse_max_v = {c.evse_id: min(c.cable_max_voltage_v, stage.module_max_voltage_v)
                           for c in config.connectors}
        self.monitor = SafetyMonitor()
        self.sessions: list[SessionRecord] = []
        self.csms: LocalCsms | None = None
        self.charger: Charger | None = None
        self._physics: asyncio.Task[None] | None = None
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._remote_ids = 0
        self.terminal: SimTerminal | None = None  # with a [payment] section
        self.card_reader: SimCardReader | None = None  # with a [card_reader] section
        self._bay_tmp: tempfile.TemporaryDirectory[str] | None = None

    # --- the service's view: the far end of every wire ----------------------------------

    async def start(self) -> tuple[ChargerConfig, Wires]:
        config = self.config
        board = config.io_board
        await self.io.start()
        # At --speed N the pty's latency and the loop's stalls are wall time, N times
        # longer in simulated time: the heartbeat rule keeps meaning "host silent" only
        # if its timeout covers WALL_JITTER_S of wall time (virtual time: unchanged).
        timeout_ms = min(65535, max(board.heartbeat_timeout_ms,
                                    round(WALL_JITTER_S * self.clock.speed * 1000)))
        self.io.allow_heartbeat_up_to(timeout_ms)
        config = replace(
            config,
            power_stage=replace(config.power_stage, can_interface="virtual",
                                can_channel=self.channel),
            io_board=replace(board, port=self.io.port_name, heartbeat_timeout_ms=timeout_ms),
            vehicle_link=replace(config.vehicle_link, driver="virtual", channel=self.channel))
        if self.section.get("vehicle_link") == "wire":
            config = wire.on_loopback(config)
        if "ocpp" in config.extra:
            config = await self._central_system(config)
        config = await self._bay_devices(config)
        self.config = config
        self._physics = asyncio.create_task(self._run_physics(), name="physics")
        return config, Wires(io_board_port=self.io.host_port(board.baudrate))

    async def _central_system(self, config: ChargerConfig) -> ChargerConfig:
        section = dict(config.extra["ocpp"])
        if self.state_dir is not None:
            section["state_dir"] = self.state_dir
        elif "state_dir" not in section:  # a fresh station for every simulated run
            self._tmp = tempfile.TemporaryDirectory(prefix="chargebay-ocpp-")
            section["state_dir"] = self._tmp.name
        if self.csms_url is not None:
            section["csms_url"] = self.csms_url
        elif self.section.get("csms", "local") == "local":  # else: ocpp.csms_url as written
            tokens = {}
            for entry in self.section.get("tokens", []):
                token, _, group = str(entry).partition(":")
                tokens[token] = Token("Accepted", group or None)
            self.csms = LocalCsms(self.clock, tokens)
            self.csms.boot_status = self.csms_boot_status
            await self.csms.up()
            section["csms_url"] = self.csms.url
        return replace(config, extra={**config.extra, "ocpp": section})

    def attach(self, charger: Charger) -> None:
        self.charger = charger
        charger.controller.observers.append(self._observe)

    async def close(self) -> None:
        for bay in self.bays.values():
            if bay.truck_task is not None and not bay.truck_task.done():
                bay.truck_task.cancel()
        tasks = [b.truck_task for b in self.bays.values() if b.truck_task is not None]
        if self._physics is not None:
            self._physics.cancel()
            tasks.append(self._physics)  # type: ignore[arg-type]
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.io.close()
        if self.terminal is not None:
            await self.terminal.close()
        if self.card_reader is not None:
            self.card_reader.close()
        if self._bay_tmp is not None:
            self._bay_tmp.cleanup()
        if self.csms is not None:
            await self.csms.down()
        self.sim_bus.shutdown()
        if self._tmp is not None:
            self._tmp.cleanup()

    # --- read-outs ---------------------------------------------------------------------

    @property
    def controller(self) -> Any:
        assert self.charger is not None, "the charger is not running"
        return self.charger.controller

    @property
    def station(self) -> Any:
        return self.charger.station if self.charger is not None else None

    async def until_online(self, seconds: float = 60.0) -> bool:
        station = self.station
        if station is None:
            return True
        return await self._until(lambda: bool(station.online.is_set()), seconds)

    async def settle(self) -> None:
        """Give the queue a chance to drain before the report (if the CSMS is up)."""
        station = self.station
        if station is None or (self.csms is not None and self.csms._server is None):
            return
        await self._until(lambda: station.online.is_set() and len(station.queue) == 0, 120.0)

    async def _until(self, done: Callable[[], bool], seconds: float) -> bool:
        end = self.clock.now() + seconds
        while not done():
            if self.clock.now() >= end:
                return False
            await self.clock.sleep(0.1)
        return True

    # --- what a driver, a truck and the operator do ---------------------------------------

    def plug(self, evse_id: int, preset: str, soc: float, target: float = 100.0) -> Truck:
        bay = self.bays[evse_id]
        if bay.truck is not None and not bay.truck.unplugged:
            bay.truck.unplug()  # the last truck's plug is out before this one goes in
        link: Any = (wire.channel(self, evse_id) if self.section.get("vehicle_link") == "wire"
                     else connect(f"{self.channel}/{evse_id}"))  # the vehicle's link comes up
        truck = Truck.from_preset(preset, soc, link, self.io.port(evse_id),
                                  target_soc=target)
        bay.truck = truck
        bay.record = SessionRecord(evse_id, preset, soc, wall_started=time.perf_counter())
        self.sessions.append(bay.record)
        bay.truck_task = asyncio.create_task(truck.run(self.clock), name=f"truck-{evse_id}")
        return truck

    def unplug(self, evse_id: int) -> None:
        bay = self.bays[evse_id]
        if bay.truck is not None:
            # The pilot sees the plug go at once; the vehicle link notices only later (the
            # PLC modem's timeout), so the board's report reaches the controller first.
            # (The truck leaves at once, so a truck plugged straight back in keeps its pilot.)
            bay.truck.unplug(close_link=False)
            self.clock.call_later(UNPLUG_LINK_LAG_S, bay.truck.channel.close, "unplugged")
        if bay.record is not None and bay.record.started_at is None:
            self._close_record(bay)  # never authorized: no session will end it

    async def authorize(self, evse_id: int, source: str, token: str) -> None:
        """The driver starts: a card at the bay's reader (rfid, payment), or the app
        (the CSMS sends RequestStartTransaction). Without OCPP the controller is told."""
        station = self.station
        if station is None:
            self.controller.authorize(evse_id, token, source)
            return
        if source == "app" and self.csms is not None:
            self._remote_ids += 1
            result = await self.csms.send(station.station_id, "RequestStartTransaction", {
                "idToken": {"idToken": token, "type": "Central"},
                "remoteStartId": self._remote_ids, "evseId": evse_id})
            self._say(f"CSMS: RequestStartTransaction {token} -> {result.get('status')}")
            return
        assert self.charger is not None
        decision = await self.charger.authorization.present_card(evse_id, token)
        self._say(f"bay {evse_id} card reader: {decision.message}")

    def request_stop(self, evse_id: int, reason: str = "Local") -> None:
        """The stop button on the bay's screen (or the operator, by reason)."""
        self.controller.request_stop(evse_id, StopReason(reason))

    async def csms_switch(self, up: bool) -> None:
        if self.csms is None:
            return
        await (self.csms.up() if up else self.csms.down())
        self._say(f"CSMS {'back' if up else 'down'}")

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
        plant = self.bays[evse_id].plant
        if kind == "cable_insulation":
            plant.insulation_minus_ohm = CABLE_FAULT_OHM if active else HEALTHY_INSULATION_OHM
        elif kind == "earth_voltage":
            plant.earth_offset_v = EARTH_OFFSET_V if active else 0.0
        elif kind == "overvoltage":
            plant.overshoot_v = OVERSHOOT_V if active else 0.0
        elif kind == "imd_selftest":
            plant.imd.broken = active
        elif kind == "sensor_drift":
            plant.sensor_drift_v_per_s = SENSOR_DRIFT_V_PER_S if active else 0.0
        else:
            if kind == "pe_open":
                plant.pe_ok = not active
            self.io.inject(evse_id, kind, active)
        if active and kind in FAULT_CODES:
            self._note_fault(evse_id, FAULT_CODES[kind], now)

    def _say(self, text: str) -> None:
        if self.say is not None:
            self.say(text)

    # --- observation -----------------------------------------------------------------------

    def _observe(self, evse_id: int, cmd: ev.Command, now: float) -> None:
        bay = self.bays[evse_id]
        record = bay.record
        match cmd:
            case ev.SessionStarted(token, _, at):
                if record is not None and record.started_at is None:
                    record.started_at = at
                    record.token = token
            case ev.SessionEnded(reason, at, energy_wh, fault):
                if record is not None and record.open:
                    record.stop_reason = reason.value
                    record.fault = fault.value if fault is not None else None
                    record.energy_kwh = energy_wh / 1000.0
                    record.duration_s = at - (record.started_at or at)
                    self._close_record(bay)
            case ev.FaultReported(code, at):
                self._note_fault(evse_id, code, at)

    def _note_fault(self, evse_id: int, code: str, at: float) -> None:
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
        if record.stop_reason is None and self.charger is not None:
            status = self.controller.status(bay.evse_id)
            record.stop_reason = status.stop_reason.value if status.stop_reason else None
            record.fault = status.stop_fault.value if status.stop_fault else None
            record.energy_kwh = status.energy_wh / 1000.0

    def close_records(self) -> None:
        for bay in self.bays.values():
            if bay.record is not None and bay.record.open:
                self._close_record(bay)
        self._bay_figures()

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
            plant = bay.plant
            plant.step(modules, board.contactors, battery, dt)
            self.io.set_output_voltage(evse_id, plant.voltage_v)
            self.io.set_imd_alarm(evse_id, plant.imd.alarm)
            self._account(bay)
            plugged = board.vehicle_state != "A"
            limit = self.cable_max_a[evse_id]
            test_v = band_v = None
            if truck is not None:
                b = truck.battery
                limit = min(limit, b.max_charge_current_a(),
                            b.max_power_w / max(b.terminal_voltage(0.0), 1.0) * 1.05)
                test_v = cable_check_voltage(b.max_voltage_v, self.evse_max_v[evse_id])
                band_v = ovp_band_v(min(b.max_voltage_v, self.evse_max_v[evse_id]))
            bay.cable_check.step(now, plugged, test_v, bay.plant.voltage_v, board.lock,
                                 board.isolation_fault)
            faulted = (self.charger is not None
                       and self.controller.status(evse_id).phase is Phase.FAULTED)
            self.monitor.check(now, BaySnapshot(
                connector=evse_id, plugged=plugged,
                lock_locked=board.lock, contactors_closed=board.contactors,
                contactor_welded=board.welded, cable_check_passed=bay.cable_check.passed,
                faulted=faulted, voltage_v=plant.voltage_v,
                current_a=plant.current_a, limit_a=limit,
                vehicle_contactors_closed=truck is not None and truck.contactor_closed,
                over_voltage_limit_v=band_v,
                earth_over_limit=max(plant.earth_voltages_v()) >= earth_limit_v(plant.voltage_v),
                insulation_low=plant.voltage_v >= 60.0
                and plant.insulation_ohm() < ISOLATION_FAULT_OHM,
                pe_ok=plant.pe_ok))

    def _account(self, bay: Bay) -> None:
        record = bay.record
        if record is not None and record.open:
            plant = bay.plant
            record.max_current_a = max(record.max_current_a, plant.current_a)
            record.peak_power_kw = max(record.peak_power_kw,
                                       plant.current_a * plant.voltage_v / 1000.0)

    # --- the report's OCPP part -------------------------------------------------------------

    def ocpp_report(self) -> dict[str, Any] | None:
        station = self.station
        if station is None and self.csms is None:
            return None
        out: dict[str, Any] = {}
        if station is not None:
            out["queued"] = len(station.queue)
            out["bad_frames"] = station.link.bad_frames if station.link else 0
        if self.csms is not None:
            events = self.csms.messages("TransactionEvent")
            out["transaction_events"] = len(events)
            out["event_types"] = {t: sum(e["eventType"] == t for e in events)
                                  for t in ("Started", "Updated", "Ended")}
            out["status_notifications"] = len(self.csms.messages("StatusNotification"))
        return out
