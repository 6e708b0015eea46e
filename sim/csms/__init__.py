"""A local central system (CSMS) for ``make run``, the scenarios and the tests.

Built on the same ``ocpp`` package as the station: it accepts boot (or answers Pending /
Rejected when told to), authorizes a configured token list (with group ids), answers
every TransactionEvent and records every message it receives, and sends commands
(RequestStartTransaction, RequestStopTransaction, anything) on request. ``down()`` and
``up()`` stop and restart its server on the same port, for offline tests. Listens on
127.0.0.1 only.
"""

from __future__ import annotations

import json
import logging
import ssl
from base64 import b64encode
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import websockets
from ocpp.exceptions import InternalError
from ocpp.routing import on
from ocpp.v201 import ChargePoint, call_result
from websockets.typing import Subprotocol

from firmware.ocpp.link import raw_call
from hal.clock import Clock

log = logging.getLogger("chargebay.csms")
SILENT = "silent"  # answer_with: accept the CALL and never answer
CLOSE = "close"  # answer_with: drop the connection with the CALL unanswered


@dataclass
class Received:
    station: str
    action: str
    payload: dict[str, Any]
    at_s: float


@dataclass
class Token:
    status: str = "Accepted"
    group: str | None = None


class _Session(ChargePoint):  # type: ignore[misc]
    def __init__(self, csms: LocalCsms, station_id: str, connection: Any) -> None:
        super().__init__(station_id, connection, response_timeout=30)
        self.csms = csms

    async def route_message(self, raw_msg: str) -> None:
        self.csms.frames.append(raw_msg)
        try:
            msg = json.loads(raw_msg)
            if isinstance(msg, list) and len(msg) == 4 and msg[0] == 2:
                self.csms.record(self.id, msg[2], msg[3])
                hostile = self.csms.answer_with
                answer = hostile(msg[2], msg[1], msg[3]) if hostile is not None else None
                if answer is not None:  # a test playing a hostile CSMS (tests/)
                    if answer == CLOSE:
                        await self._connection.close()
                    elif answer != SILENT:
                        await self._send(answer)
                    return
        except ValueError:
            pass
        await super().route_message(raw_msg)

    @on("BootNotification")
    def on_boot(self, **_: Any) -> call_result.BootNotification:
        return call_result.BootNotification(current_time=self.csms.now_iso(),
                                            interval=self.csms.heartbeat_s,
                                            status=self.csms.boot_status)

    @on("Heartbeat")
    def on_heartbeat(self, **_: Any) -> call_result.Heartbeat:
        return call_result.Heartbeat(current_time=self.csms.now_iso())

    @on("StatusNotification")
    def on_status(self, **_: Any) -> call_result.StatusNotification:
        return call_result.StatusNotification()

    @on("Authorize")
    def on_authorize(self, id_token: dict[str, Any], **_: Any) -> call_result.Authorize:
        return call_result.Authorize(id_token_info=self.csms.token_info(id_token["id_token"]))

    @on("TransactionEvent")
    def on_transaction(self, id_token: dict[str, Any] | None = None,
                       **_: Any) -> call_result.TransactionEvent:
        if self.csms.fail_transaction_events > 0:  # a CSMS having a bad day
            self.csms.fail_transaction_events -= 1
            raise InternalError(description="database unavailable")
        if id_token is None:
            return call_result.TransactionEvent()
        if id_token.get("type") == "Local":  # the station's own id: paid at its terminal
            return call_result.TransactionEvent(id_token_info={"status": "Accepted"})
        return call_result.TransactionEvent(
            id_token_info=self.csms.token_info(id_token["id_token"]))

    @on("MeterValues")
    def on_meter_values(self, **_: Any) -> call_result.MeterValues:
        return call_result.MeterValues()

    @on("NotifyReport")
    def on_notify_report(self, **_: Any) -> call_result.NotifyReport:
        return call_result.NotifyReport()

    @on("SecurityEventNotification")
    def on_security_event(self, **_: Any) -> call_result.SecurityEventNotification:
        return call_result.SecurityEventNotification()

    @on("NotifyEvent")
    def on_notify_event(self, **_: Any) -> call_result.NotifyEvent:
        return call_result.NotifyEvent()

    @on("NotifyDisplayMessages")
    def on_notify_display_messages(self, **_: Any) -> call_result.NotifyDisplayMessages:
        return call_result.NotifyDisplayMessages()


