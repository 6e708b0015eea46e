"""The OCPP 2.0.1 station against the local CSMS, in simulated time. Each test names the
OCA test case (OCPP 2.0.1 Part 6) it is modelled on; the steps are our own."""

from __future__ import annotations

from typing import Any

from ocpp_rig import OcppRig, run_rig

from firmware import words

SESSION = """
plug 1 eactros600 soc=20
authorize 1 rfid 04A1B2C3D4E5F6
wait 1 Charging timeout=2m
"""


def _events(r: OcppRig, after: int = 0) -> list[dict[str, Any]]:
    return [m.payload for m in r.csms.received[after:] if m.action == "TransactionEvent"]


def test_boot_then_status_for_every_connector() -> None:
    """TC_B_01_CS: cold boot, accepted; StatusNotification Available for each connector."""
    async def body(r: OcppRig) -> None:
        boot = await r.expect("BootNotification", {"reason": "PowerUp", "chargingStation": {
            "vendorName": "chargebay", "model": "CB400-2", "serialNumber": "SIM-0001"}})
        assert boot["chargingStation"]["firmwareVersion"]
        for evse in (1, 2):
            await r.expect("StatusNotification", {"evseId": evse, "connectorId": 1,
                                                  "connectorStatus": "Available"})
        assert r.csms.received[0].action == "BootNotification"
    run_rig(body)


def test_boot_pending_sends_nothing_else_and_retries_at_interval() -> None:
    """TC_B_02_CS (pending): only BootNotification until accepted, retried at the interval."""
    async def body(r: OcppRig) -> None:
        await r.sleep(r.csms.heartbeat_s + 5)  # the first retry is due at the interval
        assert not r.station.online.is_set()
        actions = {m.action for m in r.csms.received}
        assert actions == {"BootNotification"}
        boots = [m.at_s for m in r.csms.received if m.action == "BootNotification"]
        assert len(boots) >= 2 and boots[1] - boots[0] >= r.csms.heartbeat_s - 1
        r.csms.boot_status = "Accepted"
        await r.expect("StatusNotification", within=2 * r.csms.heartbeat_s)
        assert r.station.online.is_set()
    run_rig(body, boot_status="Pending")


def test_rfid_session_gives_started_periodic_soc_values_and_ended() -> None:
    """TC_E_39_CS-like: authorized by card, charging, 30 s meter values with SoC, local stop."""
    async def body(r: OcppRig) -> None:
        await r.play(SESSION + "sleep 3m\nstop 1 Local\nwait 1 Finished timeout=1m\n")
        await r.sleep(5)
        events = _events(r)
        assert [e["seqNo"] for e in events] == list(range(len(events)))
        started, ended = events[0], events[-1]
        assert started["eventType"] == "Started"
        assert started["idToken"] == {"idToken": "04A1B2C3D4E5F6", "type": "ISO14443"}
        assert started["evse"] == {"id": 1, "connectorId": 1}
        assert ended["eventType"] == "Ended"
        assert ended["transactionInfo"]["stoppedReason"] == "Local"
        assert ended["triggerReason"] == "StopAuthorized"
        ids = {e["transactionInfo"]["transactionId"] for e in events}
        assert len(ids) == 1
        periodic = [e for e in events if e["triggerReason"] == "MeterValuePeriodic"]
        assert 5 <= len(periodic) <= 7  # 3 min at 30 s
        times = [r.station.utc().fromisoformat(e["timestamp"].replace("Z", "+00:00"))
                 for e in periodic]
        gaps = {round((b - a).total_seconds()) for a, b in zip(times, times[1:], strict=False)}
        assert gaps == {30}
        values = {v["measurand"]: v for v in periodic[-1]["meterValue"][0]["sampledValue"]}
        assert set(values) == {"Energy.Active.Import.Register", "Power.Active.Import",
                               "Current.Import", "Voltage", "SoC"}
        assert values["SoC"]["unitOfMeasure"]["unit"] == "Percent"
        assert 20 < values["SoC"]["value"] < 30 and values["Current.Import"]["value"] > 400
        final = {v["measurand"]: v["value"] for v in ended["meterValue"][0]["sampledValue"]}
        session_wh = r.world.sessions[0].energy_kwh * 1000
        assert abs(final["Energy.Active.Import.Register"] - session_wh) < 1.0
        assert not any(e.get("offline") for e in events)
    run_rig(body)


def test_remote_start_and_remote_stop() -> None:
    """TC_F_01_CS / TC_F_03_CS: RequestStartTransaction, then RequestStopTransaction."""
    async def body(r: OcppRig) -> None:
        await r.play("plug 2 etgx soc=40\nauthorize 2 app APP-USER-1\n"
                     "wait 2 Charging timeout=2m\n")
        started = await r.expect("TransactionEvent", {"eventType": "Started"})
        assert started["triggerReason"] == "RemoteStart"
        assert started["transactionInfo"]["remoteStartId"] == 1
        assert started["idToken"]["type"] == "Central"
        tx_id = started["transactionInfo"]["transactionId"]
        answer = await r.command("RequestStopTransaction", {"transactionId": tx_id})
        assert answer["status"] == "Accepted"
        ended = await r.expect("TransactionEvent", {"eventType": "Ended"})
        assert ended["transactionInfo"]["stoppedReason"] == "Remote"
        assert ended["triggerReason"] == "RemoteStop"
        unknown = await r.command("RequestStopTransaction", {"transactionId": "nope"})
        assert unknown["status"] == "Rejected"
    run_rig(body)


