"""DIN SPEC 70121 and ISO 15118-2 DC (external identification): their documents <-> the
VehicleLink dataclasses, both ways (the SECC reads requests and writes responses; the
simulated EV does the opposite with the same tables).

The two message sets are one design with different names and a few different fields,
so one module holds both, the differences in a ``Dialect``. Documents are the EXI value
model of docs/EXI-API.md: ``{"V2G_Message": {"Header": {...}, "Body": {"XReq": {...}}}}``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hal import vehicle_link as vl
from hal.v2g.values import number, physical

Doc = dict[str, Any]


class MessageError(ValueError):
    """A document that decodes but does not carry what the message needs."""


@dataclass(frozen=True, slots=True)
class Dialect:
    schema: str
    payment_selection: str  # the message that selects the payment option
    authorization: str  # the message that asks whether the EV may charge
    flow: dict[str, frozenset[str]]  # last request (or "" before any) -> requests allowed next


def _after_setup(*names: str) -> frozenset[str]:
    return frozenset(names)


# ISO 15118-2 clause 8.8.2 / DIN SPEC 70121 clause 9.6 message sequences, DC, EIM. Keys
# are request names; PowerDeliveryReq is split into its start and stop forms. SessionStop
# may follow any message from charge parameter discovery on (the EV ends the session);
# the core then decides whether that is in order for the charging phase it is in.
_STOP = "SessionStopReq"
_DIN_FLOW = {
    "": _after_setup("SessionSetupReq"),
    "SessionSetupReq": _after_setup("ServiceDiscoveryReq"),
    "ServiceDiscoveryReq": _after_setup("ServicePaymentSelectionReq"),
    "ServicePaymentSelectionReq": _after_setup("ContractAuthenticationReq"),
    "ContractAuthenticationReq": _after_setup("ContractAuthenticationReq",
                                              "ChargeParameterDiscoveryReq"),
    "ChargeParameterDiscoveryReq": _after_setup("ChargeParameterDiscoveryReq", "CableCheckReq",
                                                _STOP),
    "CableCheckReq": _after_setup("CableCheckReq", "PreChargeReq", _STOP),
    "PreChargeReq": _after_setup("PreChargeReq", "PowerDeliveryReq:start", _STOP),
    "PowerDeliveryReq:start": _after_setup("CurrentDemandReq", "PowerDeliveryReq:stop"),
    "CurrentDemandReq": _after_setup("CurrentDemandReq", "PowerDeliveryReq:stop"),
    "PowerDeliveryReq:stop": _after_setup("WeldingDetectionReq", _STOP),
    "WeldingDetectionReq": _after_setup("WeldingDetectionReq", _STOP),
    _STOP: frozenset(),
}
_ISO2_FLOW = {
    "": _after_setup("SessionSetupReq"),
    "SessionSetupReq": _after_setup("ServiceDiscoveryReq"),
    "ServiceDiscoveryReq": _after_setup("ServiceDetailReq", "PaymentServiceSelectionReq"),
    "ServiceDetailReq": _after_setup("ServiceDetailReq", "PaymentServiceSelectionReq"),
    "PaymentServiceSelectionReq": _after_setup("AuthorizationReq"),
    "AuthorizationReq": _after_setup("AuthorizationReq", "ChargeParameterDiscoveryReq"),
    **{k: v for k, v in _DIN_FLOW.items() if k not in (
        "", "SessionSetupReq", "ServiceDiscoveryReq", "ServicePaymentSelectionReq",
        "ContractAuthenticationReq")},
}

DIN = Dialect("DIN", "ServicePaymentSelectionReq", "ContractAuthenticationReq", _DIN_FLOW)
ISO2 = Dialect("ISO2", "PaymentServiceSelectionReq", "AuthorizationReq", _ISO2_FLOW)


@dataclass
class Context:
    """What a response needs beyond the core's answer (fixed per connector or per session)."""

    session_id: bytes
    evse_id: str  # ISO-2: the EVSEID string (DIN: sent as its bytes)
    min_voltage_v: float = 150.0
    min_current_a: float = 0.0
    peak_current_ripple_a: float = 5.0  # DIN/ISO-2 EVSEPeakCurrentRipple (peak-to-peak)
    isolation_valid: bool = False  # cable check passed in this session
    evse_v: float = 0.0
    evse_a: float = 0.0


