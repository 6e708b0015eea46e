"""The SECC machine on documents (no sockets, no codec): negotiation by our priority,
each protocol's flow handed to the core request by request, session IDs, sequence and
session errors, the sequence timer."""

from __future__ import annotations

from typing import Any

import pytest

from hal import vehicle_link as vl
from hal.v2g import classic, exi, handshake, iso20_ev
from hal.v2g.handshake import Protocol
from hal.v2g.secc import Ask, Close, Reply, Secc, SeccSettings, Stage

SID = bytes.fromhex("0102030405060708")
EV = vl.EvParameters(900.0, 500.0, 400_000.0, 600_000.0, 20.0)
FLOW: list[vl.VehicleRequest] = [
    vl.SessionSetupReq("AABBCCDDEEFF"), vl.ServiceDiscoveryReq(),
    vl.PaymentServiceSelectionReq(), vl.AuthorizationReq(), vl.ChargeParameterDiscoveryReq(EV),
    vl.CableCheckReq(20.0), vl.PreChargeReq(500.0, 2.0), vl.PowerDeliveryReq(True),
    vl.CurrentDemandReq(500.0, 100.0, 20.0, 900.0, 500.0, 400_000.0),
    vl.CurrentDemandReq(501.0, 200.0, 21.0, 900.0, 500.0, 400_000.0),
    vl.PowerDeliveryReq(False), vl.WeldingDetectionReq(), vl.SessionStopReq()]


def negotiated(protocol: Protocol, now: float = 0.0,
               settings: SeccSettings | None = None) -> Secc:
    secc = Secc(settings or SeccSettings(), SID, now)
    step = secc.on_document(handshake.request((protocol,)), now)
    assert isinstance(step, Reply) and step.schema == "SAP"
    assert step.document["supportedAppProtocolRes"]["ResponseCode"] == handshake.OK
    return secc


def classic_doc(protocol: Protocol, req: vl.VehicleRequest, sid: bytes) -> dict[str, Any]:
    d = classic.DIN if protocol is Protocol.DIN else classic.ISO2
    return classic.ev_request(d, req, sid, bytes.fromhex("AABBCCDDEEFF"), 20.0)


def core_answer(req: vl.VehicleRequest) -> vl.VehicleResponse:
    return vl.VehicleResponse(request=type(req).__name__, present_voltage_v=480.0,
                              present_current_a=99.0, max_voltage_v=1000.0,
                              max_current_a=500.0, max_power_w=400_000.0)


@pytest.mark.parametrize("ev_offers, ours, chosen", [
    ((Protocol.DIN, Protocol.ISO2, Protocol.ISO20_DC),
     (Protocol.ISO20_DC, Protocol.ISO2, Protocol.DIN), Protocol.ISO20_DC),
    ((Protocol.ISO20_DC, Protocol.ISO2, Protocol.DIN),
     (Protocol.DIN, Protocol.ISO2, Protocol.ISO20_DC), Protocol.DIN),
    ((Protocol.ISO20_DC, Protocol.DIN), (Protocol.ISO2, Protocol.DIN), Protocol.DIN),
])
def test_negotiation_follows_our_priority_not_the_evs(
        ev_offers: tuple[Protocol, ...], ours: tuple[Protocol, ...], chosen: Protocol) -> None:
    result = handshake.negotiate(handshake.request(ev_offers), ours)
    assert result.protocol is chosen
    assert result.schema_id == ev_offers.index(chosen) + 1  # the EV's SchemaID for it


def test_no_common_protocol_is_failed_no_negotiation_and_the_end() -> None:
    secc = Secc(SeccSettings(priority=(Protocol.ISO2,)), SID, 0.0)
    step = secc.on_document(handshake.request((Protocol.DIN,)), 0.0)
    assert isinstance(step, Reply) and step.close
    assert step.document == {"supportedAppProtocolRes": {"ResponseCode": "Failed_NoNegotiation"}}
    assert secc.stage is Stage.ENDED


def test_minor_version_deviation_is_accepted_as_such() -> None:
    doc = handshake.request((Protocol.ISO2,))
    doc["supportedAppProtocolReq"]["AppProtocol"][0]["VersionNumberMinor"] = 1
    result = handshake.negotiate(doc, (Protocol.ISO2,))
    assert result.response["supportedAppProtocolRes"]["ResponseCode"] == handshake.OK_MINOR