def test_two_hours_offline_mid_session_then_everything_in_order() -> None:
    """TC_E_04_CS-like: the CSMS goes away for 2 h mid-session; the charger keeps charging,
    queues, and delivers in order with offline=true after reconnecting."""
    async def body(r: OcppRig) -> None:
        await r.play(SESSION + "sleep 1m\ncsms down\nsleep 2h\n")
        queued = len(r.station.queue)
        # The truck charged to full while offline (about 1 h 40 min): 30-s values until
        # then, and the Ended event, all kept.
        assert queued >= 150
        kept = [q.payload for q in r.station.queue.pending()]
        assert kept[-1]["eventType"] == "Ended"
        assert kept[-1]["transactionInfo"]["stoppedReason"] == "StoppedByEV"
        before = len(_events(r))
        await r.play("csms up\n")
        await r.expect("TransactionEvent", {"eventType": "Ended"}, within=30 * 60)
        events = _events(r)
        assert [e["seqNo"] for e in events] == list(range(len(events)))
        offline = [e for e in events[before:] if e.get("offline")]
        assert len(offline) >= queued - 1
        assert all(e.get("offline") for e in events[before:before + queued - 1])
        assert len(r.station.queue) == 0
    run_rig(body)


def test_card_of_same_group_stops_other_card_does_not() -> None:
    """TC_C_xx (GroupId): a card of the same group stops the session; a stranger cannot."""
    async def body(r: OcppRig) -> None:
        await r.play(SESSION)
        cards = r.station.authorization
        stranger = await cards.present_card(1, "04C0FFEE000001")  # no group
        assert "did not start" in stranger.message
        assert (stranger.action, stranger.accepted, stranger.reason) == ("stop", False,
                                                                         "NotHolder")
        assert r.phase().value == "Charging"
        member = await cards.present_card(1, "04DRIVER00002")  # FLEET-7, as the starter
        assert member.message.startswith("Stopping")
        assert (member.action, member.accepted, member.group) == ("stop", True, "FLEET-7")
        ended = await r.expect("TransactionEvent", {"eventType": "Ended"})
        assert ended["transactionInfo"]["stoppedReason"] == "Local"
    run_rig(body)


def test_unknown_card_refused_and_shown() -> None:
    """TC_C_02_CS: Authorize answered Unknown: no transaction, the screen says so."""
    async def body(r: OcppRig) -> None:
        await r.play("plug 1 etgx soc=40\nwait 1 Preparing timeout=5s\n")
        decision = await r.station.authorization.present_card(1, "DEADBEEF")
        assert "not accepted" in decision.message and r.phase().value == "Preparing"
        assert not decision.accepted and decision.basis == "csms"
        await r.expect("Authorize", {"idToken": {"idToken": "DEADBEEF"}})
        screen = r.world.controller.connectors[1].screen
        assert screen is not None and "not accepted" in words.screen_text(screen)[0].lower()
        await r.sleep(5)
        assert not _events(r)
    run_rig(body)


def test_offline_authorization_by_local_list_and_cache() -> None:
    """TC_D_01 / TC_C_xx: offline, a card on the local list or in the cache charges;
    an unknown card does not (OfflineTxForUnknownIdEnabled false)."""
    async def body(r: OcppRig) -> None:
        answer = await r.command("SendLocalList", {
            "versionNumber": 3, "updateType": "Full", "localAuthorizationList": [
                {"idToken": {"idToken": "LISTED-1", "type": "ISO14443"},
                 "idTokenInfo": {"status": "Accepted"}}]})
        assert answer["status"] == "Accepted"
        assert (await r.command("GetLocalListVersion", {}))["versionNumber"] == 3
        stale = await r.command("SendLocalList", {"versionNumber": 2,
                                                  "updateType": "Differential"})
        assert stale["status"] == "VersionMismatch"
        cards = r.station.authorization
        await cards.present_card(2, "04C0FFEE000001")  # online: goes to the cache
        await r.play("csms down\nsleep 1m\nplug 1 etgx soc=40\nwait 1 Preparing timeout=5s\n")
        assert "not accepted" in (await cards.present_card(1, "NOBODY")).message
        listed = await cards.present_card(1, "LISTED-1")
        assert listed.message == "Card accepted."
        assert listed.accepted and listed.offline and listed.basis == "local_list"
        assert (await r.station.authorizer.authorize_token("04C0FFEE000001")).source == "cache"
        await r.play("wait 1 Charging timeout=2m\n")
    run_rig(body)


