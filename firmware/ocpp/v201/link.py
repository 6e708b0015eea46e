"""The 2.0.1 connection: the neutral frame hygiene (firmware/ocpp/link.py) with 2.0.1's
actions, schemas and error codes (OCPP-J 2.0.1 Part 4 section 4.3), and its reply checks
(replies.py)."""

from __future__ import annotations

from typing import Any

from ocpp.v201 import call, call_result
from ocpp.v201.enums import Action

from firmware.ocpp.link import FramedLink, MessageLimits, ReplyCheck
from firmware.ocpp.v201 import replies

SUBPROTOCOL = "ocpp2.0.1"  # Part 4 section 3.1.2: the websocket subprotocol

# jsonschema keyword -> OCPP-J 2.0.1 error code (Part 4 section 4.3). The package maps a
# missing required field to ProtocolError (1.6 wording); 2.0.1 calls a field that must
# occur and does not an occurrence constraint violation.
SCHEMA_CODES = {"required": "OccurrenceConstraintViolation",
                "minItems": "OccurrenceConstraintViolation",
                "maxItems": "OccurrenceConstraintViolation",
                "type": "TypeConstraintViolation",
                "maxLength": "PropertyConstraintViolation",
                "minLength": "PropertyConstraintViolation",
                "enum": "PropertyConstraintViolation",
                "minimum": "PropertyConstraintViolation",
                "maximum": "PropertyConstraintViolation",
                "additionalProperties": "FormatViolation"}


class Link(FramedLink):
    _call = call
    _call_result = call_result
    _ocpp_version = "2.0.1"
    ACTIONS = frozenset(a.value for a in Action)
    SCHEMA_CODES = SCHEMA_CODES

    def __init__(self, station_id: str, connection: Any, clock: Any, handlers: object,
                 response_timeout: float = 30.0, check_reply: ReplyCheck = replies.check,
                 limits: MessageLimits | None = None) -> None:
        super().__init__(station_id, connection, clock, handlers, response_timeout,
                         check_reply, limits)
