"""The charging station's OCPP 2.0.1 side: connection, boot, heartbeat, status, delivery
of the transaction queue, cards and remote start (handlers.py has the CSMS's requests).

It watches the controller (an observer of every core command) and acts on it through the
controller's public calls (authorize, request_stop, set_availability): the core stays the
only place that decides about a session.
"""

from __future__ import annotations

import asyncio
import logging
import random
import sqlite3
import ssl
from base64 import b64encode
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import websockets

from firmware.clock import Clock
from firmware.core import events as ev
from firmware.core.events import StopReason
from firmware.loop import Controller
from firmware.ocpp import mapping
from firmware.ocpp.auth import Authorization, Decision, same_holder
from firmware.ocpp.delivery import Delivery
from firmware.ocpp.device_model import DeviceModel
from firmware.ocpp.handlers import Handlers
from firmware.ocpp.link import CallFailed, Link
from firmware.ocpp.queue import MessageQueue
from firmware.ocpp.settings import OcppSettings
from firmware.ocpp.transactions import Transactions, iso

log = logging.getLogger("chargebay.ocpp")
FIRMWARE_VERSION = "0.1.0"
Say = Callable[[str], None]


class Station:
    def __init__(self, controller: Controller, settings: OcppSettings, clock: Clock,
                 start_utc: datetime | None = None, say: Say | None = None,
                 ping_interval: float | None = 30.0) -> None:
        self.controller = controller
        self.settings = settings
        self.clock = clock
        self.say = say
        self.ping_interval = ping_interval
        config = controller.config
        self.station_id = config.identity.charge_point_id
        state = Path(settings.state_dir)
        state.mkdir(parents=True, exist_ok=True)
        self.model = DeviceModel(state / "device_model.db", settings.variables)
        self.model.set_internal("SecurityCtrlr", "SecurityProfile",
                                str(settings.security_profile))
        self.model.set_internal("SecurityCtrlr", "Identity", self.station_id)
        self.db = sqlite3.connect(str(state / "station.db"), isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT)")
        self.auth = Authorization(self.db)
        self.queue = MessageQueue(state / "queue.db")
        self.evse_ids = tuple(c.evse_id for c in config.connectors)
        self.tx = Transactions(self.queue, self._setting, self.evse_ids, clock.now)
        self._utc_base = start_utc or datetime.now(UTC)
        self._utc_at = 0.0
        self.link: Link | None = None
        self.online = asyncio.Event()  # connected and BootNotification Accepted
        self.delivery = Delivery(self.queue, self._setting, clock,
                                 on_response=self._delivered)
        self._status_sent: dict[int, str] = {}
        self._tasks: list[asyncio.Task[Any]] = []
        self._reset_pending: str | None = None
        self.evse_resets: set[int] = set()  # EVSEs to reset once idle (B11 / B12)
        self.boot_reason = "PowerUp"
        self.connected_at: float | None = None
        self.offline_since: float | None = 0.0
        self.delivered = 0
        self.handlers = Handlers(self)
        controller.observers.append(self._observe)

    # --- time ---------------------------------------------------------------------------

    def utc(self) -> datetime:
        """Wall-clock time as the CSMS set it (ClockCtrlr, TimeSource Heartbeat)."""
        return self._utc_base + timedelta(seconds=self.clock.now() - self._utc_at)

    def _set_utc(self, current_time: str | None) -> None:
        if current_time:
            try:
                t = datetime.fromisoformat(current_time.replace("Z", "+00:00"))
            except ValueError:
                return
            self._utc_base, self._utc_at = t, self.clock.now()

    def _setting(self, component: str, variable: str) -> str:
        return self.model.get(component, variable)

    def _note(self, text: str) -> None:
        if self.say is not None:
            self.say(text)

    # --- lifecycle -------------------------------------------------------------------------

    async def start(self) -> None:
        for evse_id in self.evse_ids:  # ChangeAvailability survives restarts (G03.FR.06)
            if self.stored(f"availability:{evse_id}") == "Inoperative":
                self.controller.set_availability(evse_id, False)
        ended = self.tx.resume_after_restart(self.utc())
        for tx_id in ended:
            log.warning("transaction %s was open at start-up: ended with PowerLoss", tx_id)
        self._tasks = [asyncio.create_task(self._connection_loop(), name="ocpp-connection"),
                       asyncio.create_task(self.delivery.run(self._call, self.online),
                                           name="ocpp-delivery"),
                       asyncio.create_task(self._ticker(), name="ocpp-tick")]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self.link is not None:
            await self.link._connection.close()
        self.queue.close()
        self.model.close()
        self.db.close()

    # --- connection (OCPP 2.0.1 Part 4 section 5; Part 2 B01-B04) -------------------------

    def _url(self) -> str:
        return self.settings.csms_url.rstrip("/") + "/" + self.station_id

    def _connect_kwargs(self) -> dict[str, Any]:
        s = self.settings
        kw: dict[str, Any] = {"subprotocols": ["ocpp2.0.1"], "open_timeout": 10,
                              "ping_interval": self.ping_interval}
        if s.security_profile in (1, 2) and s.basic_auth_password:
            secret = b64encode(f"{self.station_id}:{s.basic_auth_password}".encode()).decode()
            kw["additional_headers"] = {"Authorization": f"Basic {secret}"}
        if s.security_profile >= 2:
            context = ssl.create_default_context(cafile=s.ca_file)
            if s.security_profile == 3 and s.client_cert:
                context.load_cert_chain(s.client_cert, s.client_key)
            kw["ssl"] = context
        return kw

    def _backoff(self, attempt: int) -> float:
        """RetryBackOff*: the wait doubles up to RepeatTimes, plus a random part so a
        whole hub does not reconnect at the same instant."""
        minimum = self.model.get_int("OCPPCommCtrlr", "RetryBackOffWaitMinimum")
        spread = self.model.get_int("OCPPCommCtrlr", "RetryBackOffRandomRange")
        repeat = self.model.get_int("OCPPCommCtrlr", "RetryBackOffRepeatTimes")
        return float(minimum * 2 ** min(attempt, repeat) + random.uniform(0, spread))

    async def _connection_loop(self) -> None:
        attempt = 0
        while True:
            try:
                connection = await self.clock.hold(
                    websockets.connect(self._url(), **self._connect_kwargs()))
            except (OSError, websockets.InvalidHandshake, TimeoutError) as exc:
                wait = self._backoff(attempt)
                log.info("CSMS not reachable (%s); retry in %.0f s", exc, wait)
                attempt += 1
                await self.clock.sleep(wait)
                continue
            attempt = 0
            timeout = float(self.model.get("OCPPCommCtrlr", "MessageTimeout"))
            link = Link(self.station_id, connection, self.clock, self.handlers, timeout)
            self.link = link
            self._note("OCPP: connected to the CSMS")
            reader = asyncio.create_task(self._read(link))
            session = asyncio.create_task(self._session(link))
            try:
                await asyncio.wait({reader, session}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for task in (reader, session):
                    task.cancel()
                await asyncio.gather(reader, session, return_exceptions=True)
                await connection.close()
            self._went_offline()
            if self._reset_pending == "now":
                self._reset_pending = None
                self.boot_reason = "RemoteReset"
                continue
            await self.clock.sleep(self._backoff(0))

    async def _read(self, link: Link) -> None:
        try:
            await link.serve()
        except websockets.ConnectionClosed:
            return

    def _went_offline(self) -> None:
        if self.online.is_set() or self.link is not None:
            self._note("OCPP: connection to the CSMS lost; queueing")
        self.online.clear()
        self.tx.set_online(False)
        self.link = None
        self.offline_since = self.clock.now()

    async def _session(self, link: Link) -> None:
        """BootNotification until Accepted (B01-B03), then status and heartbeats."""
        while True:
            try:
                boot = await link.call_raw("BootNotification", {
                    "reason": self.boot_reason, "chargingStation": {
                        "model": self.controller.config.identity.model,
                        "vendorName": self.controller.config.identity.vendor,
                        "serialNumber": self.controller.config.identity.serial,
                        "firmwareVersion": FIRMWARE_VERSION}})
            except CallFailed as exc:
                log.warning("BootNotification failed: %s", exc)
                await self.clock.sleep(30)
                continue
            self._set_utc(boot.get("currentTime"))
            interval = int(boot.get("interval", 0))
            if boot.get("status") == "Accepted":
                if interval > 0:
                    self.model.set_internal("OCPPCommCtrlr", "HeartbeatInterval", str(interval))
                break
            # Pending or Rejected: nothing but the boot (and answers) until accepted (B02).
            self._note(f"OCPP: boot {boot.get('status')}; retry in {interval or 30} s")
            await self.clock.sleep(interval if interval > 0 else 30)
        self._note("OCPP: BootNotification accepted")
        self.boot_reason = "PowerUp"
        offline_for = (self.clock.now() - self.offline_since
                       if self.offline_since is not None else 0.0)
        self.offline_since = None
        threshold = self.model.get_int("OCPPCommCtrlr", "OfflineThreshold")
        if offline_for > threshold or not self._status_sent:
            self._status_sent.clear()  # after a long offline period: all of them (B04)
        self.tx.set_online(True)
        self.online.set()
        self.delivery.wake()
        await self._send_statuses(link)
        while True:
            await self.clock.sleep(self.model.get_int("OCPPCommCtrlr", "HeartbeatInterval"))
            try:
                beat = await link.call_raw("Heartbeat", {})
                self._set_utc(beat.get("currentTime"))
            except CallFailed as exc:
                log.warning("Heartbeat failed: %s", exc)

    # --- status (G01) ---------------------------------------------------------------------

    async def _send_statuses(self, link: Link) -> None:
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

    def _observe(self, evse_id: int, cmd: ev.Command, now: float) -> None:
        status = self.controller.status(evse_id)
        queued = len(self.queue)
        self.tx.on_command(evse_id, cmd, status, self.utc())
        if len(self.queue) != queued:
            self.delivery.wake()  # a new event goes out now, not at the next sample
        if isinstance(cmd, ev.Screen) and self.online.is_set() and self.link is not None:
            if self._status_sent.get(evse_id) != mapping.CONNECTOR_STATUS[status.phase]:
                asyncio.ensure_future(self._send_statuses(self.link))
        if isinstance(cmd, ev.SessionEnded) and self._reset_pending == "idle" and all(
                self.tx.transaction_id(e) is None for e in self.evse_ids):
            self._reset_pending = "now"
            asyncio.ensure_future(self._restart_link())

    async def _ticker(self) -> None:
        while True:
            await self.clock.sleep(1.0)
            statuses = {e: self.controller.status(e) for e in self.evse_ids}
            before = len(self.queue)
            self.tx.on_tick(statuses, self.utc())
            if len(self.queue) != before:
                self.delivery.wake()
            if self.evse_resets:
                self.reset_evses()

    def reset_evses(self) -> None:
        """Carry out the EVSE resets that wait for their EVSE to be idle and safe (called
        by the 1-s ticker and right after a Reset); the rest are tried on the next tick.
        A reset EVSE keeps its persisted availability (G03.FR.06) and reports its status
        again."""
        for evse_id in sorted(self.evse_resets):
            if self._busy(evse_id) or not self.controller.reset_connector(evse_id):
                continue
            self.evse_resets.discard(evse_id)
            self._note(f"OCPP: EVSE {evse_id} reset")
            if self.stored(f"availability:{evse_id}") == "Inoperative":
                self.controller.set_availability(evse_id, False)
            self._status_sent.pop(evse_id, None)
            if self.online.is_set() and self.link is not None:
                asyncio.ensure_future(self._send_statuses(self.link))

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
        self.delivered += 1
        if payload.get("triggerReason") not in ("MeterValuePeriodic", "MeterValueClock"):
            # (every 30 s: the progress lines show those values already)
            self._note(f"-> CSMS TransactionEvent {payload.get('eventType')} "
                       f"seq {payload.get('seqNo')} ({payload.get('triggerReason')})"
                       + (" [queued offline]" if payload.get("offline") else ""))
        self._on_transaction_response(payload, response)
        if payload.get("eventType") == "Ended":
            self._note(f"OCPP: {self.delivered} TransactionEvents delivered so far")

    def _on_transaction_response(self, payload: dict[str, Any],
                                 response: dict[str, Any]) -> None:
        """A token the CSMS now says is not valid stops the session (E05, StopTxOnInvalidId)."""
        info = response.get("idTokenInfo")
        if info is None or info.get("status") == "Accepted":
            return
        tx_id = payload.get("transactionInfo", {}).get("transactionId")
        evse_id = self.tx.evse_of(tx_id) if tx_id else None
        if evse_id is not None and self.model.get_bool("TxCtrlr", "StopTxOnInvalidId"):
            self.controller.request_stop(evse_id, StopReason.DEAUTHORIZED)

    # --- cards and the app (C01, C10-C13, F01-F02) ------------------------------------------

    async def authorize_token(self, token: str, kind: str = "ISO14443") -> Decision:
        id_token = {"idToken": token, "type": kind}
        now = self.clock.now()
        use_list = self.model.get_bool("LocalAuthListCtrlr", "Enabled")
        use_cache = self.model.get_bool("AuthCacheCtrlr", "Enabled")
        link = self.link
        if not self.online.is_set() or link is None:
            return self.auth.offline(
                token, now, local_offline=self.model.get_bool("AuthCtrlr",
                                                              "LocalAuthorizeOffline"),
                unknown_ok=self.model.get_bool("AuthCtrlr", "OfflineTxForUnknownIdEnabled"),
                use_list=use_list, use_cache=use_cache)
        if self.model.get_bool("AuthCtrlr", "LocalPreAuthorize"):
            known = self.auth.local(token, now, use_list, use_cache)
            if known is not None and known.status == "Accepted":
                return known
        try:
            result = await link.call_raw("Authorize", {"idToken": id_token})
        except CallFailed as exc:
            log.warning("Authorize failed (%s): deciding offline", exc)
            return self.auth.offline(token, now, local_offline=True, unknown_ok=False,
                                     use_list=use_list, use_cache=use_cache)
        info = result.get("idTokenInfo", {})
        if use_cache:
            self.auth.remember(token, info, now,
                               self.model.get_int("AuthCacheCtrlr", "LifeTime"))
        return Decision(info.get("status", "Invalid"), info.get("groupIdToken"))

    async def present_card(self, evse_id: int, token: str) -> str:
        """A card at the bay's reader: start, or stop the session it (or its group)
        started. Returns what the screen shows."""
        decision = await self.authorize_token(token)
        running = self.tx.id_token(evse_id) if self._busy(evse_id) else None
        if running is not None:
            presented = {"idToken": token, "type": "ISO14443"}
            if decision.status == "Accepted" and same_holder(
                    running, presented, self.tx.group_id_token(evse_id),
                    decision.group_id_token):
                self.controller.request_stop(evse_id, StopReason.LOCAL)
                return "Stopping: card accepted."
            return "This card did not start this session."
        if decision.status != "Accepted":
            self.controller.dispatch(evse_id, ev.AuthorizeRejected(token, decision.status))
            self._note(f"OCPP: card {token} {decision.status}")
            return f"Card not accepted ({decision.status})."
        self.tx.note_authorization(evse_id, {"idToken": token, "type": "ISO14443"},
                                   "Authorized", None, decision.group_id_token)
        self.controller.authorize(evse_id, token, "rfid")
        self._note(f"OCPP: card {token} accepted ({decision.source})")
        return "Card accepted."

    def _busy(self, evse_id: int) -> bool:
        st = self.controller.status(evse_id)
        return self.tx.transaction_id(evse_id) is not None or st.phase.value in (
            "Authorized", "CableCheck", "PreCharge", "Charging", "SuspendedEV",
            "SuspendedEVSE")

    async def _restart_link(self) -> None:
        """Reset of the station: every connector's machine starts afresh (as soon as it
        is idle and safe) and the OCPP side comes back with BootNotification(RemoteReset).
        (Partial: the process itself does not restart.)"""
        self.boot_reason = "RemoteReset"
        self._reset_pending = "now"
        self._status_sent.clear()  # a rebooted station reports every connector again
        self.evse_resets.update(self.evse_ids)  # and its connectors start afresh
        self.reset_evses()
        if self.link is not None:
            await self.link._connection.close()

    def store(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO kv VALUES (?, ?)", (key, value))

    def stored(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])
