"""The CSMS's display messages for the bay screen (OCPP 2.0.1 Part 2 O01-O06:
SetDisplayMessage, GetDisplayMessages, ClearDisplayMessage; MessageInfoType): which are
kept, what a query reports, which one the screen shows where, and what survives a
restart.

- Kept as the CSMS sent them (camelCase MessageInfo), with the connector they belong to:
  ``display.evse.id``, the EVSE of their ``transactionId``, or 0 for the whole screen.
- A query (GetDisplayMessages) reports those matching every filter given (ids, priority,
  state); none given: all.
- Removed by the station when their endDateTime has passed (O01: "after this date/time
  this message SHALL be removed") and when the transaction they belong to ends.
- Shown per connector: the highest priority among those inside their start/end time and
  whose ``state`` (Charging, Faulted, Idle, Unavailable) is the connector's state now (a
  whole-screen one: any connector's); no state: always.
- Kept in a key/value store when one is given (the station's state directory, so a
  restart keeps them, as a CSMS expects); one bound to a transaction is not restored, as
  a restart ends every transaction.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from firmware.core.transitions import Phase

log = logging.getLogger("chargebay.bay")

PRIORITY = {"AlwaysFront": 0, "InFront": 1, "NormalCycle": 2}  # MessagePriorityEnumType
FORMATS = ("ASCII", "UTF8")  # HTML / URI: the kiosk shows text only
MAX_MESSAGES = 50  # the station's own bound (what NumberOfDisplayMessages would report)
STORE_KEY = "bay.display_messages"


class Store(Protocol):
    """A small key/value store that survives a restart (firmware/ocpp/storage.KeyValue)."""

    def store(self, key: str, value: str) -> None: ...
    def stored(self, key: str) -> str | None: ...


def message_state(phase: Phase) -> str:
    """A connector's phase in MessageStateEnumType words."""
    if phase is Phase.FAULTED:
        return "Faulted"
    if phase is Phase.UNAVAILABLE:
        return "Unavailable"
    if phase in (Phase.CABLE_CHECK, Phase.PRE_CHARGE, Phase.CHARGING, Phase.SUSPENDED_EV,
                 Phase.SUSPENDED_EVSE, Phase.STOPPING):
        return "Charging"
    return "Idle"


@dataclass
class Kept:
    info: dict[str, Any]  # MessageInfoType as the CSMS sent it (camelCase)
    evse_id: int  # 0: the whole screen


class DisplayMessages:
    def __init__(self) -> None:
        self._kept: dict[int, Kept] = {}
        self._store: Store | None = None

    def keep_in(self, store: Store) -> None:
        """Persist in ``store`` from now on, starting with what it holds."""
        self._store = store
        try:
            saved = json.loads(store.stored(STORE_KEY) or "[]")
            kept = {int(k["info"]["id"]): Kept(k["info"], int(k["evse_id"])) for k in saved
                    if not k["info"].get("transactionId") and _valid(k["info"])}
        except (ValueError, TypeError, KeyError, AttributeError) as exc:  # a bad row: no crash
            log.error("display messages in the state directory unreadable (%s): dropped", exc)
            kept = {}
        self._kept = {**kept, **self._kept}
        self._save()

    def set(self, info: dict[str, Any], evse_id: int | None = None) -> str:
        """SetDisplayMessage: the SetDisplayMessageResponse status."""
        if info.get("priority") not in PRIORITY:
            return "NotSupportedPriority"
        if not _valid(info):
            return "NotSupportedMessageFormat"
        ident = int(info["id"])
        if ident not in self._kept and len(self._kept) >= MAX_MESSAGES:
            return "Rejected"
        if evse_id is None:
            evse_id = int(((info.get("display") or {}).get("evse") or {}).get("id", 0) or 0)
        self._kept[ident] = Kept(info, evse_id)
        self._save()
        return "Accepted"

    def query(self, ids: list[int] | None, priority: str | None,
              state: str | None) -> list[dict[str, Any]]:
        """GetDisplayMessages: those matching every filter given, by id."""
        return [k.info for i, k in sorted(self._kept.items())
                if (not ids or i in ids)
                and (priority is None or k.info.get("priority") == priority)
                and (state is None or k.info.get("state") == state)]

    def clear(self, ident: int) -> bool:
        found = self._kept.pop(ident, None) is not None
        self._save()
        return found

    def transaction_ended(self, evse_id: int) -> None:
        """The transaction on ``evse_id`` ended: its messages go (MessageInfo
        .transactionId: "SHALL be removed ... after transaction has ended")."""
        self._drop([i for i, k in self._kept.items()
                    if k.info.get("transactionId") and k.evse_id == evse_id])

    def expire(self, utc: datetime) -> None:
        self._drop([i for i, k in self._kept.items() if _ended(k.info, utc)])

    def front(self, states: dict[int, str], utc: datetime | None) -> dict[int, str]:
        """The text to show per connector (0: the whole screen), given each connector's
        MessageStateEnumType state now."""
        best: dict[int, tuple[int, str]] = {}
        for k in self._kept.values():
            if utc is not None and not _in_window(k.info, utc):
                continue
            wanted = k.info.get("state")
            if wanted is not None and wanted not in (
                    states.values() if k.evse_id == 0 else (states.get(k.evse_id),)):
                continue
            rank = PRIORITY[k.info["priority"]]
            if k.evse_id not in best or rank < best[k.evse_id][0]:
                best[k.evse_id] = (rank, str(k.info.get("message", {}).get("content", "")))
        return {evse: text for evse, (_, text) in best.items()}

    def _drop(self, idents: list[int]) -> None:
        if idents:
            for ident in idents:
                del self._kept[ident]
            self._save()

    def _save(self) -> None:
        if self._store is None:
            return
        rows = [{"info": k.info, "evse_id": k.evse_id} for k in self._kept.values()]
        try:
            self._store.store(STORE_KEY, json.dumps(rows, separators=(",", ":")))
        except Exception:  # noqa: BLE001 - a full disk keeps them in memory, logged
            log.exception("display messages could not be written to the state directory")


def _valid(info: dict[str, Any]) -> bool:
    """What the screen can show: a known priority, text it can print."""
    text = info.get("message") or {}
    return info.get("priority") in PRIORITY and text.get("format") in FORMATS \
        and isinstance(text.get("content"), str)


def _at(message: dict[str, Any], key: str) -> datetime | None:
    text = message.get(key)
    if not text:
        return None
    try:
        return datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return None


def _ended(message: dict[str, Any], utc: datetime) -> bool:
    end = _at(message, "endDateTime")
    try:
        return end is not None and utc >= end
    except TypeError:  # a naive time: not comparable, never taken for expired
        return False


def _in_window(message: dict[str, Any], utc: datetime) -> bool:
    start = _at(message, "startDateTime")
    try:
        return (start is None or utc >= start) and not _ended(message, utc)
    except TypeError:
        return True
