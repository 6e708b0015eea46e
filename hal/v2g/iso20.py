"""ISO 15118-20 DC (EIM, scheduled or dynamic control mode): documents <-> VehicleLink.

Both control modes are offered, one ServiceDetail parameter set each; the EV chooses one in
ServiceSelection, and ScheduleExchange and DC_ChargeLoop must then carry that mode. In
dynamic mode the EV gives its limits only, and the EVSE decides the power: the core gets the
EV's maximum current and voltage as its request and answers with what it delivers.

-20 messages are global elements with their own Header (SessionID, TimeStamp); the
common messages travel as payload type 0x8002 in the CommonMessages schema, the DC ones
(DC_*) as 0x8004 in the DC schema (ISO 15118-20 clause 7.8.3). Values are
RationalNumbers (Exponent, Value).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hal import vehicle_link as vl
from hal.v2g.v2gtp import PayloadType
from hal.v2g.values import number, rational

Doc = dict[str, Any]

CM, DC = "ISO20_CM", "ISO20_DC"
DC_SERVICE_ID = 2  # ISO 15118-20 service IDs: 1 AC, 2 DC, 3 WPT, 4 DC_ACDP
# Our parameter sets of the DC service, by ISO 15118-20 ControlMode parameter value
# (1 scheduled, 2 dynamic): set ID -> control mode.
PARAMETER_SET_ID = 1  # scheduled
DYNAMIC_SET_ID = 2
CONTROL_MODES = {PARAMETER_SET_ID: "Scheduled", DYNAMIC_SET_ID: "Dynamic"}
CONTROL_MODE_VALUE = {"Scheduled": 1, "Dynamic": 2}
_STOP = "SessionStopReq"

# ISO 15118-20 clause 8.8 message sequence, DC with EIM. SessionStop may follow any
# message from DC_ChargeParameterDiscovery on; the core judges it against its phase.
FLOW: dict[str, frozenset[str]] = {
    "": frozenset({"SessionSetupReq"}),
    "SessionSetupReq": frozenset({"AuthorizationSetupReq"}),
    "AuthorizationSetupReq": frozenset({"AuthorizationReq"}),
    "AuthorizationReq": frozenset({"AuthorizationReq", "ServiceDiscoveryReq"}),
    "ServiceDiscoveryReq": frozenset({"ServiceDetailReq", "ServiceSelectionReq"}),
    "ServiceDetailReq": frozenset({"ServiceDetailReq", "ServiceSelectionReq"}),
    "ServiceSelectionReq": frozenset({"DC_ChargeParameterDiscoveryReq"}),
    "DC_ChargeParameterDiscoveryReq": frozenset({"ScheduleExchangeReq", _STOP}),
    "ScheduleExchangeReq": frozenset({"ScheduleExchangeReq", "DC_CableCheckReq", _STOP}),
    "DC_CableCheckReq": frozenset({"DC_CableCheckReq", "DC_PreChargeReq", _STOP}),
    "DC_PreChargeReq": frozenset({"DC_PreChargeReq", "PowerDeliveryReq:ongoing",
                                  "PowerDeliveryReq:start", _STOP}),
    "PowerDeliveryReq:ongoing": frozenset({"PowerDeliveryReq:ongoing", "PowerDeliveryReq:start",
                                           _STOP}),
    "PowerDeliveryReq:start": frozenset({"DC_ChargeLoopReq", "PowerDeliveryReq:stop"}),
    "DC_ChargeLoopReq": frozenset({"DC_ChargeLoopReq", "PowerDeliveryReq:stop"}),
    "PowerDeliveryReq:stop": frozenset({"DC_WeldingDetectionReq", _STOP}),
    "DC_WeldingDetectionReq": frozenset({"DC_WeldingDetectionReq", _STOP}),
    _STOP: frozenset(),
}


class MessageError(ValueError):
    pass


@dataclass
class Context:
    session_id: bytes
    evse_id: str
    min_voltage_v: float = 150.0
    timestamp: int = 0  # Unix seconds for the Header (the shell sets it)
    soc: float = 0.0  # last DisplayParameters.PresentSOC (-20 has no SoC before the loop)
    max_power_w: float = 0.0  # from the core's last ChargeParameterDiscovery answer
    control_mode: str = "Scheduled"


def schema_of(name: str) -> str:
    return DC if name.startswith("DC_") else CM


def header(ctx_or_id: Context | bytes, timestamp: int = 0) -> Doc:
    if isinstance(ctx_or_id, Context):
        return {"SessionID": ctx_or_id.session_id, "TimeStamp": ctx_or_id.timestamp}
    return {"SessionID": ctx_or_id, "TimeStamp": timestamp}


def split(doc: Doc) -> tuple[bytes, str, Doc]:
    try:
        ((name, body),) = doc.items()
        return bytes(body["Header"]["SessionID"]), name, body
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise MessageError(f"not a -20 message with a Header: {exc!r}") from None


def flow_key(name: str, req: vl.VehicleRequest | Doc | None) -> str:
    """The request's place in FLOW; ``req``: the core's request, or the body of one the
    SECC answers itself."""
    if isinstance(req, vl.PowerDeliveryReq):
        return f"{name}:{'start' if req.start else 'stop'}"
    if name == "PowerDeliveryReq" and isinstance(req, dict):
        return f"{name}:ongoing"
    return name


# The SECC answers these from configuration (what we offer), with no charging decision.
# A PowerDeliveryReq with EVProcessing Ongoing is the EV still getting ready (ISO 15118-20
# PowerDelivery): acknowledged; the core gets the one with Finished.
LOCAL = frozenset({"AuthorizationSetupReq", "ServiceDetailReq", "ServiceSelectionReq",
                   "ScheduleExchangeReq"})


def is_local(name: str, body: Doc) -> bool:
    return name in LOCAL or (name == "PowerDeliveryReq" and body.get("EVProcessing") == "Ongoing")


def to_vehicle(name: str, body: Doc, ctx: Context) -> vl.VehicleRequest:
    try:
        return _to_vehicle(name, body, ctx)
    except (KeyError, TypeError, ValueError) as exc:
        raise MessageError(f"{name}: {exc!r} missing or malformed") from None


def _to_vehicle(name: str, body: Doc, ctx: Context) -> vl.VehicleRequest:
    if name == "SessionSetupReq":
        return vl.SessionSetupReq(str(body["EVCCID"]))
    if name == "AuthorizationReq":
        if body["SelectedAuthorizationService"] != "EIM":
            raise MessageError("AuthorizationReq: only EIM is offered")
        return vl.AuthorizationReq()
    if name == "ServiceDiscoveryReq":
        return vl.ServiceDiscoveryReq()
    if name == "DC_ChargeParameterDiscoveryReq":
        p = body["DC_CPDReqEnergyTransferMode"]
        target = p.get("TargetSOC")
        return vl.ChargeParameterDiscoveryReq(vl.EvParameters(
            max_voltage_v=number(p["EVMaximumVoltage"]),
            max_current_a=number(p["EVMaximumChargeCurrent"]),
            max_power_w=number(p["EVMaximumChargePower"]),
            energy_capacity_wh=0.0, soc_percent=ctx.soc,
            target_soc_percent=float(target) if target is not None else 100.0))
    if name == "DC_CableCheckReq":
        return vl.CableCheckReq(ctx.soc)
    if name == "DC_PreChargeReq":
        return vl.PreChargeReq(number(body["EVTargetVoltage"]), 0.0)
    if name == "PowerDeliveryReq":
        progress = body["ChargeProgress"]
        if progress not in ("Start", "Stop"):
            raise MessageError(f"PowerDeliveryReq: ChargeProgress {progress} is not offered")
        return vl.PowerDeliveryReq(start=progress == "Start")
    if name == "DC_ChargeLoopReq":
        display = body.get("DisplayParameters", {})
        if "PresentSOC" in display:
            ctx.soc = float(display["PresentSOC"])
        mode = f"{ctx.control_mode}_DC_CLReqControlMode"
        if mode not in body:  # the mode the EV chose in ServiceSelection, and no other
            raise MessageError(f"DC_ChargeLoopReq without {mode}")
        m = body[mode]
        if ctx.control_mode == "Scheduled":
            volts, amps = number(m["EVTargetVoltage"]), number(m["EVTargetCurrent"])
        else:  # dynamic: the EVSE chooses the current within the EV's limits
            volts, amps = number(m["EVMaximumVoltage"]), number(m["EVMaximumChargeCurrent"])
        return vl.CurrentDemandReq(
            target_voltage_v=volts, target_current_a=amps, soc_percent=ctx.soc,
            max_voltage_v=number(m["EVMaximumVoltage"]) if "EVMaximumVoltage" in m else volts,
            max_current_a=number(m["EVMaximumChargeCurrent"])
            if "EVMaximumChargeCurrent" in m else amps,
            max_power_w=number(m["EVMaximumChargePower"]) if "EVMaximumChargePower" in m
            else volts * amps,
            remaining_time_s=float(display["RemainingTimeToTargetSOC"])
            if "RemainingTimeToTargetSOC" in display else None,
            charging_complete=bool(display.get("ChargingComplete", False)))
    if name == "DC_WeldingDetectionReq":
        return vl.WeldingDetectionReq()
    if name == _STOP:
        return vl.SessionStopReq()
    raise MessageError(f"{name} is not a request of the -20 DC subset")


def _status(body: Doc, resp: vl.VehicleResponse) -> None:
    """EVSEStatus only to notify: -20 has no "None" notification (the element is
    optional); the core's StopCharging / EmergencyShutdown is Terminate."""
    if resp.notification is not vl.EvseNotification.NONE:
        body["EVSEStatus"] = {"NotificationMaxDelay": 0, "EVSENotification": "Terminate"}


