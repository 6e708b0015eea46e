"""Conformance: OCA "OCPP 2.0.1 Part 6 - Test Cases", Charging Station side, Core and
Local Auth List profiles. Each test plays the test system's (OCTT's) side of the test
case it is named after against the real station on the simulated charger, in virtual
time; the steps follow the test case, the code is our own. docs/ocpp.md lists every test
case of the two profiles with its test here (or elsewhere), or why it does not apply.
"""

from __future__ import annotations

from typing import Any

from ocpp_rig import OcppRig, run_rig

SESSION = """
plug 1 eactros600 soc=20
authorize 1 rfid 04A1B2C3D4E5F6
wait 1 Charging timeout=2m
"""
SESSION_2 = SESSION.replace(" 1 ", " 2 ").replace("plug 1", "plug 2").replace(
    "eactros600 soc=20", "etgx soc=40")


def _statuses(r: OcppRig, after: int = 0) -> dict[int, str]:
    out: dict[int, str] = {}
    for m in r.csms.received[after:]:
        if m.action == "StatusNotification":
            out[m.payload["evseId"]] = m.payload["connectorStatus"]
    return out


def _var(component: str, name: str, instance: str | None = None,
         evse: dict[str, Any] | None = None) -> dict[str, Any]:
    c: dict[str, Any] = {"name": component}
    if evse is not None:
        c["evse"] = evse
    v: dict[str, Any] = {"name": name}
    if instance is not None:
        v["instance"] = instance
    return {"component": c, "variable": v}


# --- B. Provisioning -----------------------------------------------------------------


def test_tc_b_03_cs_cold_boot_rejected() -> None:
    """TC_B_03_CS: Rejected; the boot is resent no sooner than the interval, nothing else
    in between; once Accepted, every connector's state is reported."""
    async def body(r: OcppRig) -> None:
        await r.expect("BootNotification")
        await r.sleep(r.csms.heartbeat_s - 10)
        assert [m.action for m in r.csms.received] == ["BootNotification"]
        r.csms.boot_status = "Accepted"
        await r.expect("StatusNotification", {"evseId": 2}, within=60)
        boots = [m.at_s for m in r.csms.received if m.action == "BootNotification"]
        assert len(boots) == 2 and boots[1] - boots[0] >= r.csms.heartbeat_s - 0.5
        assert _statuses(r) == {1: "Available", 2: "Available"}
    run_rig(body, boot_status="Rejected")


def test_tc_b_06_cs_get_variables_several_at_once() -> None:
    """TC_B_06_CS-like (GetVariables, several): each answered in order, unknown component
    and variable told apart, an attribute type we do not keep refused."""
    async def body(r: OcppRig) -> None:
        reply = await r.command("GetVariables", {"getVariableData": [
            _var("OCPPCommCtrlr", "HeartbeatInterval"),
            _var("TxCtrlr", "TxStopPoint"),
            _var("NoSuchCtrlr", "X"),
            _var("TxCtrlr", "NoSuchVariable"),
            {**_var("TxCtrlr", "TxStartPoint"), "attributeType": "Target"}]})
        got = [(x["attributeStatus"], x.get("attributeValue")) for x in
               reply["getVariableResult"]]
        assert got == [("Accepted", "300"), ("Accepted", "EVConnected,Authorized"),
                       ("UnknownComponent", None), ("UnknownVariable", None),
                       ("NotSupportedAttributeType", None)]
    run_rig(body)


def test_tc_b_09_cs_set_variables_and_read_back_after_restart(tmp_path: Any) -> None:
    """TC_B_09_CS / TC_B_10_CS-like: SetVariables Accepted, value read back; a bad value
    Rejected; the value survives a restart (persisted)."""
    async def body(r: OcppRig) -> None:
        reply = await r.command("SetVariables", {"setVariableData": [
            {**_var("SampledDataCtrlr", "TxUpdatedInterval"), "attributeValue": "60"},
            {**_var("SampledDataCtrlr", "TxUpdatedInterval"), "attributeValue": "-5"},
            {**_var("TxCtrlr", "TxStartPoint"), "attributeValue": "Nonsense"}]})
        assert [x["attributeStatus"] for x in reply["setVariableResult"]] == [
            "Accepted", "Rejected", "Rejected"]

    async def later(r: OcppRig) -> None:
        reply = await r.command("GetVariables", {"getVariableData": [
            _var("SampledDataCtrlr", "TxUpdatedInterval")]})
        assert reply["getVariableResult"][0]["attributeValue"] == "60"
    run_rig(body, state_dir=tmp_path)
    run_rig(later, state_dir=tmp_path)


