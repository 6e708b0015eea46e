"""One connector's DC charging session as a pure state machine.

``ConnectorSession.handle(event, now)`` returns the commands the shell must carry out.
Where a phase leads is decided by transitions.TABLE; this module holds the guards, the
gates (< 60 V, passed cable check, confirmed lock), authorization, energy and faults, and
composes the parts each owned by one module: the vehicle exchange and the charging
current (vehicle.py), cable check and precharge (energize.py), the ordered shutdown
(shutdown.py) and the hardware confirmation timers (supervision.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from firmware.core import energize, shutdown, supervision, vehicle
from firmware.core import events as ev
from firmware.core import limits as lim
from firmware.core.bay import ConnectorLimits
from firmware.core.energize import CableCheck, PreCharge
from firmware.core.events import StopReason
from firmware.core.shutdown import Shutdown, Step
from firmware.core.supervision import Supervision
from firmware.core.transitions import (
    BEFORE_SESSION,
    ENERGIZING,
    OUT_OF_SERVICE,
    PLUGGED_AT_REST,
    SESSION,
    SESSION_OVER,
    SHUTDOWN_CAN_RUN,
    WINDING_DOWN,
    Phase,
    Trigger,
    next_phase,
)
from firmware.core.vehicle import CurrentControl, VehicleExchange
from firmware.errors import Clearing, ErrorCode, Severity, error_code, spec
from hal.power_stage import Mode

__all__ = ["ConnectorLimits", "ConnectorSession", "Status"]


@dataclass
class Status:
    """What the screen and the reports read; refreshed by every event."""

    phase: Phase
    voltage_v: float
    current_a: float
    energy_wh: float
    soc_percent: float | None
    elapsed_s: float
    setpoint_a: float
    limit_a: float
    faults: tuple[ErrorCode, ...]
    stop_reason: StopReason | None
    stop_fault: ErrorCode | None = None  # the fault behind stop_reason FAULT
    binding_limit: lim.BindingLimit | None = None  # which limit sets limit_a (charging)


@dataclass
class ConnectorSession:
    evse_id: int
    limits: ConnectorLimits
    phase: Phase = Phase.AVAILABLE
    pilot: str = "A"
    # feedback from the IO board, and what we last commanded
    contactors_closed: bool = False
    lock_locked: bool = False
    contactors_commanded: bool = False
    lock_commanded: bool = False
    lock_wanted: bool = False
    lock_seen: bool = False  # a first lock feedback has arrived
    unlock_requested_at: float | None = None  # waiting for the switch to confirm open
    voltage_v: float = 0.0
    current_a: float = 0.0
    cable_voltage_v: float | None = None  # the board's HV sense, cable side of contactors
    measurement: ev.Measurement | None = None  # the last one, whole (plausibility)
    capability: ev.Capability = ev.Capability(0.0, 0.0, 0.0)
    faults: set[ErrorCode] = field(default_factory=set)
    conditions: set[ErrorCode] = field(default_factory=set)  # reported present by an input
    operative: bool = True
    # authorization and session
    auth: ev.Authorize | None = None  # the running session's authorization
    pre_auth: ev.Authorize | None = None  # a card presented with no vehicle plugged
    pre_auth_at: float = 0.0
    vehicle_left: bool = False  # unplugged while the shutdown ran (maybe plugged again)
    session_at: float | None = None
    energy_wh: float = 0.0
    last_measure_at: float | None = None
    stop_reason: StopReason | None = None
    stop_fault: ErrorCode | None = None
    # the parts, each owned by its module (fresh for every vehicle)
    vehicle: VehicleExchange = field(default_factory=VehicleExchange)
    current: CurrentControl = field(default_factory=CurrentControl)
    cable_check: CableCheck = field(default_factory=CableCheck)
    precharge: PreCharge = field(default_factory=PreCharge)
    shutdown: Shutdown = field(default_factory=Shutdown)
    supervision: Supervision = field(default_factory=Supervision)

    # --- entry point -------------------------------------------------------------------

    def handle(self, event: ev.Event, now: float) -> list[ev.Command]:
        out: list[ev.Command] = []
        match event:
            case ev.PilotChanged(state):
                self._on_pilot(state, now, out)
            case ev.Feedback(closed, locked):
                self.contactors_closed, self.lock_locked = closed, locked
                if not self.lock_seen:
                    self.lock_seen = True
                    # Found locked at start (a controller restart mid-session): own it,
                    # so the lock gate releases it once the output is safe.
                    self.lock_commanded = locked and not self.lock_wanted
            case ev.Measurement(volts, amps, cable_v):
                self.cable_voltage_v, self.measurement = cable_v, event
                self._on_measurement(volts, amps, now)
            case ev.Capability():
                self._on_capability(event, now, out)
            case ev.Authorize():
                self._on_authorize(event, now, out)
            case ev.AuthorizeRejected(_, reason):
                if self.phase is Phase.PREPARING:
                    out.append(ev.Screen(self.phase, card_rejected=reason))
            case ev.StopRequested(reason):
                self.request_stop(StopReason(reason), now, out)
            case ev.FaultRaised(code):
                self.conditions.add(error_code(code))
                self.raise_fault(error_code(code), now, out)
            case ev.FaultCleared(code):
                self.conditions.discard(error_code(code))
                if self._clear(error_code(code)):
                    out.append(self.screen())
            case ev.FromVehicle(request):
                out.append(ev.Answer(vehicle.answer(self, self.vehicle, self.current, request,
                                                    now, out)))
            case ev.SetAvailability(operative):
                self.operative = operative
            case ev.UnlockRequested():
                self._on_unlock_request(now, out)
            case ev.InsulationMonitorTested(passed):
                if (fault := energize.insulation_monitor_tested(self.cable_check, passed)):
                    self.raise_fault(fault, now, out)
            case ev.DataLinkChanged(ready):
                self.vehicle.data_link(ready, now)
            case ev.Tick():
                pass
        self._housekeeping(now, out)
        return out

    def status(self, now: float) -> Status:
        elapsed = now - self.session_at if self.session_at is not None else 0.0
        c = self.current
        return Status(self.phase, self.voltage_v, self.current_a, self.energy_wh,
                      self.vehicle.soc, elapsed, c.setpoint_a, c.limit_a,
                      tuple(sorted(self.faults)), self.stop_reason, self.stop_fault,
                      c.binding)

    @property
    def supervising(self) -> bool:
        """A hardware confirmation timer runs: the machine needs the time when idle."""
        return self.supervision.running or self.unlock_requested_at is not None

    @property
    def cable_check_passed(self) -> bool:
        return self.cable_check.passed

    @property
    def below_safe_voltage(self) -> bool:
        """Known below 60 V (before the first measurement, e.g. a restart: not safe)."""
        return self.last_measure_at is not None and self.inlet_voltage_v < lim.SAFE_VOLTAGE_V

    @property
    def inlet_voltage_v(self) -> float:
        """The higher of the module side and the cable side (the board's HV sense)."""
        return max(self.voltage_v, self.cable_voltage_v or self.voltage_v)

    @property
    def blocking_faults(self) -> list[ErrorCode]:
        return [c for c in self.faults if spec(c).blocks_charging]

    # --- transitions -------------------------------------------------------------------

    def fire(self, trigger: Trigger, now: float, out: list[ev.Command]) -> bool:
        target = next_phase(self.phase, trigger)
        if target is None:
            return False
        previous, self.phase = self.phase, target
        if target is not Phase.CHARGING:
            self.current.unbind()  # a limit binds only while current is delivered
        if target in SESSION_OVER:
            self._end_session(now, out)
        if target is Phase.AVAILABLE:
            self._reset_vehicle_state()
            if not self.operative:
                self.fire(Trigger.DISABLE, now, out)
        if target in OUT_OF_SERVICE:
            out.append(ev.SetPilot(100.0, not_available=True))
        elif target is Phase.AVAILABLE or previous in OUT_OF_SERVICE:
            out.append(ev.SetPilot(100.0))
        out.append(self.screen())
        return True

    def screen(self) -> ev.Screen:
        """What the screen shows, as facts (firmware/words.py words them)."""
        worst = min(self.faults, key=lambda c: (list(Severity).index(spec(c).severity), c),
                    default=None)
        return ev.Screen(self.phase, self.stop_reason, self.stop_fault, worst, self.energy_wh)

    def _reset_vehicle_state(self) -> None:
        """The bay is free again: nothing of the last vehicle carries over."""
        self.vehicle_left = False
        self.vehicle, self.current = VehicleExchange(), CurrentControl()
        self.cable_check, self.precharge, self.shutdown = CableCheck(), PreCharge(), Shutdown()

    def _begin_session(self, now: float, out: list[ev.Command]) -> None:
        assert self.auth is not None
        self.session_at = now
        self.energy_wh = 0.0
        self.stop_reason = self.stop_fault = None
        out.append(ev.SessionStarted(self.auth.token, self.auth.source, now))

    def _end_session(self, now: float, out: list[ev.Command]) -> None:
        if self.session_at is not None:
            reason = self.stop_reason or StopReason.OTHER
            out.append(ev.SessionEnded(reason, now, self.energy_wh, self.stop_fault))
            self.session_at = None
            self.auth = None

    # --- events ------------------------------------------------------------------------

    def _on_pilot(self, state: str, now: float, out: list[ev.Command]) -> None:
        previous, self.pilot = self.pilot, state
        if state == "A":
            self._on_unplug(now, out)
        elif state in ("B", "C", "D") and previous in ("A", "E", "F"):
            self._on_plug_in(now, out)
        elif state == "B" and previous in ("C", "D") and self.phase in ENERGIZING:
            # The EV opened S2 while energized: contactors open within 100 ms (61851-23).
            self._open_now(out)
            self.stop_reason = self.stop_reason or StopReason.EV_DISCONNECTED
            self.fire(Trigger.STOP, now, out)
            self._start_shutdown(now, out, already_open=True)
        elif state == "E":
            self.raise_fault(ErrorCode.PILOT_FAULT, now, out)
        elif state == "F" and self.phase not in OUT_OF_SERVICE:
            self.raise_fault(ErrorCode.DIODE_FAULT, now, out)

    def _on_plug_in(self, now: float, out: list[ev.Command]) -> None:
        if self.fire(Trigger.PLUG_IN, now, out):
            # A new vehicle: nothing of the last session's ending may reach it (its stop
            # reason in a response would read as StopCharging during the new set-up).
            self.stop_reason = self.stop_fault = None
            self.vehicle.pwm_started(now)
            out.append(ev.SetPilot(5.0))  # 5 %: digital communication (61851-1 A.2)
            pre, self.pre_auth = self.pre_auth, None
            if pre is not None and now - self.pre_auth_at <= lim.CONNECTION_TIMEOUT_S:
                self.auth = pre
                self._authorize_now(now, out)

    def _on_unplug(self, now: float, out: list[ev.Command]) -> None:
        # The vehicle left: what it caused is cleared, unless an input still reports it.
        for code in [c for c in self.faults if spec(c).clearing is Clearing.ON_UNPLUG
                     and c not in self.conditions]:
            self.faults.discard(code)
        self.supervision.lock_timer_restart()
        if self.phase in SESSION:
            self._open_now(out)  # vehicle gone: supply off at once
            self.stop_reason = self.stop_reason or StopReason.EV_DISCONNECTED
            self.fire(Trigger.UNPLUG, now, out)
            self._start_shutdown(now, out, already_open=True)
        elif self.phase in PLUGGED_AT_REST:
            self.stop_reason = self.stop_reason or StopReason.EV_DISCONNECTED
            self.fire(Trigger.UNPLUG, now, out)
        if self.phase is not Phase.AVAILABLE:
            self.vehicle.pwm_stopped()
        if self.phase in WINDING_DOWN:
            self.vehicle_left = True  # a plug-in before the shutdown ends is a new vehicle

    def _on_measurement(self, volts: float, amps: float, now: float) -> None:
        # Energy delivered on this output since the session started (rectangle rule on
        # the previous sample: samples are 0.1 s apart at the control cadence).
        if self.session_at is not None and self.last_measure_at is not None:
            self.energy_wh += self.voltage_v * self.current_a * (now - self.last_measure_at) / 3600
        self.voltage_v, self.current_a, self.last_measure_at = volts, amps, now

    def _on_capability(self, cap: ev.Capability, now: float, out: list[ev.Command]) -> None:
        self.capability = cap
        if self.phase is Phase.CHARGING and cap.max_current_a < 1.0:
            self.fire(Trigger.EVSE_PAUSE, now, out)
        elif self.phase is Phase.SUSPENDED_EVSE and cap.max_current_a >= 1.0:
            self.fire(Trigger.EVSE_RESUME, now, out)

    def _on_authorize(self, auth: ev.Authorize, now: float, out: list[ev.Command]) -> None:
        if self.phase is Phase.PREPARING:
            self.auth = auth
            self._authorize_now(now, out)
        elif self.pilot == "A" and self.phase not in OUT_OF_SERVICE:
            # Card before plug-in (also while the last truck's shutdown finishes after it
            # left): remembered a while, apart from any session's own authorization.
            self.pre_auth, self.pre_auth_at = auth, now

    def _authorize_now(self, now: float, out: list[ev.Command]) -> None:
        if self.fire(Trigger.AUTHORIZED, now, out):
            self._begin_session(now, out)

    def request_stop(self, reason: StopReason, now: float, out: list[ev.Command],
                     fault: ErrorCode | None = None) -> None:
        if self.phase in SESSION:
            if self.stop_reason is None:
                self.stop_reason, self.stop_fault = reason, fault
            energized = self.phase in ENERGIZING
            self.fire(Trigger.STOP, now, out)
            self._start_shutdown(now, out, already_open=not energized)
        elif self.phase in BEFORE_SESSION:
            self.auth = self.pre_auth = None
            if self.phase is Phase.PREPARING:
                self.stop_reason, self.stop_fault = reason, fault
                self.fire(Trigger.STOP, now, out)

    def raise_fault(self, code: ErrorCode, now: float, out: list[ev.Command]) -> None:
        entry = spec(code)
        if code in self.faults:
            return
        self.faults.add(code)
        out.append(ev.FaultReported(code, now))
        if entry.severity is Severity.WARNING or not entry.blocks_charging:
            out.append(self.screen())  # the driver reads why power is reduced
            return
        if entry.severity is Severity.EMERGENCY or self.phase not in SHUTDOWN_CAN_RUN:
            if self.stop_reason is None:
                self.stop_reason, self.stop_fault = StopReason.FAULT, code
            self._open_now(out)
            self.lock_wanted = False
            if self.phase is Phase.STOPPING:
                shutdown.abandon(self.shutdown)
            self.fire(Trigger.EMERGENCY, now, out)
        else:
            self.request_stop(StopReason.FAULT, now, out, fault=code)

    def _clear(self, code: ErrorCode) -> bool:
        """The condition behind ``code`` is gone; returns whether the fault cleared."""
        if code not in self.faults:
            return False
        clearing = spec(code).clearing
        if clearing is Clearing.WHEN_GONE or (clearing is Clearing.ON_UNPLUG
                                              and self.pilot == "A"):
            self.faults.discard(code)  # gone, and no vehicle is left to unplug
            return True
        return False  # latched until the vehicle leaves (ON_UNPLUG) or service

    def handle_link_lost(self, now: float, out: list[ev.Command]) -> None:
        """Any lost link ends in a safe state: supply off at once, then the fault."""
        if self.phase in ENERGIZING:
            self._open_now(out)
        self.raise_fault(ErrorCode.VEHICLE_COMM_LOST, now, out)

    def service_reset(self, code: ErrorCode) -> None:  # a field engineer (console, Reset)
        self.faults.discard(error_code(code))

    def drop_fault(self, code: ErrorCode, out: list[ev.Command]) -> None:  # gone, no vehicle
        self.faults.discard(code)
        out.append(self.screen())

    def want_lock(self, locked: bool) -> None:  # the lock gate carries it out when safe
        self.lock_wanted = locked

    # --- gates and actions -------------------------------------------------------------

    def _open_now(self, out: list[ev.Command]) -> None:
        """Emergency opening: supply off and contactors open in one batch."""
        self.current.zero()
        out.append(ev.SetPower(Mode.OFF, 0.0, 0.0))
        out.append(ev.SetContactors(False))
        if self.contactors_commanded:
            self.supervision.contactors_commanded()
        self.contactors_commanded = False

    def close_contactors(self, now: float, out: list[ev.Command],
                         for_cable_check: bool = False) -> bool:
        """Close only with the lock confirmed and no blocking fault, for the cable check
        itself (its voltage must reach the cable; the vehicle's contactors stay open until
        PreCharge) or after it passed (IEC 61851-23). Returns whether it was commanded."""
        checked = self.cable_check.passed or (  # the monitor passed its self test first
            for_cable_check and self.phase is Phase.CABLE_CHECK and self.cable_check.imd_passed)
        if not (checked and self.lock_locked and not self.blocking_faults):
            return False
        if not self.contactors_commanded:
            self.contactors_commanded = True
            self.supervision.contactors_commanded()
            out.append(ev.SetContactors(True))
        return True

    def _start_shutdown(self, now: float, out: list[ev.Command], already_open: bool) -> None:
        ramp_down = not already_open and self.contactors_commanded
        if ramp_down:  # current to ~0 first, at the voltage the EV asked for
            self.current.zero()
            out.append(ev.SetPower(Mode.CHARGE, self.vehicle.target_voltage_v, 0.0))
        else:
            out.append(ev.SetPower(Mode.OFF, 0.0, 0.0))
            if self.contactors_commanded:
                self._open_now(out)
        shutdown.begin(self.shutdown, now, ramp_down)

    # --- time ----------------------------------------------------------------------------

    def _housekeeping(self, now: float, out: list[ev.Command]) -> None:
        vehicle.progress(self, self.vehicle, self.current, now, out)  # timers, ramp
        self._energize_progress(now, out)
        self._shutdown_progress(now, out)
        params = self.vehicle.params
        supervision.supervise(self, self.supervision,
                              params.max_voltage_v if params is not None else None,
                              self.vehicle.max_current_a, now, out)
        self._lock_gate(out)
        self._unlock_progress(now, out)
        self._recover(now, out)

    def _energize_progress(self, now: float, out: list[ev.Command]) -> None:
        fault = None
        if self.phase is Phase.CABLE_CHECK and not self.cable_check.passed:
            fault = energize.insulation_monitor_progress(self.cable_check, now, out)
            if self.lock_locked and not self.contactors_commanded:
                self.close_contactors(now, out, for_cable_check=True)
            fault = fault or energize.cable_check_progress(
                self.cable_check, path_ready=self.lock_locked and self.contactors_closed
                and self.contactors_commanded, voltage_v=self.voltage_v,
                settle_s=self.limits.cable_check_settle_s, now=now, out=out)
        elif self.phase is Phase.PRE_CHARGE and not self.precharge.matched:
            fault = energize.precharge_progress(self.precharge, self.voltage_v, now)
        if fault is not None:
            self.raise_fault(fault, now, out)

    def _shutdown_progress(self, now: float, out: list[ev.Command]) -> None:
        if self.phase is not Phase.STOPPING or not self.shutdown.running:
            return
        step = shutdown.progress(self.shutdown, now, current_a=self.current_a,
                                 contactors_closed=self.contactors_closed,
                                 below_safe_voltage=self.below_safe_voltage)
        if step is Step.OPEN_CONTACTORS:
            self._open_now(out)
        elif step is Step.RELEASE_LOCK:
            self.lock_wanted = False
        elif step is Step.DONE:
            done = Trigger.SHUTDOWN_DONE_FAULTED if self.blocking_faults else Trigger.SHUTDOWN_DONE
            self.fire(done, now, out)
            if self.pilot == "A" or self.vehicle_left:  # gone: Finished -> Available
                self.fire(Trigger.UNPLUG, now, out)
                if self.pilot != "A":  # and already plugged straight back in
                    self._on_plug_in(now, out)

    def _on_unlock_request(self, now: float, out: list[ev.Command]) -> None:
        if self.session_at is not None or self.phase in SHUTDOWN_CAN_RUN:
            out.append(ev.UnlockResult(ev.UnlockOutcome.ONGOING_AUTHORIZED_TRANSACTION))
        elif (self.contactors_commanded or self.contactors_closed
              or not self.below_safe_voltage):
            # Never unlock under voltage or with a contactor (welded or not) closed.
            out.append(ev.UnlockResult(ev.UnlockOutcome.REFUSED_ENERGIZED))
        else:
            # Commanded open even if it already is: this is how a stuck lock is retried.
            self.lock_wanted = self.lock_commanded = False
            out.append(ev.SetLock(False))
            self.unlock_requested_at = now

    def _unlock_progress(self, now: float, out: list[ev.Command]) -> None:
        """The switch must confirm open within the lock confirmation time."""
        if self.unlock_requested_at is None:
            return
        if not self.lock_locked:
            self.unlock_requested_at = None
            out.append(ev.UnlockResult(ev.UnlockOutcome.UNLOCKED))
        elif now - self.unlock_requested_at > lim.LOCK_CONFIRM_S:
            self.unlock_requested_at = None
            out.append(ev.UnlockResult(ev.UnlockOutcome.UNLOCK_FAILED))

    def _lock_gate(self, out: list[ev.Command]) -> None:
        if self.lock_wanted and not self.lock_commanded:
            self.lock_commanded = True
            out.append(ev.SetLock(True))
        elif (not self.lock_wanted and self.lock_commanded
              and self.below_safe_voltage
              and not self.contactors_closed and not self.contactors_commanded):
            # Never unlock under voltage or with a contactor (welded or not) closed.
            self.lock_commanded = False
            out.append(ev.SetLock(False))

    def _recover(self, now: float, out: list[ev.Command]) -> None:
        if self.phase is Phase.FAULTED and not self.blocking_faults and (
                not self.contactors_closed and self.below_safe_voltage):
            plugged = self.pilot not in ("A",)
            new_vehicle = plugged and self.vehicle_left  # plugged again after it left
            self.fire(Trigger.RECOVERED_PLUGGED if plugged and not new_vehicle
                      else Trigger.RECOVERED_UNPLUGGED, now, out)
            if new_vehicle:
                self._on_plug_in(now, out)
        elif self.phase is Phase.AVAILABLE and not self.operative:
            self.fire(Trigger.DISABLE, now, out)
        elif self.phase is Phase.UNAVAILABLE and self.operative:
            self.fire(Trigger.ENABLE, now, out)