def response_name(req_name: str) -> str:
    return req_name[:-3] + "Res"


def respond(name: str, resp: vl.VehicleResponse, ctx: Context, code: str) -> Doc:
    body: Doc = {"Header": header(ctx), "ResponseCode": code}
    v, a = resp.present_voltage_v, resp.present_current_a
    if name == "SessionSetupReq":
        body["EVSEID"] = ctx.evse_id
    elif name == "AuthorizationReq":
        body["EVSEProcessing"] = ("Ongoing_WaitingForCustomerInteraction"
                                  if resp.processing is vl.Processing.ONGOING else "Finished")
    elif name == "ServiceDiscoveryReq":
        body["ServiceRenegotiationSupported"] = False
        body["EnergyTransferServiceList"] = {"Service": [
            {"ServiceID": DC_SERVICE_ID, "FreeService": False}]}
    elif name == "DC_ChargeParameterDiscoveryReq":
        ctx.max_power_w = resp.max_power_w
        body["DC_CPDResEnergyTransferMode"] = {
            "EVSEMaximumChargePower": rational(resp.max_power_w),
            "EVSEMinimumChargePower": rational(0.0),
            "EVSEMaximumChargeCurrent": rational(resp.max_current_a),
            "EVSEMinimumChargeCurrent": rational(0.0),
            "EVSEMaximumVoltage": rational(resp.max_voltage_v),
            "EVSEMinimumVoltage": rational(ctx.min_voltage_v)}
    elif name == "DC_CableCheckReq":
        body["EVSEProcessing"] = resp.processing.value
    elif name in ("DC_PreChargeReq", "DC_WeldingDetectionReq"):
        body["EVSEPresentVoltage"] = rational(v)
    elif name == "PowerDeliveryReq":
        _status(body, resp)
    elif name == "DC_ChargeLoopReq":
        _status(body, resp)
        body.update({"EVSEPresentCurrent": rational(a), "EVSEPresentVoltage": rational(v),
                     "EVSEPowerLimitAchieved": False,
                     "EVSECurrentLimitAchieved": resp.current_limit_reached,
                     "EVSEVoltageLimitAchieved": False})
        limits = {"EVSEMaximumChargePower": rational(resp.max_power_w),
                  "EVSEMaximumChargeCurrent": rational(resp.max_current_a),
                  "EVSEMaximumVoltage": rational(resp.max_voltage_v)}
        if ctx.control_mode == "Dynamic":
            limits["EVSEMinimumChargePower"] = rational(0.0)
            body["Dynamic_DC_CLResControlMode"] = limits
        else:
            body["Scheduled_DC_CLResControlMode"] = limits
    return {response_name(name): body}


