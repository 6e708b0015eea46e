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
    q.delivered(id)                         # not fsynced: a power cut may undo it (resent)
    q.failed(id, now, attempts_max, interval_s, refused=False) -> bool
                                            # False: left the queue (carried on, set aside)
    len(q); q.pending(); q.aside(); q.close()
    q.set_state(key, value); q.get_state(key); q.state_items(prefix)
    counters: q.discarded (after the last attempt), q.thinned (queue over max_len),
              q.set_aside (refused past the last attempt)

Per-transaction state (``tx:<evse>``: transactionId, next seqNo, open, last meter
reading) is written by transactions.py through ``append_with_state``.

Nothing is given up that carries billing data (docs/ocpp.md "Bad input from the central
system"). After the last attempt an Updated (not ``must_keep``: 2.0.1 Started and Ended
and anything but a TransactionEvent Updated must be kept) is given up when a later event
of the same transaction is queued, and its meter values are carried into that one
(``carry``), in one SQLite transaction, so no energy goes unbilled; until one is queued
(within TxUpdatedInterval, or the Ended) it stays at the head. A message that must be
kept:
- the CSMS *refused* the last attempt (a CALLERROR or a reply it could not make right:
  it answers, so it is this message it does not take): the message is **set aside**. It
  stays on disk (``aside`` = 1), leaves the order, and is offered again every interval x
  attempts whenever nothing else waits (``head``), until the CSMS takes it; the queue
  goes on behind it. ``notice("set_aside", text)`` tells the station (log, security log).
  Holding every later event behind it forever would lose nothing but deliver nothing
  either; dropping it, as OCPP 1.6 section 3.7 allows, would lose a bill;
- no answer in time (a silent CSMS): it stays at the head and is tried again every
  interval x attempts; everything waits in order, as for a CSMS that is away.

When the disk fails (full, read-only, I/O error), nothing is lost and nothing raises:
messages and state are kept in memory, in order behind what is on disk, ``storage_ok``
turns False and ``notice("storage_lost", reason)`` tells the station (which decides
whether charging goes on: ``[ocpp] on_storage_loss``). Every later write and
``retry_storage()`` try to write them out; once that works, ``notice("storage_back",
...)``. What is in memory dies with a power cut: that is what the policy is about.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

log = logging.getLogger("chargebay.ocpp")

_THINNABLE = ("MeterValuePeriodic", "MeterValueClock")
Thinnable = Callable[[str, dict[str, Any]], bool]
MustKeep = Callable[[str, dict[str, Any]], bool]
# (given-up payload, a later queued payload) -> the later one with the data carried, or
# None when it cannot take it (another transaction).
Carry = Callable[[dict[str, Any], dict[str, Any]], "dict[str, Any] | None"]
Notice = Callable[[str, str], None]


def v201_thinnable(action: str, payload: dict[str, Any]) -> bool:
    """2.0.1: only intermediate meter events may be dropped (never Started or Ended)."""
    return (action == "TransactionEvent" and payload.get("eventType") == "Updated"
            and payload.get("triggerReason") in _THINNABLE)


def v201_must_keep(action: str, payload: dict[str, Any]) -> bool:
    """2.0.1: Started and Ended are never given up (E "offline behaviour"); an Updated
    may be, with its meter values carried on (``v201_carry``)."""
    return not (action == "TransactionEvent" and payload.get("eventType") == "Updated")


def v201_carry(dropped: dict[str, Any], later: dict[str, Any]) -> dict[str, Any] | None:
    def tx_id(p: dict[str, Any]) -> Any:
        return (p.get("transactionInfo") or {}).get("transactionId")
    if tx_id(dropped) is None or tx_id(dropped) != tx_id(later):
        return None
    meter = list(dropped.get("meterValue") or []) + list(later.get("meterValue") or [])
    return {**later, "meterValue": meter} if meter else dict(later)


_DISK_ERRORS = (sqlite3.OperationalError, sqlite3.DatabaseError, OSError)


@dataclass(frozen=True)
class Queued:
    id: int  # AUTOINCREMENT: never reused, so ids order messages even across deletions
    action: str
    payload: dict[str, Any]
    attempts: int  # failed delivery attempts so far
    not_before: float  # earliest next try, in the caller's monotonic seconds
    aside: bool = False  # refused past its last attempt: offered when nothing else waits


