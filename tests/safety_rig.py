"""A bench for safety properties: one connector's core machine wired to a physical model.

The model keeps the IO board's hard rules (contactors close only with the host's
permission, a confirmed lock, no e-stop and no isolation fault; a welded contactor stays
closed), a power stage that follows its setpoints, an output that discharges when nothing
holds it up, and a scripted truck that walks the DC flow (ISO 15118-2 order of messages).
Inputs reach the machine through the shell's own mapping (Controller._input_events), so
what is checked is what the real loop would feed it.

Everything the invariants need is recorded here from the outside (what the EV asked,
what capability was offered, which commands were given in which state), never read
back from the machine under test.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from firmware.core import events as ev
from firmware.core.session import ConnectorLimits, ConnectorSession
from firmware.errors import Severity, spec
from firmware.loop import Controller
from hal import vehicle_link as vl
from hal.io_board import ConnectorInputs
from hal.power_stage import Mode

CABLE_A, CABLE_V = 500.0, 1000.0
DISCHARGE_TAU_S = 0.3  # output discharge resistor time constant (approx.)
TOLERANCE = 1e-6


@dataclass
class Hardware:
    plugged: bool = False
    ev_pilot: str = "B"  # what the truck's resistors present while plugged
    pilot_short: bool = False  # CP shorted to PE: state E
    drive_f: bool = False
    estop: bool = False
    isolation: bool = False
    welded: bool = False
    stuck_open: bool = False  # a contactor that never closes
    diode_fault: bool = False  # the EV's pilot diode shorted: the board reads state F
    lock_jammed: bool = False
    temperature_c: float = 35.0
    max_output_v: float = 1e9  # what the power stage can actually hold on the cable
    current_offset_a: float = 0.0  # a power stage overshooting its setpoint
    contactors_cmd: bool = False
    contactors: bool = False
    lock_cmd: bool = False
    lock: bool = False
    mode: Mode = Mode.OFF
    set_v: float = 0.0
    set_a: float = 0.0
    voltage_v: float = 0.0
    current_a: float = 0.0
    pack_v: float = 650.0
    ev_relays: bool = False  # the truck's own contactors (closed from PowerDelivery start)
    imd_broken: bool = False  # the insulation monitor no longer alarms for its self test
    sense_offset_v: float = 0.0  # the board's HV sense off the true output (a sensor drifts)
    imd_result: bool | None = None  # its self test since the plug-in (the board's rule)

    def pilot(self) -> str:
        if self.pilot_short:
            return "E"
        if self.drive_f or (self.diode_fault and self.plugged):
            return "F"
        return self.ev_pilot if self.plugged else "A"

    def apply_board_rules(self) -> None:
        if not self.lock_jammed:
            self.lock = self.lock_cmd
        if not self.plugged:
            self.imd_result = None  # the board's IMD result belongs to the vehicle
        allowed = (self.contactors_cmd and self.lock and not self.estop and not self.isolation
                   and self.pilot() in ("C", "D")
                   and self.imd_result is True)  # the board's rules (hal/mcu/rules.py)
        if allowed and not self.stuck_open:
            self.contactors = True
        elif not self.welded:
            self.contactors = False

    def physics(self, dt: float) -> None:
        if self.contactors and self.plugged and self.ev_relays:
            self.voltage_v = self.pack_v  # the pack holds the output up
            charging = self.mode is Mode.CHARGE and self.ev_pilot == "C"
            self.current_a = self.set_a + self.current_offset_a if charging else 0.0
            return
        self.current_a = 0.0
        if self.mode in (Mode.CABLE_CHECK, Mode.PRECHARGE):
            self.voltage_v = min(self.set_v, self.max_output_v)
        else:
            self.voltage_v *= math.exp(-dt / DISCHARGE_TAU_S)
            if self.voltage_v < 1.0:
                self.voltage_v = 0.0

    def test_imd(self) -> None:
        """The board runs the monitor's self test: only plugged, open and below 60 V."""
        if self.plugged and not self.contactors and self.voltage_v < 60.0 \
                and not self.isolation:
            self.imd_result = not self.imd_broken

    def inputs(self) -> ConnectorInputs:
        return ConnectorInputs(self.pilot(), self.contactors, self.lock, self.estop,
                               self.isolation, self.temperature_c, plugged=self.plugged,
                               imd_passed=self.imd_result is True,
                               imd_failed=self.imd_result is False)