def split(doc: Doc) -> tuple[bytes, str, Doc]:
    """(SessionID, request name, body) of a V2G_Message."""
    try:
        msg = doc["V2G_Message"]
        session_id = bytes(msg["Header"]["SessionID"])
        ((name, body),) = msg["Body"].items()
    except (KeyError, TypeError, ValueError) as exc:
        raise MessageError(f"not a V2G_Message with one body element: {exc!r}") from None
    return session_id, name, body if isinstance(body, dict) else {}


def message(session_id: bytes, name: str, body: Doc) -> Doc:
    return {"V2G_Message": {"Header": {"SessionID": session_id}, "Body": {name: body}}}


def flow_key(name: str, req: vl.VehicleRequest | Doc | None) -> str:
    if isinstance(req, vl.PowerDeliveryReq):
        return f"{name}:{'start' if req.start else 'stop'}"
    return name


# --- requests: the SECC's reading ----------------------------------------------------------

def _soc(body: Doc) -> float:
    return float(body["DC_EVStatus"]["EVRESSSOC"])


def to_vehicle(d: Dialect, name: str, body: Doc) -> vl.VehicleRequest:
    try:
        return _to_vehicle(d, name, body)
    except (KeyError, TypeError, ValueError) as exc:
        raise MessageError(f"{name}: {exc!r} missing or malformed") from None


def _to_vehicle(d: Dialect, name: str, body: Doc) -> vl.VehicleRequest:
    if name == "SessionSetupReq":
        return vl.SessionSetupReq(bytes(body["EVCCID"]).hex().upper())
    if name == "ServiceDiscoveryReq":
        return vl.ServiceDiscoveryReq()
    if name == d.payment_selection:
        return vl.PaymentServiceSelectionReq(str(body["SelectedPaymentOption"]))
    if name == d.authorization:
        return vl.AuthorizationReq()
    if name == "ChargeParameterDiscoveryReq":
        p = body["DC_EVChargeParameter"]
        full = p.get("FullSOC")
        return vl.ChargeParameterDiscoveryReq(vl.EvParameters(
            max_voltage_v=number(p["EVMaximumVoltageLimit"]),
            max_current_a=number(p["EVMaximumCurrentLimit"]),
            max_power_w=number(p["EVMaximumPowerLimit"]) if "EVMaximumPowerLimit" in p
            else number(p["EVMaximumVoltageLimit"]) * number(p["EVMaximumCurrentLimit"]),
            energy_capacity_wh=number(p["EVEnergyCapacity"]) if "EVEnergyCapacity" in p else 0.0,
            soc_percent=float(p["DC_EVStatus"]["EVRESSSOC"]),
            target_soc_percent=float(full) if full is not None else 100.0))
    if name == "CableCheckReq":
        return vl.CableCheckReq(_soc(body))
    if name == "PreChargeReq":
        return vl.PreChargeReq(number(body["EVTargetVoltage"]), number(body["EVTargetCurrent"]))
    if name == "PowerDeliveryReq":
        if d is DIN:
            return vl.PowerDeliveryReq(start=bool(body["ReadyToChargeState"]))
        progress = body["ChargeProgress"]
        if progress == "Renegotiate":
            raise MessageError("PowerDeliveryReq: ChargeProgress Renegotiate is not offered")
        return vl.PowerDeliveryReq(start=progress == "Start")
    if name == "CurrentDemandReq":
        rt = body.get("RemainingTimeToFullSoC")
        return vl.CurrentDemandReq(
            target_voltage_v=number(body["EVTargetVoltage"]),
            target_current_a=number(body["EVTargetCurrent"]),
            soc_percent=_soc(body),
            max_voltage_v=number(body["EVMaximumVoltageLimit"])
            if "EVMaximumVoltageLimit" in body else number(body["EVTargetVoltage"]),
            max_current_a=number(body["EVMaximumCurrentLimit"])
            if "EVMaximumCurrentLimit" in body else number(body["EVTargetCurrent"]),
            max_power_w=number(body["EVMaximumPowerLimit"]) if "EVMaximumPowerLimit" in body
            else number(body["EVTargetVoltage"]) * number(body["EVTargetCurrent"]),
            remaining_time_s=number(rt) if rt is not None else None,
            charging_complete=bool(body["ChargingComplete"]))
    if name == "WeldingDetectionReq":
        return vl.WeldingDetectionReq()
    if name == "SessionStopReq":
        return vl.SessionStopReq()
    raise MessageError(f"{name} is not a request of the {d.schema} DC subset")


# --- responses: the SECC's writing -----------------------------------------------------------

