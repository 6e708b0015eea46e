"""The display-message store on its own (firmware/bay/messages.py): end times remove,
state decides where a message shows, the bound on how many are kept, and a restart
through a key/value store (one bound to a transaction is not restored; an unreadable
store is dropped with a log line, never a crash)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from firmware.bay.messages import MAX_MESSAGES, STORE_KEY, DisplayMessages, message_state
from firmware.core.transitions import Phase

NOON = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def info(ident: int, text: str = "x", priority: str = "InFront", **kw: Any) -> dict[str, Any]:
    return {"id": ident, "priority": priority,
            "message": {"format": "UTF8", "content": text}, **kw}


class Kv:
    def __init__(self, value: str | None = None) -> None:
        self.values = {} if value is None else {STORE_KEY: value}

    def store(self, key: str, value: str) -> None:
        self.values[key] = value

    def stored(self, key: str) -> str | None:
        return self.values.get(key)


def test_end_time_removes_and_start_time_waits() -> None:
    m = DisplayMessages()
    m.set(info(1, "later", startDateTime="2026-12-01T13:00:00Z"))
    m.set(info(2, "over", endDateTime="2026-12-01T11:59:59+00:00"))
    assert m.front({1: "Idle"}, NOON) == {}
    m.expire(NOON)
    assert [i["id"] for i in m.query(None, None, None)] == [1]  # removed, not only hidden
    assert m.front({1: "Idle"}, datetime(2026, 12, 1, 13, 0, tzinfo=UTC)) == {0: "later"}


def test_state_is_the_connectors_or_any_for_the_whole_screen() -> None:
    m = DisplayMessages()
    m.set(info(1, "bay 2 faulted", state="Faulted", display={"name": "Display",
                                                              "evse": {"id": 2}}))
    m.set(info(2, "someone charges", state="Charging"))
    states = {1: message_state(Phase.CHARGING), 2: message_state(Phase.AVAILABLE)}
    assert m.front(states, NOON) == {0: "someone charges"}
    states = {1: message_state(Phase.AVAILABLE), 2: message_state(Phase.FAULTED)}
    assert m.front(states, NOON) == {2: "bay 2 faulted"}


def test_bounded() -> None:
    m = DisplayMessages()
    for ident in range(MAX_MESSAGES):
        assert m.set(info(ident)) == "Accepted"
    assert m.set(info(MAX_MESSAGES)) == "Rejected"
    assert m.set(info(0, "replaced")) == "Accepted"  # the same id replaces


def test_kept_across_a_restart_but_not_a_transactions_own() -> None:
    kv = Kv()
    m = DisplayMessages()
    m.keep_in(kv)
    m.set(info(1, "site closes at 22:00"))
    m.set(info(2, "your truck", transactionId="tx-1"), evse_id=1)
    again = DisplayMessages()
    again.keep_in(kv)
    assert [i["id"] for i in again.query(None, None, None)] == [1]
    m.transaction_ended(1)
    assert [i["id"] for i in m.query(None, None, None)] == [1]


def test_an_unreadable_store_is_dropped_not_a_crash() -> None:
    for bad in ("{not json", '[{"info": 3}]', '{"a": 1}', "[1]",
                '[{"info": {"id": 1, "priority": "Loud"}, "evse_id": 0}]'):
        m = DisplayMessages()
        m.keep_in(Kv(bad))
        assert m.query(None, None, None) == []
