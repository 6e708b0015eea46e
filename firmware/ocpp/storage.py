"""The station's state directory (``[ocpp] state_dir``) and its small SQLite file
(``station.db``): a key/value table for what must survive a restart (availability per
EVSE, G03.FR.06; network profiles), shared with the version's own tables (the 2.0.1
auth cache and local list) through ``db``.

At start (``StateDir``), before anything is read:
- an exclusive lock (``lock``, flock) on the directory: a second controller process on
  it would end the first one's live transaction, send a second Ended and number two
  events with one seqNo; it refuses to start instead, naming the process that holds it;
- every database is opened and read once (``opened``): a corrupt or unopenable file is
  one ``StateDirError`` naming the file and what to do, never a raw traceback;
- the queue file carries a generation id that station.db remembers: a queue.db that is
  empty, missing or from elsewhere while the station has run before is refused (a
  silent fresh start would forget the open transaction and put the register back at
  0), with what to do.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")
GENERATION_KEY = "queue_generation"


class StateDirError(RuntimeError):
    """The state directory cannot be used as it is: ``path`` names the file."""

    def __init__(self, path: Path, reason: str, todo: str) -> None:
        super().__init__(f"{path}: {reason}; {todo}")
        self.path = path
        self.reason = reason
        self.todo = todo


def open_db(path: str | Path) -> sqlite3.Connection:
    """Autocommit (isolation_level None; a caller groups writes with ``with db``), WAL."""
    db = sqlite3.connect(str(path), isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    return db


class StateDir:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock_fd: int | None = None
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StateDirError(self.path, f"cannot create the state directory "
                                f"({exc.strerror})", "check ocpp.state_dir and its "
                                "permissions") from None

    def lock(self) -> None:
        """Exclusive for this process until ``unlock`` (or the process ends)."""
        lock_path = self.path / "lock"
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise StateDirError(lock_path, f"cannot open the lock file ({exc.strerror})",
                                "check the state directory's permissions") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise StateDirError(self.path, f"in use by another controller process (pid "
                                f"{holder})", "stop it first, or give this one its own "
                                "ocpp.state_dir") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._lock_fd = fd

    def unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor releases the flock
            self._lock_fd = None

    def opened(self, name: str, open_: Callable[[Path], T]) -> T:
        """``open_(path)`` with every way a database can be bad turned into one
        StateDirError naming the file."""
        path = self.path / name
        try:
            return open_(path)
        except sqlite3.DatabaseError as exc:
            raise StateDirError(path, f"not a readable SQLite database ({exc})",
                                "restore it from a backup, or move it away to start "
                                "with it empty (what it held is then lost)") from None
        except (sqlite3.Error, OSError, RuntimeError) as exc:
            raise StateDirError(path, f"cannot be opened ({exc})", "check the disk, the "
                                "file's permissions and free space") from None

    def check_generation(self, queue_generation: str | None, kv: KeyValue,
                         queue_path: Path) -> str:
        """The queue file's generation id against station.db's memory of it; returns
        the id (a fresh one on the very first start)."""
        known = kv.stored(GENERATION_KEY)
        if queue_generation is None and known is not None:
            raise StateDirError(queue_path, "is empty, missing or replaced although this "
                                "station has run before: the open transactions and the "
                                "energy register it held would be forgotten",
                                "restore it from a backup; to start afresh knowingly, "
                                "move the whole state directory away")
        if queue_generation is not None and known is not None and known != queue_generation:
            raise StateDirError(queue_path, "belongs to another state directory (its "
                                "generation differs from station.db's)", "put back the "
                                "matching queue.db, or move the whole state directory "
                                "away to start afresh")
        generation = queue_generation or known or uuid.uuid4().hex
        if known is None:
            kv.store(GENERATION_KEY, generation)
        return generation


class KeyValue:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        db.execute("CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT)")

    def store(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO kv VALUES (?, ?)", (key, value))

    def stored(self, key: str) -> str | None:
        row = self.db.execute("SELECT value FROM kv WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])
