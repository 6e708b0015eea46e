"""The charger's side of the DC message exchange, and the timers that run with it.

``answer`` gives each vehicle request its response (ISO 15118-2 / DIN SPEC 70121 message
rules); ``progress`` runs the exchange's timers and the current ramp. This module owns
what the vehicle told (VehicleExchange) and the charging current (CurrentControl); the
rest of the session it reads and asks through the Bay. Neither does I/O.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from firmware.core import energize
from firmware.core import events as ev
from firmware.core import limits as lim
from firmware.core.bay import Bay
from firmware.core.events import StopReason
from firmware.core.transitions import (
    DELIVERING,
    ENDING,
    SETUP,
    TALKING,
    WINDING_DOWN,
    Phase,
    Trigger,
)
from firmware.errors import ErrorCode
from hal import vehicle_link as vl
from hal.power_stage import Mode

_OK, _FAILED = vl.ResponseCode.OK, vl.ResponseCode.FAILED
_SEQ = vl.ResponseCode.FAILED_SEQUENCE_ERROR
_ONGOING, _DONE = vl.Processing.ONGOING, vl.Processing.FINISHED


@dataclass
class VehicleExchange:
    """One vehicle's messages: when it may talk, when it last did, what it told."""

    pwm_at: float | None = None  # 5 % PWM on (or the data link up) since: setup timer
    link_pending: bool = False  # SLAC matching, not yet matched: its timers run, not ours
    setup_seen: bool = False  # SessionSetup arrived
    last_request_at: float | None = None  # sequence timer
    params: vl.EvParameters | None = None  # ChargeParameterDiscovery
    soc: float | None = None
    target_voltage_v: float = 0.0  # EVTargetVoltage (PreCharge, then CurrentDemand)
    target_current_a: float = 0.0  # EVTargetCurrent
    max_current_a: float = 0.0  # EVMaximumCurrentLimit
    max_power_w: float = 0.0  # EVMaximumPowerLimit

    def pwm_started(self, now: float) -> None:
        self.pwm_at = now

    def pwm_stopped(self) -> None:
        self.pwm_at, self.link_pending = None, False

    def data_link(self, ready: bool, now: float) -> None:
        self.link_pending = not ready
        if ready and self.pwm_at is not None:
            self.pwm_at = now

    def request_seen(self, now: float) -> None:
        self.last_request_at = now


@dataclass
class CurrentControl:
    """The charging current: the lowest limit (and which one), then the ramp."""

    setpoint_a: float = 0.0
    limit_a: float = 0.0
    binding: lim.BindingLimit | None = None  # set while Charging only
    ramp_at: float = 0.0

    def zero(self) -> None:
        """Supply off or ramping down: the setpoint is 0 A from now."""
        self.setpoint_a = 0.0

    def unbind(self) -> None:
        self.binding = None


def evse_max(bay: Bay) -> tuple[float, float, float]:
    cap = bay.capability
    return (min(cap.max_voltage_v, bay.limits.cable_max_voltage_v),
            min(cap.max_current_a, bay.limits.cable_max_current_a), cap.max_power_w)


def _response(bay: Bay, x: VehicleExchange, c: CurrentControl, req: vl.VehicleRequest,
              code: vl.ResponseCode = _OK,
              processing: vl.Processing = _DONE) -> vl.VehicleResponse:
    max_v, max_a, max_w = evse_max(bay)
    stopping = bay.phase in ENDING or bay.stop_reason is not None
    emergency = bay.phase is Phase.FAULTED
    note = (vl.EvseNotification.EMERGENCY_SHUTDOWN if emergency
            else vl.EvseNotification.STOP_CHARGING if stopping else vl.EvseNotification.NONE)
    return vl.VehicleResponse(
        request=type(req).__name__, code=code, processing=processing,
        present_voltage_v=bay.voltage_v, present_current_a=bay.current_a,
        max_voltage_v=max_v, max_current_a=max_a, max_power_w=max_w,
        current_limit_reached=c.setpoint_a + 0.5 < x.target_current_a, notification=note)


