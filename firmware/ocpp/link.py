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

Replies (what a hostile or broken CSMS sends back, docs/ocpp.md "Bad input from the
central system"): a CALLRESULT or CALLERROR goes to the one CALL in flight when its id
matches, and is dropped (counted in ``unknown_results``) when it does not, so results
nobody asked for cannot pile up in memory or recurse (the package's own wait recurses
once per foreign result and reads the wall clock). A result is checked against the
version's response schema and then by ``check_reply`` (the version's shape and sanity
checks, e.g. firmware/ocpp/v201/replies.py); one that fails is a ``CallFailed``, a
failed attempt, and never reaches the caller. The connection closing under a CALL
fails it at once with ``ConnectionClosed`` (not a timeout: not a failed attempt).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any

from jsonschema.exceptions import ValidationError as SchemaError
from ocpp import messages as ocpp_messages
from ocpp.charge_point import ChargePoint
from ocpp.messages import Call, CallError, CallResult, MessageType, get_validator, validate_payload
from ocpp.routing import create_route_map

from hal.clock import Clock

log = logging.getLogger("chargebay.ocpp")

# (action, payload) -> None, or raises ReplyRejected: the version's checks of a reply.
ReplyCheck = Callable[[str, Any], None]
# action -> (ItemsPerMessage, BytesPerMessage) the station accepts for that request, or
# None when the action has no such bound (2.0.1 DeviceDataCtrlr, Part 2 B05/B06).
MessageLimits = Callable[[str], "tuple[int, int] | None"]
_LIST_OF = {"SetVariables": "setVariableData", "GetVariables": "getVariableData"}
_LOGGED_UNKNOWN = 5  # unknown results logged one by one; after that only counted
# The library validates each message in a thread by default. Under the GIL that thread
# runs no faster than the loop would, and each hop costs two thread switches (and the
# loop may wait a switch interval for the GIL back): validate on the loop instead, as
# the replies already are (_checked). Measured on the queue drain: CPU -20 % (make bench).
ocpp_messages.ASYNC_VALIDATION = False


class CallFailed(Exception):
    """The CSMS answered with a CALLERROR, a malformed CALLRESULT, or not in time.
    ``refused``: it answered (CALLERROR or malformed), so the link works and it is this
    message the CSMS does not take; False for no answer in time."""

    def __init__(self, action: str, reason: str, refused: bool = True) -> None:
        super().__init__(f"{action}: {reason}")
        self.action = action
        self.reason = reason
        self.refused = refused


class ReplyRejected(ValueError):
    """A CALLRESULT the station will not act on (wrong shape, insane value)."""


def _no_check(action: str, payload: Any) -> None:
    return None


