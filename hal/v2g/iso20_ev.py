"""The EV's side of ISO 15118-20 DC (the simulated truck): the VehicleLink requests as
-20 documents, and -20 responses read back.

The truck asks in ISO-2 order; -20 orders and splits the set-up differently, so one
request may become several -20 messages: ServiceDiscovery -> AuthorizationSetup;
ChargeParameterDiscovery -> ServiceDiscovery, ServiceDetail, ServiceSelection,
DC_ChargeParameterDiscovery, ScheduleExchange. PaymentServiceSelection has no -20
message (the payment choice is the AuthorizationSetup/Authorization pair).

The control mode is the EV's choice: ``Choice`` says which it prefers, learns the SECC's
parameter sets from ServiceDetailRes, and selects the set of that mode (else the first one
offered); ScheduleExchange and DC_ChargeLoop then speak that mode. The messages of one
request are made one at a time, so ServiceSelectionReq is made after ServiceDetailRes came.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from hal import vehicle_link as vl
from hal.v2g.iso20 import (
    CONTROL_MODE_VALUE,
    DC_SERVICE_ID,
    PARAMETER_SET_ID,
    MessageError,
    header,
    response_name,
)
from hal.v2g.values import number, rational

Doc = dict[str, Any]


DEPARTURE_S = 4 * 3600  # a truck's stop at a hub: leaves within about four hours (approx.)


@dataclass
class Choice:
    """The EV's control mode: the one it prefers, then the one the SECC's sets allowed."""

    prefer: str = "Scheduled"  # or "Dynamic"
    control_mode: str = "Scheduled"
    parameter_set_id: int = PARAMETER_SET_ID

    def learn(self, name: str, body: Doc) -> None:
        if name != "ServiceDetailRes":
            return
        sets = body.get("ServiceParameterList", {}).get("ParameterSet", [])
        modes = {v: k for k, v in CONTROL_MODE_VALUE.items()}
        offered = [(p["ParameterSetID"], modes.get(q.get("intValue"), ""))
                   for p in sets for q in p.get("Parameter", [])
                   if q.get("@Name") == "ControlMode"]
        for set_id, mode in offered:
            if mode == self.prefer:
                self.parameter_set_id, self.control_mode = set_id, mode
                return
        if offered:
            self.parameter_set_id, self.control_mode = offered[0][0], offered[0][1] or "Scheduled"


def _msg(name: str, session_id: bytes, **body: Any) -> Doc:
    return {name: {"Header": header(session_id, int(time.time())), **body}}


def requests(req: vl.VehicleRequest, session_id: bytes, evccid: bytes,
             soc: float, choice: Choice | None = None) -> Iterator[Doc]:
    """The -20 messages of one request, each made when the one before was answered (pass
    every answer to ``response`` with the same ``choice``)."""
    c = choice if choice is not None else Choice()
    s = session_id
    match req:
        case vl.SessionSetupReq(evccid_text):
            yield _msg("SessionSetupReq", s, EVCCID=evccid_text or evccid.hex().upper())
        case vl.ServiceDiscoveryReq():
            yield _msg("AuthorizationSetupReq", s)
        case vl.PaymentServiceSelectionReq():
            return
        case vl.AuthorizationReq():
            yield _msg("AuthorizationReq", s, SelectedAuthorizationService="EIM",
                       EIM_AReqAuthorizationMode={})
        case vl.ChargeParameterDiscoveryReq(ev):
            mode = {"EVMaximumChargePower": rational(ev.max_power_w),
                    "EVMinimumChargePower": rational(0.0),
                    "EVMaximumChargeCurrent": rational(ev.max_current_a),
                    "EVMinimumChargeCurrent": rational(0.0),
                    "EVMaximumVoltage": rational(ev.max_voltage_v),
                    "EVMinimumVoltage": rational(0.0),
                    "TargetSOC": round(ev.target_soc_percent)}
            yield _msg("ServiceDiscoveryReq", s)
            yield _msg("ServiceDetailReq", s, ServiceID=DC_SERVICE_ID)
            yield _msg("ServiceSelectionReq", s, SelectedEnergyTransferService={
                "ServiceID": DC_SERVICE_ID, "ParameterSetID": c.parameter_set_id})
            yield _msg("DC_ChargeParameterDiscoveryReq", s, DC_CPDReqEnergyTransferMode=mode)
            if c.control_mode == "Dynamic":  # the energy it wants: what a full battery takes
                need = rational(ev.energy_capacity_wh * (100.0 - ev.soc_percent) / 100.0)
                yield _msg("ScheduleExchangeReq", s, MaximumSupportingPoints=1024,
                           Dynamic_SEReqControlMode={
                               "DepartureTime": DEPARTURE_S, "EVTargetEnergyRequest": need,
                               "EVMaximumEnergyRequest": need,
                               "EVMinimumEnergyRequest": rational(0.0)})
            else:
                yield _msg("ScheduleExchangeReq", s, MaximumSupportingPoints=1024,
                           Scheduled_SEReqControlMode={})
        case vl.CableCheckReq():
            yield _msg("DC_CableCheckReq", s)
        case vl.PreChargeReq(volts, _):
            yield _msg("DC_PreChargeReq", s, EVProcessing="Ongoing",
                       EVPresentVoltage=rational(volts), EVTargetVoltage=rational(volts))
        case vl.PowerDeliveryReq(start):
            yield _msg("PowerDeliveryReq", s, EVProcessing="Finished",
                       ChargeProgress="Start" if start else "Stop")
        case vl.CurrentDemandReq():
            display: Doc = {"PresentSOC": max(0, min(100, round(req.soc_percent))),
                            "ChargingComplete": req.charging_complete}
            if req.remaining_time_s is not None:
                display["RemainingTimeToTargetSOC"] = int(min(req.remaining_time_s, 4e9))
            loop: Doc = {"DisplayParameters": display, "MeterInfoRequested": False,
                         "EVPresentVoltage": rational(req.target_voltage_v)}
            if c.control_mode == "Dynamic":
                # the EV's limits only, the EVSE decides: the truck's current wish is its
                # limit (what it asks for is what it could take now)
                loop["Dynamic_DC_CLReqControlMode"] = {
                    "EVTargetEnergyRequest": rational(0.0),
                    "EVMaximumEnergyRequest": rational(0.0),
                    "EVMinimumEnergyRequest": rational(0.0),
                    "EVMaximumChargePower": rational(req.max_power_w),
                    "EVMinimumChargePower": rational(0.0),
                    "EVMaximumChargeCurrent": rational(req.target_current_a),
                    "EVMaximumVoltage": rational(req.target_voltage_v),
                    "EVMinimumVoltage": rational(0.0)}
            else:
                loop["Scheduled_DC_CLReqControlMode"] = {
                    "EVTargetCurrent": rational(req.target_current_a),
                    "EVTargetVoltage": rational(req.target_voltage_v),
                    "EVMaximumChargePower": rational(req.max_power_w),
                    "EVMaximumChargeCurrent": rational(req.max_current_a),
                    "EVMaximumVoltage": rational(req.max_voltage_v)}
            yield _msg("DC_ChargeLoopReq", s, **loop)
        case vl.WeldingDetectionReq():
            yield _msg("DC_WeldingDetectionReq", s, EVProcessing="Ongoing")
        case vl.SessionStopReq():
            yield _msg("SessionStopReq", s, ChargingSession="Terminate")
        case _:
            raise TypeError(f"not a wire request: {req!r}")


def response(req_name: str, doc: Doc, vl_name: str,
             choice: Choice | None = None) -> tuple[bytes, vl.VehicleResponse]:
    try:
        ((name, body),) = doc.items()
        if name != response_name(req_name):
            raise MessageError(f"{name} does not answer {req_name}")
        if choice is not None:
            choice.learn(name, body)
        raw = str(body["ResponseCode"])
        code = (vl.ResponseCode.OK if raw.startswith(("OK", "WARNING")) else
                vl.ResponseCode.FAILED_SEQUENCE_ERROR if raw == "FAILED_SequenceError"
                else vl.ResponseCode.FAILED)
        status = body.get("EVSEStatus", {})
        note = (vl.EvseNotification.STOP_CHARGING
                if status.get("EVSENotification") == "Terminate" else vl.EvseNotification.NONE)
        processing = (vl.Processing.FINISHED if body.get("EVSEProcessing", "Finished")
                      == "Finished" else vl.Processing.ONGOING)
        limits = (body.get("Scheduled_DC_CLResControlMode")
                  or body.get("Dynamic_DC_CLResControlMode")
                  or body.get("DC_CPDResEnergyTransferMode") or {})

        def get(key: str) -> float:
            return number(limits[key]) if key in limits else 0.0

        resp = vl.VehicleResponse(
            request=vl_name, code=code, processing=processing,
            present_voltage_v=number(body["EVSEPresentVoltage"])
            if "EVSEPresentVoltage" in body else 0.0,
            present_current_a=number(body["EVSEPresentCurrent"])
            if "EVSEPresentCurrent" in body else 0.0,
            max_voltage_v=get("EVSEMaximumVoltage"),
            max_current_a=get("EVSEMaximumChargeCurrent"),
            max_power_w=get("EVSEMaximumChargePower"),
            current_limit_reached=bool(body.get("EVSECurrentLimitAchieved", False)),
            notification=note)
        return bytes(body["Header"]["SessionID"]), resp
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise MessageError(f"{req_name} answer: {exc!r} missing or malformed") from None