_RES_OF = {"ServicePaymentSelectionReq": "ServicePaymentSelectionRes",
           "PaymentServiceSelectionReq": "PaymentServiceSelectionRes"}


def response_name(req_name: str) -> str:
    return _RES_OF.get(req_name, req_name[:-3] + "Res")


def _unit(d: Dialect, x: float, unit: str) -> Doc:
    return physical(x, unit)


def _status(d: Dialect, resp: vl.VehicleResponse | None, ctx: Context) -> Doc:
    note = resp.notification if resp is not None else vl.EvseNotification.NONE
    code = {vl.EvseNotification.NONE: "EVSE_Ready",
            vl.EvseNotification.STOP_CHARGING: "EVSE_Shutdown",
            vl.EvseNotification.EMERGENCY_SHUTDOWN: "EVSE_EmergencyShutdown"}[note]
    return {"EVSEIsolationStatus": "Valid" if ctx.isolation_valid else "Invalid",
            "EVSEStatusCode": code, "NotificationMaxDelay": 0,
            "EVSENotification": "None" if note is vl.EvseNotification.NONE else "StopCharging"}


def respond(d: Dialect, req_name: str, resp: vl.VehicleResponse, ctx: Context,
            code: str) -> Doc:
    """The response document to ``req_name`` carrying the core's answer ``resp``."""
    body: Doc = {"ResponseCode": code}
    processing = resp.processing.value
    if req_name == d.authorization and d is ISO2 and resp.processing is vl.Processing.ONGOING:
        processing = "Ongoing_WaitingForCustomerInteraction"  # EIM: waiting for the card
    v, a = resp.present_voltage_v, resp.present_current_a
    if req_name == "SessionSetupReq":
        body["EVSEID"] = ctx.evse_id.encode() if d is DIN else ctx.evse_id
    elif req_name == "ServiceDiscoveryReq":
        if d is DIN:
            body["PaymentOptions"] = {"PaymentOption": ["ExternalPayment"]}
            body["ChargeService"] = {
                "ServiceTag": {"ServiceID": 1, "ServiceCategory": "EVCharging"},
                "FreeService": False, "EnergyTransferType": "DC_extended"}
        else:
            body["PaymentOptionList"] = {"PaymentOption": ["ExternalPayment"]}
            body["ChargeService"] = {
                "ServiceID": 1, "ServiceCategory": "EVCharging", "FreeService": False,
                "SupportedEnergyTransferMode": {"EnergyTransferMode": ["DC_extended"]}}
    elif req_name == d.authorization:
        body["EVSEProcessing"] = processing
    elif req_name == "ChargeParameterDiscoveryReq":
        body["EVSEProcessing"] = processing
        if d is DIN:
            # DIN PMaxType is a bare short; EVs in DC follow the EVSE limits below.
            entry = {"RelativeTimeInterval": {"start": 0, "duration": 86400},
                     "PMax": min(32767, int(resp.max_power_w / 1000))}
            body["SAScheduleList"] = {"SAScheduleTuple": [{
                "SAScheduleTupleID": 1,
                "PMaxSchedule": {"PMaxScheduleID": 1, "PMaxScheduleEntry": [entry]}}]}
        else:
            # One schedule entry covering 24 h: a DC EV follows the EVSE limits below.
            entry = {"RelativeTimeInterval": {"start": 0, "duration": 86400},
                     "PMax": _unit(d, resp.max_power_w, "W")}
            body["SAScheduleList"] = {"SAScheduleTuple": [{
                "SAScheduleTupleID": 1, "PMaxSchedule": {"PMaxScheduleEntry": [entry]}}]}
        body["DC_EVSEChargeParameter"] = {
            "DC_EVSEStatus": _status(d, resp, ctx),
            "EVSEMaximumCurrentLimit": _unit(d, resp.max_current_a, "A"),
            "EVSEMaximumPowerLimit": _unit(d, resp.max_power_w, "W"),
            "EVSEMaximumVoltageLimit": _unit(d, resp.max_voltage_v, "V"),
            "EVSEMinimumCurrentLimit": _unit(d, ctx.min_current_a, "A"),
            "EVSEMinimumVoltageLimit": _unit(d, ctx.min_voltage_v, "V"),
            "EVSEPeakCurrentRipple": _unit(d, ctx.peak_current_ripple_a, "A")}
    elif req_name == "CableCheckReq":
        if resp.processing is vl.Processing.FINISHED and code.startswith("OK"):
            ctx.isolation_valid = True
        body["DC_EVSEStatus"] = _status(d, resp, ctx)
        body["EVSEProcessing"] = processing
    elif req_name in ("PreChargeReq", "WeldingDetectionReq"):
        body["DC_EVSEStatus"] = _status(d, resp, ctx)
        body["EVSEPresentVoltage"] = _unit(d, v, "V")
    elif req_name == "PowerDeliveryReq":
        body["DC_EVSEStatus"] = _status(d, resp, ctx)
    elif req_name == "CurrentDemandReq":
        body.update({
            "DC_EVSEStatus": _status(d, resp, ctx),
            "EVSEPresentVoltage": _unit(d, v, "V"), "EVSEPresentCurrent": _unit(d, a, "A"),
            "EVSECurrentLimitAchieved": resp.current_limit_reached,
            "EVSEVoltageLimitAchieved": False, "EVSEPowerLimitAchieved": False,
            "EVSEMaximumVoltageLimit": _unit(d, resp.max_voltage_v, "V"),
            "EVSEMaximumCurrentLimit": _unit(d, resp.max_current_a, "A"),
            "EVSEMaximumPowerLimit": _unit(d, resp.max_power_w, "W")})
        if d is ISO2:
            body["EVSEID"] = ctx.evse_id
            body["SAScheduleTupleID"] = 1
    return message(ctx.session_id, response_name(req_name), body)