def test_transaction_event_retried_per_message_attempts() -> None:
    """TC_E_xx (MessageAttempts): a CALLERROR counts as a failed attempt; the event is
    resent after MessageAttemptInterval x attempts, in order, and then delivered."""
    async def body(r: OcppRig) -> None:
        r.csms.fail_transaction_events = 2
        await r.play(SESSION)
        started = await r.expect("TransactionEvent", {"eventType": "Started"}, within=600)
        await r.sleep(60)
        attempts = [m for m in r.csms.received if m.action == "TransactionEvent"
                    and m.payload["seqNo"] == 0]
        assert len(attempts) == 3  # two refused, the third accepted
        gaps = [round(b.at_s - a.at_s) for a, b in zip(attempts, attempts[1:], strict=False)]
        assert gaps == [10, 20]  # interval x attempts so far
        assert started["seqNo"] == 0
        events = [m.payload["seqNo"] for m in r.csms.received if m.action == "TransactionEvent"]
        assert events == sorted(events)  # nothing overtook the retried event
    run_rig(body, variables={"OCPPCommCtrlr.MessageAttemptInterval": "10"})


def test_reset_immediate_ends_the_session_and_reboots_the_link() -> None:
    """TC_B_21/B_22-like: Reset Immediate while charging: the transaction ends with
    ImmediateReset, the station boots again with reason RemoteReset; OnIdle is Scheduled."""
    async def body(r: OcppRig) -> None:
        await r.play(SESSION)
        assert (await r.command("Reset", {"type": "OnIdle"}))["status"] == "Scheduled"
        mark = r.mark()
        assert (await r.command("Reset", {"type": "Immediate"}))["status"] == "Accepted"
        ended = await r.expect("TransactionEvent", {"eventType": "Ended"}, after=mark)
        assert ended["transactionInfo"]["stoppedReason"] == "ImmediateReset"
        await r.expect("BootNotification", {"reason": "RemoteReset"}, after=mark)
        await r.expect("StatusNotification", after=mark)
    run_rig(body)


def test_start_and_stop_points_from_the_device_model() -> None:
    """TC_E_01/E_06-like: TxStartPoint EVConnected starts the transaction at plug-in
    (CablePluggedIn, no idToken yet), the card then arrives as an Updated with triggerReason
    Authorized and the idToken; TxStopPoint EVConnected ends it only when the truck leaves."""
    async def body(r: OcppRig) -> None:
        await r.play("plug 1 etgx soc=50\nwait 1 Preparing timeout=5s\nsleep 5s\n")
        started = await r.expect("TransactionEvent", {"eventType": "Started"})
        assert started["triggerReason"] == "CablePluggedIn" and "idToken" not in started
        assert started["transactionInfo"]["chargingState"] == "EVConnected"
        await r.play("authorize 1 rfid 04A1B2C3D4E5F6\nwait 1 Charging timeout=2m\n"
                     "sleep 1m\nstop 1 Local\nwait 1 Finished timeout=1m\nsleep 30s\n")
        authorized = await r.expect("TransactionEvent", {"triggerReason": "Authorized"})
        assert authorized["idToken"]["idToken"] == "04A1B2C3D4E5F6"
        assert not [p for p in r.csms.messages("TransactionEvent") if p["eventType"] == "Ended"]
        await r.play("unplug 1\nwait 1 Available timeout=10s\n")
        ended = await r.expect("TransactionEvent", {"eventType": "Ended"})
        assert ended["transactionInfo"]["stoppedReason"] == "Local"
        events = r.csms.messages("TransactionEvent")
        assert [e["seqNo"] for e in events] == list(range(len(events)))
    run_rig(body, variables={"TxCtrlr.TxStartPoint": "EVConnected",
                             "TxCtrlr.TxStopPoint": "EVConnected"})


def test_unlock_connector_asks_the_core_and_reads_the_lock_switch() -> None:
    """TC_F_05 / F_06: UnlockConnector is answered from the core's gates and the lock's
    position switch: during a transaction OngoingAuthorizedTransaction, a free lock after
    the session Unlocked, a jammed lock UnlockFailed (never reported unlocked)."""
    async def body(r: OcppRig) -> None:
        await r.play(SESSION)
        during = await r.command("UnlockConnector", {"evseId": 1, "connectorId": 1})
        assert during["status"] == "OngoingAuthorizedTransaction" and r.world.io.bays[1].lock
        await r.play("stop 1 Local\nwait 1 Finished timeout=1m\n")
        await r.expect("TransactionEvent", {"eventType": "Ended"})
        free = await r.command("UnlockConnector", {"evseId": 1, "connectorId": 1})
        assert free["status"] == "Unlocked" and not r.world.io.bays[1].lock
        await r.play("unplug 1\nwait 1 Available timeout=30s\n")
        # The next truck charges; its lock jams shut before the session ends.
        mark = r.mark()
        await r.play(SESSION.replace("eactros600 soc=20", "etgx soc=40"))
        await r.play("fault 1 lock_jam\nstop 1 Local\nsleep 10s\n")
        await r.expect("TransactionEvent", {"eventType": "Ended"}, after=mark)
        assert r.world.io.bays[1].lock
        jammed = await r.command("UnlockConnector", {"evseId": 1, "connectorId": 1})
        assert jammed["status"] == "UnlockFailed" and r.world.io.bays[1].lock
    run_rig(body)
