"""The departures an independent CSMS playing OCA's "OCPP 2.0.1 Part 6 - Test Cases"
found (issue 15), each pinned against the real station on the simulated charger, in
virtual time. The steps are our own; the test case each is closest to is named."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from ocpp_rig import OcppRig, run_rig

SESSION = """
plug 1 eactros600 soc=20
authorize 1 rfid 04A1B2C3D4E5F6
wait 1 Charging timeout=2m
"""


def _events(r: OcppRig, after: int = 0) -> list[dict[str, Any]]:
    return [m.payload for m in r.csms.received[after:] if m.action == "TransactionEvent"]


def _actions(r: OcppRig, after: int = 0) -> list[str]:
    return [m.action for m in r.csms.received[after:]]


def _utc(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


# --- booting and connection ------------------------------------------------------------


def test_pending_refuses_remote_start_then_triggered_boot_brings_status_and_heartbeat(
        ) -> None:
    """TC_B_02_CS: while Pending a RequestStartTransaction is Rejected; a
    TriggerMessage(BootNotification) is answered Accepted and the boot goes at once
    (reason Triggered); once accepted, StatusNotification for every connector and a
    Heartbeat follow; another TriggerMessage(BootNotification) is then Rejected."""
    async def body(r: OcppRig) -> None:
        await r.expect("BootNotification", {"reason": "PowerUp"})
        start = await r.command("RequestStartTransaction", {
            "idToken": {"idToken": "APP-USER-1", "type": "Central"}, "remoteStartId": 7,
            "evseId": 1})
        assert start["status"] == "Rejected"
        r.csms.boot_status = "Accepted"
        mark = r.mark()
        answer = await r.command("TriggerMessage", {"requestedMessage": "BootNotification"})
        assert answer["status"] == "Accepted"
        await r.expect("BootNotification", {"reason": "Triggered"}, within=5, after=mark)
        for evse in (1, 2):
            await r.expect("StatusNotification", {"evseId": evse}, within=5, after=mark)
        await r.expect("Heartbeat", within=5, after=mark)  # not only after 300 s
        assert "TransactionEvent" not in _actions(r)
        again = await r.command("TriggerMessage", {"requestedMessage": "BootNotification"})
        assert again["status"] == "Rejected"  # F06.FR.17: already accepted
    run_rig(body, boot_status="Pending")


def test_a_reconnect_is_not_a_boot_but_a_restart_is(tmp_path: Path) -> None:
    """B04 / TC_B_xx reconnect: the CSMS goes away and comes back: no BootNotification
    (nothing rebooted); the queue is delivered and the status reported again. A process
    start boots again (PowerUp)."""
    async def body(r: OcppRig) -> None:
        await r.play(SESSION + "csms down\nsleep 5m\ncsms up\n")
        await r.expect("TransactionEvent", {"offline": True}, within=120)
        await r.sleep(60)
        boots = [m for m in r.csms.received if m.action == "BootNotification"]
        assert len(boots) == 1
        assert r.station.online.is_set()

    async def again(r: OcppRig) -> None:
        await r.expect("BootNotification", {"reason": "PowerUp"})
    run_rig(body, state_dir=tmp_path)
    run_rig(again, state_dir=tmp_path)


def test_a_boot_not_yet_accepted_is_sent_again_after_a_reconnect() -> None:
    """B02: the CSMS was Pending when the connection went: the next connection boots
    again (the CSMS had not accepted it)."""
    async def body(r: OcppRig) -> None:
        await r.expect("BootNotification")
        await r.play("csms down\nsleep 30s\n")
        r.csms.boot_status = "Accepted"
        mark = r.mark()
        await r.play("csms up\n")
        await r.expect("BootNotification", {"reason": "PowerUp"}, within=120, after=mark)
        await r.expect("StatusNotification", within=10, after=mark)
    run_rig(body, boot_status="Pending")


# --- security events -------------------------------------------------------------------


def test_startup_and_time_setting_are_security_events() -> None:
    """A04 / TC_A_xx: StartupOfTheDevice after the boot; the CSMS moving the station's
    clock (here by one hour, in a Heartbeat) is SettingSystemTime; a kind OCPP does not
    define (the console's own) is not sent."""
    async def body(r: OcppRig) -> None:
        startup = await r.expect("SecurityEventNotification", {"type": "StartupOfTheDevice"})
        assert startup["timestamp"].endswith("Z")
        boot = next(i for i, a in enumerate(_actions(r)) if a == "BootNotification")
        first = next(i for i, a in enumerate(_actions(r)) if a == "SecurityEventNotification")
        assert boot < first  # nothing before the boot is accepted (B01)
        r.csms.epoch += timedelta(hours=1)
        mark = r.mark()
        assert (await r.command("TriggerMessage", {"requestedMessage": "Heartbeat"}))[
            "status"] == "Accepted"
        await r.expect("SecurityEventNotification", {"type": "SettingSystemTime"},
                       within=10, after=mark)
        r.station.security.record("ConsoleLogin", "engineer at the cabinet")
        await r.sleep(5)
        types = [p["type"] for p in r.csms.messages("SecurityEventNotification")]
        assert "ConsoleLogin" not in types and types.count("StartupOfTheDevice") == 1
    run_rig(body)


def test_critical_security_events_survive_an_outage_and_a_restart(tmp_path: Path) -> None:
    """A04.FR.02: a critical event recorded while offline is queued persistently, in
    order with the transaction events, and reaches the CSMS after a power cut and the
    next start; a non-critical one waits in memory and goes once the boot is accepted."""
    async def body(r: OcppRig) -> None:
        await r.expect("SecurityEventNotification", {"type": "StartupOfTheDevice"})
        await r.play("csms down\nsleep 10s\n")
        r.station.security.record("TamperDetectionActivated", "cabinet door opened",
                                  critical=True)
        r.station.security.record("InvalidMessages", "3 bad frames")
        assert any(q.action == "SecurityEventNotification"
                   for q in r.station.queue.pending())

    async def later(r: OcppRig) -> None:
        tamper = await r.expect("SecurityEventNotification",
                                {"type": "TamperDetectionActivated"}, within=60)
        assert tamper["techInfo"] == "cabinet door opened"
        await r.sleep(5)
        assert len(r.station.queue) == 0
        types = [p["type"] for p in r.csms.messages("SecurityEventNotification")]
        assert "InvalidMessages" not in types  # not critical: lost with the power

    async def held(r: OcppRig) -> None:
        await r.play("csms down\nsleep 10s\n")
        r.station.security.record("InvalidMessages", "3 bad frames")
        r.station.security.record("MemoryExhaustion", "x" * 300)  # critical, long
        mark = r.mark()
        await r.play("csms up\n")
        await r.expect("SecurityEventNotification", {"type": "InvalidMessages"},
                       within=120, after=mark)
        long = await r.expect("SecurityEventNotification", {"type": "MemoryExhaustion"},
                              within=120, after=mark)
        assert len(long["techInfo"]) == 255  # techInfo is string[0..255] (Part 2 A04)
    run_rig(body, state_dir=tmp_path, power_cut=True)
    run_rig(later, state_dir=tmp_path)
    run_rig(held)


# --- reset -----------------------------------------------------------------------------


def test_reset_on_idle_delivers_ended_first_and_boots_as_scheduled_reset() -> None:
    """TC_B_21-like (Reset OnIdle with a transaction): Scheduled; once the session is
    over, the Ended event and ResetOrReboot reach the CSMS before the connection closes;
    the new BootNotification says ScheduledReset."""
    async def body(r: OcppRig) -> None:
        await r.play(SESSION)
        assert (await r.command("Reset", {"type": "OnIdle"}))["status"] == "Scheduled"
        mark = r.mark()
        await r.play("stop 1 Local\nwait 1 Finished timeout=1m\n")
        boot = await r.expect("BootNotification", after=mark, within=60)
        assert boot["reason"] == "ScheduledReset"
        seen = _actions(r, mark)
        ended = next(i for i, m in enumerate(r.csms.received[mark:])
                     if m.action == "TransactionEvent" and m.payload["eventType"] == "Ended")
        assert ended < seen.index("BootNotification")
        reset = next(i for i, m in enumerate(r.csms.received[mark:])
                     if m.action == "SecurityEventNotification"
                     and m.payload["type"] == "ResetOrReboot")
        assert reset < seen.index("BootNotification")
        await r.expect("StatusNotification", after=mark)
    run_rig(body)


def test_reset_immediate_ends_with_reset_command_before_the_new_boot() -> None:
    """TC_B_22-like (Reset Immediate with a transaction): Ended with triggerReason
    ResetCommand and stoppedReason ImmediateReset, delivered before the BootNotification
    RemoteReset."""
    async def body(r: OcppRig) -> None:
        await r.play(SESSION)
        mark = r.mark()
        assert (await r.command("Reset", {"type": "Immediate"}))["status"] == "Accepted"
        await r.expect("BootNotification", {"reason": "RemoteReset"}, after=mark, within=60)
        ended = [e for e in _events(r, mark) if e["eventType"] == "Ended"]
        assert len(ended) == 1
        assert ended[0]["triggerReason"] == "ResetCommand"
        assert ended[0]["transactionInfo"]["stoppedReason"] == "ImmediateReset"
        seen = _actions(r, mark)
        assert seen.index("TransactionEvent") < seen.index("BootNotification")
        assert len(r.station.queue) == 0
    run_rig(body)


# --- device model ----------------------------------------------------------------------


def _report(r: OcppRig, after: int) -> list[dict[str, Any]]:
    return [d for p in r.csms.messages("NotifyReport")[after:] for d in p.get(
        "reportData", [])]


# Part 2 appendix: variables a station must report for the controllers it implements.
REQUIRED = {
    ("ChargingStation", None): {"AvailabilityState", "Available", "SupplyPhases"},
    ("EVSE", 1): {"AvailabilityState", "Available", "Power", "SupplyPhases"},
    ("EVSE", 2): {"AvailabilityState", "Available", "Power", "SupplyPhases"},
    ("Connector", 1): {"AvailabilityState", "Available", "ConnectorType", "SupplyPhases"},
    ("Connector", 2): {"AvailabilityState", "Available", "ConnectorType", "SupplyPhases"},
    ("AlignedDataCtrlr", None): {"Interval", "Measurands", "TxEndedInterval",
                                 "TxEndedMeasurands"},
    ("SampledDataCtrlr", None): {"TxEndedInterval", "TxEndedMeasurands",
                                 "TxStartedMeasurands", "TxUpdatedInterval",
                                 "TxUpdatedMeasurands"},
    ("DeviceDataCtrlr", None): {"BytesPerMessage/GetReport", "BytesPerMessage/GetVariables",
                                "BytesPerMessage/SetVariables", "ItemsPerMessage/GetReport",
                                "ItemsPerMessage/GetVariables",
                                "ItemsPerMessage/SetVariables"},
    ("OCPPCommCtrlr", None): {"FileTransferProtocols", "MessageTimeout/Default",
                              "MessageAttemptInterval/TransactionEvent",
                              "MessageAttempts/TransactionEvent",
                              "NetworkConfigurationPriority",
                              "NetworkProfileConnectionAttempts", "OfflineThreshold",
                              "ResetRetries", "UnlockOnEVSideDisconnect"},
    ("TxCtrlr", None): {"EVConnectionTimeOut", "StopTxOnEVSideDisconnect",
                        "StopTxOnInvalidId", "TxStartPoint", "TxStopPoint"},
    ("AuthCtrlr", None): {"AuthorizeRemoteStart", "LocalAuthorizeOffline",
                          "LocalPreAuthorize"},
    ("ClockCtrlr", None): {"DateTime", "TimeSource"},
    ("SecurityCtrlr", None): {"CertificateEntries", "OrganizationName", "SecurityProfile"},
    ("LocalAuthListCtrlr", None): {"BytesPerMessage", "Entries", "ItemsPerMessage"},
}


def test_full_inventory_has_every_required_variable_and_read_only_is_refused() -> None:
    """TC_B_07/B_08-like (GetBaseReport FullInventory) and TC_B_xx (SetVariables on a
    read-only variable): MessageTimeout[Default] is ReadOnly and refused; the full
    report has every required variable of the implemented controllers and the
    ChargingStation, EVSE and Connector components."""
    async def body(r: OcppRig) -> None:
        refused = await r.command("SetVariables", {"setVariableData": [{
            "component": {"name": "OCPPCommCtrlr"},
            "variable": {"name": "MessageTimeout", "instance": "Default"},
            "attributeValue": "5"}]})
        assert refused["setVariableResult"][0]["attributeStatus"] == "Rejected"
        physical = await r.command("SetVariables", {"setVariableData": [{
            "component": {"name": "EVSE", "evse": {"id": 1}},
            "variable": {"name": "AvailabilityState"}, "attributeValue": "Faulted"}]})
        assert physical["setVariableResult"][0]["attributeStatus"] == "Rejected"
        mark = len(r.csms.messages("NotifyReport"))
        answer = await r.command("GetBaseReport", {"requestId": 11,
                                                   "reportBase": "FullInventory"})
        assert answer["status"] == "Accepted"
        await r.expect("NotifyReport", {"requestId": 11, "tbc": False})
        found: dict[tuple[str, int | None], set[str]] = {}
        for d in _report(r, mark):
            c, v = d["component"], d["variable"]
            key = (c["name"], c.get("evse", {}).get("id"))
            found.setdefault(key, set()).add(
                v["name"] + ("/" + v["instance"] if "instance" in v else ""))
        for key, names in REQUIRED.items():
            assert names <= found.get(key, set()), (key, names - found.get(key, set()))
        connector = await r.command("GetVariables", {"getVariableData": [
            {"component": {"name": "Connector", "evse": {"id": 2, "connectorId": 1}},
             "variable": {"name": "ConnectorType"}},
            {"component": {"name": "EVSE", "evse": {"id": 1}},
             "variable": {"name": "AvailabilityState"}},
            {"component": {"name": "EVSE", "evse": {"id": 9}},
             "variable": {"name": "AvailabilityState"}}]})
        results = connector["getVariableResult"]
        assert results[0]["attributeValue"] == "cCCS2"
        assert results[1]["attributeValue"] == "Available"
        assert results[2]["attributeStatus"] == "UnknownComponent"
    run_rig(body)


def test_more_variables_than_items_per_message_is_refused_whole() -> None:
    """B06.FR.xx: more GetVariableData than ItemsPerMessage[GetVariables] (50): CALLERROR
    OccurrenceConstraintViolation, nothing answered piecemeal; 50 are answered."""
    async def body(r: OcppRig) -> None:
        one = {"component": {"name": "OCPPCommCtrlr"},
               "variable": {"name": "HeartbeatInterval"}}
        reply = await r.raw('[2, "many", "GetVariables", {"getVariableData": ['
                            + ",".join([_json(one)] * 51) + "]}]")
        assert reply[0] == 4 and reply[2] == "OccurrenceConstraintViolation"
        fifty = await r.command("GetVariables", {"getVariableData": [one] * 50})
        assert len(fifty["getVariableResult"]) == 50
    run_rig(body)


def _json(value: Any) -> str:
    import json

    return json.dumps(value)


# --- authorization ---------------------------------------------------------------------


def test_stop_by_another_card_of_the_group_carries_that_card() -> None:
    """TC_C_xx (GroupId stop): the Ended event names the card that stopped it."""
    async def body(r: OcppRig) -> None:
        await r.play(SESSION)
        member = await r.station.authorization.present_card(1, "04DRIVER00002")
        assert member.accepted and member.action == "stop"
        ended = await r.expect("TransactionEvent", {"eventType": "Ended"})
        assert ended["triggerReason"] == "StopAuthorized"
        assert ended["idToken"] == {"idToken": "04DRIVER00002", "type": "ISO14443"}
        started = r.csms.messages("TransactionEvent")[0]
        assert started["idToken"]["idToken"] == "04A1B2C3D4E5F6"
    run_rig(body)


def test_a_card_from_the_cache_starts_the_next_session_on_the_bay() -> None:
    """TC_C_xx (authorization cache, LocalPreAuthorize): the first session asks the CSMS
    and caches the card; the second session on the same bay starts from the cache,
    without an Authorize; then a third, offline, from the cache as well."""
    async def body(r: OcppRig) -> None:
        for n in range(3):
            if n == 2:
                await r.play("csms down\nsleep 10s\n")
            mark = r.mark()
            await r.play(SESSION + "sleep 40s\nstop 1 Local\nwait 1 Finished timeout=1m\n"
                         "unplug 1\nwait 1 Available timeout=30s\n")
            authorizes = [a for a in _actions(r, mark) if a == "Authorize"]
            assert len(authorizes) == (1 if n == 0 else 0), n
            if n < 2:
                ended = await r.expect("TransactionEvent", {"eventType": "Ended"}, after=mark)
                assert ended["transactionInfo"]["stoppedReason"] == "Local"
        await r.play("csms up\n")
        await r.sleep(120)
        events = r.csms.messages("TransactionEvent")
        assert [e["eventType"] for e in events].count("Started") == 3
        assert [e["eventType"] for e in events].count("Ended") == 3
    run_rig(body, variables={"AuthCtrlr.LocalPreAuthorize": "true"})


# --- transactions ----------------------------------------------------------------------


def test_stop_event_comes_before_any_charging_state_change_of_the_stop() -> None:
    """TC_E_xx (stop by card): the event saying StopAuthorized is numbered before any
    change of chargingState the stop brought (events in the order things happened);
    with TxStopPoint EVConnected the Updated StopAuthorized, then Ended EVDeparted."""
    async def body(r: OcppRig) -> None:
        await r.play(SESSION + "sleep 20s\n")
        mark = r.mark()
        await r.station.authorization.present_card(1, "04A1B2C3D4E5F6")
        await r.play("wait 1 Finished timeout=1m\nsleep 5s\n")
        after = _events(r, mark)
        assert after and after[0]["triggerReason"] == "StopAuthorized"
        assert after[0]["transactionInfo"]["chargingState"] == "EVConnected"
        assert "ChargingStateChanged" not in [e["triggerReason"] for e in after]
        await r.play("unplug 1\nwait 1 Available timeout=30s\nsleep 5s\n")
        events = _events(r)
        assert [e["seqNo"] for e in events] == list(range(len(events)))
        assert events[-1]["eventType"] == "Ended"
    run_rig(body, variables={"TxCtrlr.TxStopPoint": "EVConnected"})


def test_sampled_values_sit_on_the_interval_grid() -> None:
    """TC_E_xx / J02 (sampled meter values): over 20 minutes every MeterValuePeriodic
    event is a whole number of TxUpdatedInterval after the Started event (no drift)."""
    async def body(r: OcppRig) -> None:
        await r.play(SESSION + "sleep 20m\n")
        events = _events(r)
        start = _utc(events[0]["timestamp"])
        periodic = [_utc(e["timestamp"]) for e in events
                    if e["triggerReason"] == "MeterValuePeriodic"]
        assert len(periodic) >= 38
        offsets = [(t - start).total_seconds() for t in periodic]
        assert all(abs(o - 30 * round(o / 30)) < 0.05 for o in offsets), offsets
        assert [round(o / 30) for o in offsets] == list(range(1, len(offsets) + 1))
    run_rig(body)


def test_a_csms_certificate_our_ca_did_not_sign_is_a_security_event(tmp_path: Path) -> None:
    """TC_A_05_CS / A00.FR.3xx: the TLS handshake fails on the CSMS's certificate: no
    connection, and InvalidCsmsCertificate is recorded (held for the CSMS, not critical)."""
    import asyncio
    from dataclasses import replace

    import looptime
    from ocpp_rig import CONFIG
    from test_ocpp_security import _server_tls, make_pki

    from firmware import config as cfg
    from firmware.service import running
    from hal.clock import Clock
    from sim.csms import LocalCsms
    from sim.world import SimWorld

    make_pki(tmp_path)
    config = cfg.load(CONFIG)
    config = replace(config, extra={**config.extra, "ocpp": {
        "security_profile": 2, "basic_auth_password": "s3cret-s3cret-16",
        "ca_file": str(tmp_path / "other-ca.pem"), "state_dir": str(tmp_path / "s")}})
    seen: list[str] = []

    async def main() -> None:
        clock = Clock(1.0, virtual=True)
        csms = LocalCsms(clock, ssl_context=_server_tls(tmp_path, False))
        await csms.up()
        world = SimWorld(config, clock, csms_url=csms.url)
        try:
            async with running(config, clock, world) as charger:
                await clock.sleep(5)
                assert not charger.station.online.is_set() and not csms.received
                seen.extend(e.kind for e in charger.security.recent())
                assert any(p["type"] == "InvalidCsmsCertificate"
                           for p in charger.station.security_events.held)
        finally:
            await csms.down()
        rest = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in rest:
            task.cancel()
        await asyncio.gather(*rest, return_exceptions=True)

    loop = looptime.new_event_loop(start=0.0, noop_cycles=1)
    try:
        loop.run_until_complete(main())
    finally:
        loop.close()
    assert "InvalidCsmsCertificate" in seen and "StartupOfTheDevice" in seen