def failed(d: Dialect, req_name: str, code: str, ctx: Context) -> Doc:
    """A FAILED_* response: the code and the mandatory fields at neutral values (the
    schema requires them whatever the code)."""
    resp = vl.VehicleResponse(request=req_name, code=vl.ResponseCode.FAILED,
                              notification=vl.EvseNotification.STOP_CHARGING)
    if req_name not in _KNOWN_REQUESTS:
        req_name = "SessionSetupReq" if req_name == "" else req_name
    return respond(d, req_name, resp, ctx, code)


_KNOWN_REQUESTS = frozenset(
    set(_DIN_FLOW) | set(_ISO2_FLOW) | {"ServicePaymentSelectionReq", "PowerDeliveryReq"})


def local_answer(d: Dialect, req_name: str, body: Doc, ctx: Context) -> Doc | None:
    """Requests the SECC answers from its own configuration (no charging decision in
    them): ISO-2 ServiceDetail for the one service we offer. None for all others."""
    if d is ISO2 and req_name == "ServiceDetailReq":
        service = body.get("ServiceID")
        code = "OK" if service == 1 else "FAILED_ServiceIDInvalid"
        return message(ctx.session_id, "ServiceDetailRes",
                       {"ResponseCode": code, "ServiceID": service if isinstance(service, int)
                        else 1})
    return None


# --- the EV's side (the simulated truck uses these) ------------------------------------------

def _ev_status(soc: float) -> Doc:
    return {"EVReady": True, "EVErrorCode": "NO_ERROR", "EVRESSSOC": max(0, min(100, round(soc)))}


