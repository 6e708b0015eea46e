"""The persistent, ordered queue of transaction messages, for any OCPP version (2.0.1
Part 2, E "offline behaviour", Part 4 section 4.1.4 message retries; 1.6 section 3.7).

Every TransactionEvent is written here before any attempt to send it and leaves only
when the CSMS has answered it (or after the last allowed attempt). SQLite in WAL mode
with ``synchronous=FULL``: when ``append`` returns, the message survives SIGKILL and
power loss (a billing record the station said it had must exist after any crash).

A small key/value table in the same file holds the state that numbers the messages
(per-transaction seqNo): ``append_with_state`` writes both in one SQLite transaction, so
after a crash the seqNo neither skips nor repeats.

When the queue grows past ``max_len`` (days offline), the oldest periodic meter updates
are thinned; Started, Ended and every other event are never dropped. Which messages are
periodic meter updates is the version's word: ``thinnable(action, payload)``, by
default 2.0.1's (TransactionEvent Updated, MeterValuePeriodic / MeterValueClock); a 1.6
station would pass its own (MeterValues of a transaction).

API::

    q = MessageQueue(path, max_len=20_000, thinnable=v201_thinnable)
    q.append(action, payload) -> int        # durable (fsynced) when it returns
    q.append_with_state(action, payload, key, value) -> int   # event + its state, atomic
    q.head() -> Queued | None               # oldest undelivered: id, action, payload,
                                            # attempts, not_before (caller's seconds)
    q.delivered(id)
    q.failed(id, now, attempts_max, interval_s) -> bool   # False: discarded (counted)
    len(q); q.pending(); q.close()
    q.set_state(key, value); q.get_state(key); q.state_items(prefix)
    counters: q.discarded (after the last attempt), q.thinned (queue over max_len)

Per-transaction state (``tx:<evse>``: transactionId, next seqNo, open, last meter
reading) is written by transactions.py through ``append_with_state``.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_THINNABLE = ("MeterValuePeriodic", "MeterValueClock")
Thinnable = Callable[[str, dict[str, Any]], bool]


def v201_thinnable(action: str, payload: dict[str, Any]) -> bool:
    """2.0.1: only intermediate meter events may be dropped (never Started or Ended)."""
    return (action == "TransactionEvent" and payload.get("eventType") == "Updated"
            and payload.get("triggerReason") in _THINNABLE)


@dataclass(frozen=True)
class Queued:
    id: int  # AUTOINCREMENT: never reused, so ids order messages even across deletions
    action: str
    payload: dict[str, Any]
    attempts: int  # failed delivery attempts so far
    not_before: float  # earliest next try, in the caller's monotonic seconds


class MessageQueue:
    def __init__(self, path: str | Path, max_len: int = 20_000,
                 thinnable: Thinnable = v201_thinnable) -> None:
        self.max_len = max_len
        self.thinnable = thinnable
        self.discarded = 0
        self.thinned = 0
        # isolation_level=None: no implicit transactions; every write below either
        # autocommits alone or sits inside an explicit BEGIN IMMEDIATE ... COMMIT.
        self.db = sqlite3.connect(str(path), isolation_level=None)
        mode = self.db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":  # e.g. a filesystem without shared memory
            raise RuntimeError(f"message queue {path}: journal_mode is {mode}, not wal")
        # FULL, not WAL's usual NORMAL: NORMAL may lose the last commits on power loss
        # (the WAL is fsynced only at checkpoints). A message that append() returned for
        # must survive SIGKILL and power loss, so every commit fsyncs the WAL.
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute("CREATE TABLE IF NOT EXISTS message (id INTEGER PRIMARY KEY "
                        "AUTOINCREMENT, action TEXT NOT NULL, payload TEXT NOT NULL, "
                        "thinnable INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, "
                        "not_before REAL NOT NULL DEFAULT 0)")
        self.db.execute("CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, "
                        "value TEXT NOT NULL)")
        self._length = int(self.db.execute("SELECT COUNT(*) FROM message").fetchone()[0])

    # --- writing -----------------------------------------------------------------------

    def append(self, action: str, payload: dict[str, Any]) -> int:
        return self._append(action, payload, None)

    def append_with_state(self, action: str, payload: dict[str, Any], key: str,
                          value: dict[str, Any]) -> int:
        return self._append(action, payload, (key, value))

    def _append(self, action: str, payload: dict[str, Any],
                state: tuple[str, dict[str, Any]] | None) -> int:
        text = json.dumps(payload, separators=(",", ":"))  # fails before anything is written
        state_text = json.dumps(state[1], separators=(",", ":")) if state else None
        thinnable = int(self.thinnable(action, payload))
        # One SQLite transaction for the message, its state and any thinning: a crash or
        # an error anywhere inside leaves none of them (the context manager rolls back).
        # The counters change only once the commit has succeeded.
        thinned = False
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            cursor = self.db.execute(
                "INSERT INTO message (action, payload, thinnable) VALUES (?, ?, ?)",
                (action, text, thinnable))
            if state is not None:
                self.db.execute("INSERT OR REPLACE INTO state VALUES (?, ?)",
                                (state[0], state_text))
            if self._length + 1 > self.max_len:
                thinned = self._thin_one()
        if thinned:  # one in, one out
            self.thinned += 1
        else:
            self._length += 1
        msg_id = cursor.lastrowid
        assert msg_id is not None
        return msg_id

    def _thin_one(self) -> bool:
        # The oldest periodic/clock meter update, possibly the one just inserted: these are
        # the only events OCPP lets a full station drop (Started, Ended never).
        row = self.db.execute("SELECT id FROM message WHERE thinnable = 1 ORDER BY id "
                              "LIMIT 1").fetchone()
        if row is None:  # nothing thinnable: keep everything, the bound is soft
            return False
        self.db.execute("DELETE FROM message WHERE id = ?", (row[0],))
        return True

    # --- reading and delivery ----------------------------------------------------------------

    def head(self) -> Queued | None:
        row = self.db.execute("SELECT id, action, payload, attempts, not_before FROM message "
                              "ORDER BY id LIMIT 1").fetchone()
        if row is None:
            return None
        return Queued(row[0], row[1], json.loads(row[2]), row[3], row[4])

    def pending(self) -> list[Queued]:
        return [Queued(r[0], r[1], json.loads(r[2]), r[3], r[4]) for r in self.db.execute(
            "SELECT id, action, payload, attempts, not_before FROM message ORDER BY id")]

    def delivered(self, msg_id: int) -> None:
        if self.db.execute("DELETE FROM message WHERE id = ?", (msg_id,)).rowcount:
            self._length -= 1

    def failed(self, msg_id: int, now: float, attempts_max: int, interval_s: float) -> bool:
        """One more failed attempt. The next waits interval x attempts so far (2.0.1
        MessageAttemptInterval); after the last allowed attempt the message is discarded
        (counted). Returns whether it stays queued."""
        row = self.db.execute("SELECT attempts FROM message WHERE id = ?",
                              (msg_id,)).fetchone()
        if row is None:  # already delivered or discarded: nothing to retry, nothing counted
            return False
        attempts = int(row[0]) + 1
        if attempts >= attempts_max:
            self.delivered(msg_id)
            self.discarded += 1
            return False
        self.db.execute("UPDATE message SET attempts = ?, not_before = ? WHERE id = ?",
                        (attempts, now + interval_s * attempts, msg_id))
        return True

    def __len__(self) -> int:
        return self._length

    # --- state -------------------------------------------------------------------------

    def set_state(self, key: str, value: dict[str, Any]) -> None:
        self.db.execute("INSERT OR REPLACE INTO state VALUES (?, ?)",
                        (key, json.dumps(value, separators=(",", ":"))))

    def get_state(self, key: str) -> dict[str, Any] | None:
        row = self.db.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
        if row is None:
            return None
        value: dict[str, Any] = json.loads(row[0])
        return value

    def state_items(self, prefix: str) -> dict[str, dict[str, Any]]:
        # substr, not LIKE (case-insensitive, wildcards) nor a range up to U+FFFF (misses
        # keys with characters beyond it).
        return {k: json.loads(v) for k, v in self.db.execute(
            "SELECT key, value FROM state WHERE substr(key, 1, ?) = ? ORDER BY key",
            (len(prefix), prefix))}

    def close(self) -> None:
        self.db.close()
