"""What the CSMS may ask of the station (OCPP 2.0.1 Part 2: B provisioning, C/D
authorization lists, F remote control, G availability). The ``ocpp`` package hands the
payload over in snake_case; nested objects too.

A handler never calls the CSMS itself (the package handles one message at a time, so a
CALL from inside a handler would wait for its own answer): follow-ups run as tasks the
station owns (``@after`` handlers are plain functions that spawn them, so the package
never starts a task of ours that nobody awaits).

The handlers see the station only through ``StationPort`` (no import of station.py).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Coroutine, Iterable
from datetime import datetime
from typing import Any, Protocol

import websockets
from ocpp.exceptions import OccurrenceConstraintViolationError
from ocpp.routing import after, on
from ocpp.v201 import call_result

from firmware.core.events import StopReason
from firmware.core.transitions import Phase
from firmware.loop import Controller
from firmware.ocpp.link import CallFailed
from firmware.ocpp.queue import MessageQueue
from firmware.ocpp.v201 import mapping
from firmware.ocpp.v201.auth import AuthStore
from firmware.ocpp.v201.authorizer import Authorizer, RemoteStart
from firmware.ocpp.v201.components import PhysicalComponents
from firmware.ocpp.v201.device_model import DeviceModel
from firmware.ocpp.v201.display import DisplayHandlers
from firmware.ocpp.v201.link import Link
from firmware.ocpp.v201.transactions import Transactions
from firmware.security_log import SecurityLog

log = logging.getLogger("chargebay.ocpp")


class StationPort(Protocol):
    """What the handlers need of the station."""

    @property
    def controller(self) -> Controller: ...
    @property
    def model(self) -> DeviceModel: ...
    @property
    def tx(self) -> Transactions: ...
    @property
    def queue(self) -> MessageQueue: ...
    @property
    def auth(self) -> AuthStore: ...
    @property
    def authorizer(self) -> Authorizer: ...
    @property
    def evse_ids(self) -> tuple[int, ...]: ...
    @property
    def link(self) -> Link | None: ...
    @property
    def booted(self) -> bool: ...
    @property
    def physical(self) -> PhysicalComponents: ...
    @property
    def security(self) -> SecurityLog: ...
    def trigger_boot(self) -> bool: ...
    def utc(self) -> datetime: ...
    def busy(self, evse_id: int) -> bool: ...
    def note(self, text: str) -> None: ...
    def store(self, key: str, value: str) -> None: ...
    def wake_delivery(self) -> None: ...
    def reset(self, kind: str, evse_id: int | None) -> str: ...
    async def send_statuses(self, link: Link, again: Iterable[int] = ()) -> None: ...
    async def heartbeat(self, link: Link) -> None: ...
    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> None: ...


def _camel_token(token: dict[str, Any] | None) -> dict[str, Any] | None:
    if token is None:
        return None
    return {"idToken": token.get("id_token"), "type": token.get("type")}


class Handlers(DisplayHandlers):
    """The CSMS's requests, answered for ``station`` (the route map is built from this
    object, see Link)."""

    def __init__(self, station: StationPort) -> None:
        self.st = station
        self._remote_start: tuple[int, RemoteStart] | None = None
        self._triggered: tuple[str, int | None] | None = None

    # --- device model (B05-B08) ----------------------------------------------------------

    @on("GetVariables")
    def on_get_variables(self, get_variable_data: list[dict[str, Any]],
                         **_: Any) -> call_result.GetVariables:
        self._check_items(get_variable_data, "GetVariables")
        results = []
        for item in get_variable_data:
            component, variable = item["component"], item["variable"]
            attribute = item.get("attribute_type", "Actual")
            if self.st.physical.knows(component["name"]):
                status, value = self.st.physical.get(component["name"], component.get(
                    "evse"), variable["name"], attribute)
            else:
                status, value = self.st.model.get_variable(
                    component["name"], variable["name"], variable.get("instance"), attribute)
            if (component["name"], variable["name"]) == ("ClockCtrlr", "DateTime"):
                value = self.st.utc().isoformat().replace("+00:00", "Z") if status == \
                    "Accepted" else None
            result: dict[str, Any] = {"attribute_status": status, "component": component,
                                      "variable": variable, "attribute_type": attribute}
            if value is not None:
                result["attribute_value"] = value
            results.append(result)
        return call_result.GetVariables(get_variable_result=results)

    @on("SetVariables")
    def on_set_variables(self, set_variable_data: list[dict[str, Any]],
                         **_: Any) -> call_result.SetVariables:
        self._check_items(set_variable_data, "SetVariables")
        results = []
        for item in set_variable_data:
            component, variable = item["component"], item["variable"]
            attribute = item.get("attribute_type", "Actual")
            if self.st.physical.knows(component["name"]):  # the hardware's state
                known, _value = self.st.physical.get(component["name"], component.get("evse"),
                                                variable["name"])
                status = "Rejected" if known == "Accepted" else known
            else:
                status = self.st.model.set_variable(component["name"], variable["name"],
                                                    variable.get("instance"),
                                                    str(item["attribute_value"]), attribute)
            if status in ("Accepted", "RebootRequired") and component["name"] == \
                    "SecurityCtrlr":
                self.st.security.record("ReconfigurationOfSecurityParameters",
                                        f"SetVariables {variable['name']}")
            results.append({"attribute_status": status, "component": component,
                            "variable": variable, "attribute_type": attribute})
        return call_result.SetVariables(set_variable_result=results)

    def _check_items(self, items: list[Any], instance: str) -> None:
        """DeviceDataCtrlr.ItemsPerMessage: a longer request is refused whole (B06 / B05:
        CALLERROR OccurrenceConstraintViolation)."""
        limit = self.st.model.get_int("DeviceDataCtrlr", "ItemsPerMessage", instance)
        if len(items) > limit:
            raise OccurrenceConstraintViolationError(
                description=f"{len(items)} items; ItemsPerMessage{instance} is {limit}")

    @on("GetBaseReport")
    def on_get_base_report(self, request_id: int, report_base: str,
                           **_: Any) -> call_result.GetBaseReport:
        return call_result.GetBaseReport(status="Accepted")

    @after("GetBaseReport")
    def after_get_base_report(self, request_id: int, report_base: str, **_: Any) -> None:
        self.st.spawn(self._follow_up("NotifyReport", lambda: self._notify_report(
            request_id, report_base)), "ocpp-notify-report")

    async def _notify_report(self, request_id: int, report_base: str) -> None:
        data = self.st.model.report(report_base)
        if report_base == "FullInventory":
            data += self.st.physical.report()
        elif report_base == "SummaryInventory":  # the components and their state
            data = [d for d in self.st.physical.report()
                    if d["variable"]["name"] == "AvailabilityState"]
        per_message = self.st.model.get_int("DeviceDataCtrlr", "ItemsPerMessage", "GetReport")
        chunks = [data[i:i + per_message] for i in range(0, len(data), per_message)] or [[]]
        link = self.st.link
        for seq, chunk in enumerate(chunks):
            if link is None:
                return
            await link.call_raw("NotifyReport", {
                "requestId": request_id, "generatedAt": self._iso_now(), "seqNo": seq,
                "tbc": seq < len(chunks) - 1, "reportData": chunk})

    async def _follow_up(self, what: str,
                         make: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """A follow-up CALL the CSMS refused or a connection lost under it is the
        CSMS's business, not a failure of ours (anything else is, and is logged by the
        station's task owner)."""
        try:
            await make()  # made here: a follow-up never started leaves no coroutine
        except (CallFailed, websockets.ConnectionClosed) as exc:
            log.warning("%s not delivered: %r", what, exc)

    def _iso_now(self) -> str:
        return self.st.utc().isoformat(timespec="milliseconds").replace("+00:00", "Z")

    # --- remote start / stop (F01-F03) ------------------------------------------------------

    @on("RequestStartTransaction")
    def on_request_start(self, id_token: dict[str, Any], remote_start_id: int,
                         evse_id: int | None = None, group_id_token: dict[str, Any] | None
                         = None, **_: Any) -> call_result.RequestStartTransaction:
        if not self.st.booted:  # Pending: no transaction before the boot is accepted (B02)
            return call_result.RequestStartTransaction(status="Rejected")
        target = evse_id if evse_id is not None else next(
            (e for e in self.st.evse_ids if not self.st.busy(e)), None)
        if target is None or target not in self.st.evse_ids or self.st.busy(target) or (
                self.st.controller.status(target).phase in (Phase.FAULTED, Phase.UNAVAILABLE)):
            return call_result.RequestStartTransaction(status="Rejected")
        self._remote_start = (target, RemoteStart(_camel_token(id_token) or {}, remote_start_id,
                                                  _camel_token(group_id_token)))
        return call_result.RequestStartTransaction(
            status="Accepted", transaction_id=self.st.tx.transaction_id(target))

    @after("RequestStartTransaction")
    def after_request_start(self, **_: Any) -> None:
        pending = self._remote_start
        self._remote_start = None
        if pending is None:
            return
        evse_id, remote = pending  # through authorization (it may Authorize first, F01)
        self.st.spawn(self.st.authorizer.remote_start(evse_id, remote), "ocpp-remote-start")

    @on("RequestStopTransaction")
    def on_request_stop(self, transaction_id: str,
                        **_: Any) -> call_result.RequestStopTransaction:
        evse_id = self.st.tx.evse_of(transaction_id)
        if evse_id is None or not self.remote_stop_allowed(evse_id):  # the bay's policy
            return call_result.RequestStopTransaction(status="Rejected")
        self.st.controller.request_stop(evse_id, StopReason.REMOTE)
        return call_result.RequestStopTransaction(status="Accepted")

    # --- local list and cache (C11, D01, D02) ---------------------------------------------

    @on("SendLocalList")
    def on_send_local_list(self, version_number: int, update_type: str,
                           local_authorization_list: list[dict[str, Any]] | None = None,
                           **_: Any) -> call_result.SendLocalList:
        entries = [{"idToken": _camel_token(e["id_token"]),
                    "idTokenInfo": _camel_info(e.get("id_token_info"))}
                   for e in local_authorization_list or []]
        status = self.st.auth.update_list(version_number, update_type, entries)
        entries_now = str(self.st.auth.list_entries())
        self.st.model.set_internal("LocalAuthListCtrlr", "Entries", entries_now)
        return call_result.SendLocalList(status=status)

    @on("GetLocalListVersion")
    def on_get_local_list_version(self, **_: Any) -> call_result.GetLocalListVersion:
        return call_result.GetLocalListVersion(version_number=self.st.auth.list_version())

    @on("ClearCache")
    def on_clear_cache(self, **_: Any) -> call_result.ClearCache:
        self.st.auth.clear_cache()
        return call_result.ClearCache(status="Accepted")

    # --- reset, unlock, availability (B11-B12, F05, G03-G04) --------------------------------

    @on("Reset")
    def on_reset(self, type: str, evse_id: int | None = None,
                 **_: Any) -> call_result.Reset:
        return call_result.Reset(status=self.st.reset(type, evse_id))

    @on("UnlockConnector")
    async def on_unlock(self, evse_id: int, connector_id: int,
                        **_: Any) -> call_result.UnlockConnector:
        if evse_id not in self.st.evse_ids or connector_id != 1:
            return call_result.UnlockConnector(status="UnknownConnector")
        if self.st.tx.transaction_id(evse_id) is not None:
            return call_result.UnlockConnector(status="OngoingAuthorizedTransaction")
        # The core decides (no session, contactors open, < 60 V) and the lock's position
        # switch confirms: a jammed lock answers UnlockFailed.
        outcome = await self.st.controller.unlock_connector(evse_id)
        return call_result.UnlockConnector(status=mapping.UNLOCK_STATUS[outcome])

    @on("ChangeAvailability")
    def on_change_availability(self, operational_status: str,
                               evse: dict[str, Any] | None = None,
                               **_: Any) -> call_result.ChangeAvailability:
        evses = [evse["id"]] if evse and evse.get("id") else list(self.st.evse_ids)
        if any(e not in self.st.evse_ids for e in evses):
            return call_result.ChangeAvailability(status="Rejected")
        operative = operational_status == "Operative"
        scheduled = False
        for e in evses:
            self.st.store(f"availability:{e}", operational_status)  # persisted (G03.FR.06)
            self.st.controller.set_availability(e, operative)
            scheduled |= not operative and self.st.busy(e)
        return call_result.ChangeAvailability(status="Scheduled" if scheduled else "Accepted")

    # --- trigger, transaction status, data transfer, network profile ----------------------

    @on("TriggerMessage")
    def on_trigger(self, requested_message: str, evse: dict[str, Any] | None = None,
                   **_: Any) -> call_result.TriggerMessage:
        evse_id = evse.get("id") if evse else None
        if evse_id and evse_id not in self.st.evse_ids:
            return call_result.TriggerMessage(status="Rejected")  # issue 16: EVSE 99
        if requested_message == "TransactionEvent":
            targets = [evse_id] if evse_id else list(self.st.evse_ids)
            done = [self.st.tx.trigger(e, self.st.controller.status(e), self.st.utc())
                    for e in targets if e in self.st.evse_ids]
            self.st.wake_delivery()
            return call_result.TriggerMessage(status="Accepted" if any(done) else "Rejected")
        if requested_message not in ("BootNotification", "Heartbeat", "StatusNotification",
                                     "MeterValues"):
            return call_result.TriggerMessage(status="NotImplemented")
        if requested_message == "BootNotification" and self.st.booted:
            return call_result.TriggerMessage(status="Rejected")  # F06.FR.17
        if evse_id is not None and evse_id not in self.st.evse_ids:
            return call_result.TriggerMessage(status="Rejected")
        self._triggered = (requested_message, evse_id)
        return call_result.TriggerMessage(status="Accepted")

    @after("TriggerMessage")
    def after_trigger(self, **_: Any) -> None:
        pending = self._triggered
        self._triggered = None
        link = self.st.link
        if pending is None or link is None:
            return
        if pending[0] == "BootNotification":  # the station's boot loop sends it now
            self.st.trigger_boot()
            return
        self.st.spawn(self._follow_up(pending[0], lambda: self._triggered_message(
            link, *pending)), "ocpp-trigger")

    async def _triggered_message(self, link: Link, message: str, evse_id: int | None) -> None:
        targets = [evse_id] if evse_id else list(self.st.evse_ids)
        if message == "Heartbeat":
            await self.st.heartbeat(link)  # its currentTime sets the clock, as any
        elif message == "StatusNotification":
            await self.st.send_statuses(link, again=targets)
        elif message == "MeterValues":
            for e in targets:
                st = self.st.controller.status(e)
                await link.call_raw("MeterValues", {"evseId": e, "meterValue": [{
                    "timestamp": self._iso_now(), "sampledValue": [
                        {"value": round(st.voltage_v * st.current_a, 1),
                         "measurand": "Power.Active.Import", "context": "Trigger"}]}]})

    @on("GetTransactionStatus")
    def on_get_transaction_status(self, transaction_id: str | None = None,
                                  **_: Any) -> call_result.GetTransactionStatus:
        in_queue = any(q.action == "TransactionEvent" for q in self.st.queue.pending())
        if transaction_id is None:
            return call_result.GetTransactionStatus(messages_in_queue=in_queue)
        ongoing = self.st.tx.evse_of(transaction_id) is not None
        mine = any(q.payload.get("transactionInfo", {}).get("transactionId") == transaction_id
                   for q in self.st.queue.pending())
        return call_result.GetTransactionStatus(messages_in_queue=mine,
                                                ongoing_indicator=ongoing)

    @on("DataTransfer")
    def on_data_transfer(self, vendor_id: str, **_: Any) -> call_result.DataTransfer:
        return call_result.DataTransfer(status="UnknownVendorId")

    @on("SetNetworkProfile")
    def on_set_network_profile(self, configuration_slot: int,
                               connection_data: dict[str, Any],
                               **_: Any) -> call_result.SetNetworkProfile:
        # Stored for the next connection attempt (Partial: not yet used to switch URL).
        self.st.store(f"network_profile:{configuration_slot}", json.dumps(connection_data))
        return call_result.SetNetworkProfile(status="Accepted")


def _camel_info(info: dict[str, Any] | None) -> dict[str, Any] | None:
    if info is None:
        return None
    out: dict[str, Any] = {"status": info.get("status")}
    if info.get("group_id_token"):
        out["groupIdToken"] = _camel_token(info["group_id_token"])
    if info.get("cache_expiry_date_time"):
        out["cacheExpiryDateTime"] = info["cache_expiry_date_time"]
    return out