@pytest.mark.parametrize("protocol", [Protocol.DIN, Protocol.ISO2])
def test_the_whole_dc_flow_goes_to_the_core_request_by_request(protocol: Protocol) -> None:
    secc = negotiated(protocol)
    d = classic.DIN if protocol is Protocol.DIN else classic.ISO2
    sid = bytes(1)  # SessionSetupReq carries SessionID 00
    asked: list[vl.VehicleRequest] = []
    for n, req in enumerate(FLOW):
        step = secc.on_document(classic_doc(protocol, req, sid), float(n))
        assert isinstance(step, Ask), (req, step)
        asked.append(step.request)
        reply = secc.on_answer(core_answer(step.request), float(n))
        got_sid, raw, resp = classic.ev_response(d, classic.split(classic_doc(
            protocol, req, sid))[1], reply.document, type(req).__name__)
        assert raw == ("OK_NewSessionEstablished" if n == 0 else "OK"), req
        assert got_sid == SID
        sid = SID
    assert [type(r) for r in asked] == [type(r) for r in FLOW]
    assert asked[0] == vl.SessionSetupReq("AABBCCDDEEFF")
    assert asked[8] == FLOW[8]  # CurrentDemand values arrive unchanged
    assert reply.close == "SessionStop" and secc.stage is Stage.ENDED


def test_current_demand_response_carries_the_cores_numbers() -> None:
    secc = negotiated(Protocol.ISO2)
    sid = bytes(1)
    for req in FLOW[:9]:
        step = secc.on_document(classic_doc(Protocol.ISO2, req, sid), 0.0)
        assert isinstance(step, Ask)
        reply = secc.on_answer(core_answer(step.request), 0.0)
        sid = SID
    body = reply.document["V2G_Message"]["Body"]["CurrentDemandRes"]
    assert body["EVSEPresentVoltage"] == {"Multiplier": -1, "Unit": "V", "Value": 4800}
    assert body["EVSEPresentCurrent"] == {"Multiplier": -2, "Unit": "A", "Value": 9900}
    assert body["DC_EVSEStatus"]["EVSEIsolationStatus"] == "Valid"  # cable check passed
    assert body["EVSEID"] == SeccSettings().evse_id


def test_stop_notification_of_the_core_reaches_the_status() -> None:
    secc = negotiated(Protocol.DIN)
    sid = bytes(1)
    for req in FLOW[:9]:
        step = secc.on_document(classic_doc(Protocol.DIN, req, sid), 0.0)
        assert isinstance(step, Ask)
        answer = core_answer(step.request)
        if isinstance(step.request, vl.CurrentDemandReq):
            answer = vl.VehicleResponse(request="CurrentDemandReq",
                                        notification=vl.EvseNotification.STOP_CHARGING)
        reply = secc.on_answer(answer, 0.0)
        sid = SID
    status = reply.document["V2G_Message"]["Body"]["CurrentDemandRes"]["DC_EVSEStatus"]
    assert status["EVSENotification"] == "StopCharging"
    assert status["EVSEStatusCode"] == "EVSE_Shutdown"


@pytest.mark.parametrize("protocol", [Protocol.DIN, Protocol.ISO2])
def test_a_request_out_of_order_is_failed_sequence_error_without_asking_the_core(
        protocol: Protocol) -> None:
    secc = negotiated(protocol)
    step = secc.on_document(classic_doc(protocol, FLOW[0], bytes(1)), 0.0)
    assert isinstance(step, Ask)
    secc.on_answer(core_answer(step.request), 0.0)
    # CurrentDemand straight after SessionSetup
    step = secc.on_document(classic_doc(protocol, FLOW[8], SID), 1.0)
    assert isinstance(step, Reply) and step.close
    body = step.document["V2G_Message"]["Body"]["CurrentDemandRes"]
    assert body["ResponseCode"] == "FAILED_SequenceError"
    assert secc.stats.sequence_errors == 1 and secc.stage is Stage.ENDED


def test_a_wrong_session_id_is_failed_unknown_session() -> None:
    secc = negotiated(Protocol.ISO2)
    step = secc.on_document(classic_doc(Protocol.ISO2, FLOW[0], bytes(1)), 0.0)
    assert isinstance(step, Ask)
    secc.on_answer(core_answer(step.request), 0.0)
    step = secc.on_document(classic_doc(Protocol.ISO2, FLOW[1], b"\x09" * 8), 1.0)
    assert isinstance(step, Reply) and step.close
    body = step.document["V2G_Message"]["Body"]["ServiceDiscoveryRes"]
    assert body["ResponseCode"] == "FAILED_UnknownSession"


