"""TransactionEvents from the core's commands (OCPP 2.0.1 Part 2, E01-E15): the sequence
of an RFID and a remote-start session, seqNo, offline flag, TxStartPoint / TxStopPoint
variants, sampled and clock-aligned meter values, TriggerMessage and the PowerLoss end
of a transaction found open after a restart."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from firmware.core import events as ev
from firmware.core.events import StopReason
from firmware.core.session import Status
from firmware.core.transitions import Phase
from firmware.errors import ErrorCode
from firmware.ocpp.queue import MessageQueue
from firmware.ocpp.v201.transactions import DEFAULTS, PERSIST_REGISTER_S, Transactions

T0 = datetime(2026, 11, 23, 8, 0, 5, tzinfo=UTC)
CARD = {"idToken": "04A1B2C3", "type": "ISO14443"}


def settings(**over: str) -> Callable[[str, str], str]:
    values = {**{f"{c}.{v}": s for (c, v), s in DEFAULTS.items()}, **over}
    return lambda component, variable: values[f"{component}.{variable}"]


def status(phase: Phase, energy: float = 0.0, soc: float | None = None,
           amps: float = 0.0, reason: StopReason | None = None) -> Status:
    return Status(phase, 750.0 if amps else 0.0, amps, energy, soc, 0.0, amps, amps, (),
                  reason)


class Bench:
    """One EVSE driven the way the controller observer and the 1-s tick drive it."""

    def __init__(self, path: Path, **over: str) -> None:
        self.path, self.over = path, over
        self.q = MessageQueue(path)
        self.tx = Transactions(self.q, settings(**over), (1,))  # sampling on UTC times
        self.t = 0.0
        self.energy = 0.0
        self.tx.set_online(True)

    def now(self) -> datetime:
        return T0 + timedelta(seconds=self.t)

    def cmd(self, cmd: ev.Command, st: Status) -> None:
        self.tx.on_command(1, cmd, st, self.now())

    def charge(self, seconds: int, kw: float = 300.0, soc0: float = 20.0) -> None:
        for _ in range(seconds):
            self.t += 1
            self.energy += kw * 1000 / 3600
            self.tx.on_tick({1: status(Phase.CHARGING, self.energy,
                                       soc0 + self.energy / 5000, kw * 1000 / 750)},
                            self.now())

    def plug_and_card(self, trigger: str = "Authorized", remote_id: int | None = None,
                      token: dict[str, Any] = CARD) -> None:
        self.cmd(ev.Screen(Phase.PREPARING), status(Phase.PREPARING))
        self.tx.note_authorization(1, token, trigger, remote_id, None)
        source = "remote" if remote_id is not None else "rfid"
        self.cmd(ev.SessionStarted(token["idToken"], source, self.t),
                 status(Phase.AUTHORIZED))
        self.t += 5
        self.cmd(ev.SetContactors(True), status(Phase.CABLE_CHECK))

    def stop(self, reason: str, fault: ErrorCode | None = None) -> None:
        self.cmd(ev.SetContactors(False), status(Phase.STOPPING, self.energy))
        self.cmd(ev.SessionEnded(StopReason(reason), self.t, self.energy, fault),
                 status(Phase.FINISHED, self.energy, reason=StopReason(reason)))

    def unplug(self) -> None:
        self.cmd(ev.Screen(Phase.AVAILABLE), status(Phase.AVAILABLE))

    def events(self) -> list[dict[str, Any]]:
        return [m.payload for m in self.q.pending()]

    def reopen(self) -> None:
        self.q.close()
        self.q = MessageQueue(self.path)
        self.tx = Transactions(self.q, settings(**self.over), (1,))


def values(event: dict[str, Any]) -> dict[str, tuple[float, str, str]]:
    (mv,) = event["meterValue"]
    return {s["measurand"]: (s["value"], s["context"], s["unitOfMeasure"]["unit"])
            for s in mv["sampledValue"]}


def gapless(events: list[dict[str, Any]]) -> None:
    assert [e["seqNo"] for e in events] == list(range(len(events)))
    assert len({e["transactionInfo"]["transactionId"] for e in events}) == 1


def test_rfid_session(tmp_path: Path) -> None:
    b = Bench(tmp_path / "q.db")
    b.plug_and_card()
    assert b.tx.transaction_id(1) is not None and b.tx.id_token(1) == CARD
    b.charge(125)
    b.stop("Local")
    b.unplug()
    evs = b.events()
    gapless(evs)
    started, ended = evs[0], evs[-1]
    assert started["eventType"] == "Started" and started["idToken"] == CARD
    assert started["evse"] == {"id": 1, "connectorId": 1}
    assert values(started)["Energy.Active.Import.Register"][1] == "Transaction.Begin"
    # Partial TxStartPoint default PowerPathClosed -> the Started event says why with
    # ChargingStateChanged (the contactors closing), E01 / E02.
    assert started["triggerReason"] == "ChargingStateChanged"
    periodic = [e for e in evs if e["triggerReason"] == "MeterValuePeriodic"]
    assert len(periodic) == 125 // 30
    stamps = [datetime.fromisoformat(e["timestamp"].replace("Z", "+00:00")) for e in periodic]
    assert all(y - x == timedelta(seconds=30)
               for x, y in zip(stamps, stamps[1:], strict=False))
    for e in periodic:
        v = values(e)
        assert set(v) == {"Energy.Active.Import.Register", "Power.Active.Import",
                          "Current.Import", "Voltage", "SoC"}
        assert v["SoC"][1:] == ("Sample.Periodic", "Percent")
        assert v["Energy.Active.Import.Register"][2] == "Wh"
        assert v["Power.Active.Import"][0] == pytest.approx(300_000, rel=1e-3)
    wh = [values(e)["Energy.Active.Import.Register"][0] for e in periodic]
    assert wh == sorted(wh) and wh[0] > 0
    assert ended["eventType"] == "Ended" and ended["triggerReason"] == "StopAuthorized"
    assert ended["transactionInfo"]["stoppedReason"] == "Local"
    assert values(ended)["Energy.Active.Import.Register"] == (
        round(b.energy, 3), "Transaction.End", "Wh")
    assert not any(e.get("offline") for e in evs)
    assert b.tx.transaction_id(1) is None
    b.q.close()


def test_remote_start_and_remote_stop(tmp_path: Path) -> None:
    b = Bench(tmp_path / "q.db")
    app = {"idToken": "USER-7", "type": "Central"}
    b.plug_and_card("RemoteStart", remote_id=4711, token=app)
    b.charge(61)
    b.stop("Remote")
    evs = b.events()
    gapless(evs)
    assert evs[0]["triggerReason"] == "RemoteStart"
    assert evs[0]["transactionInfo"]["remoteStartId"] == 4711
    assert evs[0]["idToken"] == app
    assert all("remoteStartId" not in e["transactionInfo"] for e in evs[1:])
    assert evs[-1]["triggerReason"] == "RemoteStop"
    assert evs[-1]["transactionInfo"]["stoppedReason"] == "Remote"
    assert sum(e["triggerReason"] == "MeterValuePeriodic" for e in evs) == 2
    b.q.close()


@pytest.mark.parametrize(("core", "fault", "ocpp"), [
    ("EVDisconnected", None, "EVDisconnected"), ("StoppedByEV", None, "StoppedByEV"),
    ("Fault", ErrorCode.EMERGENCY_STOP, "EmergencyStop"),
    ("Fault", ErrorCode.LOCK_FAILURE, "Other"),  # ReasonEnumType has no word for it
    ("Fault", None, "Other"), ("Other", None, "Other")])
def test_stopped_reason_mapping(tmp_path: Path, core: str, fault: ErrorCode | None,
                                ocpp: str) -> None:
    b = Bench(tmp_path / "q.db")
    b.plug_and_card()
    b.charge(3)
    b.stop(core, fault)
    ended = b.events()[-1]
    assert ended["eventType"] == "Ended"
    assert ended["transactionInfo"]["stoppedReason"] == ocpp
    b.q.close()


def test_offline_flag_only_on_events_made_offline(tmp_path: Path) -> None:
    b = Bench(tmp_path / "q.db")
    b.plug_and_card()
    b.charge(40)
    b.tx.set_online(False)
    b.charge(60)
    b.tx.set_online(True)
    b.charge(30)
    b.stop("Local")
    evs = b.events()
    gapless(evs)
    flags = [(e["triggerReason"], bool(e.get("offline"))) for e in evs
             if e["triggerReason"] == "MeterValuePeriodic"]
    assert [f for _, f in flags] == [False, True, True, False]
    assert "offline" not in evs[0] and "offline" not in evs[-1]
    b.q.close()


def test_start_point_ev_connected_stop_point_ev_connected(tmp_path: Path) -> None:
    """E02: the transaction starts at plug-in, the card arrives in an Updated, and it ends
    only when the EV leaves (TxStopPoint EVConnected)."""
    b = Bench(tmp_path / "q.db", **{"TxCtrlr.TxStartPoint": "EVConnected",
                                    "TxCtrlr.TxStopPoint": "EVConnected"})
    b.plug_and_card()
    b.charge(10)
    b.stop("Local")
    assert b.tx.transaction_id(1) is not None  # still plugged: still open
    b.t += 20
    b.unplug()
    evs = b.events()
    gapless(evs)
    assert evs[0]["eventType"] == "Started" and evs[0]["triggerReason"] == "CablePluggedIn"
    assert "idToken" not in evs[0]
    auth = [e for e in evs if e.get("idToken")]
    assert auth[0]["eventType"] == "Updated" and auth[0]["triggerReason"] == "Authorized"
    stopped = [e for e in evs if e["triggerReason"] == "StopAuthorized"]
    assert len(stopped) == 1 and stopped[0]["eventType"] == "Updated"
    assert evs[-1]["eventType"] == "Ended" and evs[-1]["triggerReason"] == "EVDeparted"
    assert evs[-1]["transactionInfo"]["stoppedReason"] == "Local"  # the reason given first
    b.q.close()


@pytest.mark.parametrize(("start", "trigger", "begins"), [
    ("Authorized", "Authorized", Phase.AUTHORIZED),
    ("PowerPathClosed", "ChargingStateChanged", Phase.CABLE_CHECK),
    ("EnergyTransfer", "ChargingStateChanged", Phase.CHARGING)])
def test_start_points(tmp_path: Path, start: str, trigger: str, begins: Phase) -> None:
    b = Bench(tmp_path / "q.db", **{"TxCtrlr.TxStartPoint": start})
    b.plug_and_card()
    evs = b.events()
    if begins is Phase.CHARGING:
        assert evs == [] and b.tx.transaction_id(1) is None
        b.charge(1)
        evs = b.events()
    assert evs[0]["eventType"] == "Started" and evs[0]["triggerReason"] == trigger
    assert evs[0]["idToken"] == CARD
    assert evs[0]["transactionInfo"]["chargingState"] == (
        "Charging" if begins is Phase.CHARGING else "EVConnected")
    b.q.close()


def test_stop_point_power_path_closed(tmp_path: Path) -> None:
    b = Bench(tmp_path / "q.db", **{"TxCtrlr.TxStopPoint": "PowerPathClosed"})
    b.plug_and_card()
    b.charge(5)
    b.cmd(ev.SetContactors(False), status(Phase.STOPPING, b.energy, reason="StoppedByEV"))
    evs = b.events()
    assert evs[-1]["eventType"] == "Ended"  # contactors open: the transaction is over
    gapless(evs)
    b.q.close()


def test_clock_aligned_and_trigger(tmp_path: Path) -> None:
    b = Bench(tmp_path / "q.db", **{"AlignedDataCtrlr.Interval": "60",
                                    "SampledDataCtrlr.TxUpdatedInterval": "0"})
    b.plug_and_card()
    b.charge(185)
    assert b.tx.trigger(1)
    evs = b.events()
    gapless(evs)
    clock = [e for e in evs if e["triggerReason"] == "MeterValueClock"]
    assert [e["timestamp"][11:19] for e in clock] == ["08:01:00", "08:02:00", "08:03:00"]
    assert all(values(e)["Energy.Active.Import.Register"][1] == "Sample.Clock"
               for e in clock)
    assert not any(e["triggerReason"] == "MeterValuePeriodic" for e in evs)
    assert evs[-1]["triggerReason"] == "Trigger" and evs[-1]["eventType"] == "Updated"
    assert not Transactions(MessageQueue(tmp_path / "other.db"), settings(),
                            (1,)).trigger(1)  # nothing running: nothing to send
    b.q.close()


def test_restart_ends_open_transaction_with_power_loss(tmp_path: Path) -> None:
    b = Bench(tmp_path / "q.db")
    b.plug_and_card()
    b.charge(95)
    before = b.events()
    last_wh = values([e for e in before if "meterValue" in e][-1])[
        "Energy.Active.Import.Register"][0]
    tx_id = b.tx.transaction_id(1)
    b.reopen()  # the process died; a new one opens the same db
    assert b.tx.transaction_id(1) == tx_id
    b.t += 30
    ended = b.tx.resume_after_restart({1: status(Phase.AVAILABLE)}, b.now())
    assert ended == [tx_id] and b.tx.transaction_id(1) is None
    evs = b.events()
    gapless(evs)
    assert evs[:-1] == before
    last = evs[-1]
    assert last["eventType"] == "Ended" and last["triggerReason"] == "AbnormalCondition"
    assert last["transactionInfo"]["stoppedReason"] == "PowerLoss"
    # The register persisted between samples (every PERSIST_REGISTER_S): not the last
    # 30-s sample, but at most that long a stretch before the process died.
    final_wh, context = values(last)["Energy.Active.Import.Register"][:2]
    assert context == "Transaction.End" and last_wh < final_wh <= b.energy
    assert b.energy - final_wh <= PERSIST_REGISTER_S * 300_000 / 3600 + 1e-6
    b.reopen()  # a second restart finds nothing open
    assert b.tx.resume_after_restart({1: status(Phase.AVAILABLE)}, b.now()) == []
    # The next session gets a new id, seqNo from 0, and the register goes on from there.
    b.energy = 0.0
    b.plug_and_card()
    b.charge(31)
    new = [e for e in b.events() if e["transactionInfo"]["transactionId"] != tx_id]
    gapless(new)
    first = [e for e in new if e["triggerReason"] == "MeterValuePeriodic"][0]
    # the register goes on from the Ended value, never below it
    assert values(new[0])["Energy.Active.Import.Register"][0] == final_wh
    assert values(first)["Energy.Active.Import.Register"][0] > final_wh
    b.q.close()