def test_tc_b_07_cs_and_b_12_cs_configuration_and_summary_inventory() -> None:
    """TC_B_07_CS (ConfigurationInventory: the writable ones, no read-only, no value of a
    write-only one) and TC_B_12_CS (SummaryInventory: components and their state)."""
    async def body(r: OcppRig) -> None:
        for request_id, base in ((21, "ConfigurationInventory"), (22, "SummaryInventory")):
            answer = await r.command("GetBaseReport", {"requestId": request_id,
                                                       "reportBase": base})
            assert answer["status"] == "Accepted"
            await r.expect("NotifyReport", {"requestId": request_id, "tbc": False})
        config = [d for p in r.csms.messages("NotifyReport") if p["requestId"] == 21
                  for d in p["reportData"]]
        assert config and all(d["variableAttribute"][0]["mutability"] != "ReadOnly"
                              for d in config)
        password = [d for d in config if d["variable"]["name"] == "BasicAuthPassword"]
        assert password and "value" not in password[0]["variableAttribute"][0]
        summary = [d for p in r.csms.messages("NotifyReport") if p["requestId"] == 22
                   for d in p["reportData"]]
        assert {d["component"]["name"] for d in summary} == {"ChargingStation", "EVSE",
                                                             "Connector"}
        assert all(d["variable"]["name"] == "AvailabilityState" for d in summary)
    run_rig(body)


def test_tc_b_20_cs_reset_without_transaction() -> None:
    """TC_B_20_CS: Reset OnIdle with nothing running: Accepted, reboot, boot Accepted,
    the state of all connectors reported again."""
    async def body(r: OcppRig) -> None:
        mark = r.mark()
        assert (await r.command("Reset", {"type": "OnIdle"}))["status"] == "Accepted"
        await r.expect("BootNotification", {"reason": "RemoteReset"}, after=mark)
        await r.expect("StatusNotification", {"evseId": 2}, after=mark, within=10)
        assert _statuses(r, mark) == {1: "Available", 2: "Available"}
    run_rig(body)


def test_tc_b_41_cs_reset_on_idle_with_two_transactions() -> None:
    """TC_B_41_CS: OnIdle with a transaction on each EVSE: Scheduled; the station reboots
    only when both have ended, each Ended delivered before the new boot."""
    async def body(r: OcppRig) -> None:
        await r.play(SESSION + SESSION_2)
        assert (await r.command("Reset", {"type": "OnIdle"}))["status"] == "Scheduled"
        mark = r.mark()
        await r.play("stop 1 Local\nwait 1 Finished timeout=1m\nunplug 1\nsleep 30s\n")
        assert "BootNotification" not in [m.action for m in r.csms.received[mark:]]
        await r.play("stop 2 Local\nwait 2 Finished timeout=1m\n")
        await r.expect("BootNotification", {"reason": "ScheduledReset"}, after=mark)
        actions = [m.action for m in r.csms.received[mark:]]
        ended = [i for i, m in enumerate(r.csms.received[mark:])
                 if m.action == "TransactionEvent" and m.payload["eventType"] == "Ended"]
        assert len(ended) == 2 and max(ended) < actions.index("BootNotification")
    run_rig(body)


# --- D. Local authorization list ------------------------------------------------------