def _parameter_set(set_id: int) -> Doc:
    # ISO 15118-20 ServiceDetail parameters of DC: Connector 2 = extended (CCS),
    # ControlMode 1 = scheduled, 2 = dynamic; MobilityNeedsMode 1 = provided by the EVCC;
    # Pricing 0 = no pricing. The names repeat in each set: strings an EXI encoder may send
    # as string-table hits; ours sends literals, the only kind every EV reads (exi/codec.py).
    return {"ParameterSetID": set_id, "Parameter": [
        {"@Name": "Connector", "intValue": 2},
        {"@Name": "ControlMode", "intValue": CONTROL_MODE_VALUE[CONTROL_MODES[set_id]]},
        {"@Name": "MobilityNeedsMode", "intValue": 1},
        {"@Name": "Pricing", "intValue": 0}]}


def local_answer(name: str, body: Doc, ctx: Context) -> Doc | None:
    """What we offer, from configuration: EIM only, the DC service with a parameter set per
    control mode, and in scheduled mode one schedule at the power the core last allowed."""
    res: Doc = {"Header": header(ctx), "ResponseCode": "OK"}
    if name == "AuthorizationSetupReq":
        res.update({"AuthorizationServices": ["EIM"], "CertificateInstallationService": False,
                    "EIM_ASResAuthorizationMode": {}})
    elif name == "ServiceDetailReq":
        service = body.get("ServiceID")
        res["ServiceID"] = service if isinstance(service, int) else DC_SERVICE_ID
        if service != DC_SERVICE_ID:
            res["ResponseCode"] = "FAILED_ServiceIDInvalid"
        res["ServiceParameterList"] = {"ParameterSet": [
            _parameter_set(i) for i in CONTROL_MODES]}
    elif name == "ServiceSelectionReq":
        sel = body.get("SelectedEnergyTransferService", {})
        chosen = sel.get("ParameterSetID")
        if sel.get("ServiceID") != DC_SERVICE_ID or chosen not in CONTROL_MODES:
            res["ResponseCode"] = "FAILED_ServiceSelectionInvalid"
        else:
            ctx.control_mode = CONTROL_MODES[chosen]
    elif name == "PowerDeliveryReq":
        pass  # EVProcessing Ongoing: acknowledged, nothing asked of the core yet
    elif name == "ScheduleExchangeReq":
        res["EVSEProcessing"] = "Finished"
        if f"{ctx.control_mode}_SEReqControlMode" not in body:
            # not the control mode of the parameter set the EV selected
            res["ResponseCode"] = "FAILED_WrongChargeParameter"
        if ctx.control_mode == "Dynamic":
            res["Dynamic_SEResControlMode"] = {}  # no price schedule: we bill outside -20
        else:
            entry = {"Duration": 86400, "Power": rational(ctx.max_power_w)}
            # The schema leaves the price schedule optional; some EVs (Josev's) insist on
            # one, so a single price level (no prices: we bill outside ISO 15118).
            prices = {"TimeAnchor": ctx.timestamp, "PriceScheduleID": 1,
                      "NumberOfPriceLevels": 1, "PriceLevelScheduleEntries": {
                          "PriceLevelScheduleEntry": [{"Duration": 86400, "PriceLevel": 0}]}}
            res["Scheduled_SEResControlMode"] = {"ScheduleTuple": [{
                "ScheduleTupleID": 1, "ChargingSchedule": {
                    "PowerSchedule": {"TimeAnchor": ctx.timestamp,
                                      "PowerScheduleEntries": {"PowerScheduleEntry": [entry]}},
                    "PriceLevelSchedule": prices}}]}
    else:
        return None
    return {response_name(name): res}


