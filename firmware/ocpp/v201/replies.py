"""Checks of the CSMS's replies beyond their JSON schema, for OCPP 2.0.1.

The link (firmware/ocpp/link.py) checks every CALLRESULT against the 2.0.1 response
schema first (a TransactionEventResponse with idTokenInfo as a string or a list, a
BootNotificationResponse with interval as a string or currentTime as a number, a list or
null: all refused there). The schema does not check what a ``date-time`` string says:
this module does, so a reply the station would choke on later never reaches it. A
refused reply is a failed attempt of its CALL (the queue retries it; a boot is tried
again), never a crash, never a blocked queue, never a command to the core.

``currentTime`` (BootNotification, Heartbeat) is not judged here: a time that is
unreadable, naive or not believable (year 9999) does not make the boot fail (a station
that never comes online delivers no billing data); the boot is accepted and the time
refused by the wall clock (firmware/ocpp/wall_clock.py), which logs it.
"""

from __future__ import annotations

from typing import Any

from firmware.ocpp import wall_clock
from firmware.ocpp.link import ReplyRejected

# Response fields of dataType dateTime (OCPP 2.0.1 Part 2 section 2 datatypes) that the
# station reads.
_DATE_TIMES = frozenset({"cacheExpiryDateTime", "validFrom", "validTo"})
_MAX_DEPTH = 32  # deeper than any 2.0.1 response; the walk below stays bounded


def check(action: str, payload: Any) -> None:
    """ReplyRejected when ``payload`` (already schema-valid) cannot be used."""
    _walk(action, payload, 0)


def _walk(action: str, node: Any, depth: int) -> None:
    if depth > _MAX_DEPTH:
        raise ReplyRejected("nested too deep")
    if isinstance(node, dict):
        for key, value in node.items():
            if key in _DATE_TIMES:
                try:
                    wall_clock.parse(value)
                except ValueError as exc:  # unreadable, or naive (names no instant)
                    raise ReplyRejected(f"{key}: {exc}") from None
            _walk(action, value, depth + 1)
    elif isinstance(node, list):
        for value in node:
            _walk(action, value, depth + 1)
