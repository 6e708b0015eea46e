"""Open card reservations on disk, so each is settled or released exactly once, across
controller restarts.

Every step is written (and committed) before the terminal is asked: ``open`` after the
terminal approved the pre-authorization, ``capturing`` with the final amount before the
book-total is sent, ``releasing`` before the reversal; ``settled`` / ``released`` when
the terminal confirmed it (or said it no longer knows the receipt: it was done before a
crash). After a restart the payment shell finishes every record not yet final; the
terminal refuses a second booking of the same receipt, so a retry can never charge
twice. ``running_minor`` is the session's cost incl. VAT so far (saved with the screen's
30 s refresh): what a reservation is captured at when the controller lost the session.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from pathlib import Path

from hal.payment import Reservation

FINAL = ("settled", "released")


@dataclass(frozen=True, slots=True)
class Record:
    reservation: Reservation
    evse_id: int
    token: str
    state: str  # open, capturing, releasing, settled, released
    final_minor: int = 0
    running_minor: int = 0
    started: bool = False  # energy transfer began


class ReservationStore:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(str(path), isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS reservation (receipt TEXT PRIMARY KEY, trace TEXT,"
            " amount_minor INTEGER, currency TEXT, card TEXT, evse_id INTEGER, token TEXT,"
            " state TEXT, final_minor INTEGER DEFAULT 0, running_minor INTEGER DEFAULT 0,"
            " started INTEGER DEFAULT 0)")

    def close(self) -> None:
        self._db.close()

    def open(self, r: Reservation, evse_id: int, token: str) -> Record:
        self._db.execute("INSERT OR REPLACE INTO reservation VALUES (?,?,?,?,?,?,?,"
                         "'open',0,0,0)", (r.receipt, r.trace, r.amount_minor,
                                           r.currency, r.card, evse_id, token))
        return Record(r, evse_id, token, "open")

    def set_state(self, receipt: str, state: str, final_minor: int | None = None) -> None:
        if final_minor is None:
            self._db.execute("UPDATE reservation SET state=? WHERE receipt=?",
                             (state, receipt))
        else:
            self._db.execute("UPDATE reservation SET state=?, final_minor=? WHERE receipt=?",
                             (state, final_minor, receipt))

    def note_running(self, receipt: str, running_minor: int, started: bool) -> None:
        self._db.execute("UPDATE reservation SET running_minor=?, started=? WHERE receipt=?"
                         " AND state='open'", (running_minor, int(started), receipt))

    def get(self, receipt: str) -> Record | None:
        rows = self._select("WHERE receipt=?", (receipt,))
        return rows[0] if rows else None

    def unfinished(self) -> list[Record]:
        return self._select("WHERE state NOT IN ('settled','released') ORDER BY receipt")

    def all(self) -> list[Record]:
        return self._select("ORDER BY receipt")

    def _select(self, where: str, args: tuple[object, ...] = ()) -> list[Record]:
        rows = self._db.execute(
            "SELECT receipt, trace, amount_minor, currency, card, evse_id, token, state,"
            f" final_minor, running_minor, started FROM reservation {where}", args)
        return [Record(Reservation(r[0], r[1], r[2], r[3], r[4]), r[5], r[6], r[7], r[8],
                       r[9], bool(r[10])) for r in rows]
