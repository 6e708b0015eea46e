"""The charger's side of the DC message exchange, and the timers that run with it.

``answer`` gives each vehicle request its response (ISO 15118-2 / DIN SPEC 70121 message
rules); ``progress`` advances cable check, precharge and the current ramp with time.
Both act on a ConnectorSession and append commands; neither does I/O.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from firmware.core import events as ev
from firmware.core import limits as lim
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
from hal.power_stage import TEST_CURRENT_LIMIT_A, Mode

if TYPE_CHECKING:
    from firmware.core.session import ConnectorSession

_OK, _FAILED = vl.ResponseCode.OK, vl.ResponseCode.FAILED
_SEQ = vl.ResponseCode.FAILED_SEQUENCE_ERROR
_ONGOING, _DONE = vl.Processing.ONGOING, vl.Processing.FINISHED


def _evse_max(s: ConnectorSession) -> tuple[float, float, float]:
    cap = s.capability
    return (min(cap.max_voltage_v, s.limits.cable_max_voltage_v),
            min(cap.max_current_a, s.limits.cable_max_current_a), cap.max_power_w)


def _response(s: ConnectorSession, req: vl.VehicleRequest, code: vl.ResponseCode = _OK,
              processing: vl.Processing = _DONE) -> vl.VehicleResponse:
    max_v, max_a, max_w = _evse_max(s)
    stopping = s.phase in ENDING or s.stop_reason is not None
    emergency = s.phase is Phase.FAULTED
    note = (vl.EvseNotification.EMERGENCY_SHUTDOWN if emergency
            else vl.EvseNotification.STOP_CHARGING if stopping else vl.EvseNotification.NONE)
    return vl.VehicleResponse(
        request=type(req).__name__, code=code, processing=processing,
        present_voltage_v=s.voltage_v, present_current_a=s.current_a,
        max_voltage_v=max_v, max_current_a=max_a, max_power_w=max_w,
        current_limit_reached=s.setpoint_a + 0.5 < s.ev_target_a, notification=note)


def answer(s: ConnectorSession, req: vl.VehicleRequest, now: float,
           out: list[ev.Command]) -> vl.VehicleResponse:
    match req:
        case vl.SessionSetupReq() | vl.ServiceDiscoveryReq() | vl.PaymentServiceSelectionReq():
            if s.phase not in SETUP:
                return _sequence_error(s, req, now, out)
            s.setup_seen = True
            return _response(s, req)
        case vl.AuthorizationReq():
            if s.phase not in SETUP:
                return _sequence_error(s, req, now, out)
            done = s.phase is Phase.AUTHORIZED
            return _response(s, req, processing=_DONE if done else _ONGOING)
        case vl.ChargeParameterDiscoveryReq(params):
            if s.phase is not Phase.AUTHORIZED:
                return _sequence_error(s, req, now, out)
            s.ev_params, s.soc = params, params.soc_percent
            s.ev_max_a, s.ev_max_w = params.max_current_a, params.max_power_w
            return _response(s, req)
        case vl.CableCheckReq(soc):
            s.soc = soc
            return _cable_check(s, req, now, out)
        case vl.PreChargeReq(target_v, _):
            return _precharge(s, req, target_v, now, out)
        case vl.PowerDeliveryReq(start):
            return _power_delivery(s, req, start, now, out)
        case vl.CurrentDemandReq():
            return _current_demand(s, req, now, out)
        case vl.WeldingDetectionReq() | vl.SessionStopReq():
            if s.phase in WINDING_DOWN:
                return _response(s, req)
            return _sequence_error(s, req, now, out)
        case vl.LinkLost():
            if s.phase in TALKING:
                s.handle_link_lost(now, out)
            return _response(s, req, code=_FAILED)
    raise TypeError(f"not a vehicle request: {req!r}")  # pragma: no cover - typed union


def _sequence_error(s: ConnectorSession, req: vl.VehicleRequest, now: float,
                    out: list[ev.Command]) -> vl.VehicleResponse:
    """A request out of order ends the session (ISO 15118-2: FAILED_SequenceError)."""
    if s.phase is not Phase.AVAILABLE:
        s.request_stop(StopReason.SEQUENCE_ERROR, now, out)
    return _response(s, req, code=_SEQ)


def _cable_check(s: ConnectorSession, req: vl.VehicleRequest, now: float,
                 out: list[ev.Command]) -> vl.VehicleResponse:
    if s.phase is Phase.AUTHORIZED:
        if s.ev_params is None:
            return _sequence_error(s, req, now, out)
        if s.pilot not in ("C", "D") or not s.below_safe_voltage:
            # Cable check runs in state C and only from below 60 V (IEC 61851-23).
            return _response(s, req, processing=_ONGOING)
        evse_max_v = _evse_max(s)[0]
        s.cc_voltage = lim.cable_check_voltage(s.ev_params.max_voltage_v, evse_max_v)
        s.cc_started, s.cc_applied, s.cc_reached_at = now, False, None
        s.cable_check_passed = False
        s.lock_wanted = True
        s.fire(Trigger.CABLE_CHECK_START, now, out)
        return _response(s, req, processing=_ONGOING)
    if s.phase is Phase.CABLE_CHECK:
        # Finished once passed and the test voltage is discharged again, so PreCharge
        # starts from below the pack voltage (modules can only source current).
        done = s.cable_check_passed and s.below_safe_voltage
        return _response(s, req, processing=_DONE if done else _ONGOING)
    return _sequence_error(s, req, now, out)


def _precharge(s: ConnectorSession, req: vl.VehicleRequest, target_v: float, now: float,
               out: list[ev.Command]) -> vl.VehicleResponse:
    target_v = min(target_v, _evse_max(s)[0])
    first = s.phase is Phase.CABLE_CHECK
    if first and s.cable_check_passed:
        if not s.close_contactors(now, out):
            if not s.lock_locked:
                s.request_stop(StopReason.FAULT, now, out, fault=ErrorCode.LOCK_FAILURE)
            else:
                s.request_stop(StopReason.OTHER, now, out)
            return _response(s, req, code=_FAILED)
        s.fire(Trigger.PRECHARGE_START, now, out)
        s.pc_started, s.pc_matched = now, False
    elif s.phase is not Phase.PRE_CHARGE:
        return _sequence_error(s, req, now, out)
    if first or abs(target_v - s.pc_target_v) > 0.5:
        s.pc_target_v = target_v
        out.append(ev.SetPower(Mode.PRECHARGE, target_v, TEST_CURRENT_LIMIT_A))
    return _response(s, req)


def _power_delivery(s: ConnectorSession, req: vl.VehicleRequest, start: bool, now: float,
                    out: list[ev.Command]) -> vl.VehicleResponse:
    if start:
        if s.phase is not Phase.PRE_CHARGE:
            return _sequence_error(s, req, now, out)
        if not s.contactors_closed:  # commanded at the first PreChargeReq, still open
            s.raise_fault(ErrorCode.CONTACTOR_STUCK_OPEN, now, out)
            return _response(s, req, code=_FAILED)
        s.ev_target_v, s.ev_target_a = s.pc_target_v, 0.0
        s.setpoint_a, s.ramp_at = 0.0, now
        s.fire(Trigger.POWER_DELIVERY_START, now, out)
        out.append(ev.SetPower(Mode.CHARGE, s.ev_target_v, 0.0))
        return _response(s, req)
    if s.phase in DELIVERING or s.phase is Phase.PRE_CHARGE:
        s.request_stop(StopReason.STOPPED_BY_EV, now, out)
    elif s.phase not in ENDING:
        return _sequence_error(s, req, now, out)
    return _response(s, req)


def _current_demand(s: ConnectorSession, req: vl.CurrentDemandReq, now: float,
                    out: list[ev.Command]) -> vl.VehicleResponse:
    if s.phase in ENDING:
        return _response(s, req)  # notification already says StopCharging
    if s.phase not in DELIVERING:
        return _sequence_error(s, req, now, out)
    s.soc = req.soc_percent
    s.ev_target_v, s.ev_target_a = req.target_voltage_v, req.target_current_a
    s.ev_max_a, s.ev_max_w = req.max_current_a, req.max_power_w
    if s.phase is Phase.CHARGING and req.target_current_a < 1.0:
        s.fire(Trigger.EV_PAUSE, now, out)
    elif s.phase is Phase.SUSPENDED_EV and req.target_current_a >= 1.0:
        s.fire(Trigger.EV_RESUME, now, out)
    update_setpoint(s, now, out)
    return _response(s, req)


def update_setpoint(s: ConnectorSession, now: float, out: list[ev.Command]) -> None:
    """The one place a charging current is chosen: lowest limit, then the ramp."""
    max_v, _, max_w = _evse_max(s)
    limit = lim.current_limit(
        ev_target_a=s.ev_target_a, ev_max_a=s.ev_max_a,
        cable_max_a=s.limits.cable_max_current_a, allocation_a=s.capability.max_current_a,
        evse_power_w=max_w, ev_power_w=s.ev_max_w,
        voltage_v=max(s.voltage_v, s.ev_target_v * 0.5))
    s.limit_a, s.binding_limit = limit.amps, limit.binding
    if s.phase is not Phase.CHARGING:
        s.limit_a, s.binding_limit = 0.0, None
    new = lim.ramp(s.setpoint_a, s.limit_a, s.limits.ramp_a_per_s, now - s.ramp_at)
    s.ramp_at = now
    volts = min(s.ev_target_v, max_v)
    if abs(new - s.setpoint_a) >= 0.05 or new == 0.0 and s.setpoint_a != 0.0:
        s.setpoint_a = new
        out.append(ev.SetPower(Mode.CHARGE, volts, new))


def progress(s: ConnectorSession, now: float, out: list[ev.Command]) -> None:
    """Timers and slow loops, run after every event."""
    if s.pwm_at is not None and not s.setup_seen and s.phase in SETUP and (
            now - s.pwm_at > lim.COMM_SETUP_TIMEOUT_S):
        s.raise_fault(ErrorCode.COMM_SETUP_TIMEOUT, now, out)
    if s.last_request_at is not None and s.phase in TALKING and (
            now - s.last_request_at > lim.SEQUENCE_TIMEOUT_S):
        s.raise_fault(ErrorCode.VEHICLE_COMM_TIMEOUT, now, out)
    if s.phase is Phase.CABLE_CHECK and not s.cable_check_passed:
        _cable_check_progress(s, now, out)
    elif s.phase is Phase.PRE_CHARGE and not s.pc_matched:
        if abs(s.voltage_v - s.pc_target_v) <= lim.PRECHARGE_TOLERANCE_V:
            s.pc_matched = True
        elif now - s.pc_started > lim.PRECHARGE_TIMEOUT_S:
            s.raise_fault(ErrorCode.PRECHARGE_TIMEOUT, now, out)
    elif s.phase in DELIVERING and now - s.ramp_at >= 0.05:
        update_setpoint(s, now, out)


def _cable_check_progress(s: ConnectorSession, now: float, out: list[ev.Command]) -> None:
    if now - s.cc_started > lim.CABLE_CHECK_TIMEOUT_S:
        s.raise_fault(ErrorCode.CABLE_CHECK_TIMEOUT, now, out)
        return
    if not s.cc_applied:
        if s.lock_locked:  # test voltage only behind a confirmed lock
            s.cc_applied = True
            out.append(ev.SetPower(Mode.CABLE_CHECK, s.cc_voltage, TEST_CURRENT_LIMIT_A))
        return
    if s.cc_reached_at is None:
        if s.voltage_v >= lim.CABLE_CHECK_REACHED * s.cc_voltage:
            s.cc_reached_at = now
        return
    if now - s.cc_reached_at >= s.limits.cable_check_settle_s:
        # The isolation monitor measured for the settle time without raising a fault
        # (an isolation fault arrives as FaultRaised and ends the session before this).
        s.cable_check_passed = True
        out.append(ev.SetPower(Mode.OFF, 0.0, 0.0))
