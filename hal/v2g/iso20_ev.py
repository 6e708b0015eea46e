"""The EV's side of ISO 15118-20 DC (the simulated truck): the VehicleLink requests as
-20 documents, and -20 responses read back.

The truck asks in ISO-2 order; -20 orders and splits the set-up differently, so one
request may become several -20 messages: ServiceDiscovery -> AuthorizationSetup;
ChargeParameterDiscovery -> ServiceDiscovery, ServiceDetail, ServiceSelection,
DC_ChargeParameterDiscovery, ScheduleExchange. PaymentServiceSelection has no -20
message (the payment choice is the AuthorizationSetup/Authorization pair).
"""

from __future__ import annotations

import time
from typing import Any

from hal import vehicle_link as vl
from hal.v2g.iso20 import DC_SERVICE_ID, PARAMETER_SET_ID, MessageError, header, response_name
from hal.v2g.values import number, rational

Doc = dict[str, Any]


def _msg(name: str, session_id: bytes, **body: Any) -> Doc:
    return {name: {"Header": header(session_id, int(time.time())), **body}}


def requests(req: vl.VehicleRequest, session_id: bytes, evccid: bytes,
             soc: float) -> list[Doc]:
    s = session_id
    match req:
        case vl.SessionSetupReq(evccid_text):
            return [_msg("SessionSetupReq", s, EVCCID=evccid_text or evccid.hex().upper())]
        case vl.ServiceDiscoveryReq():
            return [_msg("AuthorizationSetupReq", s)]
        case vl.PaymentServiceSelectionReq():
            return []
        case vl.AuthorizationReq():
            return [_msg("AuthorizationReq", s, SelectedAuthorizationService="EIM",
                         EIM_AReqAuthorizationMode={})]
        case vl.ChargeParameterDiscoveryReq(ev):
            mode = {"EVMaximumChargePower": rational(ev.max_power_w),
                    "EVMinimumChargePower": rational(0.0),
                    "EVMaximumChargeCurrent": rational(ev.max_current_a),
                    "EVMinimumChargeCurrent": rational(0.0),
                    "EVMaximumVoltage": rational(ev.max_voltage_v),
                    "EVMinimumVoltage": rational(0.0),
                    "TargetSOC": round(ev.target_soc_percent)}
            return [
                _msg("ServiceDiscoveryReq", s),
                _msg("ServiceDetailReq", s, ServiceID=DC_SERVICE_ID),
                _msg("ServiceSelectionReq", s, SelectedEnergyTransferService={
                    "ServiceID": DC_SERVICE_ID, "ParameterSetID": PARAMETER_SET_ID}),
                _msg("DC_ChargeParameterDiscoveryReq", s, DC_CPDReqEnergyTransferMode=mode),
                _msg("ScheduleExchangeReq", s, MaximumSupportingPoints=1024,
                     Scheduled_SEReqControlMode={})]
        case vl.CableCheckReq():
            return [_msg("DC_CableCheckReq", s)]
        case vl.PreChargeReq(volts, _):
            return [_msg("DC_PreChargeReq", s, EVProcessing="Ongoing",
                         EVPresentVoltage=rational(volts), EVTargetVoltage=rational(volts))]
        case vl.PowerDeliveryReq(start):
            return [_msg("PowerDeliveryReq", s, EVProcessing="Finished",
                         ChargeProgress="Start" if start else "Stop")]
        case vl.CurrentDemandReq():
            display: Doc = {"PresentSOC": max(0, min(100, round(req.soc_percent))),
                            "ChargingComplete": req.charging_complete}
            if req.remaining_time_s is not None:
                display["RemainingTimeToTargetSOC"] = int(min(req.remaining_time_s, 4e9))
            return [_msg("DC_ChargeLoopReq", s, DisplayParameters=display,
                         MeterInfoRequested=False,
                         EVPresentVoltage=rational(req.target_voltage_v),
                         Scheduled_DC_CLReqControlMode={
                             "EVTargetCurrent": rational(req.target_current_a),
                             "EVTargetVoltage": rational(req.target_voltage_v),
                             "EVMaximumChargePower": rational(req.max_power_w),
                             "EVMaximumChargeCurrent": rational(req.max_current_a),
                             "EVMaximumVoltage": rational(req.max_voltage_v)})]
        case vl.WeldingDetectionReq():
            return [_msg("DC_WeldingDetectionReq", s, EVProcessing="Ongoing")]
        case vl.SessionStopReq():
            return [_msg("SessionStopReq", s, ChargingSession="Terminate")]
    raise TypeError(f"not a wire request: {req!r}")


def response(req_name: str, doc: Doc, vl_name: str) -> tuple[bytes, vl.VehicleResponse]:
    try:
        ((name, body),) = doc.items()
        if name != response_name(req_name):
            raise MessageError(f"{name} does not answer {req_name}")
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