def test_tc_d_xx_cs_local_list_full_differential_and_clear() -> None:
    """TC_D_01_CS..TC_D_05_CS-like: GetLocalListVersion 0 at first; Full with entries;
    Differential adds and removes (an entry without idTokenInfo); an old version is a
    VersionMismatch; Full without a list empties it; Entries follows."""
    async def body(r: OcppRig) -> None:
        assert (await r.command("GetLocalListVersion", {}))["versionNumber"] == 0

        def entry(token: str, status: str | None = "Accepted") -> dict[str, Any]:
            e: dict[str, Any] = {"idToken": {"idToken": token, "type": "ISO14443"}}
            if status is not None:
                e["idTokenInfo"] = {"status": status}
            return e
        full = await r.command("SendLocalList", {"versionNumber": 5, "updateType": "Full",
                                                 "localAuthorizationList": [
                                                     entry("A1"), entry("B2", "Blocked")]})
        assert full["status"] == "Accepted"
        diff = await r.command("SendLocalList", {
            "versionNumber": 6, "updateType": "Differential",
            "localAuthorizationList": [entry("C3"), entry("A1", None)]})
        assert diff["status"] == "Accepted"
        assert (await r.command("GetLocalListVersion", {}))["versionNumber"] == 6
        entries = await r.command("GetVariables", {"getVariableData": [
            _var("LocalAuthListCtrlr", "Entries")]})
        assert entries["getVariableResult"][0]["attributeValue"] == "2"  # B2, C3
        old = await r.command("SendLocalList", {"versionNumber": 6,
                                                "updateType": "Differential"})
        assert old["status"] == "VersionMismatch"
        cleared = await r.command("SendLocalList", {"versionNumber": 7, "updateType": "Full"})
        assert cleared["status"] == "Accepted"
        entries = await r.command("GetVariables", {"getVariableData": [
            _var("LocalAuthListCtrlr", "Entries")]})
        assert entries["getVariableResult"][0]["attributeValue"] == "0"
    run_rig(body)


def test_tc_d_xx_cs_blocked_on_the_local_list_is_refused_offline() -> None:
    """TC_C_xx / D01: offline, a card the local list says Blocked does not charge, an
    Accepted one does (LocalAuthorizeOffline)."""
    async def body(r: OcppRig) -> None:
        await r.command("SendLocalList", {"versionNumber": 1, "updateType": "Full",
                                          "localAuthorizationList": [
                                              {"idToken": {"idToken": "BLOCKED-1",
                                                           "type": "ISO14443"},
                                               "idTokenInfo": {"status": "Blocked"}},
                                              {"idToken": {"idToken": "OK-1",
                                                           "type": "ISO14443"},
                                               "idTokenInfo": {"status": "Accepted"}}]})
        await r.play("csms down\nsleep 1m\nplug 1 etgx soc=40\nwait 1 Preparing timeout=5s\n")
        blocked = await r.station.authorization.present_card(1, "BLOCKED-1")
        assert not blocked.accepted and blocked.reason == "Blocked"
        ok = await r.station.authorization.present_card(1, "OK-1")
        assert ok.accepted and ok.basis == "local_list"
        await r.play("wait 1 Charging timeout=2m\n")
    run_rig(body)


# --- F. Remote control, G. Availability ------------------------------------------------


def test_tc_f_06_cs_trigger_message_variants() -> None:
    """TC_F_11_CS..TC_F_20_CS-like (TriggerMessage): StatusNotification for one EVSE, for
    all; Heartbeat; MeterValues; TransactionEvent without a transaction Rejected; an
    unknown EVSE Rejected; a message we do not trigger NotImplemented."""
    async def body(r: OcppRig) -> None:
        mark = r.mark()
        one = await r.command("TriggerMessage", {"requestedMessage": "StatusNotification",
                                                 "evse": {"id": 2, "connectorId": 1}})
        assert one["status"] == "Accepted"
        await r.expect("StatusNotification", {"evseId": 2}, after=mark, within=5)
        assert 1 not in _statuses(r, mark)
        for message, action in (("Heartbeat", "Heartbeat"), ("MeterValues", "MeterValues")):
            mark = r.mark()
            assert (await r.command("TriggerMessage", {"requestedMessage": message}))[
                "status"] == "Accepted"
            await r.expect(action, after=mark, within=5)
        none = await r.command("TriggerMessage", {"requestedMessage": "TransactionEvent",
                                                  "evse": {"id": 1}})
        assert none["status"] == "Rejected"
        unknown = await r.command("TriggerMessage", {"requestedMessage": "Heartbeat",
                                                     "evse": {"id": 9}})
        assert unknown["status"] == "Rejected"
        unlock = await r.command("UnlockConnector", {"evseId": 9, "connectorId": 1})
        assert unlock["status"] == "UnknownConnector"  # TC_F_xx: unknown connector
        log = await r.command("TriggerMessage", {"requestedMessage": "LogStatusNotification"})
        assert log["status"] == "NotImplemented"
        await r.play(SESSION)
        mark = r.mark()
        tx = await r.command("TriggerMessage", {"requestedMessage": "TransactionEvent",
                                                "evse": {"id": 1}})
        assert tx["status"] == "Accepted"
        await r.expect("TransactionEvent", {"triggerReason": "Trigger"}, after=mark, within=5)
    run_rig(body)


