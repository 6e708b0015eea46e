"""The charging station's OCPP 2.0.1 side: boot, heartbeat, status, reset, delivery of
the transaction queue (handlers.py has the CSMS's requests; authorizer.py its part in
authorization; the connection and its back-off are firmware/ocpp/connection.py).

It watches the controller (an observer of every core command) and acts on it through the
controller's public calls (request_stop, set_availability, reset_connector); starts and
card stops go through firmware/authorization.py. The core stays the only place that
decides about a session. Every task it starts is owned (firmware/tasks.py) and ends
with ``stop()``.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable, Coroutine, Iterable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import websockets

from firmware.authorization import Authorization
from firmware.core import events as ev
from firmware.core.events import StopReason
from firmware.core.transitions import SESSION
from firmware.loop import Controller
from firmware.ocpp.connection import ConnectionLoop, retry_backoff
from firmware.ocpp.delivery import Delivery
from firmware.ocpp.link import CallFailed
from firmware.ocpp.settings import OcppSettings
from firmware.ocpp.v201 import mapping
from firmware.ocpp.v201.authorizer import Authorizer
from firmware.ocpp.v201.components import PhysicalComponents
from firmware.ocpp.v201.handlers import Handlers
from firmware.ocpp.v201.link import SUBPROTOCOL, Link
from firmware.ocpp.v201.reset import StationReset
from firmware.ocpp.v201.security_events import SecurityEvents
from firmware.ocpp.v201.state_files import open_state
from firmware.ocpp.v201.transactions import Transactions, iso
from firmware.ocpp.wall_clock import WallClock
from firmware.security_log import SecurityLog
from firmware.tasks import TaskOwner
from hal.clock import Clock

log = logging.getLogger("chargebay.ocpp")
FIRMWARE_VERSION = "0.1.0"
Say = Callable[[str], None]


class Station(StationReset):
    def __init__(self, controller: Controller, settings: OcppSettings, clock: Clock,
                 start_utc: datetime | None = None, say: Say | None = None,
                 ping_interval: float | None = 30.0,
                 authorization: Authorization | None = None,
                 security: SecurityLog | None = None) -> None:
        self.controller = controller
        self.settings = settings
        self.clock = clock
        self.say = say
        config = controller.config
        self.station_id = config.identity.charge_point_id
        self.wall = WallClock(clock.now, start_utc or datetime.now(UTC),
                              on_step=self._clock_stepped)
        # The charger's security log (every part records into it); we send OCPP's kinds.
        self.security = security or SecurityLog(self.utc)
        # The state directory locked, every file opened checked (state_files.py).
        files = open_state(settings, self.station_id, self._queue_notice)
        self.state, self.model, self.db = files.state, files.model, files.db
        self.kv, self.auth, self.queue = files.kv, files.auth, files.queue
        self.evse_ids = tuple(c.evse_id for c in config.connectors)
        self.tx = Transactions(self.queue, self._setting, self.evse_ids, clock.now)
        self.storage_lost_at: float | None = None
        self.link: Link | None = None
        self.online = asyncio.Event()  # connected and BootNotification Accepted
        self.delivery = Delivery(self.queue, self._setting, clock,
                                 on_response=self._delivered)
        self.tasks = TaskOwner("ocpp")
        self._status_sent: dict[int, str] = {}
        self._reset_pending: str | None = None
        self.evse_resets: set[int] = set()  # EVSEs to reset once idle (B11 / B12)
        self.boot_reason = "PowerUp"
        # A reconnect is not a boot (B04): BootNotification once per start of the
        # station, again only after a reset or while the CSMS has not accepted it.
        self.booted = False
        self._boot_now = asyncio.Event()  # TriggerMessage(BootNotification) while pending
        self.offline_since: float | None = 0.0
        self.delivered = 0
        # Authorization is the controller's, not ours: we are one of its sources (remote
        # start), its backend (Authorize, cache, local list) and a sink (idToken).
        self._own_authorization = authorization is None
        self.authorization = authorization or Authorization(controller, clock.now)
        self.authorizer = Authorizer(self.authorization, self.auth, self.model, self.tx,
                                     clock.now, self._online_link, self.note)
        self.bay: Any = None  # the bay screen (display.py BayPort), set by the charger
        self.security_events = SecurityEvents(self.security, self.queue, self.utc,
                                              self.wake_delivery, iso)
        self.physical = PhysicalComponents(config, controller.status)
        self.handlers = Handlers(self)
        self.connection = ConnectionLoop(settings, self.station_id, SUBPROTOCOL, clock,
                                         self._backoff, self._serve, ping_interval,
                                         on_connect_error=self._connect_failed)
        controller.observers.append(self._observe)

    # --- time ---------------------------------------------------------------------------

    def utc(self) -> datetime:
        """Wall-clock time as the CSMS set it (ClockCtrlr, TimeSource Heartbeat), within
        the wall clock's sanity limits (firmware/ocpp/wall_clock.py)."""
        return self.wall.now()

    def _set_utc(self, current_time: object, source: str = "Heartbeat") -> None:
        self.wall.offer(current_time, source)  # refused ones are logged there

    def _setting(self, component: str, variable: str) -> str:
        return self.model.get(component, variable)

    def note(self, text: str) -> None:
        if self.say is not None:
            self.say(text)

    def spawn(self, coro: Coroutine[Any, Any, Any], name: str) -> None:
        """An owned follow-up task; dropped (not started) once the station stops."""
        if self.tasks.stopping:
            coro.close()
            return
        self.tasks.spawn(coro, name)

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        for evse_id in self.evse_ids:  # ChangeAvailability survives restarts (G03.FR.06)
            if self.stored(f"availability:{evse_id}") == "Inoperative":
                self.controller.set_availability(evse_id, False)
        self.security.record("StartupOfTheDevice", f"chargebay {FIRMWARE_VERSION} started",
                             critical=True)
        ended = self.tx.resume_after_restart(self.utc())
        for tx_id in ended:
            log.warning("transaction %s was open at start-up: ended with PowerLoss", tx_id)
        self.spawn(self.connection.run(), "ocpp-connection")
        self.spawn(self.delivery.run(self._call, self.online), "ocpp-delivery")
        self.spawn(self._ticker(), "ocpp-tick")

    async def flush(self, seconds: float) -> int:
        """Give delivery up to ``seconds`` to empty the queue while online (the Ended
        events of a shutdown). What is left stays queued on disk for the next start;
        returns how many."""
        self.delivery.wake()
        end = self.clock.now() + seconds
        while len(self.queue) and self.online.is_set() and self.clock.now() < end:
            await self.clock.sleep(0.05)
        return len(self.queue)

    async def stop(self) -> None:
        """Cancel and await every task the station started, then close its files."""
        if self._observe in self.controller.observers:
            self.controller.observers.remove(self._observe)
        self.authorizer.unsubscribe()
        self.security_events.unsubscribe()
        if self._own_authorization:
            self.authorization.close()
        await self.tasks.stop()
        if self.link is not None:
            await self.link._connection.close()
        self.queue.close()
        self.model.close()
        self.db.close()
        self.state.unlock()

    # --- connection (OCPP 2.0.1 Part 4 section 5; Part 2 B01-B04) -------------------------

    def _backoff(self, attempt: int) -> float:
        return retry_backoff(attempt,
                             self.model.get_int("OCPPCommCtrlr", "RetryBackOffWaitMinimum"),
                             self.model.get_int("OCPPCommCtrlr", "RetryBackOffRandomRange"),
                             self.model.get_int("OCPPCommCtrlr", "RetryBackOffRepeatTimes"))

    def _connect_failed(self, exc: BaseException) -> None:
        """A refused connection that is a security event (A00: a CSMS certificate that
        fails the check; basic-auth credentials the CSMS refuses)."""
        if isinstance(exc, ssl.SSLCertVerificationError):
            self.security.record("InvalidCsmsCertificate", str(exc.verify_message or exc))
        elif isinstance(exc, websockets.InvalidStatus) and \
                exc.response.status_code in (401, 403):
            self.security.record("FailedToAuthenticateAtCsms",
                                 f"HTTP {exc.response.status_code} on connect")

    async def _serve(self, connection: Any) -> bool:
        """One connection until it ends; True: reconnect at once (a station Reset)."""
        timeout = float(self.model.get("OCPPCommCtrlr", "MessageTimeout"))
        link = Link(self.station_id, connection, self.clock, self.handlers, timeout,
                    limits=self._message_limits)
        self.link = link
        self.note("OCPP: connected to the CSMS")
        reader = asyncio.create_task(self._read(link), name="ocpp-read")
        session = asyncio.create_task(self._session(link), name="ocpp-session")
        try:
            await asyncio.wait({reader, session}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (reader, session):
                task.cancel()
            for result in await asyncio.gather(reader, session, return_exceptions=True):
                if isinstance(result, Exception):
                    log.error("OCPP connection task failed: %r", result, exc_info=result)
            await connection.close()
        self._went_offline()
        if self._reset_pending == "now" and not self.booted:
            self._reset_pending = None
            return True
        return False

    async def _read(self, link: Link) -> None:
        try:
            await link.serve()
        except websockets.ConnectionClosed:
            return

    def _online_link(self) -> Link | None:
        return self.link if self.online.is_set() else None

    def _went_offline(self) -> None:
        if self.online.is_set() or self.link is not None:
            self.note("OCPP: connection to the CSMS lost; queueing")
        self.online.clear()
        self.tx.set_online(False)
        self.link = None
        self.offline_since = self.clock.now()

    def _boot_payload(self, reason: str) -> dict[str, Any]:
        identity = self.controller.config.identity
        return {"reason": reason, "chargingStation": {
            "model": identity.model, "vendorName": identity.vendor,
            "serialNumber": identity.serial, "firmwareVersion": FIRMWARE_VERSION}}

    def trigger_boot(self) -> bool:
        """TriggerMessage(BootNotification): while the boot is not accepted, send it now
        (reason Triggered); once accepted, refused (F06.FR.17)."""
        if self.booted:
            return False
        self._boot_now.set()
        return True

    async def _boot(self, link: Link) -> bool:
        """BootNotification until Accepted (B01-B03); True when a TriggerMessage made
        the accepted one."""
        reason = self.boot_reason
        while True:
            triggered = reason == "Triggered"
            try:
                boot = await link.call_raw("BootNotification", self._boot_payload(reason))
            except CallFailed as exc:
                log.warning("BootNotification failed: %s", exc)
                boot = {"status": "Failed", "interval": 30}
            self._set_utc(boot.get("currentTime"), "BootNotification")
            interval = int(boot.get("interval", 0))
            if boot.get("status") == "Accepted":
                if interval > 0:
                    self.model.set_internal("OCPPCommCtrlr", "HeartbeatInterval", str(interval))
                return triggered
            # Pending or Rejected: nothing but the boot (and answers) until accepted (B02,
            # B03), again after the interval or at once when the CSMS triggers it.
            self.note(f"OCPP: boot {boot.get('status')}; retry in {interval or 30} s")
            self._boot_now.clear()
            try:
                await self.clock.wait_for(self._boot_now.wait(), interval if interval > 0
                                          else 30)
                reason = "Triggered"
            except TimeoutError:
                reason = self.boot_reason

    async def _session(self, link: Link) -> None:
        """Boot unless already booted (a reconnect is not a boot), then status and
        heartbeats."""
        triggered = False
        if not self.booted:
            triggered = await self._boot(link)
            self.booted = True
            self.note("OCPP: BootNotification accepted")
            self.boot_reason = "PowerUp"
        offline_for = (self.clock.now() - self.offline_since
                       if self.offline_since is not None else 0.0)
        self.offline_since = None
        threshold = self.model.get_int("OCPPCommCtrlr", "OfflineThreshold")
        if offline_for > threshold or not self._status_sent or triggered:
            self._status_sent.clear()  # after a long offline period: all of them (B04)
        self.tx.set_online(True)
        self.online.set()
        self.delivery.wake()
        await self.send_statuses(link)
        await self.security_events.send_held(link.call_raw)
        if triggered:  # the CSMS asked for the boot: it hears the rest at once too
            await self.heartbeat(link)
        while True:
            await self.clock.sleep(self.model.get_int("OCPPCommCtrlr", "HeartbeatInterval"))
            await self.heartbeat(link)

    async def heartbeat(self, link: Link) -> None:
        try:
            beat = await link.call_raw("Heartbeat", {})
            self._set_utc(beat.get("currentTime"))
        except CallFailed as exc:
            log.warning("Heartbeat failed: %s", exc)

    # --- status (G01) ---------------------------------------------------------------------

    async def send_statuses(self, link: Link, again: Iterable[int] = ()) -> None:
        """StatusNotification for every connector whose status the CSMS does not have
        yet; ``again``: those too, whatever was sent before (TriggerMessage, a reset)."""
        for evse_id in again:
            self._status_sent.pop(evse_id, None)
        for evse_id in self.evse_ids:
            status = mapping.CONNECTOR_STATUS[self.controller.status(evse_id).phase]
            if self._status_sent.get(evse_id) == status:
                continue
            try:
                await link.call_raw("StatusNotification", {
                    "timestamp": iso(self.utc()), "connectorStatus": status,
                    "evseId": evse_id, "connectorId": 1})
                self._status_sent[evse_id] = status
            except CallFailed as exc:
                log.warning("StatusNotification failed: %s", exc)
            except websockets.ConnectionClosed:
                return  # sent again after the reconnect (B04 / the boot)

    def _observe(self, evse_id: int, cmd: ev.Command, now: float) -> None:
        try:
            self._observe_command(evse_id, cmd)
        except Exception:  # noqa: BLE001 - reporting must never stop the control loop
            log.exception("OCPP station failed on %r (EVSE %d); charging goes on", cmd,
                          evse_id)

    def _observe_command(self, evse_id: int, cmd: ev.Command) -> None:
        status = self.controller.status(evse_id)
        queued = len(self.queue)
        self.tx.on_command(evse_id, cmd, status, self.utc())
        if len(self.queue) != queued:
            self.delivery.wake()  # a new event goes out now, not at the next sample
        if isinstance(cmd, ev.Screen) and self.online.is_set() and self.link is not None:
            if self._status_sent.get(evse_id) != mapping.CONNECTOR_STATUS[status.phase]:
                self.spawn(self.send_statuses(self.link), "ocpp-status")
        if isinstance(cmd, ev.SessionEnded):
            self._reset_when_idle()

    async def _ticker(self) -> None:
        """Once a second on a fixed grid (work done in a tick does not shift the next),
        and at the instant a sampled meter value is due."""
        tick = self.clock.now()
        while True:
            # (1 us of slack: a tick a float's rounding above now would be slept for
            # less than the loop's resolution, and looptime's virtual clock never moves)
            while tick <= self.clock.now() + 1e-6:
                tick += 1.0
            due = self.tx.next_sample_due()
            await self.clock.sleep_until(min(tick, due) if due is not None
                                         and due > self.clock.now() else tick)
            statuses = {e: self.controller.status(e) for e in self.evse_ids}
            before = len(self.queue)
            self.tx.on_tick(statuses, self.utc())
            if len(self.queue) != before:
                self.delivery.wake()
            if self.evse_resets:
                self.reset_evses()
            self._reset_when_idle()
            if not self.queue.storage_ok:
                self.queue.retry_storage()

    def wake_delivery(self) -> None:
        self.delivery.wake()

    # --- delivery of the transaction queue (firmware/ocpp/delivery.py) ----------------------

    async def _call(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        link = self.link
        if link is None:
            raise ConnectionError("not connected")
        try:
            return await link.call_raw(action, payload)
        except websockets.ConnectionClosed:
            # Lost mid-call: not a failed attempt (the message goes again, unchanged, once
            # back). Delivery tells the two apart by `online`, which the connection loop
            # would clear only a moment later, so clear it here.
            self.online.clear()
            raise

    def _delivered(self, action: str, payload: dict[str, Any],
                   response: dict[str, Any]) -> None:
        if action != "TransactionEvent":  # a critical SecurityEventNotification
            self.security_events.sent += 1
            return
        self.delivered += 1
        if payload.get("triggerReason") not in ("MeterValuePeriodic", "MeterValueClock"):
            # (every 30 s: the progress lines show those values already)
            self.note(f"-> CSMS TransactionEvent {payload.get('eventType')} "
                      f"seq {payload.get('seqNo')} ({payload.get('triggerReason')})"
                      + (" [queued offline]" if payload.get("offline") else ""))
        self._on_transaction_response(payload, response)
        if payload.get("eventType") == "Ended":
            self.note(f"OCPP: {self.delivered} TransactionEvents delivered so far")

    def _on_transaction_response(self, payload: dict[str, Any],
                                 response: dict[str, Any]) -> None:
        """A token the CSMS now says is not valid stops the session (E05, StopTxOnInvalidId).
        The CSMS's running cost (totalCost, I02) goes to the bay screen."""
        tx = payload.get("transactionInfo", {}).get("transactionId")
        if self.bay is not None and "totalCost" in response and tx:
            evse = self.tx.evse_of(tx)
            if evse is not None:
                self.bay.cost_updated(evse, Decimal(str(response["totalCost"])))
        info = response.get("idTokenInfo")
        for text in ((info or {}).get("personalMessage"), response.get("updatedPersonalMessage")):
            if self.bay is not None and text and tx and self.tx.evse_of(tx) is not None:
                self.bay.personal_message(self.tx.evse_of(tx), str(text["content"]),
                                          text.get("language"))  # the tariff text
        if info is None or info.get("status") == "Accepted":
            return
        tx_id = payload.get("transactionInfo", {}).get("transactionId")
        evse_id = self.tx.evse_of(tx_id) if tx_id else None
        if evse_id is not None and self.model.get_bool("TxCtrlr", "StopTxOnInvalidId"):
            self.controller.request_stop(evse_id, StopReason.DEAUTHORIZED)

    # --- what the handlers ask -------------------------------------------------------------

    def busy(self, evse_id: int) -> bool:
        """A transaction is open or a session runs on the EVSE."""
        return (self.tx.transaction_id(evse_id) is not None
                or self.controller.status(evse_id).phase in SESSION)

    def store(self, key: str, value: str) -> None:
        self.kv.store(key, value)

    def stored(self, key: str) -> str | None:
        return self.kv.stored(key)

    # --- the state directory, and the disk failing (issue 16) ------------------------------

    def _queue_notice(self, kind: str, text: str) -> None:
        """The queue lost or regained its disk, or gave an Updated up into the next."""
        if kind == "storage_lost":
            self.storage_lost_at = self.clock.now()
            stop = self.settings.on_storage_loss == "stop"
            self.note(f"OCPP: billing storage failed ({text}); records kept in memory; "
                      + ("stopping the sessions (ocpp.on_storage_loss = stop)" if stop
                         else "charging goes on (ocpp.on_storage_loss = continue)"))
            self._security("MemoryExhaustion", f"state directory not writable: {text}",
                           critical=True)
            if stop:  # after this batch: the loop is in the middle of dispatching one
                asyncio.get_running_loop().call_soon(self._storage_stop)
        elif kind == "storage_back":
            self.storage_lost_at = None
            self.note(f"OCPP: billing storage writes again ({text})")
            self._security("MemoryExhaustion", f"state directory writable again: {text}")
            if self.settings.on_storage_loss == "stop":
                asyncio.get_running_loop().call_soon(self._storage_resume)
        else:  # given_up / set_aside: an event left the order after its last attempt
            self.note(f"OCPP: {text}")
            self._security("TransactionEventGivenUp" if kind == "given_up"
                           else "TransactionEventSetAside", text)

    def _storage_stop(self) -> None:
        if self.queue.storage_ok:
            return
        for evse_id in self.evse_ids:
            if self.controller.status(evse_id).phase in SESSION:
                self.controller.request_stop(evse_id, StopReason.OTHER)
            self.controller.set_availability(evse_id, False)  # no new session meanwhile

    def _storage_resume(self) -> None:
        for evse_id in self.evse_ids:
            if self.stored(f"availability:{evse_id}") != "Inoperative":
                self.controller.set_availability(evse_id, True)

    def _security(self, kind: str, text: str, critical: bool = False) -> None:
        self.security.record(kind, text, critical)

    def _clock_stepped(self, before: datetime, after: datetime, source: str) -> None:
        self._security("SettingSystemTime", f"{source}: {before.isoformat()} -> "
                       f"{after.isoformat()}")

    def _message_limits(self, action: str) -> tuple[int, int] | None:
        """ItemsPerMessage / BytesPerMessage the station takes for a request (2.0.1
        DeviceDataCtrlr, Part 2 B05/B06); None for requests without such a bound."""
        if action not in ("GetVariables", "SetVariables"):
            return None
        try:
            items = self.model.get_int("DeviceDataCtrlr", "ItemsPerMessage", action)
            size = self.model.get_int("DeviceDataCtrlr", "BytesPerMessage", action)
        except (KeyError, ValueError):
            return None
        return items, size