_MANDATORY_FAILED: dict[str, Doc] = {
    "SessionSetupReq": {"EVSEID": ""},
    "AuthorizationSetupReq": {"AuthorizationServices": ["EIM"],
                              "CertificateInstallationService": False,
                              "EIM_ASResAuthorizationMode": {}},
    "AuthorizationReq": {"EVSEProcessing": "Finished"},
    "ServiceDiscoveryReq": {"ServiceRenegotiationSupported": False,
                            "EnergyTransferServiceList": {"Service": [
                                {"ServiceID": DC_SERVICE_ID, "FreeService": False}]}},
    "ServiceDetailReq": {"ServiceID": DC_SERVICE_ID, "ServiceParameterList": {
        "ParameterSet": [{"ParameterSetID": 1, "Parameter": [
            {"@Name": "Connector", "intValue": 2}]}]}},
    "ScheduleExchangeReq": {"EVSEProcessing": "Finished", "Dynamic_SEResControlMode": {}},
    "DC_CableCheckReq": {"EVSEProcessing": "Finished"},
}


def failed(name: str, code: str, ctx: Context) -> Doc:
    if name in _MANDATORY_FAILED:
        return {response_name(name): {"Header": header(ctx), "ResponseCode": code,
                                      **_MANDATORY_FAILED[name]}}
    resp = vl.VehicleResponse(request=name, code=vl.ResponseCode.FAILED,
                              notification=vl.EvseNotification.STOP_CHARGING)
    return respond(name, resp, ctx, code)


class Iso20Adapter:
    name = "ISO20"
    flow = FLOW

    def schema_for(self, payload_type: int) -> str | None:
        return {PayloadType.ISO20_COMMON: CM, PayloadType.ISO20_DC: DC}.get(
            PayloadType(payload_type) if payload_type in PayloadType._value2member_map_
            else PayloadType.EXI)

    def payload_type(self, req_name: str) -> int:
        return PayloadType.ISO20_DC if req_name.startswith("DC_") else PayloadType.ISO20_COMMON

    def schema_of(self, req_name: str) -> str:
        return schema_of(req_name)

    def split(self, doc: Doc) -> tuple[bytes, str, Doc]:
        return split(doc)

    def to_vehicle(self, name: str, body: Doc) -> vl.VehicleRequest:
        return to_vehicle(name, body, self._ctx)

    def local_answer(self, name: str, body: Doc, ctx: Any) -> Doc | None:
        return local_answer(name, body, ctx)

    def respond(self, name: str, resp: vl.VehicleResponse, ctx: Any, code: str) -> Doc:
        return respond(name, resp, ctx, code)

    def failed(self, name: str, code: str, ctx: Any) -> Doc:
        return failed(name, code, ctx)

    def context(self, session_id: bytes, settings: Any) -> Any:
        self._ctx = Context(session_id, settings.evse_id, settings.min_voltage_v)
        return self._ctx

    def flow_key(self, name: str, req: vl.VehicleRequest | Doc | None) -> str:
        return flow_key(name, req)

    def is_local(self, name: str, body: Doc) -> bool:
        return is_local(name, body)
