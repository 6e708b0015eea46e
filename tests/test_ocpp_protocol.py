"""OCPP-J hygiene, the device model and remote control, against the real station."""

from __future__ import annotations

import json
from pathlib import Path

from ocpp_rig import OcppRig, run_rig

from firmware.ocpp.v201.device_model import VARIABLES

SESSION = "plug 1 eactros600 soc=20\nauthorize 1 rfid 04A1B2C3D4E5F6\nwait 1 Charging timeout=2m\n"


def test_bad_frames_get_the_right_callerror() -> None:
    """OCPP-J 2.0.1 Part 4 section 4.2-4.3, and the package's traps pinned: it would answer
    NotSupported for an unknown action and nothing for bad JSON or an unknown type."""
    async def body(r: OcppRig) -> None:
        cases = [
            ("{not json", "-1", "RpcFrameworkError"),
            ('"just a string"', "-1", "RpcFrameworkError"),
            ("[2, 17, \"Reset\", {}]", "-1", "RpcFrameworkError"),
            ('[9, "m-1", "Reset", {}]', "m-1", "MessageTypeNotSupported"),
            ('[2, "m-2", "MakeCoffee", {}]', "m-2", "NotImplemented"),
            ('[2, "m-3", "CertificateSigned", {"certificateChain": "x"}]', "m-3",
             "NotSupported"),
            ('[2, "m-4", "Reset", []]', "m-4", "FormatViolation"),
            ('[2, "m-5", "Reset", {"type": 5}]', "m-5", "TypeConstraintViolation"),
            ('[2, "m-6", "Reset", {}]', "m-6", "OccurrenceConstraintViolation"),
            ('[2, "m-7", "Reset", {"type": "Sometime"}]', "m-7", "PropertyConstraintViolation"),
            ('[2, "m-8", "Reset", {"type": "OnIdle", "colour": 1}]', "m-8", "FormatViolation"),
        ]
        for frame, message_id, code in cases:
            reply = await r.raw(frame)
            assert reply[0] == 4 and reply[1] == message_id, (frame, reply)
            assert reply[2] == code, (frame, reply)
        assert r.station.link is not None and r.station.link.bad_frames == len(cases)
        # The link is still alive and answers a good request.
        answer = await r.command("GetLocalListVersion", {})
        assert answer == {"versionNumber": 0}
    run_rig(body)


def test_get_and_set_variables(tmp_path: Path) -> None:
    """TC_B_06/B_07/B_09/B_10 style: read, write, read-only refused, unknown component
    and variable, reboot required; values persist across a restart."""
    async def body(r: OcppRig) -> None:
        got = await r.command("GetVariables", {"getVariableData": [
            {"component": {"name": "SampledDataCtrlr"}, "variable": {"name": "TxUpdatedInterval"}},
            {"component": {"name": "Nothing"}, "variable": {"name": "X"}},
            {"component": {"name": "TxCtrlr"}, "variable": {"name": "Nope"}},
            {"component": {"name": "SecurityCtrlr"}, "variable": {"name": "BasicAuthPassword"}},
            {"component": {"name": "TxCtrlr"}, "variable": {"name": "TxStartPoint"},
             "attributeType": "Target"}]})
        statuses = [x["attributeStatus"] for x in got["getVariableResult"]]
        assert statuses == ["Accepted", "UnknownComponent", "UnknownVariable", "Rejected",
                            "NotSupportedAttributeType"]
        assert got["getVariableResult"][0]["attributeValue"] == "30"
        put = await r.command("SetVariables", {"setVariableData": [
            {"component": {"name": "SampledDataCtrlr"}, "variable": {"name": "TxUpdatedInterval"},
             "attributeValue": "60"},
            {"component": {"name": "DeviceDataCtrlr"},
             "variable": {"name": "ItemsPerMessage", "instance": "GetReport"},
             "attributeValue": "5"},
            {"component": {"name": "OCPPCommCtrlr"},
             "variable": {"name": "NetworkConfigurationPriority"}, "attributeValue": "1"},
            {"component": {"name": "TxCtrlr"}, "variable": {"name": "TxStartPoint"},
             "attributeValue": "Sometimes"},
            {"component": {"name": "SampledDataCtrlr"}, "variable": {"name": "TxUpdatedInterval"},
             "attributeValue": "-4"}]})
        statuses = [x["attributeStatus"] for x in put["setVariableResult"]]
        assert statuses == ["Accepted", "Rejected", "RebootRequired", "Rejected", "Rejected"]
        assert r.station.model.get("SampledDataCtrlr", "TxUpdatedInterval") == "60"

    async def after_restart(r: OcppRig) -> None:
        assert r.station.model.get("SampledDataCtrlr", "TxUpdatedInterval") == "60"
    run_rig(body, state_dir=tmp_path)
    run_rig(after_restart, state_dir=tmp_path)


