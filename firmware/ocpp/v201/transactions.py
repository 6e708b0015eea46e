"""OCPP 2.0.1 transactions: TransactionEvent Started / Updated / Ended from what the
controller's core machines do (Part 2, E01-E15).

Fed with every command the core returns (``on_command``) and once a second
(``on_tick``), it decides when a transaction starts and stops (TxCtrlr.TxStartPoint /
TxStopPoint, E01 / E06), numbers its events (seqNo), samples meter values
(SampledDataCtrlr.TxUpdatedInterval, AlignedDataCtrlr.Interval) and writes every event to
the persistent queue together with the transaction's state in one SQLite transaction:
after a crash at any point the seqNo neither skips nor repeats, and a transaction found
open at start-up is ended with PowerLoss and its last meter value (E07 / B11).

The energy register is per EVSE and survives restarts: register at session start plus
the energy the core has counted. (Partial: until a DC meter driver lands, the core's
own integration of the power stage's telemetry is the reading.)

API::

    tx = Transactions(queue, settings, evse_ids)   # settings(component, variable) -> str;
                                                   # DEFAULTS / default_settings for tests
    tx.on_command(evse_id, cmd, status, now_utc)   # from the Controller observer
    tx.on_tick(status_by_evse, now_utc)            # ~1/s: sampled + clock-aligned values
    tx.note_authorization(evse_id, id_token, trigger_reason, remote_start_id, group_id_token)
    tx.transaction_id(evse_id) / tx.id_token(evse_id) / tx.evse_of(transaction_id)
    tx.set_online(online)                          # events made offline carry offline=true
    tx.trigger(evse_id)                            # TriggerMessage -> Updated (Trigger)
    tx.resume_after_restart(status_by_evse, now_utc)  # open tx -> Ended PowerLoss

Optional ``monotonic`` (seconds) drives sampling when given; otherwise the UTC times of
the calls do. The word mappings (chargingState, stoppedReason, triggerReason of the
Ended event) live in mapping.py, one table each.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from firmware.core import events as ev
from firmware.core.events import StopReason
from firmware.core.session import Status
from firmware.core.transitions import IDLE, Phase
from firmware.errors import ErrorCode
from firmware.ocpp.v201 import mapping

Settings = Callable[[str, str], str]
# How often the running register is written to disk between meter-value events: what a
# power loss can leave unbilled is at most this long a stretch of charging (instead of a
# whole TxUpdatedInterval), at one small SQLite commit per interval while energy flows.
PERSIST_REGISTER_S = 5.0


class Queue(Protocol):
    def append_with_state(self, action: str, payload: dict[str, Any], key: str,
                          value: dict[str, Any]) -> int: ...
    def set_state(self, key: str, value: dict[str, Any]) -> None: ...
    def get_state(self, key: str) -> dict[str, Any] | None: ...
    def state_items(self, prefix: str) -> dict[str, dict[str, Any]]: ...


@dataclass
class Tx:
    """What is persisted of an open transaction (queue state ``tx:<evse>``)."""

    transaction_id: str
    evse_id: int
    seq: int = 0  # the next seqNo
    id_token: dict[str, Any] | None = None
    remote_start_id: int | None = None
    charging_state: str = "EVConnected"
    base_wh: float = 0.0  # register at the start
    meter_wh: float = 0.0  # last register reading sent, or persisted (PERSIST_REGISTER_S)
    open: bool = True


@dataclass
class _Evse:
    authorized: bool = False
    power_path: bool = False
    phase: Phase = Phase.AVAILABLE
    energy_wh: float = 0.0  # the core's count for the running session
    pending_token: dict[str, Any] | None = None
    pending_trigger: str = "Authorized"
    pending_remote_id: int | None = None
    group_id_token: dict[str, Any] | None = None
    stop_token: dict[str, Any] | None = None  # the card that stopped it, if one did
    stop_reason: StopReason | None = None
    stop_fault: ErrorCode | None = None
    next_sample: float | None = None
    next_persist: float = 0.0  # monotonic time of the next register write (no event)
    conditions: dict[str, bool] = field(default_factory=dict)


def iso(t: datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond // 1000:03d}Z"


# Device-model values this module reads, as strings (what ``settings`` returns); for
# tests and for a station without a device model. Names from OCPP 2.0.1 Part 2 appendix.
DEFAULTS: dict[tuple[str, str], str] = {
    ("TxCtrlr", "TxStartPoint"): "PowerPathClosed",
    ("TxCtrlr", "TxStopPoint"): "EVConnected,Authorized",
    ("SampledDataCtrlr", "TxUpdatedInterval"): "30",
    ("SampledDataCtrlr", "TxUpdatedMeasurands"):
        "Energy.Active.Import.Register,Power.Active.Import,Current.Import,Voltage,SoC",
    ("SampledDataCtrlr", "TxStartedMeasurands"): "Energy.Active.Import.Register",
    ("SampledDataCtrlr", "TxEndedMeasurands"): "Energy.Active.Import.Register",
    ("AlignedDataCtrlr", "Interval"): "900",
    ("AlignedDataCtrlr", "Measurands"): "Energy.Active.Import.Register",
    ("OCPPCommCtrlr", "MessageAttempts"): "3",
    ("OCPPCommCtrlr", "MessageAttemptInterval"): "60",
}


def default_settings(component: str, variable: str) -> str:
    return DEFAULTS[(component, variable)]


class Transactions:
    def __init__(self, queue: Queue, settings: Settings, evse_ids: tuple[int, ...] | list[int],
                 monotonic: Callable[[], float] | None = None,
                 new_id: Callable[[], str] = lambda: str(uuid.uuid4())) -> None:
        # Sampling runs on a monotonic clock when given (wall time may jump when the CSMS
        # sets it); without one, on the UTC timestamps the calls carry.
        self._monotonic = monotonic
        self._last_utc: datetime | None = None
        self._last_status: dict[int, Status] = {}
        self.queue = queue
        self.settings = settings
        self.new_id = new_id
        self.online = False
        self.evse = {e: _Evse() for e in evse_ids}
        self.tx: dict[int, Tx] = {}
        self._next_aligned: datetime | None = None
        for value in queue.state_items("tx:").values():
            tx = Tx(**value)
            if tx.open and tx.evse_id in self.evse:
                self.tx[tx.evse_id] = tx

    def monotonic(self) -> float:
        if self._monotonic is not None:
            return self._monotonic()
        return self._last_utc.timestamp() if self._last_utc is not None else 0.0

    # --- what the station tells us -------------------------------------------------------

    def set_online(self, online: bool) -> None:
        self.online = online

    def note_authorization(self, evse_id: int, id_token: dict[str, Any], trigger_reason: str,
                           remote_start_id: int | None = None,
                           group_id_token: dict[str, Any] | None = None) -> None:
        """An idToken was accepted for this EVSE (card, app, terminal); the core is told
        right after. ``trigger_reason`` is Authorized or RemoteStart."""
        e = self.evse[evse_id]
        e.pending_token, e.pending_trigger = id_token, trigger_reason
        e.pending_remote_id, e.group_id_token = remote_start_id, group_id_token

    def note_stop(self, evse_id: int, id_token: dict[str, Any]) -> None:
        """A card stopped the EVSE's transaction (the holder's or one of its group): the
        event that says StopAuthorized carries it (E06, C09 groupIdToken)."""
        if evse_id in self.tx:
            self.evse[evse_id].stop_token = id_token

    def transaction_id(self, evse_id: int) -> str | None:
        tx = self.tx.get(evse_id)
        return tx.transaction_id if tx is not None else None

    def id_token(self, evse_id: int) -> dict[str, Any] | None:
        tx = self.tx.get(evse_id)
        if tx is not None and tx.id_token is not None:
            return tx.id_token
        return self.evse[evse_id].pending_token

    def group_id_token(self, evse_id: int) -> dict[str, Any] | None:
        return self.evse[evse_id].group_id_token

    def evse_of(self, transaction_id: str) -> int | None:
        for evse_id, tx in self.tx.items():
            if tx.transaction_id == transaction_id:
                return evse_id
        return None

    # --- what the core does --------------------------------------------------------------

    def on_command(self, evse_id: int, cmd: ev.Command, status: Status,
                   now_utc: datetime) -> None:
        self._last_utc, self._last_status[evse_id] = now_utc, status
        e = self.evse[evse_id]
        match cmd:
            case ev.SessionStarted(token, source, _):
                e.authorized = True
                if e.pending_token is None or e.pending_token.get("idToken") != token:
                    e.pending_token = {"idToken": token,
                                       "type": mapping.id_token_type(source)}
                    e.pending_trigger, e.pending_remote_id = "Authorized", None
            case ev.SessionEnded(reason, _, energy_wh, fault):
                e.authorized, e.stop_reason, e.energy_wh = False, reason, energy_wh
                e.stop_fault = fault
            case ev.SetContactors(closed):
                e.power_path = closed
        if not isinstance(cmd, ev.SessionEnded):
            e.energy_wh = status.energy_wh
        e.phase = status.phase
        self._evaluate(evse_id, status, now_utc)

    def on_tick(self, status_by_evse: dict[int, Status], now_utc: datetime) -> None:
        self._last_utc = now_utc
        self._last_status.update(status_by_evse)
        aligned = self._aligned_due(now_utc)
        for evse_id, status in status_by_evse.items():
            e = self.evse[evse_id]
            e.phase = status.phase
            if e.authorized:
                e.energy_wh = status.energy_wh
            self._evaluate(evse_id, status, now_utc)
            tx = self.tx.get(evse_id)
            if tx is None:
                continue
            interval = int(self.settings("SampledDataCtrlr", "TxUpdatedInterval"))
            stamp = self.monotonic()
            if interval > 0 and e.next_sample is not None and stamp >= e.next_sample - 1e-6:
                # On the grid from the start (a late tick does not push the next one).
                while e.next_sample <= stamp + 1e-6:
                    e.next_sample += interval
                self._emit(tx, "Updated", "MeterValuePeriodic", now_utc,
                           self._meter(tx, status, now_utc, "Sample.Periodic",
                                       "TxUpdatedMeasurands"))
            if aligned:
                self._emit(tx, "Updated", "MeterValueClock", now_utc,
                           self._meter(tx, status, now_utc, "Sample.Clock", None))
            register = self._register(tx)
            if e.authorized and register > tx.meter_wh and stamp >= e.next_persist:
                e.next_persist = stamp + PERSIST_REGISTER_S
                tx.meter_wh = register  # what a PowerLoss Ended will carry (E07)
                self.queue.set_state(f"tx:{evse_id}", asdict(tx))

    def next_sample_due(self) -> float | None:
        """The monotonic time of the earliest sampled value due (the ticker wakes then,
        so samples sit on their interval's grid)."""
        due = [e.next_sample for evse_id, e in self.evse.items()
               if evse_id in self.tx and e.next_sample is not None]
        return min(due) if due else None

    def trigger(self, evse_id: int, status: Status | None = None,
                now_utc: datetime | None = None) -> bool:
        """TriggerMessage(TransactionEvent): an Updated with triggerReason Trigger and the
        present values (F06). Without ``status`` / ``now_utc``, the last ones seen.
        Returns False when no transaction runs on the EVSE."""
        tx = self.tx.get(evse_id)
        status = status or self._last_status.get(evse_id)
        now_utc = now_utc or self._last_utc or datetime.now(UTC)
        if tx is None or status is None:
            return False
        self._emit(tx, "Updated", "Trigger", now_utc,
                   self._meter(tx, status, now_utc, "Trigger", "TxUpdatedMeasurands"))
        return True

    def resume_after_restart(self, status_by_evse: dict[int, Status] | datetime | None = None,
                             now_utc: datetime | None = None) -> list[str]:
        """Transactions found open after a restart end with PowerLoss, triggerReason
        AbnormalCondition and the last meter value persisted (E07/E08: the session they
        belonged to died with the process; the connector came up safe). seqNo continues
        from the persisted counter. Returns their ids.

        Deprecated form kept for the station: ``resume_after_restart(now_utc)``."""
        if isinstance(status_by_evse, datetime):
            status_by_evse, now_utc = None, status_by_evse
        if now_utc is None:
            now_utc = datetime.now(UTC)
        self._last_utc = now_utc
        if status_by_evse:
            self._last_status.update(status_by_evse)
        ended = []
        for evse_id, tx in list(self.tx.items()):
            e = self.evse[evse_id]
            e.stop_reason, e.stop_fault = StopReason.POWER_LOSS, None
            meter = [self._reading(now_utc, "Transaction.End",
                                   {"Energy.Active.Import.Register": tx.meter_wh})]
            self._end(tx, "AbnormalCondition", "PowerLoss", now_utc, meter)
            ended.append(tx.transaction_id)
        return ended

    # --- start and stop points -----------------------------------------------------------

    def _conditions(self, e: _Evse) -> dict[str, bool]:
        return {"EVConnected": e.phase not in IDLE, "Authorized": e.authorized,
                "PowerPathClosed": e.power_path and e.authorized,
                "EnergyTransfer": e.phase is Phase.CHARGING,
                "ParkingBayOccupancy": e.phase not in IDLE, "DataSigned": False}

    def _points(self, variable: str) -> list[str]:
        return [p for p in self.settings("TxCtrlr", variable).split(",") if p]

    def _evaluate(self, evse_id: int, status: Status, now_utc: datetime) -> None:
        e = self.evse[evse_id]
        now = self._conditions(e)
        before, e.conditions = e.conditions, now
        tx = self.tx.get(evse_id)
        if tx is None:
            became = [p for p in self._points("TxStartPoint") if now.get(p)
                      and not before.get(p)]
            if became:
                self._start(evse_id, status, now_utc, became[0])
            return
        stop = [p for p in self._points("TxStopPoint") if not now.get(p)]
        if stop:
            reason = e.stop_reason
            if reason is None and "EVConnected" in stop:
                reason = StopReason.EV_DISCONNECTED
            meter = self._meter(tx, status, now_utc, "Transaction.End", "TxEndedMeasurands")
            # The trigger names what ended it now; stoppedReason keeps the first reason
            # given (E06: with TxStopPoint EVConnected a locally stopped session ends
            # when the EV leaves, triggerReason EVDeparted, stoppedReason Local).
            trigger = ("EVDeparted" if "EVConnected" in stop
                       else mapping.trigger_for_stop(reason, e.stop_fault))
            self._end(tx, trigger, mapping.stopped_reason(reason, e.stop_fault), now_utc, meter)
            return
        if not before.get("Authorized") and now["Authorized"] and tx.id_token is None:
            tx.id_token = e.pending_token  # authorized after the start (E03 / E07)
            self._emit(tx, "Updated", e.pending_trigger, now_utc, None, with_token=True)
        state = mapping.CHARGING_STATE[status.phase]
        if before.get("Authorized") and not now["Authorized"] and tx.id_token is not None:
            # Stopped but not over (TxStopPoint without Authorized, E06): say who
            # stopped it now, with the charging state the stop brought; the Ended event
            # follows at the stop point.
            tx.charging_state = state
            self._emit(tx, "Updated", mapping.trigger_for_stop(e.stop_reason, e.stop_fault),
                       now_utc, None, token=e.stop_token)
            e.stop_token = None
        stopping = e.authorized and status.phase in (Phase.STOPPING, Phase.FINISHED)
        if state != tx.charging_state and not stopping:
            tx.charging_state = state
            self._emit(tx, "Updated", "ChargingStateChanged", now_utc, None)
        # A stop's own ramp-down is no charging-state change of its own: the event that
        # says why it stopped (StopAuthorized, RemoteStop, ...) comes first and carries
        # the new state (events in the order things happened).

    def _start(self, evse_id: int, status: Status, now_utc: datetime, point: str) -> None:
        e = self.evse[evse_id]
        # The register goes on from the last transaction. Its Ended event and state are
        # one write, the meter:<evse> row a second one: a crash between the two must not
        # make the register run backwards, so take the larger of both.
        register = (self.queue.get_state(f"meter:{evse_id}") or {"wh": 0.0})["wh"]
        last = self.queue.get_state(f"tx:{evse_id}")
        if last is not None:
            register = max(float(register), float(last.get("meter_wh", 0.0)))
        tx = Tx(self.new_id(), evse_id, base_wh=float(register),
                charging_state=mapping.CHARGING_STATE[status.phase])
        tx.meter_wh = tx.base_wh + (e.energy_wh if e.authorized else 0.0)
        if e.authorized:
            tx.id_token, tx.remote_start_id = e.pending_token, e.pending_remote_id
        trigger = {"EVConnected": "CablePluggedIn", "ParkingBayOccupancy": "EVDetected",
                   "Authorized": e.pending_trigger}.get(point, "ChargingStateChanged")
        if tx.remote_start_id is not None:
            trigger = "RemoteStart"  # the event carrying remoteStartId says why (F01)
        e.stop_reason = e.stop_fault = None
        self.tx[evse_id] = tx
        interval = int(self.settings("SampledDataCtrlr", "TxUpdatedInterval"))
        e.next_sample = self.monotonic() + interval if interval > 0 else None
        meter = self._meter(tx, status, now_utc, "Transaction.Begin", "TxStartedMeasurands")
        self._emit(tx, "Started", trigger, now_utc, meter, with_token=tx.id_token is not None)

    def _end(self, tx: Tx, trigger: str, stopped: str, now_utc: datetime,
             meter: list[dict[str, Any]] | None) -> None:
        tx.open = False
        e = self.evse[tx.evse_id]
        e.pending_token, e.pending_remote_id, e.group_id_token = None, None, None
        state = mapping.CHARGING_STATE.get(e.phase, tx.charging_state)
        tx.charging_state = "EVConnected" if state == "Charging" else state
        self._emit(tx, "Ended", trigger, now_utc, meter, stopped=stopped, token=e.stop_token)
        e.stop_token = None
        self.queue.set_state(f"meter:{tx.evse_id}", {"wh": tx.meter_wh})
        del self.tx[tx.evse_id]

    # --- events --------------------------------------------------------------------------

    def _emit(self, tx: Tx, event_type: str, trigger: str, now_utc: datetime,
              meter: list[dict[str, Any]] | None, with_token: bool = False,
              stopped: str | None = None, token: dict[str, Any] | None = None) -> None:
        info: dict[str, Any] = {"transactionId": tx.transaction_id,
                                "chargingState": tx.charging_state}
        if stopped is not None:
            info["stoppedReason"] = stopped
        if tx.remote_start_id is not None and event_type == "Started":
            info["remoteStartId"] = tx.remote_start_id
        payload: dict[str, Any] = {"eventType": event_type, "timestamp": iso(now_utc),
                                   "triggerReason": trigger, "seqNo": tx.seq,
                                   "transactionInfo": info}
        if event_type == "Started":
            payload["evse"] = {"id": tx.evse_id, "connectorId": 1}
        if self.online is False:
            payload["offline"] = True
        if token is not None:  # the card that stopped it (E06)
            payload["idToken"] = token
        elif (with_token or event_type == "Started") and tx.id_token is not None:
            payload["idToken"] = tx.id_token
        if meter:
            payload["meterValue"] = meter
        tx.seq += 1
        # The event and the state that numbers it go to disk in one transaction.
        self.queue.append_with_state("TransactionEvent", payload,
                                     f"tx:{tx.evse_id}", asdict(tx))

    def _meter(self, tx: Tx, status: Status, now_utc: datetime, context: str,
               variable: str | None) -> list[dict[str, Any]]:
        tx.meter_wh = max(tx.meter_wh, self._register(tx))  # never runs backwards
        values: dict[str, float] = {
            "Energy.Active.Import.Register": tx.meter_wh,
            "Power.Active.Import": status.voltage_v * status.current_a,
            "Current.Import": status.current_a, "Voltage": status.voltage_v}
        if status.soc_percent is not None:
            values["SoC"] = status.soc_percent
        component = "SampledDataCtrlr" if variable else "AlignedDataCtrlr"
        wanted = self.settings(component, variable or "Measurands").split(",")
        chosen = {k: v for k, v in values.items() if k in wanted}
        return [self._reading(now_utc, context, chosen)] if chosen else []

    def _register(self, tx: Tx) -> float:
        """The EVSE's energy register now: at the transaction's start plus the session's."""
        return tx.base_wh + self.evse[tx.evse_id].energy_wh

    @staticmethod
    def _reading(now_utc: datetime, context: str, values: dict[str, float]
                 ) -> dict[str, Any]:
        return {"timestamp": iso(now_utc), "sampledValue": [
            {"value": round(v, 3), "measurand": k, "context": context,
             "unitOfMeasure": {"unit": _UNITS[k]}} for k, v in values.items()]}

    def _aligned_due(self, now_utc: datetime) -> bool:
        interval = int(self.settings("AlignedDataCtrlr", "Interval"))
        if interval <= 0:
            return False
        if self._next_aligned is None or self._next_aligned > now_utc + timedelta(
                seconds=interval):
            midnight = now_utc.replace(hour=0, minute=0, second=0, microsecond=0)
            elapsed = (now_utc - midnight).total_seconds()
            self._next_aligned = midnight + timedelta(
                seconds=(elapsed // interval + 1) * interval)
            return False
        if now_utc >= self._next_aligned:
            # The next boundary after now, not after the last one: a wall clock set
            # forward (30 days) gives one clock-aligned value, not thousands (issue 16).
            late = (now_utc - self._next_aligned).total_seconds()
            self._next_aligned += timedelta(seconds=(late // interval + 1) * interval)
            return True
        return False


_UNITS = {"Energy.Active.Import.Register": "Wh", "Power.Active.Import": "W",
          "Current.Import": "A", "Voltage": "V", "SoC": "Percent"}