@dataclass
class Truck:
    """The EV side of the DC exchange: sends the next request the flow calls for."""

    stage: str = "idle"
    want_a: float = 400.0
    max_a: float = 500.0
    max_w: float = 400_000.0
    asked_a: float = 0.0  # target current of the last CurrentDemand actually sent
    last: vl.VehicleResponse | None = None

    def next_request(self, hw: Hardware) -> vl.VehicleRequest | None:
        params = vl.EvParameters(900, self.max_a, self.max_w, 621_000, 30)
        match self.stage:
            case "setup":
                return vl.SessionSetupReq("EVCC-SAFETY")
            case "discovery":
                return vl.ServiceDiscoveryReq()
            case "payment":
                return vl.PaymentServiceSelectionReq()
            case "authorization":
                return vl.AuthorizationReq()
            case "parameters":
                return vl.ChargeParameterDiscoveryReq(params)
            case "cable_check":
                return vl.CableCheckReq(30)
            case "precharge":
                return vl.PreChargeReq(hw.pack_v, 2)
            case "start":
                return vl.PowerDeliveryReq(True)
            case "charging":
                return vl.CurrentDemandReq(900, self.want_a, 40, 900, self.max_a, self.max_w)
            case "stop":
                return vl.PowerDeliveryReq(False)
            case "welding":
                return vl.WeldingDetectionReq()
            case "session_stop":
                return vl.SessionStopReq()
        return None

    _ORDER = ("setup", "discovery", "payment", "authorization", "parameters", "cable_check",
              "precharge", "start", "charging", "stop", "welding", "session_stop", "done")

    def on_answer(self, req: vl.VehicleRequest, resp: vl.VehicleResponse, hw: Hardware) -> None:
        self.last = resp
        if resp.code is not vl.ResponseCode.OK:
            self.stage = "done"  # the EV gives up after a failed response
            return
        if resp.notification is not vl.EvseNotification.NONE and self.stage == "charging":
            self.stage = "stop"
            return
        if resp.processing is vl.Processing.ONGOING:
            return
        if self.stage == "precharge" and abs(resp.present_voltage_v - hw.pack_v) > 20:
            return  # keep asking until the output matches the pack (ISO 15118-2 [V2G2-604])
        if self.stage == "parameters":
            hw.ev_pilot = "C"  # ready: S2 closed before cable check
        if self.stage == "start":
            hw.ev_relays = True  # ISO 15118-2: the EV closes its relays after PowerDelivery
        if self.stage == "stop":
            hw.ev_pilot = "B"
            hw.ev_relays = False
        if self.stage in ("charging", "done"):
            return
        self.stage = self._ORDER[self._ORDER.index(self.stage) + 1]