def test_core_failed_answer_ends_the_connection() -> None:
    secc = negotiated(Protocol.DIN)
    step = secc.on_document(classic_doc(Protocol.DIN, FLOW[0], bytes(1)), 0.0)
    assert isinstance(step, Ask)
    reply = secc.on_answer(vl.VehicleResponse(
        request="SessionSetupReq", code=vl.ResponseCode.FAILED_SEQUENCE_ERROR), 0.0)
    body = reply.document["V2G_Message"]["Body"]["SessionSetupRes"]
    assert body["ResponseCode"] == "FAILED_SequenceError" and reply.close


def test_malformed_body_is_failed_and_never_reaches_the_core() -> None:
    secc = negotiated(Protocol.DIN)
    doc = classic_doc(Protocol.DIN, FLOW[0], bytes(1))
    del doc["V2G_Message"]["Body"]["SessionSetupReq"]["EVCCID"]
    step = secc.on_document(doc, 0.0)
    assert isinstance(step, Reply) and step.close and secc.pending is None
    assert step.document["V2G_Message"]["Body"]["SessionSetupRes"]["ResponseCode"] == "FAILED"


def test_a_message_outside_our_subset_closes_without_a_reply() -> None:
    secc = negotiated(Protocol.ISO2)
    doc = classic.message(bytes(1), "CertificateInstallationReq", {})
    assert isinstance(secc.on_document(doc, 0.0), Close)


def test_sequence_timer_is_sixty_seconds_after_the_last_response() -> None:
    # ISO 15118-2 Table 109 / DIN SPEC 70121: V2G_SECC_Sequence_Timeout = 60 s.
    secc = negotiated(Protocol.DIN, now=100.0)
    step = secc.on_document(classic_doc(Protocol.DIN, FLOW[0], bytes(1)), 101.0)
    assert isinstance(step, Ask)
    assert not secc.timed_out(150.0)  # waiting on the core: never the EV's fault
    secc.on_answer(core_answer(step.request), 102.0)
    assert not secc.timed_out(102.0 + 59.9)
    assert secc.timed_out(102.0 + 60.0)


def test_iso20_flow_maps_onto_the_same_core_requests() -> None:
    secc = negotiated(Protocol.ISO20_DC)
    sid = bytes(8)
    asked: list[str] = []
    local: list[str] = []
    for req in FLOW:
        for doc in iso20_ev.requests(req, sid, bytes(6), 20.0):
            name = next(iter(doc))
            ptype = 0x8004 if name.startswith("DC_") else 0x8002
            assert secc.schema_for(ptype) == ("ISO20_DC" if ptype == 0x8004 else "ISO20_CM")
            step = secc.on_document(doc, 0.0, wall=1_700_000_000.0)
            if isinstance(step, Ask):
                asked.append(type(step.request).__name__)
                step = secc.on_answer(core_answer(step.request), 0.0)
            else:
                local.append(name)
            assert isinstance(step, Reply) and step.payload_type == ptype
            got_sid, resp = iso20_ev.response(name, step.document, type(req).__name__)
            assert resp.code is vl.ResponseCode.OK, (name, step.document)
            assert next(iter(step.document.values()))["Header"]["TimeStamp"] == 1_700_000_000
            sid = got_sid
    assert local == ["AuthorizationSetupReq", "ServiceDetailReq", "ServiceSelectionReq",
                     "ScheduleExchangeReq"]
    assert asked == ["SessionSetupReq", "AuthorizationReq", "ServiceDiscoveryReq",
                     "ChargeParameterDiscoveryReq", "CableCheckReq", "PreChargeReq",
                     "PowerDeliveryReq", "CurrentDemandReq", "CurrentDemandReq",
                     "PowerDeliveryReq", "WeldingDetectionReq", "SessionStopReq"]
    assert secc.stage is Stage.ENDED