class MessageQueue:
    def __init__(self, path: str | Path, max_len: int = 20_000,
                 thinnable: Thinnable = v201_thinnable, must_keep: MustKeep = v201_must_keep,
                 carry: Carry = v201_carry, notice: Notice | None = None) -> None:
        self.path = Path(path)
        self.max_len = max_len
        self.thinnable = thinnable
        self.must_keep = must_keep
        self.carry = carry
        self.notice = notice
        self.discarded = 0
        self.thinned = 0
        self.carried = 0  # Updated events given up, their meter values carried on
        self.kept = 0  # must-keep messages retried past their last attempt
        self.set_aside = 0  # messages set aside (refused past their last attempt)
        self.storage_ok = True
        self.storage_failures = 0
        # What the disk would not take, in order (newer than anything on disk): ids
        # below zero; state rows by key; disk rows delivered or retried meanwhile.
        self._memory: list[Queued] = []
        self._memory_state: dict[str, str] = {}
        self._memory_id = 0
        self._gone: set[int] = set()
        self._retries: dict[int, tuple[int, float]] = {}
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
        columns = {r[1] for r in self.db.execute("PRAGMA table_info(message)")}
        if "aside" not in columns:  # a queue.db from before set-aside existed
            self.db.execute("ALTER TABLE message ADD COLUMN aside INTEGER NOT NULL DEFAULT 0")
        self._length = int(self.db.execute("SELECT COUNT(*) FROM message").fetchone()[0])
        self._aside_ids = {int(r[0]) for r in self.db.execute(
            "SELECT id FROM message WHERE aside = 1")}

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
        if self._memory or self._memory_state:
            self.retry_storage()  # older ones first, so the order on disk stays
        if not (self._memory or self._memory_state):
            try:
                return self._append_disk(action, text, payload, state, state_text)
            except _DISK_ERRORS as exc:
                self._lost(exc)
        self._memory_id -= 1
        self._memory.append(Queued(self._memory_id, action, json.loads(text), 0, 0.0))
        self._length += 1
        if state is not None and state_text is not None:
            self._memory_state[state[0]] = state_text
        return self._memory_id

    def _append_disk(self, action: str, text: str, payload: dict[str, Any],
                     state: tuple[str, dict[str, Any]] | None, state_text: str | None
                     ) -> int:
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
        row = self.db.execute("SELECT id FROM message WHERE thinnable = 1 AND aside = 0 "
                              "ORDER BY id LIMIT 1").fetchone()
        if row is None:  # nothing thinnable: keep everything, the bound is soft
            return False
        self.db.execute("DELETE FROM message WHERE id = ?", (row[0],))
        return True

    # --- reading and delivery ----------------------------------------------------------------

    def head(self) -> Queued | None:
        """The oldest message in order; when none waits, the set-aside one due first."""
        for queued in self._disk_rows(limit=len(self._gone) + 1, aside=False):
            return queued
        for queued in self._memory:
            if not queued.aside:
                return queued
        return min(self.aside(), key=lambda q: (q.not_before, q.id), default=None)

    def pending(self) -> list[Queued]:
        """Everything not yet delivered, set aside or not, in the order it was made."""
        return [*self._disk_rows(None), *self._memory]

    def aside(self) -> list[Queued]:
        """What is set aside (refused past its last attempt), oldest first."""
        if not self._aside_ids:
            return []
        return [*self._disk_rows(None, aside=True), *(q for q in self._memory if q.aside)]

    def _disk_rows(self, limit: int | None, aside: bool | None = None) -> list[Queued]:
        sql = "SELECT id, action, payload, attempts, not_before, aside FROM message"
        if aside is not None:
            sql += f" WHERE aside = {int(aside)}"
        try:
            rows = self.db.execute(sql + " ORDER BY id" + (f" LIMIT {int(limit)}" if limit
                                                           else "")).fetchall()
        except _DISK_ERRORS as exc:  # not even readable: only what memory holds
            self._lost(exc)
            return []
        out = []
        for r in rows:
            if r[0] in self._gone:
                continue
            attempts, not_before = self._retries.get(r[0], (r[3], r[4]))
            out.append(Queued(r[0], r[1], json.loads(r[2]), attempts, not_before,
                              bool(r[5])))
        return out

    def delivered(self, msg_id: int) -> None:
        if msg_id in self._aside_ids:
            self._aside_ids.discard(msg_id)
            log.warning("message %d, set aside earlier, is delivered at last", msg_id)
        if msg_id < 0:
            before = len(self._memory)
            self._memory = [q for q in self._memory if q.id != msg_id]
            self._length -= before - len(self._memory)
            return
        try:
            # Not fsynced (WAL, synchronous=NORMAL for this one commit): a power cut may
            # undo it, and the message is then sent again, as after a CALLRESULT lost on
            # the way; a loss (what FULL guards) it can never be. The next append's sync
            # makes it durable too. One fsync per delivered message was the drain's cost.
            self.db.execute("PRAGMA synchronous=NORMAL")
            try:
                if self.db.execute("DELETE FROM message WHERE id = ?", (msg_id,)).rowcount:
                    self._length -= 1
            finally:
                self.db.execute("PRAGMA synchronous=FULL")
        except _DISK_ERRORS as exc:  # delivered all the same: never sent again
            self._lost(exc)
            if msg_id not in self._gone:
                self._gone.add(msg_id)
                self._length -= 1

    def failed(self, msg_id: int, now: float, attempts_max: int, interval_s: float,
               refused: bool = False) -> bool:
        """One more failed attempt (``refused``: the CSMS answered it with a CALLERROR or
        a malformed reply, rather than not at all). The next waits interval x attempts
        so far (2.0.1 MessageAttemptInterval). After the last allowed attempt, one that
        may go is given up with its data carried into the next event that can take it;
        else a refused one is set aside, and any other is tried again every interval x
        attempts_max (an Updated until a later event can carry it). A set-aside one
        refused again is offered again as long after.
        Returns whether it stays in the order (False: carried on or set aside)."""
        head = next((q for q in self.pending() if q.id == msg_id), None)
        if head is None:  # already delivered or discarded: nothing to retry, nothing counted
            return False
        attempts = head.attempts + 1
        if attempts >= attempts_max or head.aside:
            attempts = attempts_max  # keeps the wait bounded
            if not head.aside:
                if not self.must_keep(head.action, head.payload) and self._carry_on(head):
                    return False
                if refused and self.must_keep(head.action, head.payload) and \
                        self._put_aside(head, attempts, now + interval_s * attempts):
                    return False
                self.kept += 1
        self._set_attempts(head, attempts, now + interval_s * attempts)
        return True

    def _put_aside(self, head: Queued, attempts: int, not_before: float) -> bool:
        """Out of the order, kept; False when the disk will not take the change (then it
        stays at the head until it does)."""
        if head.id < 0:
            self._memory = [replace(q, attempts=attempts, not_before=not_before, aside=True)
                            if q.id == head.id else q for q in self._memory]
        else:
            try:
                self.db.execute("UPDATE message SET aside = 1, attempts = ?, not_before = ? "
                                "WHERE id = ?", (attempts, not_before, head.id))
                self._retries.pop(head.id, None)
            except _DISK_ERRORS as exc:
                self._lost(exc)
                return False
        self._aside_ids.add(head.id)
        self.set_aside += 1
        p = head.payload
        text = (f"{head.action} {p.get('eventType') or p.get('type') or ''} seqNo "
                f"{p.get('seqNo')} refused by the CSMS on all {attempts} attempts: set "
                f"aside (kept in {self.path.name}, offered again while nothing else "
                f"waits); the queue goes on")
        log.error("%s", text)
        if self.notice is not None:
            self.notice("set_aside", text)
        return True

    def _set_attempts(self, head: Queued, attempts: int, not_before: float) -> None:
        if head.id < 0:
            self._memory = [replace(q, attempts=attempts, not_before=not_before)
                            if q.id == head.id else q for q in self._memory]
            return
        try:
            self.db.execute("UPDATE message SET attempts = ?, not_before = ? WHERE id = ?",
                            (attempts, not_before, head.id))
            self._retries.pop(head.id, None)
        except _DISK_ERRORS as exc:
            self._lost(exc)
            self._retries[head.id] = (attempts, not_before)

    def _carry_on(self, head: Queued) -> bool:
        """Give ``head`` up into the next event of its transaction; False if none."""
        for later in self.pending():
            if later.id == head.id or later.action != head.action or later.aside:
                continue
            merged = self.carry(head.payload, later.payload)
            if merged is None:
                continue
            if not self._replace(head, later, merged):
                return False
            self.discarded += 1
            self.carried += 1
            text = (f"{head.action} seqNo {head.payload.get('seqNo')} given up after its "
                    f"last attempt; its meter values go with seqNo "
                    f"{later.payload.get('seqNo')}")
            log.error("%s", text)
            if self.notice is not None:
                self.notice("given_up", text)
            return True
        return False

    def _replace(self, head: Queued, later: Queued, merged: dict[str, Any]) -> bool:
        if later.id < 0:
            self._memory = [replace(q, payload=merged) if q.id == later.id else q
                            for q in self._memory]
            self.delivered(head.id)
            return True
        try:
            with self.db:
                self.db.execute("BEGIN IMMEDIATE")
                self.db.execute("UPDATE message SET payload = ? WHERE id = ?",
                                (json.dumps(merged, separators=(",", ":")), later.id))
                self.db.execute("DELETE FROM message WHERE id = ?", (head.id,))
        except _DISK_ERRORS as exc:  # cannot rewrite the later one: keep trying the head
            self._lost(exc)
            return False
        self._length -= 1
        return True

    # --- the disk failing and coming back -------------------------------------------------

    def _lost(self, exc: BaseException) -> None:
        self.storage_failures += 1
        if self.storage_ok:
            self.storage_ok = False
            reason = f"{self.path}: {exc}"
            log.error("message queue cannot write to disk (%s): keeping messages in "
                      "memory until it can", reason)
            if self.notice is not None:
                self.notice("storage_lost", reason)

    def retry_storage(self) -> bool:
        """Write out what memory holds, in order, in one transaction. True when nothing
        is left in memory."""
        if not (self._memory or self._memory_state or self._gone or self._retries):
            return True
        try:
            with self.db:
                self.db.execute("BEGIN IMMEDIATE")
                for msg_id in self._gone:
                    self.db.execute("DELETE FROM message WHERE id = ?", (msg_id,))
                for msg_id, (attempts, not_before) in self._retries.items():
                    self.db.execute("UPDATE message SET attempts = ?, not_before = ? "
                                    "WHERE id = ?", (attempts, not_before, msg_id))
                written_ids = {}
                for q in self._memory:
                    cursor = self.db.execute(
                        "INSERT INTO message (action, payload, thinnable, attempts, "
                        "not_before, aside) VALUES (?, ?, ?, ?, ?, ?)",
                        (q.action, json.dumps(q.payload, separators=(",", ":")),
                         int(self.thinnable(q.action, q.payload)), q.attempts,
                         q.not_before, int(q.aside)))
                    written_ids[q.id] = cursor.lastrowid
                for key, text in self._memory_state.items():
                    self.db.execute("INSERT OR REPLACE INTO state VALUES (?, ?)",
                                    (key, text))
        except _DISK_ERRORS:
            return False
        written = len(self._memory)
        for memory_id, disk_id in written_ids.items():  # set aside in memory, now on disk
            if memory_id in self._aside_ids and disk_id is not None:
                self._aside_ids = (self._aside_ids - {memory_id}) | {disk_id}
        self._memory, self._memory_state = [], {}
        self._gone, self._retries = set(), {}
        if not self.storage_ok:
            self.storage_ok = True
            log.warning("message queue writes to disk again (%d messages written out)",
                        written)
            if self.notice is not None:
                self.notice("storage_back", f"{self.path}: {written} messages written out")
        return True

    def __len__(self) -> int:
        """Messages waiting in order (what is set aside is counted by ``aside()``)."""
        return self._length - len(self._aside_ids)

    # --- state -------------------------------------------------------------------------

    def set_state(self, key: str, value: dict[str, Any]) -> None:
        text = json.dumps(value, separators=(",", ":"))
        if not (self._memory or self._memory_state):
            try:
                self.db.execute("INSERT OR REPLACE INTO state VALUES (?, ?)", (key, text))
                return
            except _DISK_ERRORS as exc:
                self._lost(exc)
        self._memory_state[key] = text

    def get_state(self, key: str) -> dict[str, Any] | None:
        text = self._memory_state.get(key)
        if text is None:
            row = self.db.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
            if row is None:
                return None
            text = row[0]
        value: dict[str, Any] = json.loads(text)
        return value

    def state_items(self, prefix: str) -> dict[str, dict[str, Any]]:
        # substr, not LIKE (case-insensitive, wildcards) nor a range up to U+FFFF (misses
        # keys with characters beyond it).
        out = {k: json.loads(v) for k, v in self.db.execute(
            "SELECT key, value FROM state WHERE substr(key, 1, ?) = ? ORDER BY key",
            (len(prefix), prefix))}
        out.update({k: json.loads(v) for k, v in self._memory_state.items()
                    if k.startswith(prefix)})
        return dict(sorted(out.items()))

    def close(self) -> None:
        self.db.close()