def ev_request(d: Dialect, req: vl.VehicleRequest, session_id: bytes, evccid: bytes,
               soc: float) -> Doc:
    """The request document for ``req`` (``soc``: the last state of charge known)."""
    body: Doc
    match req:
        case vl.SessionSetupReq():
            name, body = "SessionSetupReq", {"EVCCID": evccid}
        case vl.ServiceDiscoveryReq():
            name, body = "ServiceDiscoveryReq", {}
        case vl.PaymentServiceSelectionReq(payment):
            selected = {"SelectedService": [{"ServiceID": 1}]}
            name, body = d.payment_selection, {"SelectedPaymentOption": payment,
                                               "SelectedServiceList": selected}
        case vl.AuthorizationReq():
            name, body = d.authorization, {}
        case vl.ChargeParameterDiscoveryReq(ev):
            param: Doc = {"DC_EVStatus": _ev_status(ev.soc_percent),
                          "EVMaximumCurrentLimit": physical(ev.max_current_a, "A"),
                          "EVMaximumPowerLimit": physical(ev.max_power_w, "W"),
                          "EVMaximumVoltageLimit": physical(ev.max_voltage_v, "V"),
                          "EVEnergyCapacity": physical(ev.energy_capacity_wh, "Wh"),
                          "FullSOC": round(ev.target_soc_percent)}
            mode = "DC_extended"
            name = "ChargeParameterDiscoveryReq"
            body = ({"EVRequestedEnergyTransferType": mode, "DC_EVChargeParameter": param}
                    if d is DIN else
                    {"RequestedEnergyTransferMode": mode, "DC_EVChargeParameter": param})
        case vl.CableCheckReq(soc_now):
            name, body = "CableCheckReq", {"DC_EVStatus": _ev_status(soc_now)}
        case vl.PreChargeReq(volts, amps):
            name, body = "PreChargeReq", {"DC_EVStatus": _ev_status(soc),
                                          "EVTargetVoltage": physical(volts, "V"),
                                          "EVTargetCurrent": physical(amps, "A")}
        case vl.PowerDeliveryReq(start):
            name = "PowerDeliveryReq"
            if d is DIN:
                body = {"ReadyToChargeState": start}
            else:
                body = {"ChargeProgress": "Start" if start else "Stop", "SAScheduleTupleID": 1}
            body["DC_EVPowerDeliveryParameter"] = {"DC_EVStatus": _ev_status(soc),
                                                   "ChargingComplete": not start}
        case vl.CurrentDemandReq():
            name, body = "CurrentDemandReq", {
                "DC_EVStatus": _ev_status(req.soc_percent),
                "EVTargetCurrent": physical(req.target_current_a, "A"),
                "EVMaximumVoltageLimit": physical(req.max_voltage_v, "V"),
                "EVMaximumCurrentLimit": physical(req.max_current_a, "A"),
                "EVMaximumPowerLimit": physical(req.max_power_w, "W"),
                "ChargingComplete": req.charging_complete,
                "EVTargetVoltage": physical(req.target_voltage_v, "V")}
            if req.remaining_time_s is not None:
                body["RemainingTimeToFullSoC"] = physical(min(req.remaining_time_s, 3.2e7), "s")
        case vl.WeldingDetectionReq():
            name, body = "WeldingDetectionReq", {"DC_EVStatus": _ev_status(soc)}
        case vl.SessionStopReq():
            name, body = "SessionStopReq", {} if d is DIN else {"ChargingSession": "Terminate"}
        case _:
            raise TypeError(f"not a wire request: {req!r}")
    return message(session_id, name, body)


_NOTE = {"None": vl.EvseNotification.NONE, "StopCharging": vl.EvseNotification.STOP_CHARGING,
         "ReNegotiation": vl.EvseNotification.NONE}


def ev_response(d: Dialect, req_name: str, doc: Doc,
                vl_name: str) -> tuple[bytes, str, vl.VehicleResponse]:
    """(SessionID, the response's raw ResponseCode, the answer as the truck reads it);
    ``vl_name``: the VehicleLink request class the truck asked with."""
    session_id, name, body = split(doc)
    if name != response_name(req_name):
        raise MessageError(f"{name} does not answer {req_name}")
    try:
        raw = str(body["ResponseCode"])
        code = (vl.ResponseCode.OK if raw.startswith("OK") else
                vl.ResponseCode.FAILED_SEQUENCE_ERROR if raw == "FAILED_SequenceError"
                else vl.ResponseCode.FAILED)
        status = body.get("DC_EVSEStatus") or body.get("DC_EVSEChargeParameter", {}).get(
            "DC_EVSEStatus") or {}
        note = _NOTE.get(status.get("EVSENotification", "None"), vl.EvseNotification.NONE)
        if status.get("EVSEStatusCode") == "EVSE_EmergencyShutdown":
            note = vl.EvseNotification.EMERGENCY_SHUTDOWN
        processing = (vl.Processing.FINISHED if body.get("EVSEProcessing", "Finished")
                      == "Finished" else vl.Processing.ONGOING)
        limits = body.get("DC_EVSEChargeParameter", body)
        def get(key: str) -> float:
            return number(limits[key]) if key in limits else 0.0
        resp = vl.VehicleResponse(
            request=vl_name,
            code=code, processing=processing,
            present_voltage_v=number(body["EVSEPresentVoltage"])
            if "EVSEPresentVoltage" in body else 0.0,
            present_current_a=number(body["EVSEPresentCurrent"])
            if "EVSEPresentCurrent" in body else 0.0,
            max_voltage_v=get("EVSEMaximumVoltageLimit"),
            max_current_a=get("EVSEMaximumCurrentLimit"),
            max_power_w=get("EVSEMaximumPowerLimit"),
            current_limit_reached=bool(body.get("EVSECurrentLimitAchieved", False)),
            notification=note)
    except (KeyError, TypeError, ValueError) as exc:
        raise MessageError(f"{name}: {exc!r} missing or malformed") from None
    return session_id, raw, resp
