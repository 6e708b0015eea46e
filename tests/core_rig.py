"""A minimal pure rig around one ConnectorSession: ideal hardware that follows commands.

Contactor and lock feedback follow their commands (unless a test jams them); the output
voltage follows the power stage setpoint in one step when energized and decays to 0 V
when off. Used by the core unit tests; the real drivers are tested elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from firmware.core import events as ev
from firmware.core.session import ConnectorLimits, ConnectorSession
from hal import vehicle_link as vl
from hal.power_stage import Mode

EV = vl.EvParameters(max_voltage_v=900, max_current_a=500, max_power_w=400_000,
                     energy_capacity_wh=621_000, soc_percent=20)


@dataclass
class Rig:
    s: ConnectorSession = field(default_factory=lambda: ConnectorSession(
        1, ConnectorLimits(cable_max_current_a=500, cable_max_voltage_v=1000)))
    now: float = 0.0
    mode: Mode = Mode.OFF
    set_v: float = 0.0
    set_a: float = 0.0
    contactors: bool = False
    lock: bool = False
    welded: bool = False
    lock_jammed: bool = False
    pack_v: float = 650.0
    max_output_v: float = 1e9  # what the power stage can actually reach
    imd_broken: bool = False  # the insulation monitor no longer alarms for its self test
    imd_asked: bool = False  # a self test asked for, answered at the next physics step
    imd_answered_at: int | None = None
    # The board's HV sense and a DC meter, as offsets from the true output (None: absent).
    sense_offset_v: float | None = None
    meter_offset_v: float | None = None
    meter_offset_a: float | None = None
    log: list[ev.Command] = field(default_factory=list)
    answers: list[vl.VehicleResponse] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.send(ev.Capability(1000, 500, 400_000))
        self.send(ev.Measurement(0.0, 0.0))  # the loop measures before anything else

    def send(self, event: ev.Event) -> list[ev.Command]:
        cmds = self.s.handle(event, self.now)
        self.log.extend(cmds)
        for c in cmds:
            match c:
                case ev.SetPower(mode, v, a):
                    self.mode, self.set_v, self.set_a = mode, v, a
                case ev.SetContactors(closed):
                    self.contactors = closed or (self.welded and self.contactors)
                case ev.SetLock(locked):
                    if not self.lock_jammed:
                        self.lock = locked
                case ev.Answer(resp):
                    self.answers.append(resp)
                case ev.TestInsulationMonitor():
                    self.imd_asked = True
        return cmds

    def physics(self) -> None:
        if self.mode is Mode.OFF:
            volts = 0.0 if not (self.contactors and self.s.current_a) else self.pack_v
            amps = 0.0
        elif self.mode is Mode.CHARGE and self.contactors:
            volts, amps = self.pack_v, self.set_a
        else:
            volts, amps = min(self.set_v, self.max_output_v), 0.0
        self.send(ev.Feedback(self.contactors, self.lock))
        if self.imd_asked:
            self.imd_asked = False
            self.imd_answered_at = len(self.log)  # where in the log the result came in
            self.send(ev.InsulationMonitorTested(not self.imd_broken))
        def off(offset: float | None, value: float) -> float | None:
            return None if offset is None else value + offset

        self.send(ev.Measurement(volts, amps, off(self.sense_offset_v, volts),
                                 off(self.meter_offset_v, volts),
                                 off(self.meter_offset_a, amps)))

    def advance(self, seconds: float, step: float = 0.1) -> None:
        end = self.now + seconds
        while self.now < end - 1e-9:
            self.now += step
            self.physics()
            self.send(ev.Tick())

    def ask(self, req: vl.VehicleRequest) -> vl.VehicleResponse:
        self.send(ev.FromVehicle(req))
        return self.answers[-1]

    def to_parameters(self) -> None:
        """Plugged in (state B), session set up, card accepted, EV parameters told: the
        step before the truck closes S2 (state C) and asks for the cable check."""
        self.send(ev.PilotChanged("B"))
        self.ask(vl.SessionSetupReq("X"))
        self.send(ev.Authorize("CARD1", "rfid"))
        self.ask(vl.ChargeParameterDiscoveryReq(EV))

    def to_charging(self) -> None:
        self.send(ev.PilotChanged("B"))
        self.ask(vl.SessionSetupReq("EVCC01"))
        self.ask(vl.ServiceDiscoveryReq())
        self.ask(vl.PaymentServiceSelectionReq())
        self.send(ev.Authorize("CARD1", "rfid"))
        self.ask(vl.AuthorizationReq())
        self.ask(vl.ChargeParameterDiscoveryReq(EV))
        self.send(ev.PilotChanged("C"))
        for _ in range(100):
            if self.ask(vl.CableCheckReq(20)).processing is vl.Processing.FINISHED:
                break
            self.advance(0.5)
        self.ask(vl.PreChargeReq(self.pack_v, 2))
        self.advance(0.3)
        self.ask(vl.PowerDeliveryReq(True))

    def demand(self, amps: float, seconds: float) -> None:
        for _ in range(int(seconds / 0.25)):
            self.ask(vl.CurrentDemandReq(900, amps, 50, 900, 500, 400_000))
            self.advance(0.25)
