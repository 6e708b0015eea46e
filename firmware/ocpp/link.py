"""One websocket connection to the CSMS, on the ``ocpp`` package's ChargePoint, for any
OCPP-J version (a version's subclass names its actions and schema error codes:
firmware/ocpp/v201/link.py).

The package frames and validates; this class adds what it gets wrong or leaves out:
- frame hygiene before its router (OCPP-J 2.0.1 Part 4 sections 4.2-4.3; OCPP-J 1.6
  section 4): invalid JSON or an unreadable message id -> RpcFrameworkError with
  message id "-1"; an unknown message type number -> MessageTypeNotSupported; an action
  the version does not define -> NotImplemented; an action it defines but this station
  does not handle -> NotSupported (the package swaps these two); schema violations get
  the version's codes (``SCHEMA_CODES``).
  Every bad frame is counted; none crashes the link or is dropped silently.
- ``call_raw(action, payload)``: a CALL with a plain dict payload (the queue stores
  dicts) that raises on CALLERROR and timeout, so the caller can count attempts.
- while a CALL is in flight on a virtual-time loop, the clock is held (Clock.hold) so
  virtual time cannot jump past the reply.

Handlers for CSMS-initiated messages are the version's station's (e.g.
firmware/ocpp/v201/handlers.py).
"""

from __future__ import annotations

import json
import logging
from typing import Any

from jsonschema.exceptions import ValidationError as SchemaError
from ocpp.charge_point import ChargePoint
from ocpp.messages import Call, CallError, MessageType, get_validator, validate_payload
from ocpp.routing import create_route_map

from hal.clock import Clock

log = logging.getLogger("chargebay.ocpp")


class CallFailed(Exception):
    """The CSMS answered with a CALLERROR, or not in time."""

    def __init__(self, action: str, reason: str) -> None:
        super().__init__(f"{action}: {reason}")
        self.action = action
        self.reason = reason


class FramedLink(ChargePoint):  # type: ignore[misc]
    """Subclasses set the package's ``_call``, ``_call_result``, ``_ocpp_version`` (as
    ``ocpp.v201.ChargePoint`` does) and ``ACTIONS`` / ``SCHEMA_CODES``."""

    ACTIONS: frozenset[str] = frozenset()  # every action the version defines
    SCHEMA_CODES: dict[str, str] = {}  # jsonschema keyword -> the version's error code

    def __init__(self, station_id: str, connection: Any, clock: Clock, handlers: object,
                 response_timeout: float = 30.0) -> None:
        super().__init__(station_id, connection, response_timeout=response_timeout)
        self.clock = clock
        # The routes come from the handler object (the station), not from this class.
        self.route_map = create_route_map(handlers)
        self.bad_frames = 0
        self.sent: list[tuple[str, dict[str, Any]]] = []

    # --- receiving ---------------------------------------------------------------------

    async def route_message(self, raw_msg: str | bytes) -> None:
        error = self._check_frame(raw_msg)
        if error is not None:
            self.bad_frames += 1
            message_id, code, description = error
            log.warning("bad frame from CSMS (%s): %.200r", code, raw_msg)
            await self._send(json.dumps([MessageType.CallError, message_id, code,
                                         description, {}]))
            return
        await super().route_message(raw_msg)

    def _check_frame(self, raw: str | bytes) -> tuple[str, str, str] | None:
        """(message id, error code, description) of a frame we must refuse, or None."""
        try:
            msg = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            return "-1", "RpcFrameworkError", "not valid JSON"
        if not isinstance(msg, list) or len(msg) < 3:
            return "-1", "RpcFrameworkError", "not an OCPP-J message array"
        message_id = msg[1]
        if not isinstance(message_id, str) or not message_id or len(message_id) > 36:
            return "-1", "RpcFrameworkError", "message id missing or not a string <= 36"
        kind = msg[0]
        if kind not in (MessageType.Call, MessageType.CallResult, MessageType.CallError):
            return message_id, "MessageTypeNotSupported", f"message type {kind!r}"
        if kind != MessageType.Call:
            return None  # results go to the waiting call(); unknown ids are logged there
        if len(msg) != 4 or not isinstance(msg[2], str):
            return message_id, "RpcFrameworkError", "a CALL is [2, id, action, payload]"
        action, payload = msg[2], msg[3]
        if action not in self.ACTIONS:
            return message_id, "NotImplemented", (f"{action[:50]} is not an OCPP "
                                                   f"{self._ocpp_version} action")
        if action not in self.route_map or "_on_action" not in self.route_map[action]:
            return message_id, "NotSupported", f"{action} is not supported by this station"
        if not isinstance(payload, dict):
            return message_id, "FormatViolation", "payload is not a JSON object"
        return self._schema_error(message_id, action, payload)

    def _schema_error(self, message_id: str, action: str, payload: dict[str, Any]
                      ) -> tuple[str, str, str] | None:
        try:
            get_validator(MessageType.Call, action, self._ocpp_version).validate(payload)
        except SchemaError as exc:
            code = self.SCHEMA_CODES.get(str(exc.validator), "FormatViolation")
            return message_id, code, exc.message[:200]
        return None

    # --- sending -----------------------------------------------------------------------

    async def call_raw(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        self.sent.append((action, payload))
        return await raw_call(self, self.clock, action, payload)

    async def serve(self) -> None:
        """Read frames until the connection closes (raises ConnectionClosed)."""
        while True:
            raw = await self._connection.recv()
            await self.route_message(raw)


async def raw_call(cp: Any, clock: Clock, action: str, payload: dict[str, Any]
                   ) -> dict[str, Any]:
    """A CALL with a plain dict payload on an ``ocpp`` ChargePoint (either end): schema
    checked, one at a time, raising CallFailed on a CALLERROR or no answer in time."""
    call = Call(unique_id=str(cp._unique_id_generator()), action=action, payload=payload)
    await validate_payload(call, cp._ocpp_version)
    async with cp._call_lock:
        await cp._send(call.to_json())
        try:
            response = await clock.hold(
                cp._get_specific_response(call.unique_id, cp._response_timeout))
        except TimeoutError:
            raise CallFailed(action, "no response in time") from None
    if response.message_type_id == MessageType.CallError:
        assert isinstance(response, CallError)
        raise CallFailed(action, f"{response.error_code}: {response.error_description}")
    result: dict[str, Any] = response.payload
    return result