def test_base_report_arrives_in_notify_reports() -> None:
    """TC_B_12_CS: GetBaseReport FullInventory -> NotifyReport(s), tbc until the last."""
    async def body(r: OcppRig) -> None:
        answer = await r.command("GetBaseReport", {"requestId": 7,
                                                   "reportBase": "FullInventory"})
        assert answer["status"] == "Accepted"
        await r.expect("NotifyReport", {"requestId": 7, "tbc": False})
        reports = r.csms.messages("NotifyReport")
        assert [rep["seqNo"] for rep in reports] == list(range(len(reports)))
        assert all(rep["tbc"] for rep in reports[:-1])
        items = [d for rep in reports for d in rep["reportData"]]
        physical = {"ChargingStation", "EVSE", "Connector"}  # components.py, not stored
        assert len([d for d in items if d["component"]["name"] not in physical]) == \
            len(VARIABLES)
        names = {(d["component"]["name"], d["variable"]["name"]) for d in items}
        assert ("SampledDataCtrlr", "TxUpdatedInterval") in names
        assert ("AuthCacheCtrlr", "LifeTime") in names
        secret = [d for d in items if d["variable"]["name"] == "BasicAuthPassword"]
        assert secret and "value" not in secret[0]["variableAttribute"][0]
    run_rig(body)


def test_unlock_refused_while_charging_and_availability_deferred() -> None:
    """TC_F_05/F_06 (unlock), TC_G_03/G_04 (change availability while a session runs)."""
    async def body(r: OcppRig) -> None:
        await r.play(SESSION)
        unlock = await r.command("UnlockConnector", {"evseId": 1, "connectorId": 1})
        assert unlock["status"] == "OngoingAuthorizedTransaction"
        assert r.world.io.bays[1].lock
        change = await r.command("ChangeAvailability", {"operationalStatus": "Inoperative",
                                                        "evse": {"id": 1}})
        assert change["status"] == "Scheduled"
        assert r.phase().value == "Charging"  # deferred, not cut
        await r.play("stop 1 Local\nwait 1 Finished timeout=1m\nunplug 1\n"
                     "wait 1 Unavailable timeout=30s\n")
        await r.expect("StatusNotification", {"evseId": 1, "connectorStatus": "Unavailable"})
        assert r.station.stored("availability:1") == "Inoperative"
        free = await r.command("UnlockConnector", {"evseId": 2, "connectorId": 1})
        assert free["status"] == "Unlocked"
        assert (await r.command("UnlockConnector", {"evseId": 9, "connectorId": 1}))[
            "status"] == "UnknownConnector"
    run_rig(body)


def test_availability_survives_a_restart(tmp_path: Path) -> None:
    """TC_G_xx: an Inoperative EVSE stays Unavailable after the station restarts."""
    async def first(r: OcppRig) -> None:
        answer = await r.command("ChangeAvailability", {"operationalStatus": "Inoperative",
                                                        "evse": {"id": 2}})
        assert answer["status"] == "Accepted"
        await r.expect("StatusNotification", {"evseId": 2, "connectorStatus": "Unavailable"})

    async def second(r: OcppRig) -> None:
        await r.expect("StatusNotification", {"evseId": 2, "connectorStatus": "Unavailable"})
        assert r.phase(2).value == "Unavailable" and r.phase(1).value == "Available"
    run_rig(first, state_dir=tmp_path)
    run_rig(second, state_dir=tmp_path)


def test_trigger_messages_and_transaction_status() -> None:
    """TC_F_11/F_12/F_14 (TriggerMessage), TC_E_xx (GetTransactionStatus)."""
    async def body(r: OcppRig) -> None:
        await r.play(SESSION)
        mark = r.mark()
        assert (await r.command("TriggerMessage", {"requestedMessage": "StatusNotification",
                                                   "evse": {"id": 1}}))["status"] == "Accepted"
        await r.expect("StatusNotification", {"evseId": 1, "connectorStatus": "Occupied"},
                       after=mark)
        assert (await r.command("TriggerMessage", {"requestedMessage": "Heartbeat"}))[
            "status"] == "Accepted"
        await r.expect("Heartbeat", after=mark)
        assert (await r.command("TriggerMessage", {"requestedMessage": "TransactionEvent",
                                                   "evse": {"id": 1}}))["status"] == "Accepted"
        triggered = await r.expect("TransactionEvent", {"triggerReason": "Trigger"}, after=mark)
        tx_id = triggered["transactionInfo"]["transactionId"]
        status = await r.command("GetTransactionStatus", {"transactionId": tx_id})
        assert status["ongoingIndicator"] is True
        assert (await r.command("TriggerMessage", {"requestedMessage": "LogStatusNotification"}
                                ))["status"] == "NotImplemented"
        assert (await r.command("DataTransfer", {"vendorId": "acme"}))[
            "status"] == "UnknownVendorId"
    run_rig(body)


def test_open_transaction_after_restart_ends_with_power_loss(tmp_path: Path) -> None:
    """TC_B_xx / E: the process died mid-session; at start-up the open transaction ends
    with PowerLoss and its last meter value, seqNo continuing."""
    state = tmp_path

    async def charging(r: OcppRig) -> None:
        await r.play(SESSION + "sleep 2m\n")
        # the power goes here: no stop, no Ended

    async def after(r: OcppRig) -> None:
        ended = await r.expect("TransactionEvent", {"eventType": "Ended"})
        assert ended["transactionInfo"]["stoppedReason"] == "PowerLoss"
        assert ended["triggerReason"] == "AbnormalCondition"
        energy = ended["meterValue"][0]["sampledValue"][0]
        assert energy["measurand"] == "Energy.Active.Import.Register" and energy["value"] > 0
        assert ended["seqNo"] >= 5
    run_rig(charging, state_dir=state, power_cut=True)
    queue_rows = json.dumps(str(list(state.iterdir())))
    assert "queue.db" in queue_rows
    run_rig(after, state_dir=state)
