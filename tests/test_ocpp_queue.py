"""The persistent transaction-message queue: order, durability, retries, thinning, atomic
message+state writes, and what survives SIGKILL."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from firmware.ocpp.queue import MessageQueue

ROOT = Path(__file__).resolve().parent.parent
METER = ("MeterValuePeriodic", "MeterValueClock")


def _event(kind: str, seq: int, trigger: str = "MeterValuePeriodic") -> dict[str, Any]:
    return {"eventType": kind, "seqNo": seq, "triggerReason": trigger}


def _thinnable(payload: dict[str, Any]) -> bool:
    return payload["eventType"] == "Updated" and payload["triggerReason"] in METER


def test_order_and_durability(tmp_path: Path) -> None:
    q = MessageQueue(tmp_path / "q.db")
    ids = [q.append("TransactionEvent", _event("Updated", n)) for n in range(3)]
    assert ids == sorted(ids) and len(set(ids)) == 3
    q.set_state("tx:1", {"seq": 2})
    q.close()
    q = MessageQueue(tmp_path / "q.db")
    head = q.head()
    assert head is not None and head.id == ids[0] and head.payload["seqNo"] == 0
    assert head.action == "TransactionEvent" and head.attempts == 0
    q.delivered(ids[0])
    head = q.head()
    assert head is not None and head.id == ids[1]
    assert len(q) == 2 and [m.payload["seqNo"] for m in q.pending()] == [1, 2]
    assert q.get_state("tx:1") == {"seq": 2} and q.get_state("tx:2") is None
    q.close()
    q = MessageQueue(tmp_path / "q.db")  # the delivery persisted too
    assert len(q) == 2 and [m.id for m in q.pending()] == ids[1:]
    # Ids keep growing even after the newest message has gone (AUTOINCREMENT).
    q.delivered(ids[1])
    q.delivered(ids[2])
    assert q.head() is None and len(q) == 0
    assert q.append("TransactionEvent", _event("Updated", 3)) > ids[2]
    q.close()


def test_appends_stay_fsynced_after_deliveries(tmp_path: Path) -> None:
    """A delivery commits without an fsync (a power cut may only undo it: resent); the
    appends after it must still be FULL, also when the delete failed on the disk."""
    q = MessageQueue(tmp_path / "q.db")
    ids = [q.append("TransactionEvent", _event("Updated", n)) for n in range(2)]
    q.delivered(ids[0])
    assert q.db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    q.db.execute("CREATE TRIGGER refuse BEFORE DELETE ON message "
                 "BEGIN SELECT RAISE(ABORT, 'disk says no'); END")
    q.delivered(ids[1])  # delivered all the same (kept in memory as gone)
    assert q.db.execute("PRAGMA synchronous").fetchone()[0] == 2
    assert len(q) == 0
    q.close()


def test_state_items_by_prefix(tmp_path: Path) -> None:
    q = MessageQueue(tmp_path / "q.db")
    for key in ("tx:1", "tx:2", "tx:\U0001f600", "TX:3", "txa", "t", "meter:1"):
        q.set_state(key, {"k": key})
    q.set_state("tx:2", {"k": "again"})  # overwritten, not duplicated
    assert q.state_items("tx:") == {"tx:1": {"k": "tx:1"}, "tx:2": {"k": "again"},
                                    "tx:\U0001f600": {"k": "tx:\U0001f600"}}
    assert q.state_items("tx%") == {}  # no LIKE wildcards
    q.close()


def test_a_message_refused_past_its_last_attempt_is_set_aside_not_lost(
        tmp_path: Path) -> None:
    """The CSMS answers the Started with a CALLERROR (or a reply it cannot make right)
    on every attempt: after MessageAttempts it leaves the order, the later events go,
    it stays on disk (across a restart) and is offered again once nothing else waits."""
    q = MessageQueue(tmp_path / "q.db")
    notices: list[tuple[str, str]] = []
    q.notice = lambda kind, text: notices.append((kind, text))
    first = q.append("TransactionEvent", _event("Started", 0, "Authorized"))
    second = q.append("TransactionEvent", _event("Ended", 1, "StopAuthorized"))
    for now in (0.0, 60.0):
        assert q.failed(first, now=now, attempts_max=3, interval_s=60, refused=True)
    assert not q.failed(first, now=180.0, attempts_max=3, interval_s=60, refused=True)
    head = q.head()
    assert head is not None and head.id == second  # the queue goes on
    assert len(q) == 1 and q.set_aside == 1 and q.discarded == 0
    assert [kind for kind, _ in notices] == ["set_aside"] and "seqNo 0" in notices[0][1]
    q.close()
    q = MessageQueue(tmp_path / "q.db")  # kept on disk
    assert [m.id for m in q.aside()] == [first] and len(q) == 1
    assert [m.id for m in q.pending()] == [first, second]
    q.delivered(second)
    head = q.head()  # nothing else waits: offered again, interval x attempts after
    assert head is not None and head.id == first and head.aside
    assert head.not_before == 180.0 + 180.0
    assert q.failed(first, now=360.0, attempts_max=3, interval_s=60, refused=True)
    head = q.head()
    assert head is not None and head.id == first and head.not_before == 360.0 + 180.0
    later = q.append("TransactionEvent", _event("Started", 0, "Authorized"))
    head = q.head()
    assert head is not None and head.id == later  # a new event never waits behind it
    q.delivered(later)
    q.delivered(first)  # taken at last
    assert q.aside() == [] and len(q) == 0 and q.head() is None
    q.close()


def test_set_aside_while_the_disk_is_read_only_is_written_out_later(
        tmp_path: Path) -> None:
    """A message kept in memory (the disk refused it) can be set aside too; once the
    disk takes writes again it goes there still set aside, under its new id."""
    q = MessageQueue(tmp_path / "q.db")
    q.db.execute("PRAGMA query_only = 1")  # as a filesystem remounted read-only
    first = q.append("TransactionEvent", _event("Started", 0, "Authorized"))
    q.append("TransactionEvent", _event("Ended", 1, "StopAuthorized"))
    assert first < 0 and not q.storage_ok
    for now in (0.0, 60.0, 180.0):
        q.failed(first, now=now, attempts_max=3, interval_s=60, refused=True)
    assert [m.id for m in q.aside()] == [first] and len(q) == 1
    q.db.execute("PRAGMA query_only = 0")
    assert q.retry_storage() and q.storage_ok
    kept = q.aside()
    assert [m.payload["seqNo"] for m in kept] == [0] and kept[0].id > 0 and len(q) == 1
    q.close()
    q = MessageQueue(tmp_path / "q.db")
    assert [m.id for m in q.aside()] == [kept[0].id] and len(q) == 1
    q.close()


def test_silence_past_the_last_attempt_keeps_the_order(tmp_path: Path) -> None:
    """No answer in time is no verdict on the message: it stays at the head."""
    q = MessageQueue(tmp_path / "q.db")
    first = q.append("TransactionEvent", _event("Started", 0, "Authorized"))
    q.append("TransactionEvent", _event("Ended", 1, "StopAuthorized"))
    for now in (0.0, 60.0, 180.0, 360.0):
        assert q.failed(first, now=now, attempts_max=3, interval_s=60, refused=False)
    head = q.head()
    assert head is not None and head.id == first and q.aside() == [] and len(q) == 2
    q.close()


def test_failed_attempts_back_off_and_started_ended_are_never_discarded(
        tmp_path: Path) -> None:
    q = MessageQueue(tmp_path / "q.db")
    first = q.append("TransactionEvent", _event("Started", 0, "Authorized"))
    q.append("TransactionEvent", _event("Ended", 1, "StopAuthorized"))
    assert q.failed(first, now=100.0, attempts_max=3, interval_s=60)
    head = q.head()
    assert head is not None and head.attempts == 1 and head.not_before == 160.0
    q.close()
    q = MessageQueue(tmp_path / "q.db")  # attempts and not_before persist
    assert q.failed(first, now=160.0, attempts_max=3, interval_s=60)
    head = q.head()
    assert head is not None and head.attempts == 2
    assert head.not_before == 160.0 + 120.0  # interval x attempts
    # The last attempt: a Started is kept (issue 16), tried every interval x attempts.
    assert q.failed(first, now=280.0, attempts_max=3, interval_s=60)
    assert q.discarded == 0 and q.kept == 1 and len(q) == 2
    head = q.head()
    assert head is not None and head.payload["eventType"] == "Started"
    assert head.attempts == 3 and head.not_before == 280.0 + 180.0
    assert q.failed(first, now=460.0, attempts_max=3, interval_s=60)
    head = q.head()
    assert head is not None and head.attempts == 3 and head.not_before == 460.0 + 180.0
    q.delivered(first)
    assert not q.failed(first, now=500.0, attempts_max=3, interval_s=60)  # already gone
    assert q.discarded == 0 and len(q) == 1
    q.close()


def test_thinning_drops_only_periodic_meter_updates(tmp_path: Path) -> None:
    q = MessageQueue(tmp_path / "q.db", max_len=5)
    q.append("TransactionEvent", _event("Started", 0, "Authorized"))
    q.append("TransactionEvent", _event("Updated", 1, "ChargingStateChanged"))
    q.append("TransactionEvent", _event("Updated", 2, "MeterValueClock"))
    for n in range(3, 10):
        q.append("TransactionEvent", _event("Updated", n))
    q.append("TransactionEvent", _event("Ended", 10, "StopAuthorized"))
    kept = [m.payload for m in q.pending()]
    assert len(q) == len(kept) == 5 and q.thinned == 6
    assert kept[0]["eventType"] == "Started" and kept[-1]["eventType"] == "Ended"
    assert kept[1]["triggerReason"] == "ChargingStateChanged"
    assert [k["seqNo"] for k in kept[2:4]] == [8, 9]  # the oldest went first, clock too
    q.close()


def test_thinning_bound_is_soft(tmp_path: Path) -> None:
    q = MessageQueue(tmp_path / "q.db", max_len=3)
    for n in range(3):
        q.append("TransactionEvent", _event("Started" if n % 2 else "Ended", n, "Authorized"))
    q.append("TransactionEvent", _event("Ended", 3, "MeterValuePeriodic"))  # not Updated
    q.append("TransactionEvent", _event("Updated", 4, "Trigger"))
    assert len(q) == 5 and q.thinned == 0
    assert [m.payload["seqNo"] for m in q.pending()] == [0, 1, 2, 3, 4]
    q.close()


def test_append_with_state_is_all_or_nothing(tmp_path: Path) -> None:
    path = tmp_path / "q.db"
    q = MessageQueue(path)
    q.append_with_state("TransactionEvent", _event("Started", 0), "tx:1", {"seq": 0})
    with pytest.raises(TypeError):
        q.append_with_state("TransactionEvent", {"bad": object()}, "tx:1", {"seq": 1})
    with pytest.raises(TypeError):
        q.append_with_state("TransactionEvent", _event("Updated", 1), "tx:1", {"bad": {1, 2}})
    assert len(q) == 1 and q.get_state("tx:1") == {"seq": 0}
    q.close()
    # A real failure between the two writes: a trigger refuses the state row after the
    # message row has been inserted in the same transaction.
    db = sqlite3.connect(path)
    db.execute("CREATE TRIGGER refuse BEFORE INSERT ON state WHEN NEW.key = 'tx:boom' "
               "BEGIN SELECT RAISE(ABORT, 'refused'); END")
    db.commit()
    db.close()
    q = MessageQueue(path)
    # The disk refuses: the message and its state are kept in memory, both (issue 16).
    q.append_with_state("TransactionEvent", _event("Updated", 1), "tx:boom", {"seq": 1})
    assert not q.storage_ok and len(q) == 2 and q.get_state("tx:boom") == {"seq": 1}
    q.close()
    q = MessageQueue(path)  # memory went with the process; the disk has none of that write
    assert len(q) == 1 and q.get_state("tx:boom") is None
    assert [m.payload["seqNo"] for m in q.pending()] == [0]
    # Still usable afterwards, and nothing of the failed write shows up after a reopen.
    q.append_with_state("TransactionEvent", _event("Updated", 1), "tx:1", {"seq": 1})
    q.close()
    q = MessageQueue(path)
    assert [m.payload["seqNo"] for m in q.pending()] == [0, 1] and len(q) == 2
    assert q.state_items("tx:") == {"tx:1": {"seq": 1}}
    q.close()


MAX_LEN = 6
ATTEMPTS_MAX = 3
INTERVAL = 10.0


class QueueModel(RuleBasedStateMachine):
    """Random appends, deliveries, failures and reopenings against a plain list."""

    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.TemporaryDirectory()
        self.path = Path(self.dir.name) / "q.db"
        self.q = MessageQueue(self.path, max_len=MAX_LEN)
        # [id, payload, attempts, not_before], oldest first
        self.model: list[list[Any]] = []
        self.seq = 0
        self.now = 0.0
        self.thinned = 0  # counters are per instance: reset on reopen
        self.discarded = 0
        self.gone: set[int] = set()  # seqNos delivered or discarded by the caller
        self.must_keep: list[int] = []  # seqNos of every event thinning may not drop

    @rule(kind=st.sampled_from(["Started", "Updated", "Ended"]),
          trigger=st.sampled_from([*METER, "Authorized", "ChargingStateChanged"]))
    def append(self, kind: str, trigger: str) -> None:
        payload = _event(kind, self.seq, trigger)
        msg_id = self.q.append("TransactionEvent", payload)
        assert not self.model or msg_id > self.model[-1][0]
        self.model.append([msg_id, payload, 0, 0.0])
        if not _thinnable(payload):
            self.must_keep.append(self.seq)
        self.seq += 1
        if len(self.model) > MAX_LEN:  # the model of thinning: the oldest meter update
            oldest = next((m for m in self.model if _thinnable(m[1])), None)
            if oldest is not None:
                self.model.remove(oldest)
                self.thinned += 1

    @precondition(lambda self: bool(self.model))
    @rule()
    def deliver(self) -> None:
        head = self.q.head()
        assert head is not None
        self.q.delivered(head.id)
        self.gone.add(self.model.pop(0)[1]["seqNo"])

    @precondition(lambda self: bool(self.model))
    @rule(dt=st.floats(0.0, 100.0))
    def fail(self, dt: float) -> None:
        self.now += dt
        head = self.q.head()
        assert head is not None
        kept = self.q.failed(head.id, self.now, ATTEMPTS_MAX, INTERVAL)
        first = self.model[0]
        first[2] = min(first[2] + 1, ATTEMPTS_MAX)
        first[3] = self.now + INTERVAL * first[2]
        # These events name no transaction, so nothing can carry an Updated's values:
        # every event stays until delivered (tests/test_ocpp_hostile_csms.py: carrying).
        assert kept

    @rule()
    def reopen(self) -> None:
        self.q.close()
        self.q = MessageQueue(self.path, max_len=MAX_LEN)
        self.thinned = self.discarded = 0

    @invariant()
    def same_as_model(self) -> None:
        got = [[m.id, m.payload, m.attempts, m.not_before] for m in self.q.pending()]
        assert got == self.model
        assert len(self.q) == len(self.model)
        head = self.q.head()
        assert (head.id if head else None) == (self.model[0][0] if self.model else None)
        assert self.q.thinned == self.thinned and self.q.discarded == self.discarded

    @invariant()
    def started_and_ended_never_dropped(self) -> None:
        # Independent of the thinning model: every non-meter event is either still queued
        # or was delivered/discarded by the caller.
        queued = {m.payload["seqNo"] for m in self.q.pending()}
        assert all(n in queued or n in self.gone for n in self.must_keep)
        seqs = [m.payload["seqNo"] for m in self.q.pending()]
        assert seqs == sorted(seqs)  # order kept

    def teardown(self) -> None:
        self.q.close()
        self.dir.cleanup()


QueueModel.TestCase.settings = settings(max_examples=30, stateful_step_count=30,
                                        deadline=None)
TestQueueModel = QueueModel.TestCase


def test_sigkill_loses_nothing_that_append_returned(tmp_path: Path) -> None:
    db = tmp_path / "q.db"
    rng = random.Random(11)
    promised: list[int] = []
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for _ in range(6):
        child = subprocess.Popen([sys.executable, str(ROOT / "tests" / "queue_child.py"),
                                  str(db)], stdout=subprocess.PIPE, text=True, env=env)
        assert child.stdout is not None
        start = len(promised)
        try:
            for _ in range(rng.randrange(1, 60)):
                line = child.stdout.readline()
                if not line:
                    break
                promised.append(int(line))
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait()
            child.stdout.close()
        assert child.returncode == -signal.SIGKILL  # killed mid-loop, not crashed
        assert len(promised) > start, "the child appended nothing"
        # Each round continues from the persisted seq (one appended but unprinted before
        # the kill may be skipped here, but must then be in the queue: checked below).
        assert all(a < b for a, b in zip(promised, promised[1:], strict=False))
    q = MessageQueue(db)
    seqs = [m.payload["seqNo"] for m in q.pending()]
    assert seqs == list(range(len(seqs)))  # no gap, no repeat, in order
    assert set(promised) <= set(seqs)  # everything append returned for is there
    assert q.get_state("tx") == {"seq": seqs[-1]}  # the state matches the last event
    q.close()