def _iso20_session(choice: iso20_ev.Choice, flow: list[vl.VehicleRequest]) -> tuple[
        list[tuple[str, dict[str, Any]]], list[vl.VehicleRequest]]:
    """The -20 flow through the machine with an EV that chooses by `choice`: every
    (response name, body) and the requests the core was asked."""
    secc = negotiated(Protocol.ISO20_DC)
    sid = bytes(8)
    answers: list[tuple[str, dict[str, Any]]] = []
    asked: list[vl.VehicleRequest] = []
    for req in flow:
        for doc in iso20_ev.requests(req, sid, bytes(6), 20.0, choice):
            name = next(iter(doc))
            schema = "ISO20_DC" if name.startswith("DC_") else "ISO20_CM"
            doc = exi.decode(schema, exi.encode(schema, doc))  # as on the wire
            step = secc.on_document(doc, 0.0)
            if isinstance(step, Ask):
                asked.append(step.request)
                step = secc.on_answer(core_answer(step.request), 0.0)
            assert isinstance(step, Reply)
            answer = exi.decode(schema, exi.encode(schema, step.document))
            ((res_name, body),) = answer.items()
            answers.append((res_name, body))
            sid, _resp = iso20_ev.response(name, answer, type(req).__name__, choice)
    return answers, asked


@pytest.mark.parametrize("prefer", ["Scheduled", "Dynamic"])
def test_iso20_offers_both_control_modes_and_the_ev_chooses(prefer: str) -> None:
    choice = iso20_ev.Choice(prefer=prefer)
    answers, asked = _iso20_session(choice, FLOW)
    assert all(body["ResponseCode"].startswith("OK") for _n, body in answers), answers
    detail = dict(answers)["ServiceDetailRes"]["ServiceParameterList"]["ParameterSet"]
    # ISO 15118-20 ControlMode parameter: 1 scheduled, 2 dynamic, one set each
    modes = {p["ParameterSetID"]: [q["intValue"] for q in p["Parameter"]
                                   if q["@Name"] == "ControlMode"] for p in detail}
    assert modes == {1: [1], 2: [2]}
    assert choice.control_mode == prefer
    assert choice.parameter_set_id == (2 if prefer == "Dynamic" else 1)
    loops = [body for n, body in answers if n == "DC_ChargeLoopRes"]
    assert len(loops) == 2
    assert all(f"{prefer}_DC_CLResControlMode" in body for body in loops)
    other = "Scheduled" if prefer == "Dynamic" else "Dynamic"
    assert not any(f"{other}_DC_CLResControlMode" in body for body in loops)
    exchange = dict(answers)["ScheduleExchangeRes"]
    assert f"{prefer}_SEResControlMode" in exchange
    demands = [r for r in asked if isinstance(r, vl.CurrentDemandReq)]
    # FLOW's two CurrentDemandReq: targets 100 A and 200 A; in dynamic mode the EV sends
    # them as its limit, which is what the core is asked to stay within
    assert [d.target_current_a for d in demands] == [100.0, 200.0]
    if prefer == "Dynamic":
        limits = loops[0]["Dynamic_DC_CLResControlMode"]
        assert set(limits) == {"EVSEMaximumChargePower", "EVSEMinimumChargePower",
                               "EVSEMaximumChargeCurrent", "EVSEMaximumVoltage"}
        assert [d.max_current_a for d in demands] == [100.0, 200.0]


def test_iso20_a_charge_loop_in_the_mode_not_chosen_is_failed() -> None:
    # The EV selected scheduled, then sends its loop in dynamic mode: malformed for us.
    choice = iso20_ev.Choice(prefer="Scheduled")
    before = FLOW[:8]  # up to PowerDelivery(start)
    secc = negotiated(Protocol.ISO20_DC)
    sid = bytes(8)
    for req in before:
        for doc in iso20_ev.requests(req, sid, bytes(6), 20.0, choice):
            name = next(iter(doc))
            step = secc.on_document(doc, 0.0)
            if isinstance(step, Ask):
                step = secc.on_answer(core_answer(step.request), 0.0)
            assert isinstance(step, Reply)
            sid, resp = iso20_ev.response(name, step.document, type(req).__name__, choice)
            assert resp.code is vl.ResponseCode.OK
    choice.control_mode = "Dynamic"  # the EV now speaks the other mode
    (doc,) = iso20_ev.requests(FLOW[8], sid, bytes(6), 20.0, choice)
    step = secc.on_document(doc, 0.0)
    assert isinstance(step, Reply) and step.close
    assert step.document["DC_ChargeLoopRes"]["ResponseCode"] == "FAILED"