def answer(bay: Bay, x: VehicleExchange, c: CurrentControl, req: vl.VehicleRequest,
           now: float, out: list[ev.Command]) -> vl.VehicleResponse:
    if not isinstance(req, vl.LinkLost):
        # LinkLost is the driver's report, not a vehicle message: it must not restart
        # the sequence timer, or a departed truck's LinkLost (arriving after its unplug)
        # would time out the next truck's set-up a minute later.
        x.request_seen(now)
    match req:
        case vl.SessionSetupReq() | vl.ServiceDiscoveryReq() | vl.PaymentServiceSelectionReq():
            if bay.phase not in SETUP:
                return _sequence_error(bay, x, c, req, now, out)
            x.setup_seen = True
            return _response(bay, x, c, req)
        case vl.AuthorizationReq():
            if bay.phase not in SETUP:
                return _sequence_error(bay, x, c, req, now, out)
            done = bay.phase is Phase.AUTHORIZED
            return _response(bay, x, c, req, processing=_DONE if done else _ONGOING)
        case vl.ChargeParameterDiscoveryReq(params):
            if bay.phase is not Phase.AUTHORIZED:
                return _sequence_error(bay, x, c, req, now, out)
            x.params, x.soc = params, params.soc_percent
            x.max_current_a, x.max_power_w = params.max_current_a, params.max_power_w
            # The session's voltage range is negotiated here: the board gets its
            # over-voltage band before any test voltage (IEC 61851-23).
            negotiated_v = min(params.max_voltage_v, evse_max(bay)[0])
            out.append(ev.SetOverVoltageBand(lim.ovp_limit_v(negotiated_v)))
            return _response(bay, x, c, req)
        case vl.CableCheckReq(soc):
            x.soc = soc
            return _cable_check(bay, x, c, req, now, out)
        case vl.PreChargeReq(target_v, _):
            return _precharge(bay, x, c, req, target_v, now, out)
        case vl.PowerDeliveryReq(start):
            return _power_delivery(bay, x, c, req, start, now, out)
        case vl.CurrentDemandReq():
            return _current_demand(bay, x, c, req, now, out)
        case vl.WeldingDetectionReq() | vl.SessionStopReq():
            if bay.phase in WINDING_DOWN:
                # The EV checks its own contactors against the voltage at the inlet.
                return dataclasses.replace(_response(bay, x, c, req),
                                           present_voltage_v=bay.inlet_voltage_v)
            return _sequence_error(bay, x, c, req, now, out)
        case vl.LinkLost():
            if bay.phase in TALKING:
                bay.handle_link_lost(now, out)
            return _response(bay, x, c, req, code=_FAILED)
    raise TypeError(f"not a vehicle request: {req!r}")  # pragma: no cover - typed union


def _sequence_error(bay: Bay, x: VehicleExchange, c: CurrentControl, req: vl.VehicleRequest,
                    now: float, out: list[ev.Command]) -> vl.VehicleResponse:
    """A request out of order ends the session (ISO 15118-2: FAILED_SequenceError)."""
    if bay.phase is not Phase.AVAILABLE:
        bay.request_stop(StopReason.SEQUENCE_ERROR, now, out)
    return _response(bay, x, c, req, code=_SEQ)


def _cable_check(bay: Bay, x: VehicleExchange, c: CurrentControl, req: vl.VehicleRequest,
                 now: float, out: list[ev.Command]) -> vl.VehicleResponse:
    if bay.phase is Phase.AUTHORIZED:
        if x.params is None:
            return _sequence_error(bay, x, c, req, now, out)
        if bay.pilot not in ("C", "D") or not bay.below_safe_voltage:
            # Cable check runs in state C and only from below 60 V (IEC 61851-23).
            return _response(bay, x, c, req, processing=_ONGOING)
        energize.start_cable_check(bay.cable_check, x.params.max_voltage_v, evse_max(bay)[0],
                                   now)
        bay.want_lock(True)
        bay.fire(Trigger.CABLE_CHECK_START, now, out)
        return _response(bay, x, c, req, processing=_ONGOING)
    if bay.phase is Phase.CABLE_CHECK:
        # Finished once passed and the test voltage is discharged again, so PreCharge
        # starts from below the pack voltage (modules can only source current).
        done = bay.cable_check.passed and bay.below_safe_voltage
        return _response(bay, x, c, req, processing=_DONE if done else _ONGOING)
    return _sequence_error(bay, x, c, req, now, out)


def _precharge(bay: Bay, x: VehicleExchange, c: CurrentControl, req: vl.VehicleRequest,
               target_v: float, now: float, out: list[ev.Command]) -> vl.VehicleResponse:
    target_v = min(target_v, evse_max(bay)[0])
    first = bay.phase is Phase.CABLE_CHECK
    if first and bay.cable_check.passed:
        if not bay.close_contactors(now, out):
            if not bay.lock_locked:
                bay.request_stop(StopReason.FAULT, now, out, fault=ErrorCode.LOCK_FAILURE)
            else:
                bay.request_stop(StopReason.OTHER, now, out)
            return _response(bay, x, c, req, code=_FAILED)
        bay.fire(Trigger.PRECHARGE_START, now, out)
        energize.start_precharge(bay.precharge, now)
    elif bay.phase is not Phase.PRE_CHARGE:
        return _sequence_error(bay, x, c, req, now, out)
    energize.precharge_target(bay.precharge, target_v, first, out)
    return _response(bay, x, c, req)