@dataclass
class Bench:
    session: ConnectorSession = field(default_factory=lambda: ConnectorSession(
        1, ConnectorLimits(CABLE_A, CABLE_V)))
    hw: Hardware = field(default_factory=Hardware)
    truck: Truck = field(default_factory=Truck)
    now: float = 0.0
    capability: ev.Capability = ev.Capability(1000.0, 500.0, 400_000.0)
    inputs: ConnectorInputs | None = None
    last_measurement: ev.Measurement | None = None
    imd_asked: bool = False  # the board runs the self test before the next reading
    # what the outside saw, for the invariants
    cable_check_passed: bool = False  # an OK CableCheck answer since this plug-in
    violations: list[str] = field(default_factory=list)
    delivered_wh: float = 0.0  # energy into the truck, integrated from the physical model
    # optional listeners (the OCPP ledger): every batch of commands, every physics step
    observer: Callable[[list[ev.Command]], None] | None = None
    ticker: Callable[[], None] | None = None

    def __post_init__(self) -> None:
        self.send(self.capability)
        self.sense()

    # --- the shell -----------------------------------------------------------------------

    def send(self, event: ev.Event) -> list[ev.Command]:
        cmds = self.session.handle(event, self.now)
        self.carry_out(cmds)
        if self.observer is not None:
            self.observer(cmds)
        return cmds

    def carry_out(self, cmds: list[ev.Command]) -> None:
        hw = self.hw
        for cmd in cmds:
            match cmd:
                case ev.SetPower(mode, volts, amps):
                    self.check_setpoint(mode, volts, amps)
                    hw.mode, hw.set_v, hw.set_a = mode, volts, amps
                case ev.SetContactors(closed):
                    if closed:
                        self.check_closing()
                    hw.contactors_cmd = closed
                case ev.SetLock(locked):
                    if not locked and (hw.voltage_v >= 60.0 or hw.contactors):
                        self.violations.append(
                            f"t={self.now:.2f}: unlock commanded at {hw.voltage_v:.0f} V, "
                            f"contactors {'closed' if hw.contactors else 'open'}")
                    hw.lock_cmd = locked
                case ev.SetPilot(_, not_available):
                    hw.drive_f = not_available
                case ev.TestInsulationMonitor():
                    hw.imd_result = None  # the result of the last test goes, the new comes
                    self.imd_asked = True
            hw.apply_board_rules()

    def sense(self) -> None:
        """What the loop's tick does: board inputs as events, then the measurement."""
        if self.imd_asked:
            self.imd_asked = False
            self.hw.test_imd()
        self.hw.apply_board_rules()
        new = self.hw.inputs()
        for event in Controller._input_events(self.inputs, new):
            self.send(event)
        self.inputs = new
        measurement = ev.Measurement(self.hw.voltage_v, self.hw.current_a,
                                     self.hw.voltage_v + self.hw.sense_offset_v)
        if Controller.measurement_due(self.session, measurement, self.last_measurement):
            self.send(measurement)  # the loop's own rule for when time reaches the machine
        self.last_measurement = measurement

    def advance(self, seconds: float, step: float = 0.1) -> None:
        end = self.now + seconds
        while self.now < end - 1e-9:
            dt = min(step, end - self.now)
            self.now += dt
            # What flowed over this step: the state the model held since the last one
            # (the same rectangle a meter sampling at the step makes).
            self.delivered_wh += self.hw.voltage_v * self.hw.current_a * dt / 3600.0
            self.hw.physics(dt)
            self.sense()
            self.check_physical()
            if self.ticker is not None:
                self.ticker()

    def truck_step(self) -> None:
        req = self.truck.next_request(self.hw)
        if req is None or not self.hw.plugged:
            return
        if self.hw.ev_pilot == "B" and self.truck.stage == "cable_check":
            self.hw.ev_pilot = "C"
        if isinstance(req, vl.CurrentDemandReq):
            self.truck.asked_a = req.target_current_a
        cmds = self.send(ev.FromVehicle(req))
        answers = [c.response for c in cmds if isinstance(c, ev.Answer)]
        if len(answers) != 1:
            self.violations.append(f"{type(req).__name__} got {len(answers)} answers")
            return
        resp = answers[0]
        if isinstance(req, vl.CableCheckReq) and resp.code is vl.ResponseCode.OK and (
                resp.processing is vl.Processing.FINISHED):
            self.cable_check_passed = True
        self.truck.on_answer(req, resp, self.hw)
        self.advance(0.25)  # CurrentDemand cadence

    # --- invariants ------------------------------------------------------------------------

    def check_closing(self) -> None:
        s = self.session
        blocking = [c for c in s.faults if spec(c).blocks_charging]
        # For the cable check itself (its voltage must reach the cable) while the truck
        # asks for it with its own relays open, or after it passed.
        for_check = self.truck.stage == "cable_check" and not self.hw.ev_relays
        if not (self.cable_check_passed or for_check) or not self.hw.lock or blocking \
                or not self.hw.plugged:
            self.violations.append(
                f"t={self.now:.2f}: close commanded: cable check passed "
                f"{self.cable_check_passed}, lock {self.hw.lock}, blocking {blocking}")

    def check_setpoint(self, mode: Mode, volts: float, amps: float) -> None:
        if mode is not Mode.CHARGE or amps <= TOLERANCE:
            return
        t = self.truck
        cap = self.capability
        limit_a = min(t.asked_a, t.max_a, CABLE_A, cap.max_current_a)
        if amps > limit_a + TOLERANCE:
            self.violations.append(f"t={self.now:.2f}: setpoint {amps:.1f} A above "
                                   f"limit {limit_a:.1f} A")
        limit_w = min(cap.max_power_w, t.max_w)
        volts_now = self.hw.voltage_v  # the power limit holds at the present voltage
        if amps * volts_now > limit_w * 1.001:
            self.violations.append(f"t={self.now:.2f}: {amps:.1f} A x {volts_now:.0f} V "
                                   f"above {limit_w / 1000:.0f} kW")

    def check_physical(self) -> None:
        hw = self.hw
        if hw.contactors and not hw.welded and not self.cable_check_passed and (
                hw.ev_relays or hw.current_a > 2.5):
            self.violations.append(f"t={self.now:.2f}: power path to the pack closed "
                                   f"without a passed cable check")
        if self.emergency_active() and (self.session.contactors_commanded
                                        or hw.mode is not Mode.OFF):
            self.violations.append(f"t={self.now:.2f}: emergency {self.emergency_active()} "
                                   f"but supply {hw.mode.value}, contactors commanded "
                                   f"{self.session.contactors_commanded}")

    def emergency_active(self) -> list[str]:
        active = {"emergency_stop": self.hw.estop, "isolation_fault": self.hw.isolation,
                  "pilot_fault": self.hw.pilot_short and self.hw.plugged}
        return [c for c, on in active.items()
                if on and spec(c).severity is Severity.EMERGENCY]

    # --- world events ------------------------------------------------------------------------

    def plug(self) -> None:
        self.hw.plugged, self.hw.ev_pilot = True, "B"
        self.truck = Truck(want_a=self.truck.want_a, max_a=self.truck.max_a,
                           max_w=self.truck.max_w, stage="setup")
        self.cable_check_passed = False
        self.sense()

    def unplug(self) -> None:
        self.hw.plugged = self.hw.ev_relays = False
        self.truck.stage = "idle"
        self.cable_check_passed = False
        self.sense()

    def set_capability(self, max_current_a: float, max_power_w: float) -> None:
        self.capability = ev.Capability(1000.0, max_current_a, max_power_w)
        self.send(self.capability)

    def restart_controller(self) -> None:
        """The controller process dies and comes back. Meanwhile the IO board's heartbeat
        rule opened the contactors and drove state F, and the power stage went off."""
        hw = self.hw
        hw.contactors_cmd, hw.drive_f, hw.mode, hw.set_a = False, True, Mode.OFF, 0.0
        hw.apply_board_rules()
        self.advance(0.5)
        self.session = ConnectorSession(1, ConnectorLimits(CABLE_A, CABLE_V))
        self.inputs = self.last_measurement = None
        hw.drive_f = False
        if self.truck.stage != "idle":
            self.truck.stage = "done"  # the vehicle's session died with the link
            hw.ev_relays = False
        self.send(self.capability)
        self.sense()
