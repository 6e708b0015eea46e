"""The persistent transaction-message queue: order, durability, retries, thinning, and
what survives SIGKILL."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from firmware.ocpp.queue import MessageQueue

ROOT = Path(__file__).resolve().parent.parent


def _event(kind: str, seq: int, trigger: str = "MeterValuePeriodic") -> dict[str, Any]:
    return {"eventType": kind, "seqNo": seq, "triggerReason": trigger}


def test_order_and_durability(tmp_path: Path) -> None:
    q = MessageQueue(tmp_path / "q.db")
    ids = [q.append("TransactionEvent", _event("Updated", n)) for n in range(3)]
    q.set_state("tx:1", {"seq": 2})
    q.close()
    q = MessageQueue(tmp_path / "q.db")
    head = q.head()
    assert head is not None and head.id == ids[0] and head.payload["seqNo"] == 0
    q.delivered(ids[0])
    assert len(q) == 2 and [m.payload["seqNo"] for m in q.pending()] == [1, 2]
    assert q.get_state("tx:1") == {"seq": 2}
    assert q.state_items("tx:") == {"tx:1": {"seq": 2}}


def test_failed_attempts_back_off_then_discard(tmp_path: Path) -> None:
    q = MessageQueue(tmp_path / "q.db")
    first = q.append("TransactionEvent", _event("Started", 0, "Authorized"))
    q.append("TransactionEvent", _event("Ended", 1, "StopAuthorized"))
    assert q.failed(first, now=100.0, attempts_max=3, interval_s=60)
    head = q.head()
    assert head is not None and head.attempts == 1 and head.not_before == 160.0
    assert q.failed(first, now=160.0, attempts_max=3, interval_s=60)
    head = q.head()
    assert head is not None and head.not_before == 160.0 + 120.0  # interval x attempts
    assert not q.failed(first, now=280.0, attempts_max=3, interval_s=60)
    assert q.discarded == 1
    head = q.head()
    assert head is not None and head.payload["eventType"] == "Ended"


def test_thinning_drops_only_periodic_meter_updates(tmp_path: Path) -> None:
    q = MessageQueue(tmp_path / "q.db", max_len=5)
    q.append("TransactionEvent", _event("Started", 0, "Authorized"))
    q.append("TransactionEvent", _event("Updated", 1, "ChargingStateChanged"))
    for n in range(2, 10):
        q.append("TransactionEvent", _event("Updated", n))
    q.append("TransactionEvent", _event("Ended", 10, "StopAuthorized"))
    kept = [m.payload for m in q.pending()]
    assert len(kept) == 5 and q.thinned == 6
    assert kept[0]["eventType"] == "Started" and kept[-1]["eventType"] == "Ended"
    assert kept[1]["triggerReason"] == "ChargingStateChanged"
    assert [k["seqNo"] for k in kept[2:4]] == [8, 9]  # the oldest went first


def test_append_with_state_is_all_or_nothing(tmp_path: Path) -> None:
    q = MessageQueue(tmp_path / "q.db")
    q.append_with_state("TransactionEvent", _event("Started", 0), "tx:1", {"seq": 0})
    try:
        q.append_with_state("TransactionEvent", {"bad": object()}, "tx:1", {"seq": 1})
    except TypeError:
        pass
    else:
        raise AssertionError("a payload that is not JSON must be refused")
    assert len(q) == 1 and q.get_state("tx:1") == {"seq": 0}


class QueueModel(RuleBasedStateMachine):
    """Random appends, deliveries, failures and reopenings against a plain list."""

    def __init__(self) -> None:
        super().__init__()
        import tempfile
        self.dir = tempfile.TemporaryDirectory()
        self.path = Path(self.dir.name) / "q.db"
        self.q = MessageQueue(self.path, max_len=12)
        self.model: list[dict[str, Any]] = []
        self.seq = 0

    @rule(kind=st.sampled_from(["Started", "Updated", "Ended", "Periodic"]))
    def append(self, kind: str) -> None:
        payload = (_event("Updated", self.seq) if kind == "Periodic"
                   else _event(kind, self.seq, "Authorized"))
        self.q.append("TransactionEvent", payload)
        self.model.append(payload)
        self.seq += 1
        while len(self.model) > 12:  # the model of thinning: oldest periodic first
            periodic = [m for m in self.model if m["triggerReason"] == "MeterValuePeriodic"]
            if not periodic:
                break
            self.model.remove(periodic[0])

    @rule()
    def deliver(self) -> None:
        head = self.q.head()
        if head is not None:
            self.q.delivered(head.id)
            self.model.pop(0)

    @rule()
    def fail(self) -> None:
        head = self.q.head()
        if head is not None and not self.q.failed(head.id, 0.0, 3, 1.0):
            self.model.pop(0)

    @rule()
    def reopen(self) -> None:
        self.q.close()
        self.q = MessageQueue(self.path, max_len=12)

    @invariant()
    def same_as_model(self) -> None:
        assert [m.payload for m in self.q.pending()] == self.model
        assert len(self.q) == len(self.model)

    def teardown(self) -> None:
        self.q.close()
        self.dir.cleanup()


QueueModel.TestCase.settings = settings(max_examples=40, stateful_step_count=30,
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
        for _ in range(rng.randrange(5, 60)):
            line = child.stdout.readline()
            if not line:
                break
            promised.append(int(line))
        child.send_signal(signal.SIGKILL)
        child.wait()
    q = MessageQueue(db, max_len=10**6)
    seqs = [m.payload["seqNo"] for m in q.pending()]
    assert seqs == list(range(len(seqs)))  # no gap, no repeat, in order
    assert set(promised) <= set(seqs)  # everything append returned for is there
    assert q.get_state("tx:1") == {"seq": seqs[-1]}  # the state matches the last event