def _power_delivery(bay: Bay, x: VehicleExchange, c: CurrentControl, req: vl.VehicleRequest,
                    start: bool, now: float, out: list[ev.Command]) -> vl.VehicleResponse:
    if start:
        if bay.phase is not Phase.PRE_CHARGE:
            return _sequence_error(bay, x, c, req, now, out)
        if not bay.contactors_closed:  # commanded at the first PreChargeReq, still open
            bay.raise_fault(ErrorCode.CONTACTOR_STUCK_OPEN, now, out)
            return _response(bay, x, c, req, code=_FAILED)
        x.target_voltage_v, x.target_current_a = bay.precharge.target_voltage_v, 0.0
        c.setpoint_a, c.ramp_at = 0.0, now
        bay.fire(Trigger.POWER_DELIVERY_START, now, out)
        out.append(ev.SetPower(Mode.CHARGE, x.target_voltage_v, 0.0))
        return _response(bay, x, c, req)
    if bay.phase in DELIVERING or bay.phase is Phase.PRE_CHARGE:
        bay.request_stop(StopReason.STOPPED_BY_EV, now, out)
    elif bay.phase not in ENDING:
        return _sequence_error(bay, x, c, req, now, out)
    return _response(bay, x, c, req)


def _current_demand(bay: Bay, x: VehicleExchange, c: CurrentControl, req: vl.CurrentDemandReq,
                    now: float, out: list[ev.Command]) -> vl.VehicleResponse:
    if bay.phase in ENDING:
        return _response(bay, x, c, req)  # notification already says StopCharging
    if bay.phase not in DELIVERING:
        return _sequence_error(bay, x, c, req, now, out)
    x.soc = req.soc_percent
    x.target_voltage_v, x.target_current_a = req.target_voltage_v, req.target_current_a
    x.max_current_a, x.max_power_w = req.max_current_a, req.max_power_w
    if bay.phase is Phase.CHARGING and req.target_current_a < 1.0:
        bay.fire(Trigger.EV_PAUSE, now, out)
    elif bay.phase is Phase.SUSPENDED_EV and req.target_current_a >= 1.0:
        bay.fire(Trigger.EV_RESUME, now, out)
    update_setpoint(bay, x, c, now, out)
    return _response(bay, x, c, req)


def update_setpoint(bay: Bay, x: VehicleExchange, c: CurrentControl, now: float,
                    out: list[ev.Command]) -> None:
    """The one place a charging current is chosen: lowest limit, then the ramp."""
    max_v, _, max_w = evse_max(bay)
    limit = lim.current_limit(
        ev_target_a=x.target_current_a, ev_max_a=x.max_current_a,
        cable_max_a=bay.limits.cable_max_current_a,
        allocation_a=bay.capability.max_current_a, evse_power_w=max_w,
        ev_power_w=x.max_power_w, voltage_v=max(bay.voltage_v, x.target_voltage_v * 0.5))
    c.limit_a, c.binding = limit.amps, limit.binding
    if bay.phase is not Phase.CHARGING:
        c.limit_a, c.binding = 0.0, None
    new = lim.ramp(c.setpoint_a, c.limit_a, bay.limits.ramp_a_per_s, now - c.ramp_at)
    c.ramp_at = now
    volts = min(x.target_voltage_v, max_v)
    if abs(new - c.setpoint_a) >= 0.05 or new == 0.0 and c.setpoint_a != 0.0:
        c.setpoint_a = new
        out.append(ev.SetPower(Mode.CHARGE, volts, new))


def progress(bay: Bay, x: VehicleExchange, c: CurrentControl, now: float,
             out: list[ev.Command]) -> None:
    """The exchange's timers and the current ramp, run after every event."""
    if x.pwm_at is not None and not x.setup_seen and not x.link_pending and (
            bay.phase in SETUP and now - x.pwm_at > lim.COMM_SETUP_TIMEOUT_S):
        bay.raise_fault(ErrorCode.COMM_SETUP_TIMEOUT, now, out)
    if x.last_request_at is not None and bay.phase in TALKING and (
            now - x.last_request_at > lim.SEQUENCE_TIMEOUT_S):
        bay.raise_fault(ErrorCode.VEHICLE_COMM_TIMEOUT, now, out)
    if bay.phase in DELIVERING and now - c.ramp_at >= 0.05:
        update_setpoint(bay, x, c, now, out)