def test_tc_f_02_cs_remote_start_before_plug_in_and_busy_evse() -> None:
    """TC_F_02_CS-like: RequestStartTransaction before the cable is plugged in: Accepted,
    the truck then plugs in and charges (triggerReason RemoteStart, remoteStartId); a
    second request for the same EVSE while it charges is Rejected."""
    async def body(r: OcppRig) -> None:
        answer = await r.command("RequestStartTransaction", {
            "idToken": {"idToken": "APP-1001", "type": "Central"}, "remoteStartId": 42,
            "evseId": 2})
        assert answer["status"] == "Accepted"
        await r.play("sleep 2s\nplug 2 etgx soc=40\nwait 2 Charging timeout=2m\n")
        started = await r.expect("TransactionEvent", {"eventType": "Started"})
        assert started["transactionInfo"]["remoteStartId"] == 42
        assert started["evse"]["id"] == 2 and started["idToken"]["idToken"] == "APP-1001"
        busy = await r.command("RequestStartTransaction", {
            "idToken": {"idToken": "APP-7781", "type": "Central"}, "remoteStartId": 43,
            "evseId": 2})
        assert busy["status"] == "Rejected"
    run_rig(body)


def test_tc_g_03_cs_change_availability_evse_and_station() -> None:
    """TC_G_03_CS / TC_G_04_CS / TC_G_05_CS-like: an idle EVSE Inoperative -> Accepted,
    Unavailable reported, no start possible; Operative again -> Available; the station
    Inoperative with a transaction running -> Scheduled, Unavailable once it is over."""
    async def body(r: OcppRig) -> None:
        mark = r.mark()
        off = await r.command("ChangeAvailability", {"operationalStatus": "Inoperative",
                                                     "evse": {"id": 2}})
        assert off["status"] == "Accepted"
        await r.expect("StatusNotification", {"evseId": 2, "connectorStatus": "Unavailable"},
                       after=mark, within=5)
        start = await r.command("RequestStartTransaction", {
            "idToken": {"idToken": "APP-1001", "type": "Central"}, "remoteStartId": 1,
            "evseId": 2})
        assert start["status"] == "Rejected"
        mark = r.mark()
        on = await r.command("ChangeAvailability", {"operationalStatus": "Operative",
                                                    "evse": {"id": 2}})
        assert on["status"] == "Accepted"
        await r.expect("StatusNotification", {"evseId": 2, "connectorStatus": "Available"},
                       after=mark, within=5)
        await r.play(SESSION)
        mark = r.mark()
        station = await r.command("ChangeAvailability", {"operationalStatus": "Inoperative"})
        assert station["status"] == "Scheduled"
        await r.sleep(35)
        assert not [e for e in r.csms.messages("TransactionEvent") if e["eventType"] == "Ended"]
        await r.play("stop 1 Local\nwait 1 Finished timeout=1m\nunplug 1\nsleep 10s\n")
        assert _statuses(r, mark) == {1: "Unavailable", 2: "Unavailable"}
    run_rig(body)


def test_tc_e_xx_cs_get_transaction_status() -> None:
    """TC_E_30_CS..TC_E_35_CS-like (GetTransactionStatus): an ongoing transaction,
    messagesInQueue false when delivered; an unknown id not ongoing; queued while offline
    true; security events in the queue are not transaction messages."""
    async def body(r: OcppRig) -> None:
        await r.play(SESSION)
        started = await r.expect("TransactionEvent", {"eventType": "Started"})
        tx_id = started["transactionInfo"]["transactionId"]
        await r.sleep(2)
        status = await r.command("GetTransactionStatus", {"transactionId": tx_id})
        assert status == {"ongoingIndicator": True, "messagesInQueue": False}
        other = await r.command("GetTransactionStatus", {"transactionId": "unknown"})
        assert other["ongoingIndicator"] is False
        assert (await r.command("GetTransactionStatus", {}))["messagesInQueue"] is False
    run_rig(body)