class FramedLink(ChargePoint):  # type: ignore[misc]
    """Subclasses set the package's ``_call``, ``_call_result``, ``_ocpp_version`` (as
    ``ocpp.v201.ChargePoint`` does) and ``ACTIONS`` / ``SCHEMA_CODES``."""

    ACTIONS: frozenset[str] = frozenset()  # every action the version defines
    SCHEMA_CODES: dict[str, str] = {}  # jsonschema keyword -> the version's error code

    def __init__(self, station_id: str, connection: Any, clock: Clock, handlers: object,
                 response_timeout: float = 30.0, check_reply: ReplyCheck = _no_check,
                 limits: MessageLimits | None = None) -> None:
        super().__init__(station_id, connection, response_timeout=response_timeout)
        self.clock = clock
        # The routes come from the handler object (the station), not from this class.
        self.route_map = create_route_map(handlers)
        self.check_reply = check_reply
        self.limits = limits
        self.bad_frames = 0
        self.bad_replies = 0  # CALLRESULTs refused by schema or check_reply
        self.unknown_results = 0  # results for no CALL in flight: dropped
        self._awaiting: tuple[str, asyncio.Future[Any]] | None = None

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
        msg = json.loads(raw_msg)  # parsed once in _check_frame already: cannot fail
        if msg[0] != MessageType.Call:
            self._result(msg)
            return
        await super().route_message(raw_msg)

    def _result(self, msg: list[Any]) -> None:
        """A CALLRESULT / CALLERROR: to the CALL in flight, or dropped."""
        waiting = self._awaiting
        if waiting is None or waiting[0] != msg[1] or waiting[1].done():
            self.unknown_results += 1
            if self.unknown_results <= _LOGGED_UNKNOWN:
                log.warning("CSMS sent a result for no CALL in flight (id %.40r): dropped",
                            msg[1])
            return
        if msg[0] == MessageType.CallResult:
            waiting[1].set_result(CallResult(msg[1], msg[2]))
        else:
            fields = [*msg[2:5], "", "", {}][:3]
            waiting[1].set_result(CallError(msg[1], str(fields[0]), str(fields[1]),
                                            fields[2]))

    def _check_frame(self, raw: str | bytes) -> tuple[str, str, str] | None:
        """(message id, error code, description) of a frame we must refuse, or None."""
        try:
            msg = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            return "-1", "RpcFrameworkError", "not valid JSON"
        except RecursionError:  # nested deeper than the parser's stack (a hostile CSMS)
            return "-1", "RpcFrameworkError", "JSON nested too deep"
        if not isinstance(msg, list) or len(msg) < 3:
            return "-1", "RpcFrameworkError", "not an OCPP-J message array"
        message_id = msg[1]
        if not isinstance(message_id, str) or not message_id or len(message_id) > 36:
            return "-1", "RpcFrameworkError", "message id missing or not a string <= 36"
        kind = msg[0]
        if kind not in (MessageType.Call, MessageType.CallResult, MessageType.CallError):
            return message_id, "MessageTypeNotSupported", f"message type {kind!r}"
        if kind != MessageType.Call:
            return None  # results go to the waiting call; unknown ids are dropped there
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
        return (self._size_error(message_id, action, payload, len(raw))
                or self._schema_error(message_id, action, payload))

    def _size_error(self, message_id: str, action: str, payload: dict[str, Any],
                    size: int) -> tuple[str, str, str] | None:
        """A request longer than the station's ItemsPerMessage / BytesPerMessage for it
        is refused before any work is done (2.0.1 Part 2 B05/B06: the CSMS must split
        it), so one message cannot hold the event loop (and the IO board heartbeat)."""
        bound = self.limits(action) if self.limits is not None else None
        if bound is None:
            return None
        items, max_bytes = bound
        if size > max_bytes:
            return message_id, "FormatViolation", (f"{size} bytes; BytesPerMessage is "
                                                   f"{max_bytes}")
        entries = payload.get(_LIST_OF.get(action, ""))
        if isinstance(entries, list) and len(entries) > items:
            return message_id, "OccurrenceConstraintViolation", (
                f"{len(entries)} entries; ItemsPerMessage is {items}")
        return None

    def _schema_error(self, message_id: str, action: str, payload: dict[str, Any]
                      ) -> tuple[str, str, str] | None:
        try:
            get_validator(MessageType.Call, action, self._ocpp_version).validate(payload)
        except SchemaError as exc:
            code = self.SCHEMA_CODES.get(str(exc.validator), "FormatViolation")
            return message_id, code, exc.message[:200]
        except RecursionError:
            return message_id, "FormatViolation", "payload nested too deep"
        return None

    # --- sending -----------------------------------------------------------------------

    async def call_raw(self, action: str, payload: dict[str, Any]) -> dict[str, Any]:
        """One CALL; its checked CALLRESULT payload, or CallFailed (CALLERROR, no answer
        in time, a reply of the wrong shape). ConnectionClosed when the link goes."""
        call = Call(unique_id=str(self._unique_id_generator()), action=action,
                    payload=payload)
        await validate_payload(call, self._ocpp_version)
        async with self._call_lock:
            future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            self._awaiting = (call.unique_id, future)
            try:
                await self._send(call.to_json())
                response = await self.clock.hold(
                    asyncio.wait_for(asyncio.shield(future), self._response_timeout))
            except TimeoutError:
                raise CallFailed(action, "no response in time", refused=False) from None
            finally:
                self._awaiting = None
        if isinstance(response, CallError):
            raise CallFailed(action, f"{response.error_code}: {response.error_description}")
        return self._checked(action, response.payload)

    def _checked(self, action: str, payload: Any) -> dict[str, Any]:
        try:
            if not isinstance(payload, dict):
                raise ReplyRejected("the payload is not a JSON object")
            get_validator(MessageType.CallResult, action, self._ocpp_version
                          ).validate(payload)
            self.check_reply(action, payload)
        except (SchemaError, ReplyRejected, RecursionError) as exc:
            self.bad_replies += 1
            reason = exc.message if isinstance(exc, SchemaError) else str(exc)
            log.warning("malformed %s reply from the CSMS (%.200s): a failed attempt",
                        action, reason)
            raise CallFailed(action, f"malformed reply: {reason[:200]}") from None
        return payload

    async def serve(self) -> None:
        """Read frames until the connection closes (raises ConnectionClosed); a CALL in
        flight then fails with the same ConnectionClosed."""
        try:
            while True:
                raw = await self._connection.recv()
                await self.route_message(raw)
        except BaseException as exc:
            waiting = self._awaiting
            if waiting is not None and not waiting[1].done():
                waiting[1].set_exception(
                    exc if isinstance(exc, Exception) else ConnectionError("link closed"))
            raise


async def raw_call(cp: Any, clock: Clock, action: str, payload: dict[str, Any]
                   ) -> dict[str, Any]:
    """A CALL with a plain dict payload on an ``ocpp`` ChargePoint (the simulated CSMS's
    side): schema checked, one at a time, raising CallFailed on a CALLERROR or no answer
    in time. Results for other ids are skipped in a loop (the package's own wait
    recurses once per foreign result)."""
    call = Call(unique_id=str(cp._unique_id_generator()), action=action, payload=payload)
    await validate_payload(call, cp._ocpp_version)
    async with cp._call_lock:
        await cp._send(call.to_json())
        end = clock.now() + cp._response_timeout
        while True:
            left = end - clock.now()
            try:
                if left <= 0:
                    raise TimeoutError
                response = await clock.hold(asyncio.wait_for(cp._response_queue.get(),
                                                             left))
            except TimeoutError:
                raise CallFailed(action, "no response in time", refused=False) from None
            if response.unique_id == call.unique_id:
                break
    if response.message_type_id == MessageType.CallError:
        assert isinstance(response, CallError)
        raise CallFailed(action, f"{response.error_code}: {response.error_description}")
    result: dict[str, Any] = response.payload
    return result