@dataclass
class LocalCsms:
    clock: Clock
    tokens: dict[str, Token] = field(default_factory=dict)
    boot_status: str = "Accepted"
    heartbeat_s: int = 300
    host: str = "127.0.0.1"
    port: int = 0
    received: list[Received] = field(default_factory=list)
    frames: list[str] = field(default_factory=list)  # every frame received, raw
    epoch: datetime = field(default_factory=lambda: datetime.now(UTC).replace(microsecond=0))
    on_message: Callable[[Received], None] | None = None
    sessions: dict[str, _Session] = field(default_factory=dict)
    ssl_context: ssl.SSLContext | None = None  # wss:// (security profiles 2 and 3)
    passwords: dict[str, str] | None = None  # basic auth per station id, when checked
    refused: int = 0
    fail_transaction_events: int = 0  # answer the next N TransactionEvents with CALLERROR
    # (action, message id, payload) -> a raw frame to answer with instead, SILENT (no
    # answer), CLOSE (drop the connection), or None (answer normally): a hostile CSMS.
    answer_with: Callable[[str, str, dict[str, Any]], str | None] | None = None
    _server: Any = None
    _connections: set[Any] = field(default_factory=set)

    @property
    def url(self) -> str:
        scheme = "wss" if self.ssl_context is not None else "ws"
        return f"{scheme}://{self.host}:{self.port}/ocpp"

    def _check_auth(self, connection: Any, request: Any) -> Any:
        """Security profiles 1-2: HTTP basic auth, user = the charge point id (Part 2 A00)."""
        if self.passwords is None:
            return None
        station = request.path.rstrip("/").rsplit("/", 1)[-1]
        header = request.headers.get("Authorization", "")
        expected = self.passwords.get(station)
        if expected is not None and header == "Basic " + b64encode(
                f"{station}:{expected}".encode()).decode():
            return None
        self.refused += 1
        return connection.respond(401, "unknown station or wrong password\n")

    def now_iso(self) -> str:
        """Wall-clock time that runs with the (possibly simulated) clock."""
        t = self.epoch + timedelta(seconds=self.clock.now())
        return t.isoformat(timespec="milliseconds").replace("+00:00", "Z")

    def token_info(self, token: str) -> dict[str, Any]:
        known = self.tokens.get(token)
        if known is None:
            return {"status": "Unknown"}
        info: dict[str, Any] = {"status": known.status}
        if known.group:
            info["group_id_token"] = {"id_token": known.group, "type": "Central"}
        return info

    def record(self, station: str, action: str, payload: dict[str, Any]) -> None:
        item = Received(station, action, payload, self.clock.now())
        self.received.append(item)
        if self.on_message is not None:
            self.on_message(item)

    # --- server ----------------------------------------------------------------------------

    async def up(self) -> None:
        self._server = await websockets.serve(self._accept, self.host, self.port,
                                              subprotocols=[Subprotocol("ocpp2.0.1")],
                                              ping_interval=None, ssl=self.ssl_context,
                                              process_request=self._check_auth)
        self.port = self._server.sockets[0].getsockname()[1]

    async def down(self) -> None:
        if self._server is None:
            return
        self._server.close()
        for connection in list(self._connections):
            await connection.close()
        await self._server.wait_closed()
        self._server = None
        self.sessions.clear()

    async def _accept(self, connection: Any) -> None:
        station_id = connection.request.path.rstrip("/").rsplit("/", 1)[-1]
        session = _Session(self, station_id, connection)
        self.sessions[station_id] = session
        self._connections.add(connection)
        try:
            await session.start()
        except websockets.ConnectionClosed:
            pass
        finally:
            self._connections.discard(connection)
            if self.sessions.get(station_id) is session:
                del self.sessions[station_id]

    # --- commands --------------------------------------------------------------------------

    async def send(self, station_id: str, action: str, payload: dict[str, Any]
                   ) -> dict[str, Any]:
        session = self.sessions[station_id]
        return await raw_call(session, self.clock, action, payload)

    def messages(self, action: str) -> list[dict[str, Any]]:
        return [r.payload for r in self.received if r.action == action]

    async def wait_for(self, action: str, match: Callable[[dict[str, Any]], bool] | None = None,
                       timeout_s: float = 60.0, after: int = 0) -> dict[str, Any]:
        """The first ``action`` (from index ``after`` of the record) that matches, waiting up
        to ``timeout_s`` of the clock's time."""
        end = self.clock.now() + timeout_s
        while True:
            for r in self.received[after:]:
                if r.action == action and (match is None or match(r.payload)):
                    return r.payload
            if self.clock.now() >= end:
                raise TimeoutError(f"no {action} within {timeout_s} s")
            await self.clock.sleep(0.05)
