"""The 2.0.1 station's own knowledge of tokens: the authorization cache, the local
authorization list and the offline policy (OCPP 2.0.1 Part 2, C "Authorization": C01,
C10-C14; D "Local authorization list").

Pure decisions over two SQLite tables; authorizer.py does the Authorize round trip and
answers firmware/authorization.py, which decides what a token means for an EVSE.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Decision:
    status: str  # AuthorizationStatusEnumType: Accepted, Blocked, Invalid, Unknown, ...
    group_id_token: dict[str, Any] | None = None
    source: str = "csms"  # csms, cache, local_list, offline_policy
    info: dict[str, Any] | None = None  # the IdTokenInfo it rests on (personalMessage, ...)


class AuthStore:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        db.execute("CREATE TABLE IF NOT EXISTS auth_cache (token TEXT PRIMARY KEY, "
                   "info TEXT, expires REAL)")
        db.execute("CREATE TABLE IF NOT EXISTS local_list (token TEXT PRIMARY KEY, info TEXT)")
        db.execute("CREATE TABLE IF NOT EXISTS local_list_version (version INTEGER)")

    # --- cache (C10) ---------------------------------------------------------------------

    def remember(self, token: str, info: dict[str, Any], now: float, lifetime_s: int) -> None:
        self.db.execute("INSERT OR REPLACE INTO auth_cache VALUES (?, ?, ?)",
                        (token, json.dumps(info), now + lifetime_s))

    def clear_cache(self) -> None:
        self.db.execute("DELETE FROM auth_cache")

    def _cached(self, token: str, now: float) -> dict[str, Any] | None:
        row = self.db.execute("SELECT info, expires FROM auth_cache WHERE token = ?",
                              (token,)).fetchone()
        if row is None or row[1] < now:
            return None
        info: dict[str, Any] = json.loads(row[0])
        return info

    # --- local list (D01, D02) -------------------------------------------------------------

    def list_version(self) -> int:
        row = self.db.execute("SELECT version FROM local_list_version").fetchone()
        return int(row[0]) if row else 0

    def update_list(self, version: int, update_type: str,
                    entries: list[dict[str, Any]]) -> str:
        """SendLocalList: Full replaces, Differential adds/updates/removes. Returns the
        SendLocalListStatusEnumType."""
        if update_type == "Differential" and version <= self.list_version():
            return "VersionMismatch"
        with self.db:
            if update_type == "Full":
                self.db.execute("DELETE FROM local_list")
            for entry in entries:
                token = entry["idToken"]["idToken"]
                info = entry.get("idTokenInfo")
                if info is None:  # no info in a differential update: remove it
                    self.db.execute("DELETE FROM local_list WHERE token = ?", (token,))
                else:
                    self.db.execute("INSERT OR REPLACE INTO local_list VALUES (?, ?)",
                                    (token, json.dumps(info)))
            self.db.execute("DELETE FROM local_list_version")
            self.db.execute("INSERT INTO local_list_version VALUES (?)", (version,))
        return "Accepted"

    def list_entries(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM local_list").fetchone()[0])

    def _listed(self, token: str) -> dict[str, Any] | None:
        row = self.db.execute("SELECT info FROM local_list WHERE token = ?",
                              (token,)).fetchone()
        if row is None:
            return None
        info: dict[str, Any] = json.loads(row[0])
        return info

    # --- decisions ---------------------------------------------------------------------------

    def local(self, token: str, now: float, use_list: bool, use_cache: bool) -> Decision | None:
        """What the station knows without asking: the local list first (it is the
        operator's statement), then the cache."""
        for source, info in (("local_list", self._listed(token) if use_list else None),
                             ("cache", self._cached(token, now) if use_cache else None)):
            if info is not None:
                return Decision(info.get("status", "Invalid"), info.get("groupIdToken"),
                                source, info)
        return None

    def offline(self, token: str, now: float, *, local_offline: bool, unknown_ok: bool,
                use_list: bool, use_cache: bool) -> Decision:
        """C12/C13: offline, only known Accepted tokens (LocalAuthorizeOffline), or any
        unknown token when OfflineTxForUnknownIdEnabled; a known non-Accepted token is
        refused either way."""
        known = self.local(token, now, use_list, use_cache)
        if known is not None:
            if known.status == "Accepted" and local_offline:
                return known
            return Decision(known.status if known.status != "Accepted" else "Unknown",
                            known.group_id_token, known.source)
        if unknown_ok:
            return Decision("Accepted", None, "offline_policy")
        return Decision("Unknown", None, "offline_policy")