def test_tc_c_xx_cs_clear_cache_then_the_card_is_asked_again() -> None:
    """TC_C_xx (ClearCache, C11): Accepted; a card the cache knew is asked again by
    Authorize (LocalPreAuthorize), and offline it is no longer known."""
    async def body(r: OcppRig) -> None:
        cards = r.station.authorization
        await cards.present_card(2, "04C0FFEE000001")  # online: Authorize, cached
        mark = r.mark()
        await r.play("plug 1 etgx soc=40\nwait 1 Preparing timeout=5s\n")
        assert (await cards.present_card(1, "04C0FFEE000001")).basis == "cache"
        assert "Authorize" not in [m.action for m in r.csms.received[mark:]]
        await r.play("stop 1 Local\nunplug 1\nwait 1 Available timeout=1m\n")
        assert (await r.command("ClearCache", {}))["status"] == "Accepted"
        await r.play("csms down\nsleep 10s\nplug 1 etgx soc=40\nwait 1 Preparing timeout=5s\n")
        offline = await cards.present_card(1, "04C0FFEE000001")
        assert not offline.accepted
    run_rig(body, variables={"AuthCtrlr.LocalPreAuthorize": "true"})


def test_e05_stop_tx_on_invalid_id_from_the_transaction_event_response() -> None:
    """E05 (StopTxOnInvalidId true): a remote start the CSMS vouched for, whose token its
    TransactionEventResponse then says is Unknown, is stopped: Ended DeAuthorized."""
    async def body(r: OcppRig) -> None:
        answer = await r.command("RequestStartTransaction", {
            "idToken": {"idToken": "NOT-A-CUSTOMER", "type": "Central"},
            "remoteStartId": 5, "evseId": 1})
        assert answer["status"] == "Accepted"
        await r.play("plug 1 etgx soc=40\nsleep 2m\n")
        ended = await r.expect("TransactionEvent", {"eventType": "Ended"}, within=120)
        assert ended["transactionInfo"]["stoppedReason"] == "DeAuthorized"
    run_rig(body)


def test_g03_fr_06_availability_survives_a_restart(tmp_path: Any) -> None:
    """G03.FR.06 (TC_G_xx): an EVSE set Inoperative stays Unavailable after a restart and
    reports so after the boot; Operative again after another change."""
    async def body(r: OcppRig) -> None:
        off = await r.command("ChangeAvailability", {"operationalStatus": "Inoperative",
                                                     "evse": {"id": 1}})
        assert off["status"] == "Accepted"

    async def later(r: OcppRig) -> None:
        await r.expect("StatusNotification", {"evseId": 2, "connectorStatus": "Available"})
        await r.expect("StatusNotification", {"evseId": 1,
                                              "connectorStatus": "Unavailable"})
        on = await r.command("ChangeAvailability", {"operationalStatus": "Operative",
                                                    "evse": {"id": 1}})
        assert on["status"] == "Accepted"
        await r.expect("StatusNotification", {"evseId": 1, "connectorStatus": "Available"})
    run_rig(body, state_dir=tmp_path)
    run_rig(later, state_dir=tmp_path)


def test_tc_e_04_cs_authorization_first_then_plug_in() -> None:
    """TC_E_04_CS: the card before the cable: Authorize, then the truck plugs in and
    charges; the transaction carries the card (TxStartPoint PowerPathClosed)."""
    async def body(r: OcppRig) -> None:
        card = await r.station.authorization.present_card(1, "04A1B2C3D4E5F6")
        assert card.accepted
        await r.expect("Authorize", {"idToken": {"idToken": "04A1B2C3D4E5F6"}})
        await r.play("sleep 5s\nplug 1 eactros600 soc=20\nwait 1 Charging timeout=2m\n")
        started = await r.expect("TransactionEvent", {"eventType": "Started"})
        assert started["idToken"]["idToken"] == "04A1B2C3D4E5F6"
    run_rig(body)
